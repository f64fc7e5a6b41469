"""Append-only rows (inbound messages, events, timers) held in memory for a batch and written
at its end with one Core INSERT per table, instead of one ORM object each; and the batch's
outbox rows, kept out of the session until they are rendered.

Why: ingest's fast path writes ~7 such rows per mail. As ORM objects their construction,
attribute instrumentation and unit of work cost more than parsing the mail; as plain dicts
sent in an executemany they cost a few microseconds. Nothing reads them back as objects.

Rows keep the order they were added in, so event ids (a timeline's order) come out as the
ORM would have numbered them. Readers inside the batch ask the buffer (`cancel_timers`);
readers after it (the outbox's history, the clock) see ordinary rows.

Outbox rows are `HeldOutbox` records with the Outbox columns as attributes, not ORM objects
(whose construction and instrumented attributes cost ~5% of ingest): rendering fills them in
as it fills Outbox rows, then the caller inserts them (`insert_outbox`), so each is written
once with its mail instead of inserted empty and rewritten.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from daemon.store.bulk import insert_rows
from daemon.store.models import Base, Event, Message, Outbox, Ticket, TicketSearch, Timer

KEY = "tierdesk.deferred"


@dataclass(slots=True, eq=False)
class HeldOutbox:
    """An outbox row of a deferred batch: the Outbox columns, set as add_mail sets them."""

    ticket_id: int | None
    template: str
    to_role: str
    message_id: str
    context: dict[str, Any]
    next_attempt_at: datetime
    created_at: datetime
    headers: dict[str, Any] = field(default_factory=dict)
    status: str = "pending"
    attempts: int = 0
    recipients: str | None = None
    subject: str | None = None
    body: bytes | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    attachment_bytes: int = 0
    last_error: str | None = None
    sent_at: datetime | None = None
    claimed_by: str | None = None
    id: int | None = None


OutboxRow = Outbox | HeldOutbox  # what rendering fills in: stored rows and held ones


@dataclass
class Deferred:
    """What a batch added and has not written yet: `tickets` it created by id (they have no
    stored timers to cancel), and `outbox` its outbox rows, for the caller to insert."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    timers: list[dict[str, Any]] = field(default_factory=list)
    tickets: dict[int, Ticket] = field(default_factory=dict)
    outbox: list[HeldOutbox] = field(default_factory=list)
    # The new tickets' search rows (daemon/store/search.py), written after the tickets.
    search: list[dict[str, Any]] = field(default_factory=list)

    def write(self, session: Session) -> None:
        """The new tickets first (the other rows point at them), then the ORM's changes
        (replies' tickets, auto senders), then ours."""
        tickets = list(self.tickets.values())
        _insert(session, tickets)
        for ticket in tickets:  # stored now: the session holds them as loaded rows
            _loaded(ticket)
        session.add_all(tickets)
        session.flush()
        connection = session.connection()
        for model, rows in ((Message, self.messages), (Event, self.events),
                            (Timer, self.timers), (TicketSearch, self.search)):
            insert_rows(connection, _table(model), rows)
        self.messages, self.events, self.timers, self.search = [], [], [], []


def insert_outbox(session: Session, rows: list[HeldOutbox]) -> None:
    """Insert outbox rows a deferred batch held back (and has rendered since) in one
    executemany. Nothing reads them as objects after."""
    _insert(session, rows, _table(Outbox))


def _insert(session: Session, objects: list[Any], table: Table | None = None) -> None:
    """Objects never added to the session (ORM objects or HeldOutbox rows), as rows of one
    executemany into their table. Their creators (repository.create_ticket, add_mail) set
    every column that has a default; the rest are NULL. An id left None is the database's
    to choose."""
    if not objects:
        return
    table = table if table is not None else _table(type(objects[0]))
    keys = [c.key for c in table.columns if c.key != "id" or objects[0].id is not None]
    insert_rows(session.connection(), table, [
        {key: getattr(obj, key) for key in keys} for obj in objects])


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _loaded(obj: Base) -> None:
    """A just-inserted object as if loaded from its row. Columns it never set are NULL in
    the row; without them here, reading one (ticket.assignee) would SELECT it again."""
    for column in _table(type(obj)).columns:
        if column.key not in obj.__dict__:
            set_committed_value(obj, column.key, None)
    make_transient_to_detached(obj)


def current(session: Session) -> Deferred | None:
    """The buffer of the batch running in `session`, or None outside a deferred batch."""
    found: Deferred | None = session.info.get(KEY)
    return found


@contextmanager
def deferred(session: Session) -> Iterator[Deferred]:
    """Within the block, messages, events and timers wait in memory; on a clean exit they
    are written (with a flush of everything else) except the outbox rows, which the caller
    inserts once rendered (`insert_outbox`). On an error all are dropped: the caller rolls back its
    savepoint and redoes the work without deferring."""
    if KEY in session.info:
        raise RuntimeError("deferred batches do not nest")
    buffer = session.info[KEY] = Deferred()
    try:
        yield buffer
        buffer.write(session)
    finally:
        session.info.pop(KEY, None)
