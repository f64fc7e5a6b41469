"""Which mails an engine step sends (the workflow's `notify`), and the facts templates may use."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from daemon.workflow.facts import MailOrder, TicketFacts
from daemon.workflow.model import MailSpec

MOVED = "moved"


def context(before: TicketFacts, after: TicketFacts, *, event: str, actor: str, reason: str = "",
            argument: str = "", trigger: str | None = None,
            deadline: datetime | None = None) -> dict[str, Any]:
    """Template facts for one step that took the ticket from `before` to `after`."""
    return {
        "ref": after.ref, "subject": after.subject, "requester": after.requester,
        "priority": after.priority, "state": after.state, "event": event, "trigger": trigger,
        "from_state": before.state, "to_state": after.state, "actor": actor, "reason": reason,
        "argument": argument, "team": after.team, "previous_team": before.team,
        "assignee": after.assignee, "vendor": after.vendor, "deadline": deadline,
        "bounces": after.bounces, "flagged": after.flagged,
    }


class Notifier:
    def __init__(self, notify: Mapping[str, tuple[MailSpec, ...]]) -> None:
        self._notify = notify

    def mails(self, key: str, facts: Mapping[str, Any]) -> tuple[MailOrder, ...]:
        return tuple(MailOrder(spec.template, spec.to, facts) for spec in self._notify.get(key, ()))

    def for_move(self, trigger: str, changed: bool,
                 facts: Mapping[str, Any]) -> tuple[MailOrder, ...]:
        """notify[trigger] if listed (even an empty list), else `moved` on a state change."""
        if trigger in self._notify:
            return self.mails(trigger, facts)
        return self.mails(MOVED, facts) if changed else ()
