"""The sent journal: a small SQLite file next to a SQLite database, where the sender notes
each mail the SMTP server accepted before it sends the next one on that connection.

Why a file of its own: every write transaction on the database file waits for ingest's
write lock (WAL or not), often for seconds, and mail delivered meanwhile would go out again
after a kill. Nobody else writes this file, so a note costs a few tens of microseconds.
`synchronous=NORMAL` in WAL mode: a commit has reached the OS when it returns, so a killed
process loses none; a power cut may lose the last notes, which only means those mails are
sent once more (at least once, never lost). The claim transaction folds the notes into the
outbox (daemon/outbox.py `fold_sent`) and then forgets them.

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
    """One connection to the journal file, shared by the sender's threads under a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
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
        rows = [(n.outbox_id, n.message_id, n.attempts, n.sent_at.isoformat(), n.note)
                for n in notes]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO sent VALUES (?, ?, ?, ?, ?)", rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

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
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("DELETE FROM sent WHERE outbox_id = ?",
                                     [(i,) for i in ids])
                self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            with self._lock:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
            log.warning("sender: could not clear %d folded note(s) from %s: %s",
                        len(ids), self.path, exc)

    def close(self) -> None:
        with self._lock:
            self._db.close()
