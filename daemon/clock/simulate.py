"""What-if: when would a new ticket's reminders, warnings and escalations fire?

Runs the real engine on the real calendars, with no store and no mail: the ticket opens at
`at`, and each expiry is fired at its due time, as the clock loop would if nobody acted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo

from daemon.workflow.engine import Engine
from daemon.workflow.facts import CommandIssued, Decision, NewTicket, TicketFacts, TimerFired
from daemon.workflow.model import Workflow

# A guard against a workflow whose timeouts cycle through several states forever.
MAX_STEPS = 20


@dataclass(frozen=True)
class Step:
    """One line of the forecast."""

    at: datetime
    state: str
    what: str


def forecast(engine: Engine, workflow: Workflow, report: NewTicket, at: datetime,
             priority: str | None = None, max_steps: int = MAX_STEPS) -> Iterator[Step]:
    """Every timer the ticket would meet, in order, if nobody touched it; `priority`
    overrides what triage would pick, as a technician's #priority at opening would."""
    decision = engine.open(report, at)
    yield Step(at, decision.ticket.state, _opening(decision))
    if priority is not None and priority != decision.ticket.priority:
        decision = _reprioritise(engine, workflow, decision.ticket, priority, at)
        yield Step(at, decision.ticket.state, f"priority set to {priority}")
    for _ in range(max_steps):
        ticket = decision.ticket
        yield from _alerts(decision)
        expiry = next((t for t in decision.timers if t.kind == "expire"), None)
        if expiry is None:
            yield Step(ticket.state_entered_at, ticket.state, _resting(workflow, ticket))
            return
        decision = engine.handle(ticket, TimerFired("expire", ticket.state), expiry.due_at)
        yield Step(expiry.due_at, ticket.state, _moved(ticket, decision))
        if decision.refused:
            return
        if decision.ticket.state == ticket.state:  # a self-loop: the same again, forever
            yield Step(expiry.due_at, ticket.state, "... and the same again after each "
                       "deadline, until someone acts")
            return
    yield Step(decision.ticket.state_entered_at, decision.ticket.state,
               f"... and so on (stopped after {max_steps} steps)")


def _reprioritise(engine: Engine, workflow: Workflow, ticket: TicketFacts, priority: str,
                  at: datetime) -> Decision:
    team = workflow.states[ticket.state].team or ""
    command = CommandIssued("priority", actor="simulate", actor_team=team, argument=priority)
    decision = engine.handle(ticket, command, at)
    if decision.refused:
        raise ValueError(decision.refusal)
    return decision


def _opening(decision: Decision) -> str:
    created = decision.events[0]
    ticket = decision.ticket
    return f"opened as {ticket.priority}, {created.reason}; now in {ticket.state}"


_TARGETS = {"respond": "first response due (SLA target)",
            "resolve": "resolution due, if never paused (SLA target)"}


def _alerts(decision: Decision) -> Iterator[Step]:
    for timer in decision.timers:
        if timer.kind in _TARGETS:
            yield Step(timer.due_at, decision.ticket.state, _TARGETS[timer.kind])
        elif timer.kind == "remind":
            yield Step(timer.due_at, timer.state, f"reminder {timer.seq} to the owning team")
        elif timer.kind == "warn":
            yield Step(timer.due_at, timer.state, "SLA warning to the owning team")


def _moved(before: TicketFacts, decision: Decision) -> str:
    if decision.refused:
        return f"deadline passed, but nothing can happen: {decision.refusal}"
    move = next(e for e in decision.events if e.kind == "transition")  # after any breach
    trigger = move.data.get("trigger", "?")
    where = ("stays in " if decision.ticket.state == before.state else "moves to ") \
        + decision.ticket.state
    return f"deadline: {trigger}, {where} ({move.reason})"


def _resting(workflow: Workflow, ticket: TicketFacts) -> str:
    state = workflow.states[ticket.state]
    if state.final:
        return "final state: nothing more happens"
    return "no timeout here: the ticket waits for a person"


def render(steps: Iterator[Step], zone: tzinfo) -> str:
    lines = []
    # In time order: the ticket's own targets interleave with the states' timers.
    for step in sorted(steps, key=lambda step: step.at):
        local = step.at.astimezone(zone)
        lines.append(f"{local:%a %Y-%m-%d %H:%M %Z}  {step.state:<20} {step.what}")
    return "\n".join(lines)
