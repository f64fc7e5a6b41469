"""Append-only rows (inbound messages, events, timers) held in memory for a batch and written
at its end with one Core INSERT per table, instead of one ORM object each; and the batch's
outbox rows, kept out of the session until they are rendered.

Why: ingest's fast path writes ~7 such rows per mail. As ORM objects their construction,
attribute instrumentation and unit of work cost more than parsing the mail; as plain dicts
sent in an executemany they cost a few microseconds. Nothing reads them back as objects.

Rows keep the order they were added in, so event ids (a timeline's order) come out as the
ORM would have numbered them. Readers inside the batch ask the buffer (`cancel_timers`);
readers after it (the outbox's history, the clock) see ordinary rows.

Outbox rows stay ORM objects (rendering fills them in), but are not added to the session:
the caller renders them and then inserts them (`insert_outbox`), so each is written once
with its mail instead of inserted empty and rewritten.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from daemon.store.models import Event, Message, Outbox, Timer

KEY = "tierdesk.deferred"


@dataclass
class Deferred:
    """What a batch added and has not written yet; `tickets` are the ids it created (they
    have no stored timers to cancel); `outbox` its outbox rows, for the caller to add."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    timers: list[dict[str, Any]] = field(default_factory=list)
    tickets: set[int] = field(default_factory=set)
    outbox: list[Outbox] = field(default_factory=list)

    def write(self, session: Session) -> None:
        """Flush the ORM's rows (tickets first: these rows point at them), then ours."""
        session.flush()
        connection = session.connection()
        for model, rows in ((Message, self.messages), (Event, self.events),
                            (Timer, self.timers)):
            if rows:
                table = model.__table__
                assert isinstance(table, Table)
                connection.execute(insert(table), rows)
        self.messages, self.events, self.timers = [], [], []


def insert_outbox(session: Session, rows: list[Outbox]) -> None:
    """Insert outbox rows a deferred batch held back (and has rendered since) in one
    executemany. They stay plain objects outside the session: nothing reads them after."""
    if not rows:
        return
    table = Outbox.__table__
    assert isinstance(table, Table)
    # repository.add_mail sets every column that has a default; the rest default to NULL.
    columns = [column.key for column in table.columns if column.key != "id"]
    session.connection().execute(insert(table), [
        {key: getattr(row, key) for key in columns} for row in rows])


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
