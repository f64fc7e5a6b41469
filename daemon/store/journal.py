"""The sent journal: a small SQLite file next to a SQLite database, where the sender notes
each mail the SMTP server accepted before it sends the next one on that connection.

Why a file of its own: every write transaction on the database file waits for ingest's
write lock (WAL or not), often for seconds, and mail delivered meanwhile would go out again
after a kill. Only senders write this file, so a note costs about 10 µs.
`synchronous=NORMAL` in WAL mode: a commit has reached the OS when it returns, so a killed
process loses none; a power cut may lose the last notes, which only means those mails are
sent once more (at least once, never lost). The claim transaction folds the notes into the
outbox (daemon/outbound/outbox_queue.py `fold_sent`) and then forgets them.

`<database>-sent`, e.g. `tierdesk.db-sent` (SQLite adds its own -wal and -shm beside it).
Each note carries the mail's Message-ID, and folding checks it: notes left by a database
that was since replaced (a restored backup, a new file) can never mark another mail sent.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType

log = logging.getLogger("tierdesk.sender")
_INSERT = "INSERT OR REPLACE INTO sent VALUES (?, ?, ?, ?, ?)"
_CHUNK = 500  # ids per DELETE, well inside SQLite's limit on bound parameters

SUFFIX = "-sent"
BUSY_TIMEOUT_MS = 5_000  # only other senders' notes and the fold's clean-up hold its lock
_SCHEMA = ("CREATE TABLE IF NOT EXISTS sent (outbox_id INTEGER PRIMARY KEY, "
           "message_id TEXT NOT NULL, attempts INTEGER NOT NULL, sent_at TEXT NOT NULL, "
           "note TEXT)")


@dataclass(frozen=True)
class SentNote:
    """One accepted mail: the outbox row's new attempts and when the server took it."""

    outbox_id: int
    message_id: str
    attempts: int
    sent_at: datetime
    note: str | None = None


def journal_path(database_file: str | Path) -> Path:
    return Path(f"{database_file}{SUFFIX}")


class SentJournal:
    """Two connections to the journal file: one for the sender's threads (under a lock),
    which also checkpoints, and one that never waits, for `try_write` on the event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = _connect(path, BUSY_TIMEOUT_MS)
        try:
            self._db.execute(_SCHEMA)
            # Never waits for a lock, and leaves checkpoints (an fsync) to `forget`'s commits.
            self._quick = _connect(path, 0)
            self._quick.execute("PRAGMA wal_autocheckpoint=0")
        except BaseException:
            self._db.close()
            raise

    def __enter__(self) -> SentJournal:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def write(self, notes: Sequence[SentNote]) -> None:
        """Durable (against a kill) when this returns."""
        with self._lock:
            _insert(self._db, notes)

    def try_write(self, notes: Sequence[SentNote]) -> bool:
        """`write` if nobody holds the file's write lock right now, else False at once: the
        sender calls this on its event loop (a few tens of microseconds, less than handing
        the write to a thread) and falls back to `write` in a thread. One caller at a time."""
        # One statement in autocommit mode, its own transaction: every call into SQLite
        # lets go of the GIL, and each time the event loop may wait to get it back.
        try:
            if len(notes) == 1:
                self._quick.execute(_INSERT, _rows(notes)[0])
            else:
                self._quick.executemany(_INSERT, _rows(notes))
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:  # BUSY or BUSY_SNAPSHOT
                return False
            raise
        return True

    def notes(self) -> list[SentNote]:
        with self._lock:
            found = self._db.execute("SELECT outbox_id, message_id, attempts, sent_at, note "
                                     "FROM sent ORDER BY outbox_id").fetchall()
        return [SentNote(i, mid, attempts, datetime.fromisoformat(at), note)
                for i, mid, attempts, at, note in found]

    def forget(self, ids: Sequence[int]) -> None:
        """Drop notes once the outbox holds them. A failure only leaves notes that fold to
        nothing next time (their rows are no longer `sending`), so it is logged, not raised:
        the claim that folded them has committed and its rows must still go out."""
        if not ids:
            return
        try:
            with self._lock:
                # One statement a chunk (each call lets go of the GIL); this connection's
                # commits also run the checkpoints `try_write` leaves alone.
                for start in range(0, len(ids), _CHUNK):
                    chunk = list(ids[start:start + _CHUNK])
                    self._db.execute("DELETE FROM sent WHERE outbox_id IN "
                                     f"({', '.join('?' * len(chunk))})", chunk)
        except sqlite3.Error as exc:
            log.warning("sender: could not clear %d folded note(s) from %s: %s",
                        len(ids), self.path, exc)

    def close(self) -> None:
        with self._lock:
            self._quick.close()
            self._db.close()


def _connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        # Small pages for small rows: a note appends one 512-byte WAL frame, not 4 KiB
        # (7 instead of 10 µs a note). Only a new file takes it.
        db.execute("PRAGMA page_size=512")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        db.close()
        raise
    return db


def _rows(notes: Sequence[SentNote]) -> list[tuple[int, str, int, str, str | None]]:
    return [(n.outbox_id, n.message_id, n.attempts, n.sent_at.isoformat(), n.note)
            for n in notes]


def _insert(db: sqlite3.Connection, notes: Sequence[SentNote]) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(_INSERT, _rows(notes))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
