"""Recording each mail the SMTP server accepted before the next one goes out on that
connection, so a killed daemon sends again at most the one mail each connection had in
flight (issue 15).

Where the record goes (a `Book`):
- a SQLite file: the sent journal beside it (daemon/store/journal.py), which never waits for
  ingest's write lock on the database; the sender's claim transaction folds it into the
  outbox first, so no restarted daemon re-sends a journaled mail.
- PostgreSQL: the outbox row itself, `sending` -> `sent`, in a transaction of its own. Row
  locks keep it clear of ingest (which only inserts outbox rows).
- SQLite in memory: no book (`open_book` gives None), sent mail is recorded with the next
  claim as before. A kill takes the database with it, so nobody could re-send anything,
  and its one shared connection cannot take a second thread's transaction meanwhile.

The journal is written on the event loop when its lock is free (a local write that waits
for nobody: cheaper than a thread hop); otherwise, and on PostgreSQL, in a thread, and
workers that finish a mail while a record is being written there share the next one (group
commit): one transaction for as many mails as there are connections, not one each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from daemon.outbound import outbox_queue
from daemon.outbound.outbox_queue import Outcome
from daemon.store.database import Database
from daemon.store.journal import SentJournal, SentNote, journal_path


class Book(Protocol):
    """Where accepted mail is recorded at once; `write` runs off the event loop."""

    def write(self, notes: Sequence[SentNote]) -> None: ...

    def try_write(self, notes: Sequence[SentNote]) -> bool:
        """`write` on the event loop if that cannot wait for anyone; False if it might."""
        ...

    def notes(self) -> list[SentNote]:
        """Records not yet in the outbox: the claim folds them in (`outbox_queue.fold_sent`)."""
        ...

    def forget(self, ids: Sequence[int]) -> None: ...

    def close(self) -> None: ...


class OutboxBook:
    def __init__(self, database: Database) -> None:
        self.database = database

    def write(self, notes: Sequence[SentNote]) -> None:
        with self.database.transaction() as session:
            outbox_queue.record(session, [Outcome(n.outbox_id, "sent", n.attempts, n.note)
                                          for n in notes], max(n.sent_at for n in notes))

    def try_write(self, notes: Sequence[SentNote]) -> bool:
        return False  # a round trip to the server: always in a thread

    def notes(self) -> list[SentNote]:
        return []

    def forget(self, ids: Sequence[int]) -> None:
        pass

    def close(self) -> None:
        pass


def open_book(database: Database) -> Book | None:
    """The journal beside a SQLite file, the outbox itself on PostgreSQL, None in memory
    (blocking: a thread's job)."""
    if database.is_postgres:
        return OutboxBook(database)
    file = database.sqlite_file
    return SentJournal(journal_path(file)) if file else None  # a Book as it is


class Recorder:
    """`await record(note)` returns once the note is durable (raises if it cannot be)."""

    def __init__(self, book: Book) -> None:
        self.book = book
        self._waiting: list[tuple[SentNote, asyncio.Future[None]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def record(self, note: SentNote) -> None:
        if self._writing is None and self.book.try_write([note]):
            return
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((note, future))
        if self._writing is None:
            self._writing = asyncio.create_task(self._write())
        await future

    async def idle(self) -> None:
        """Until every note handed over is written or has failed (never raises)."""
        while self._writing is not None:
            await asyncio.wait([self._writing])

    async def _write(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                try:
                    await asyncio.to_thread(self.book.write, [note for note, _ in group])
                except Exception as exc:  # noqa: BLE001 - each waiter handles its own
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in group:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._writing = None
