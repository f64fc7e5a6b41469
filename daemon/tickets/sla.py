"""The SLA report of one stored ticket: its timeline read as moves, on the site's calendars.
Shared by `show` and by the clock (which must know how much working time a paused ticket
has really used before calling its resolution target missed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from daemon.clock.business_hours import calendar_span
from daemon.clock.sla import LINKED, Move, SlaReport, report
from daemon.site.config import Config
from daemon.store.models import Event, Ticket


def sla_of(config: Config, ticket: Ticket, events: Sequence[Event], now: datetime) -> SlaReport:
    workflow = config.workflows.get(ticket.workflow_name)
    if workflow is None:
        raise LookupError(f"workflow {ticket.workflow_name!r} is not loaded")
    moves = sla_moves(events, workflow.initial, lambda s: s in workflow.states and (
        workflow.states[s].clock == "stopped" or workflow.states[s].final))
    return report(workflow, ticket.priority, ticket.created_at, moves, ticket.responded_at,
                  calendar_span(config.settings.calendars), now)


def sla_moves(events: Sequence[Event], initial: str, stopped: Callable[[str], bool]) -> list[Move]:
    """The state changes, with the time linked to an incident (#link .. #unlink) as a paused
    stint of its own: a report's clock stops while linked, unless it stops for good
    (resolved with its incident)."""
    moves: list[Move] = []
    state, linked = initial, False
    for e in events:
        if e.kind == "transition" and e.to_state and e.to_state != e.from_state:
            state = e.to_state
            if not linked or stopped(state):
                moves.append(Move(e.at, state))
        elif e.kind == "link" and e.data.get("parent") and not linked:
            linked = True
            if not stopped(state):
                moves.append(Move(e.at, LINKED))
        elif e.kind == "unlink" and linked:
            linked = False
            moves.append(Move(e.at, state))
    return moves
