"""Which mails an engine step sends (the workflow's `notify`), and the facts templates may use."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from daemon.workflow.facts import MailOrder, TicketFacts
from daemon.workflow.model import MailSpec

MOVED = "moved"
EXCERPT_LINES = 8  # a new-ticket notice quotes this much of the first mail: enough to triage
EXCERPT_CHARS = 600


def first_lines(text: str, lines: int = EXCERPT_LINES, chars: int = EXCERPT_CHARS) -> str:
    """The start of a mail for a notice: blank runs folded, `[...]` where it was cut."""
    kept: list[str] = []
    for line in text.replace("\r\n", "\n").strip().splitlines():
        line = line.rstrip()
        if not line and (not kept or not kept[-1]):
            continue  # one blank line between paragraphs is enough in a preview
        kept.append(line)
    head = "\n".join(kept[:lines]).strip()
    cut = len(kept) > lines or len(head) > chars
    head = head[:chars].rstrip()
    return f"{head}\n[...]" if cut else head


def context(before: TicketFacts, after: TicketFacts, *, event: str, actor: str, reason: str = "",
            argument: str = "", trigger: str | None = None,
            deadline: datetime | None = None, excerpt: str = "") -> dict[str, Any]:
    """Template facts for one step that took the ticket from `before` to `after`; `excerpt`
    is the start of the first mail, on a new ticket only."""
    return {
        "ref": after.ref, "subject": after.subject, "requester": after.requester,
        "priority": after.priority, "state": after.state, "event": event, "trigger": trigger,
        "from_state": before.state, "to_state": after.state, "actor": actor, "reason": reason,
        "argument": argument, "team": after.team, "previous_team": before.team,
        "assignee": after.assignee, "vendor": after.vendor, "deadline": deadline,
        "bounces": after.bounces, "flagged": after.flagged, "excerpt": excerpt,
        # The incident this ticket is a report of; on a mail to a `linked` requester, the
        # incident whose news it carries (daemon/tickets/runtime.py).
        "incident": after.parent,
    }


class Notifier:
    def __init__(self, notify: Mapping[str, tuple[MailSpec, ...]]) -> None:
        self._notify = notify

    def mails(self, key: str, facts: Mapping[str, Any]) -> tuple[MailOrder, ...]:
        return tuple(MailOrder(spec.template, spec.to, facts) for spec in self._notify.get(key, ())
                     if spec.applies(facts.get("state")))

    def for_move(self, trigger: str, changed: bool,
                 facts: Mapping[str, Any]) -> tuple[MailOrder, ...]:
        """notify[trigger] if listed (even an empty list), else `moved` on a state change."""
        if trigger in self._notify:
            return self.mails(trigger, facts)
        return self.mails(MOVED, facts) if changed else ()
