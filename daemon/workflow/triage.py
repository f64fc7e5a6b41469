"""Triage rules, compiled once: the first rule that matches a new ticket sets priority and route."""

from __future__ import annotations

import re
from dataclasses import dataclass

from daemon.workflow.facts import Lookalike, NewTicket
from daemon.workflow.model import Triage, TriageRule

_FIELDS = ("subject", "body", "sender")


@dataclass(frozen=True)
class Verdict:
    """What triage decided, and which rule decided it (None: no rule matched)."""

    rule: str | None
    priority: str
    route: str | None
    # The open look-alike to link to (a rule with `link: true` matched), else None.
    link: Lookalike | None = None

    @property
    def reason(self) -> str:
        if self.rule is None:
            return "no triage rule matched"
        if self.link is not None:
            return (f"triage rule {self.rule} matched: looks {percent(self.link.score)} like "
                    f"open {self.link.ref}")
        return f"triage rule {self.rule} matched"


def percent(score: float) -> str:
    return f"{round(score * 100)}%"


@dataclass(frozen=True)
class _Rule:
    name: str
    patterns: tuple[tuple[str, re.Pattern[str]], ...]
    priority: str | None
    route: str | None
    looks_like_open: float | None = None
    link: bool = False

    def matches(self, texts: dict[str, str], lookalike: Lookalike | None) -> bool:
        # A rule matches when ANY of its patterns matches: the shipped outage rule lists
        # alternatives ("outage" in the subject, or "nobody can" in the body), not a conjunction.
        # `looks_like_open` is a condition on top: "VPN reports like an open one", not "or".
        if self.looks_like_open is not None and (
                lookalike is None or lookalike.score < self.looks_like_open):
            return False
        return not self.patterns or any(pattern.search(texts[name])
                                        for name, pattern in self.patterns)


def _compile(rule: TriageRule) -> _Rule:
    given = ((f, getattr(rule.match, f)) for f in _FIELDS)
    patterns = tuple((f, re.compile(p, re.IGNORECASE)) for f, p in given if p)
    return _Rule(rule.name, patterns, rule.priority, rule.route, rule.match.looks_like_open,
                 rule.link)


class Triager:
    def __init__(self, triage: Triage, default_priority: str) -> None:
        self._rules = tuple(_compile(rule) for rule in triage.rules)
        default = triage.default
        self._default = Verdict(None, default.priority or default_priority, default.route)

    @property
    def looks_like_open(self) -> float | None:
        """The lowest `looks_like_open` of the rules: how alike an open ticket must be to be
        worth searching for at all (None: no rule asks, so the shell never searches)."""
        wanted = [rule.looks_like_open for rule in self._rules if rule.looks_like_open]
        return min(wanted) if wanted else None

    def classify(self, report: NewTicket) -> Verdict:
        texts = {"subject": report.subject, "body": report.body, "sender": report.requester}
        for rule in self._rules:
            if rule.matches(texts, report.lookalike):
                link = report.lookalike if rule.link else None
                return Verdict(rule.name, rule.priority or self._default.priority, rule.route,
                               link)
        return self._default
