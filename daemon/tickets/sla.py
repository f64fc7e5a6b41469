"""The SLA report of one stored ticket: its timeline read as moves, on the site's calendars.
Shared by `show` and by the clock (which must know how much working time a paused ticket
has really used before calling its resolution target missed)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from daemon.clock.business_hours import calendar_span
from daemon.clock.sla import Move, SlaReport, report
from daemon.site.config import Config
from daemon.store.models import Event, Ticket


def sla_of(config: Config, ticket: Ticket, events: Sequence[Event], now: datetime) -> SlaReport:
    workflow = config.workflows.get(ticket.workflow_name)
    if workflow is None:
        raise LookupError(f"workflow {ticket.workflow_name!r} is not loaded")
    moves = [Move(e.at, e.to_state) for e in events
             if e.kind == "transition" and e.to_state and e.to_state != e.from_state]
    return report(workflow, ticket.priority, ticket.created_at, moves, ticket.responded_at,
                  calendar_span(config.settings.calendars), now)
