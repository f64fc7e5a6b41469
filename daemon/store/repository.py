"""Small functions over a synchronous Session for tickets, their events, timers and outbox.

With daemon/store/messages.py (the stored mails) and daemon/store/intake.py (mailbox cursor,
quarantine) the only place that reads or writes rows. Callers own the transaction
(`with database.transaction() as session:`); nothing here commits.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import Select, delete, or_, select, text, update
from sqlalchemy.orm import Session, object_session

from daemon.store import search
from daemon.store.deferred import HeldOutbox, OutboxRow
from daemon.store.deferred import current as deferred_rows
from daemon.store.models import (
    STATE_TIMER_KINDS,
    TIMER_KINDS,
    Event,
    Outbox,
    Ticket,
    Timer,
)
from daemon.workflow.facts import Decision, EventRecord, MailOrder, TicketFacts, TimerOrder

REF_PREFIX = "TD-"
# Every fact the engine may change; created_at and the ref never change.
_FACT_FIELDS = (
    "state", "priority", "team", "assignee", "requester", "subject", "state_entered_at",
    "return_state", "bounces", "flagged", "vendor", "responded_at",
)


# ---------------------------------------------------------------- JSON

_PLAIN = frozenset({str, int, float, bool, type(None)})


def jsonable(value: Any) -> Any:
    """`value` with datetimes as ISO 8601 strings and tuples as lists, ready for a JSON column."""
    if type(value) in _PLAIN:  # the common case first: a batch converts ~50,000 values
        return value
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    raise TypeError(f"cannot store {type(value).__name__} in a JSON column: {value!r}")


# ---------------------------------------------------------------- tickets

def format_ref(ticket_id: int) -> str:
    return f"{REF_PREFIX}{ticket_id}"


def create_ticket(
    session: Session,
    *,
    requester: str,
    subject: str,
    workflow_name: str,
    workflow_version: int,
    initial_state: str,
    priority: str,
    team: str | None,
    now: datetime,
    linked_ref: str | None = None,
    ticket_id: int | None = None,
) -> Ticket:
    """Insert a ticket and give it its ref, TD-<id>; ids are never reused, so neither are refs.
    With `ticket_id` (from `ticket_ids`) nothing is flushed: batches write in one go."""
    ticket = Ticket(
        id=ticket_id,
        ref=format_ref(ticket_id) if ticket_id else f"new-{os.urandom(12).hex()}",
        state=initial_state, priority=priority, team=team, requester=requester,
        subject=subject, created_at=now, updated_at=now, state_entered_at=now,
        tiers_visited=[], bounces=0, flagged=False, workflow_name=workflow_name,
        workflow_version=workflow_version, linked_ref=linked_ref,
    )
    if ticket_id is not None and (buffer := deferred_rows(session)) is not None:
        buffer.tickets[ticket_id] = ticket  # inserted at the batch's end, in one statement
        return ticket
    session.add(ticket)
    if ticket_id is None:
        session.flush()  # the id, for the ref
        ticket.ref = format_ref(ticket.id)  # written by the caller's next flush
    return ticket


def ticket_ids(session: Session) -> Iterator[int]:
    """Ticket ids to give new tickets without a flush, valid in the caller's transaction.

    PostgreSQL hands them out from the table's sequence, so concurrent daemons never clash.
    SQLite counts on from the highest id ever used: the transaction holds the database's
    write lock (BEGIN IMMEDIATE), so nobody else can insert meanwhile.
    """
    if session.get_bind().dialect.name == "postgresql":
        # One at a time: a reserved block would leave gaps in the refs (TD-1, TD-51, ...).
        next_id = text("SELECT nextval(pg_get_serial_sequence('tickets', 'id'))")
        while True:
            yield int(session.scalar(next_id))
    start = session.scalar(text(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'tickets'), 0), "
        "coalesce((SELECT max(id) FROM tickets), 0))"))
    yield from itertools.count(int(start or 0) + 1)


def get_ticket(session: Session, ref: str, *, for_update: bool = False) -> Ticket | None:
    """The ticket with this ref; for_update locks its row (PostgreSQL) until the commit."""
    stmt = select(Ticket).where(Ticket.ref == ref)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).one_or_none()


def tickets_by_ref(session: Session, refs: Iterable[str], *,
                   for_update: bool = False) -> dict[str, Ticket]:
    """The stored tickets among `refs`, by ref, in one query; for_update as in get_ticket
    (rows locked in id order, so two daemons locking overlapping sets cannot deadlock)."""
    wanted = sorted(set(refs))
    if not wanted:
        return {}
    stmt = select(Ticket).where(Ticket.ref.in_(wanted)).order_by(Ticket.id)
    if for_update:
        stmt = stmt.with_for_update()
    return {ticket.ref: ticket for ticket in session.scalars(stmt)}


def list_tickets(session: Session, state: str | None = None) -> list[Ticket]:
    stmt = select(Ticket).order_by(Ticket.id)
    if state is not None:
        stmt = stmt.where(Ticket.state == state)
    return list(session.scalars(stmt))


def parent_of(ticket: Ticket) -> Ticket | None:
    """The incident `ticket` is a report of: from the session's identity map when it holds it
    (an incident's reports are read with it), else one query by primary key."""
    if ticket.parent_id is None:
        return None
    session = object_session(ticket)
    if session is None:
        return None
    buffer = deferred_rows(session)
    if buffer is not None and ticket.parent_id in buffer.tickets:
        return buffer.tickets[ticket.parent_id]  # opened by this batch, not written yet
    with session.no_autoflush:  # the fast path writes only at the end of its batch
        return session.get(Ticket, ticket.parent_id)


def children_of(session: Session, ticket: Ticket, *, for_update: bool = False) -> list[Ticket]:
    """The tickets linked to `ticket`, by id; for_update as in get_ticket. Links made in this
    transaction and not flushed yet count too (ingest's fast path flushes only at the end of
    its batch), and so do unlinks."""
    stmt = select(Ticket).where(Ticket.parent_id == ticket.id).order_by(Ticket.id)
    with session.no_autoflush:
        stored = list(session.scalars(stmt.with_for_update() if for_update else stmt))
    held = [obj for obj in session.identity_map.values()
            if isinstance(obj, Ticket) and obj.parent_id == ticket.id]
    buffer = deferred_rows(session)  # and the batch's new tickets (a triage rule's links)
    opened = list(buffer.tickets.values()) if buffer is not None else []
    found = {t.id: t for t in [*stored, *held, *opened] if t.parent_id == ticket.id}
    return [found[i] for i in sorted(found)]


def incident_links(session: Session) -> tuple[dict[int, str], dict[int, list[str]]]:
    """Every link at once, for listings: each report's incident ref, each incident's
    reports' refs (one query over the linked tickets, ix_tickets_parent_id)."""
    parents: dict[int, str] = {}
    children: dict[int, list[str]] = {}
    rows = [(row.id, row.ref, row.parent_id) for row in session.execute(
        select(Ticket.id, Ticket.ref, Ticket.parent_id)
        .where(Ticket.parent_id.is_not(None)).order_by(Ticket.id))]
    wanted = {parent for _, _, parent in rows}
    refs = {row.id: row.ref for row in session.execute(
        select(Ticket.id, Ticket.ref).where(Ticket.id.in_(wanted)))} if wanted else {}
    for ticket_id, ref, parent in rows:
        parents[ticket_id] = refs.get(parent, "?")
        children.setdefault(parent, []).append(ref)
    return parents, children


def facts(ticket: Ticket) -> TicketFacts:
    """What the engine sees of a ticket row."""
    parent = parent_of(ticket)
    return TicketFacts(
        ref=ticket.ref, state=ticket.state, priority=ticket.priority, team=ticket.team,
        requester=ticket.requester, subject=ticket.subject, created_at=ticket.created_at,
        state_entered_at=ticket.state_entered_at, assignee=ticket.assignee,
        return_state=ticket.return_state, tiers_visited=tuple(ticket.tiers_visited),
        bounces=ticket.bounces, flagged=ticket.flagged, vendor=ticket.vendor,
        responded_at=ticket.responded_at,
        parent=parent.ref if parent is not None else None,
        parent_team=parent.team if parent is not None else None,
    )


def ticket_summary(ticket: Ticket, parent: str | None = None,
                   children: Sequence[str] = ()) -> dict[str, Any]:
    """One ticket as plain JSON-ready data (`run.py tickets --json`); `parent` and `children`
    are its incident links (incident_links)."""
    return {
        "ref": ticket.ref,
        "state": ticket.state,
        "priority": ticket.priority,
        "team": ticket.team,
        "assignee": ticket.assignee,
        "requester": ticket.requester,
        "subject": ticket.subject,
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
        "state_entered_at": ticket.state_entered_at.isoformat(),
        "tiers_visited": list(ticket.tiers_visited),
        "bounces": ticket.bounces,
        "flagged": ticket.flagged,
        "vendor": ticket.vendor,
        "responded_at": ticket.responded_at.isoformat() if ticket.responded_at else None,
        "linked_ref": ticket.linked_ref,
        "parent": parent,
        "children": list(children),
        "workflow": ticket.workflow_name,
        "workflow_version": ticket.workflow_version,
    }


# ---------------------------------------------------------------- decisions

def apply_decision(
    session: Session,
    ticket: Ticket,
    decision: Decision,
    now: datetime,
    *,
    domain: str,
    workflow_name: str | None = None,
    workflow_version: int | None = None,
    flush: bool = True,
) -> list[OutboxRow]:
    """Write a Decision: new facts, events, timers and outbox rows. A refusal writes nothing.

    Returns the new outbox rows, so the caller can render them in the same transaction.
    A caller applying many decisions passes flush=False and flushes once: the ORM then
    batches the inserts instead of a round of statements per decision.
    """
    if decision.refused:
        return []
    if decision.ticket.ref != ticket.ref:
        raise ValueError(f"decision for {decision.ticket.ref} applied to {ticket.ref}")
    changed = _write_facts(ticket, decision.ticket)
    changed = _write_parent(session, ticket, decision.ticket.parent) or changed
    if workflow_name is not None:
        ticket.workflow_name = workflow_name
    if workflow_version is not None:
        ticket.workflow_version = workflow_version
    if changed or decision.events:
        ticket.updated_at = now
    add_events(session, ticket, decision.events, now)
    search.note_resolutions(session, ticket, decision.events, now)
    if decision.cancel_timers or decision.cancel_targets:
        cancel_timers(session, ticket, targets=decision.cancel_targets)
    add_timers(session, ticket, decision.timers)
    if decision.retarget:
        retarget_timers(session, ticket, decision.retarget)
    mails = [add_mail(session, mail, now, domain=domain, ticket=ticket) for mail in decision.mails]
    if flush:
        session.flush()
    return mails


def _write_parent(session: Session, ticket: Ticket, ref: str | None) -> bool:
    """The incident link, as the engine decided it (by ref) written as the parent's id."""
    current = parent_of(ticket)
    if (current.ref if current is not None else None) == ref:
        return False
    parent = _pending_ticket(session, ref) or get_ticket(session, ref) if ref else None
    if ref is not None and parent is None:
        raise ValueError(f"{ticket.ref} cannot be linked to {ref}: no such ticket")
    ticket.parent_id = parent.id if parent is not None else None
    if parent is not None:
        search.add_to_incident(session, parent, ticket)
    return True


def _pending_ticket(session: Session, ref: str) -> Ticket | None:
    """A ticket the batch in hand opened and has not written (a triage rule may link a new
    report to the batch's first one): no query would find it yet."""
    buffer = deferred_rows(session)
    if buffer is None:
        return None
    return next((t for t in buffer.tickets.values() if t.ref == ref), None)


def _write_facts(ticket: Ticket, new: TicketFacts) -> bool:
    changed = False
    for name in _FACT_FIELDS:
        value = getattr(new, name)
        if getattr(ticket, name) != value:
            setattr(ticket, name, value)
            changed = True
    if tuple(ticket.tiers_visited) != new.tiers_visited:
        # A new list: the JSON column does not notice in-place edits.
        ticket.tiers_visited = list(new.tiers_visited)
        changed = True
    return changed


def add_events(
    session: Session, ticket: Ticket, records: Iterable[EventRecord], now: datetime
) -> list[Event]:
    """Timeline lines for `ticket`. In a deferred batch (store/deferred.py) they are written
    at its end and nothing is returned."""
    buffer = deferred_rows(session)
    if buffer is not None:
        buffer.events.extend(
            {"ticket_id": ticket.id, "at": now, "kind": record.kind, "actor": record.actor,
             "from_state": record.from_state, "to_state": record.to_state,
             "reason": record.reason, "data": jsonable(record.data)}
            for record in records)
        return []
    events = [
        Event(
            ticket_id=ticket.id, at=now, kind=record.kind, actor=record.actor,
            from_state=record.from_state, to_state=record.to_state, reason=record.reason,
            data=jsonable(record.data),
        )
        for record in records
    ]
    session.add_all(events)
    return events


def refusal(ticket: Ticket, reason: str, *, actor: str,
            data: Mapping[str, Any] | None = None) -> EventRecord:
    """The timeline line of a refused command; the ticket itself stays as it was."""
    return EventRecord(
        kind="refused", actor=actor, from_state=ticket.state, to_state=ticket.state,
        reason=reason, data=data or {},
    )


def record_refusal(
    session: Session,
    ticket: Ticket,
    reason: str,
    now: datetime,
    *,
    actor: str,
    data: Mapping[str, Any] | None = None,
) -> Event:
    """Note in the timeline that a command was refused; the ticket itself stays as it was."""
    [event] = add_events(session, ticket, [refusal(ticket, reason, actor=actor, data=data)], now)
    session.flush()
    return event


def timeline(session: Session, ticket: Ticket) -> list[Event]:
    stmt = select(Event).where(Event.ticket_id == ticket.id).order_by(Event.id)
    return list(session.scalars(stmt))


# ---------------------------------------------------------------- timers

def add_timers(session: Session, ticket: Ticket, orders: Iterable[TimerOrder]) -> list[Timer]:
    """Pending timers for `ticket`; in a deferred batch written at its end (returns [])."""
    buffer = deferred_rows(session)
    if buffer is not None:
        buffer.timers.extend(
            {"ticket_id": ticket.id, "kind": order.kind, "state": order.state,
             "seq": order.seq, "due_at": order.due_at, "claimed_by": None,
             "claimed_until": None}
            for order in orders)
        return []
    timers = [
        Timer(ticket_id=ticket.id, kind=order.kind, state=order.state, seq=order.seq,
              due_at=order.due_at)
        for order in orders
    ]
    session.add_all(timers)
    return timers


def cancel_timers(session: Session, ticket: Ticket, *, targets: bool = False) -> int:
    """Delete the timers of the state the ticket is leaving (every timer row is pending until
    it fires), including ones added in this session and not written yet; the ticket-level
    first-response and resolution timers stay, unless `targets` (a ticket joining an
    incident: the incident's clock governs)."""
    kinds = TIMER_KINDS if targets else STATE_TIMER_KINDS
    buffer = deferred_rows(session)
    if buffer is not None:
        kept = [t for t in buffer.timers
                if t["ticket_id"] != ticket.id or t["kind"] not in kinds]
        dropped, buffer.timers = len(buffer.timers) - len(kept), kept
        if ticket.id in buffer.tickets:  # created by this batch: nothing stored to delete
            return dropped
    for obj in [o for o in session.new if isinstance(o, Timer) and o.ticket_id == ticket.id
                and o.kind in kinds]:
        session.expunge(obj)
    result = session.execute(
        delete(Timer).where(Timer.ticket_id == ticket.id, Timer.kind.in_(kinds))
        .execution_options(
            synchronize_session="fetch"
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def retarget_timers(session: Session, ticket: Ticket, orders: Iterable[TimerOrder]) -> None:
    """Move the ticket's pending first-response and resolution timers to the orders' due
    times (after a priority change). A target already met or missed has no pending timer:
    it stays as the timeline recorded it."""
    due = {order.kind: order.due_at for order in orders}
    buffer = deferred_rows(session)
    if buffer is not None:
        for row in buffer.timers:
            if row["ticket_id"] == ticket.id and row["kind"] in due:
                row["due_at"] = due[row["kind"]]
        if ticket.id in buffer.tickets:  # created by this batch: nothing stored yet
            return
    for obj in session.new:
        if isinstance(obj, Timer) and obj.ticket_id == ticket.id and obj.kind in due:
            obj.due_at = due[obj.kind]
    for kind, due_at in due.items():
        session.execute(update(Timer).where(Timer.ticket_id == ticket.id, Timer.kind == kind)
                        .values(due_at=due_at))


def due_timers(session: Session, now: datetime, limit: int) -> list[Timer]:
    """Timers due at `now`, oldest first, not leased by someone else.

    On PostgreSQL the rows stay locked until the commit and rows locked by another
    daemon are skipped, so two clocks never fire the same timer.
    """
    stmt = (
        select(Timer)
        .where(Timer.due_at <= now)
        .where(or_(Timer.claimed_until.is_(None), Timer.claimed_until <= now))
        .order_by(Timer.due_at, Timer.id)
        .limit(limit)
    )
    return list(session.scalars(_skip_locked(stmt)))


def lease_timers(timers: Iterable[Timer], *, owner: str, until: datetime) -> None:
    """Mark timers as being handled, for work that outlives the claiming transaction."""
    for timer in timers:
        timer.claimed_by = owner
        timer.claimed_until = until


def delete_timer(session: Session, timer: Timer) -> None:
    """A timer that fired is done: the events, not the timer row, keep the history."""
    session.delete(timer)


def delete_timers(session: Session, timers: Sequence[Timer]) -> None:
    """Several fired timers in one statement (the clock's batches)."""
    ids = [timer.id for timer in timers]
    if ids:
        session.execute(delete(Timer).where(Timer.id.in_(ids)),
                        execution_options={"synchronize_session": False})
        for timer in timers:
            session.expunge(timer)


def _skip_locked(stmt: Select[Any]) -> Select[Any]:
    # SQLite ignores FOR UPDATE; its BEGIN IMMEDIATE serialises writers instead.
    return stmt.with_for_update(skip_locked=True)


# ---------------------------------------------------------------- outbox

def new_message_id(domain: str, ticket_id: int | None = None) -> str:
    """A Message-ID that names its ticket and is unique forever, so a resend is recognisable.

    Stored bare (left@right), the form inbound parsing gives the ids it reads (exactly as
    written), so a reply's In-Reply-To finds it; the mail header adds the angle brackets.
    Lower case throughout, so even a mailer that lower-cases ids cannot lose the thread.
    """
    prefix = f"td-{ticket_id}" if ticket_id is not None else "td"
    # 128 random bits, as hex: uuid4() is the same bytes with more work (5x slower).
    return f"{prefix}-{os.urandom(16).hex()}@{domain.lower()}"


def add_mail(
    session: Session,
    order: MailOrder,
    now: datetime,
    *,
    domain: str,
    ticket: Ticket | None = None,
) -> OutboxRow:
    """An outbox row for one MailOrder, pending and due at once; not rendered yet. In a
    deferred batch it is a HeldOutbox, not in the session: the batch inserts it once
    rendered."""
    ticket_id = ticket.id if ticket is not None else None
    fields = {"ticket_id": ticket_id, "template": order.template, "to_role": order.to,
              "message_id": new_message_id(domain, ticket_id),
              "context": jsonable(order.context), "next_attempt_at": now, "created_at": now}
    buffer = deferred_rows(session)
    if buffer is not None:
        held = HeldOutbox(**fields)
        buffer.outbox.append(held)
        return held
    row = Outbox(**fields, headers={}, status="pending", attempts=0)
    session.add(row)
    return row


def mark_bounced(session: Session, message_ids: Iterable[str], reason: str,
                 now: datetime) -> int:
    """Outbox rows whose mail came back as undeliverable; returns how many were ours."""
    ids = sorted({mid for mid in message_ids if mid})
    if not ids:
        return 0
    rows = list(session.scalars(select(Outbox).where(Outbox.message_id.in_(ids))))
    for row in rows:
        row.status = "bounced"
        row.last_error = f"bounced ({now.isoformat()}): {reason}"
    return len(rows)


def due_outbox(session: Session, now: datetime, limit: int) -> list[Outbox]:
    """Pending outbox rows whose next attempt is due, oldest first; locked like due_timers."""
    stmt = (
        select(Outbox)
        .where(Outbox.status == "pending", Outbox.next_attempt_at <= now)
        .order_by(Outbox.next_attempt_at, Outbox.id)
        .limit(limit)
    )
    return list(session.scalars(_skip_locked(stmt)))
