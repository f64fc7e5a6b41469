"""The clock loop: fire the timers that are due, in batches, each batch in one transaction.

Its cost follows the number of due timers (an indexed `due_at` query), never the number of
open tickets. On PostgreSQL `due_timers` skips rows another daemon holds, so no timer fires
twice. After downtime each ticket fires only what still matters: when its deadline has
passed, the escalation; otherwise the latest due reminder and warning, once each.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.store import repository
from daemon.store.database import Database
from daemon.store.deferred import OutboxRow
from daemon.store.models import STATE_TIMER_KINDS, Ticket, Timer
from daemon.tickets.runtime import Runtime
from daemon.tickets.sla import sla_of
from daemon.workflow.facts import EventRecord, TimerFired
from daemon.workflow.timers import TicketTargets

# A timer fired later than this after its due time says so in the timeline.
LATE = timedelta(minutes=1)


@dataclass(frozen=True)
class Fired:
    """One timer that fired, for the daemon's log: the ticket, the kind, and its move."""

    ref: str
    kind: str
    from_state: str
    to_state: str

    def describe(self) -> str:
        moved = f", {self.from_state} -> {self.to_state}" if self.to_state != self.from_state \
            else f" in {self.to_state}"
        return f"{self.ref}: {self.kind} timer fired{moved}"


@dataclass(frozen=True)
class TickResult:
    fired: int = 0
    superseded: int = 0
    timers: tuple[Fired, ...] = ()

    @property
    def seen(self) -> int:
        return self.fired + self.superseded


def tick(database: Database, runtime: Runtime, now: datetime, batch: int = 500) -> TickResult:
    """Fire up to `batch` due timers in one transaction. The timers of a ticket that another
    transaction holds (ingest on its mail, another daemon's clock on its other timers) are
    left for the next tick: two clocks firing timers of one ticket at once would each move
    it from its own stale copy."""
    with database.transaction() as session:
        timers = repository.due_timers(session, now, batch)
        if not timers:
            return TickResult()
        tickets = _tickets(session, {t.ticket_id for t in timers})
        timers = [t for t in timers if t.ticket_id in tickets]
        # Deleted first: a move's cancel_timers must not see them, nor a second clock.
        repository.delete_timers(session, timers)
        fired = superseded = 0
        mails: list[OutboxRow] = []
        done: list[Fired] = []
        for ticket_id, group in _by_ticket(timers).items():
            keep = _worth_firing(group)
            ticket = tickets[ticket_id]
            for timer in keep:
                before = ticket.state
                mails += _fire(session, runtime, ticket, timer, now)
                done.append(Fired(ticket.ref, timer.kind, before, ticket.state))
            fired, superseded = fired + len(keep), superseded + len(group) - len(keep)
        runtime.render(session, mails, now)  # the whole batch's mail at once
        return TickResult(fired, superseded, tuple(done))


def run_due(database: Database, runtime: Runtime, now: datetime, batch: int = 500) -> TickResult:
    """Tick until nothing is due at `now` (the `--once` mode, and catching up after downtime).

    Firing can set timers that are themselves already due (a late escalation starts the next
    state's clock at the missed deadline), so stop only when a tick finds nothing.
    """
    total = TickResult()
    while True:
        result = tick(database, runtime, now, batch)
        total = TickResult(total.fired + result.fired, total.superseded + result.superseded,
                           total.timers + result.timers)
        if result.seen == 0:
            return total


def _tickets(session: Session, ids: set[int]) -> dict[int, Ticket]:
    """The tickets, locked; on PostgreSQL those another transaction holds are left out
    (SKIP LOCKED: waiting could deadlock with the other clock's cancel_timers)."""
    rows = session.scalars(select(Ticket).where(Ticket.id.in_(ids))
                           .with_for_update(skip_locked=True))
    return {ticket.id: ticket for ticket in rows}


def _by_ticket(timers: Iterable[Timer]) -> dict[int, list[Timer]]:
    groups: dict[int, list[Timer]] = {}
    for timer in timers:
        groups.setdefault(timer.ticket_id, []).append(timer)
    return groups


def _rearmed(session: Session, runtime: Runtime, ticket: Ticket, timer: Timer,
             now: datetime) -> bool:
    """The resolution target counts working time outside paused states only, which the due
    time set at opening could not know: while some remains, set the timer again for when it
    runs out (measured from now, so a paused ticket keeps moving it out)."""
    workflow = runtime.config.workflows.get(ticket.workflow_name)
    if workflow is None:
        return False
    measure = sla_of(runtime.config, ticket, repository.timeline(session, ticket), now).resolution
    left = measure.left
    if measure.done or left is None or left <= timedelta(0):
        return False
    targets = TicketTargets(workflow, runtime.add_time)
    session.add(Timer(ticket_id=ticket.id, kind="resolve", state="",
                      seq=timer.seq + 1, due_at=targets.due(now, left)))
    return True


def _worth_firing(group: list[Timer]) -> list[Timer]:
    """Of the state's timers, the expiry alone when it is due, else the latest reminder and
    warning (in due order); the ticket-level targets always fire."""
    targets = [t for t in group if t.kind not in STATE_TIMER_KINDS]
    state = [t for t in group if t.kind in STATE_TIMER_KINDS]
    expiries = [t for t in state if t.kind == "expire"]
    latest = expiries[-1:] or list({t.kind: t for t in state}.values())  # last of each kind
    return sorted([*targets, *latest], key=lambda t: (t.due_at, t.id))


def _fire(session: Session, runtime: Runtime, ticket: Ticket, timer: Timer,
          now: datetime) -> list[OutboxRow]:
    if timer.kind == "resolve" and _rearmed(session, runtime, ticket, timer, now):
        return []
    engine = runtime.engine_for(ticket)
    # The engine sees the due time, so a state entered by a late escalation starts its clock
    # at the deadline it missed, not at the moment the daemon came back.
    event = TimerFired(timer.kind, timer.state, timer.seq)  # type: ignore[arg-type]
    facts = repository.facts(ticket)
    decision = engine.handle(facts, event, timer.due_at)
    if (now - timer.due_at > LATE and not decision.refused
            and decision.ticket.state == ticket.state and timer.kind == "expire"):
        # A timeout that keeps the ticket where it is (tier 3 alerting its manager) starts
        # the state's clock again: from the missed deadline, catching up after downtime
        # replayed every missed round, each with its mails (a week off: a dozen alerts a
        # ticket; the years of a skewed clock: thousands). One round, from now.
        decision = engine.handle(facts, event, now)
    if decision.refused:
        repository.record_refusal(session, ticket, decision.refusal or "", now, actor="clock",
                                  data={"timer": timer.kind, "state": timer.state})
        return []
    if now - timer.due_at > LATE:
        late = EventRecord("late_timer", "clock", ticket.state, ticket.state,
                           f"{timer.kind} due {timer.due_at:%Y-%m-%d %H:%M} UTC fired "
                           f"{now.astimezone(UTC):%H:%M} UTC, late: the daemon was not "
                           "running or was behind")
        repository.add_events(session, ticket, [late], now)
    # One flush for the whole batch (at commit) lets the ORM batch the inserts.
    return runtime.apply(session, ticket, decision, now, flush=False, mail=False)
