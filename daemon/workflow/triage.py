"""Triage rules, compiled once: the first rule that matches a new ticket sets priority and route."""

from __future__ import annotations

import re
from dataclasses import dataclass

from daemon.workflow.facts import NewTicket
from daemon.workflow.model import Triage, TriageRule

_FIELDS = ("subject", "body", "sender")


@dataclass(frozen=True)
class Verdict:
    """What triage decided, and which rule decided it (None: no rule matched)."""

    rule: str | None
    priority: str
    route: str | None

    @property
    def reason(self) -> str:
        return "no triage rule matched" if self.rule is None else f"triage rule {self.rule} matched"


@dataclass(frozen=True)
class _Rule:
    name: str
    patterns: tuple[tuple[str, re.Pattern[str]], ...]
    priority: str | None
    route: str | None

    def matches(self, texts: dict[str, str]) -> bool:
        # A rule matches when ANY of its patterns matches: the shipped outage rule lists
        # alternatives ("outage" in the subject, or "nobody can" in the body), not a conjunction.
        return any(pattern.search(texts[name]) for name, pattern in self.patterns)


def _compile(rule: TriageRule) -> _Rule:
    given = ((f, getattr(rule.match, f)) for f in _FIELDS)
    patterns = tuple((f, re.compile(p, re.IGNORECASE)) for f, p in given if p)
    return _Rule(rule.name, patterns, rule.priority, rule.route)


class Triager:
    def __init__(self, triage: Triage, default_priority: str) -> None:
        self._rules = tuple(_compile(rule) for rule in triage.rules)
        default = triage.default
        self._default = Verdict(None, default.priority or default_priority, default.route)

    def classify(self, report: NewTicket) -> Verdict:
        texts = {"subject": report.subject, "body": report.body, "sender": report.requester}
        for rule in self._rules:
            if rule.matches(texts):
                return Verdict(rule.name, rule.priority or self._default.priority, rule.route)
        return self._default
