"""Draining the support mailbox: fetch in batches after the stored cursor, process each batch
in one transaction together with the new cursor, then mark it processed on the server.

A crash before the commit replays the batch (each mail deduplicates); a crash after it
leaves mails unmarked on the server but never processes them again.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from daemon.imap import Fetched, Mailbox, resume_point
from daemon.ingest import Inbox, Outcome, process_batch
from daemon.now import utc_now
from daemon.store import repository
from daemon.store.database import Database


@dataclass
class IngestReport:
    counts: Counter[str] = field(default_factory=Counter)
    outcomes: list[Outcome] = field(default_factory=list)
    uidvalidity_reset: bool = False
    last_uid: int = 0  # the cursor after the drain

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, outcome: Outcome) -> None:
        self.counts[outcome.action] += 1
        if outcome.action == "quarantined":
            self.outcomes.append(outcome)  # the ones an admin must see

    def summary(self) -> str:
        if not self.total:
            return "no new mail"
        parts = ", ".join(f"{n} {action}" for action, n in sorted(self.counts.items()))
        return f"{self.total} mail{'s' if self.total != 1 else ''}: {parts}"


def drain(mailbox: Mailbox, database: Database, inbox: Inbox,
          clock: Callable[[], datetime] = utc_now, *, stop: threading.Event | None = None,
          on_outcome: Callable[[Outcome], None] | None = None) -> IngestReport:
    """Process every mail after the cursor; the mailbox must be connected. `stop` ends the
    drain between batches (a stopping daemon); `on_outcome` hears of each mail once its
    batch is committed."""
    folder = mailbox.settings.folder
    uidvalidity = mailbox.select()
    with database.reading() as session:
        cursor = repository.get_cursor(session, folder)
        stored = (cursor.uidvalidity, cursor.last_uid) if cursor else None
    resume = resume_point(stored, uidvalidity)
    if resume.reset:  # else an empty folder keeps the stale cursor and "resets" every drain
        with database.transaction() as session:
            repository.set_cursor(session, folder, uidvalidity, 0)
    report = IngestReport(uidvalidity_reset=resume.reset, last_uid=resume.last_uid)
    # Finish what a crash between commit and marking left undone (the cursor is past them,
    # so they are never processed again; they only need their \Seen flag or their move).
    leftovers = mailbox.unmarked_upto(resume.last_uid)
    if leftovers:
        mailbox.mark_processed(leftovers)
    for batch in mailbox.fetch_after(resume.last_uid):
        if batch:
            outcomes = _commit_batch(database, inbox, batch, folder, uidvalidity, clock(),
                                     report)
            report.last_uid = max(report.last_uid, *(mail.uid for mail in batch))
            mailbox.mark_processed([mail.uid for mail in batch])
            if on_outcome is not None:
                for outcome in outcomes:
                    on_outcome(outcome)
        if stop is not None and stop.is_set():
            break  # the rest waits for the next start, after the committed cursor
    return report


def _commit_batch(database: Database, inbox: Inbox, batch: list[Fetched], folder: str,
                  uidvalidity: int, now: datetime, report: IngestReport) -> list[Outcome]:
    with database.transaction() as session:
        mails = [(mail.uid, mail.raw) for mail in batch]
        outcomes = process_batch(session, mails, inbox, now, folder=folder)
        repository.set_cursor(session, folder, uidvalidity, max(m.uid for m in batch))
    for outcome in outcomes:  # counted once committed
        report.add(outcome)
    return outcomes
