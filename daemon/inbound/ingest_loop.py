"""Draining the support mailbox: take a range of UIDs after the stored cursor, fetch its
mails in batches, process each batch in one transaction (the last one also finishes the
range and moves the cursor), then mark it processed on the server.

A crash before a commit replays the batch (each mail deduplicates); a crash after it leaves
mails unmarked on the server but never processes them again.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from daemon.clock.now import utc_now
from daemon.inbound.imap import Fetched, Mailbox, resume_point
from daemon.inbound.ingest import Inbox, Outcome, process_batch
from daemon.store import claims, intake
from daemon.store.database import Database

HOLD_POLL_S = 0.02  # how often a held reply looks whether the mail before it is in


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
    batch is committed. Other daemons on the same store drain the same folder at the same
    time: each takes ranges of UIDs of its own (daemon/store/claims.py)."""
    folder = mailbox.settings.folder
    uidvalidity = mailbox.select()
    with database.reading() as session:
        cursor = intake.get_cursor(session, folder)
        stored = (cursor.uidvalidity, cursor.last_uid) if cursor else None
    resume = resume_point(stored, uidvalidity)
    if resume.reset:  # else an empty folder keeps the stale cursor and "resets" every drain
        with database.transaction() as session:
            claims.reset(session, folder, uidvalidity)
    report = IngestReport(uidvalidity_reset=resume.reset, last_uid=resume.last_uid)
    # Finish what a crash between commit and marking left undone (the cursor is past them,
    # so they are never processed again; they only need their \Seen flag or their move).
    leftovers = mailbox.unmarked_upto(resume.last_uid)
    if leftovers:
        mailbox.mark_processed(leftovers)
    for claim in _claims(mailbox, database, uidvalidity, clock):
        try:
            cursor = _ingest(mailbox, database, inbox, claim, clock, report, on_outcome)
        finally:
            claims.let_go(claim)
        if cursor is not None:
            report.last_uid = max(report.last_uid, cursor)
        if stop is not None and stop.is_set():
            break  # the rest waits for the next start, after the committed cursor
    return report


def _claims(mailbox: Mailbox, database: Database, uidvalidity: int,
            clock: Callable[[], datetime]) -> Iterator[claims.Claim]:
    """Range after range to ingest, until nothing is new and nothing is left by a dead
    daemon. One UID SEARCH serves several ranges while no other daemon takes any."""
    folder = mailbox.settings.folder
    known: list[int] = []
    while True:
        searched = not known  # else `take` drops what others took meanwhile, under its lock
        if searched:
            with database.reading() as session:
                top = claims.frontier(session, folder)
            known = next(mailbox.windows_after(top), [])
        with database.transaction() as session:
            claim = claims.take(session, folder, uidvalidity, known, mailbox.batch_size,
                                clock())
        if claim is None:
            if searched:
                return
            known = []  # another daemon took what this one knew of: look again
            continue
        known = [uid for uid in known if uid > claim.high]
        yield claim


def _ingest(mailbox: Mailbox, database: Database, inbox: Inbox, claim: claims.Claim,
            clock: Callable[[], datetime], report: IngestReport,
            on_outcome: Callable[[Outcome], None] | None) -> int | None:
    """The mails of one range, a batch per transaction; the last one also finishes the
    range. Returns the cursor after it, or None when the range was given back: its held
    replies wait for a range below that its daemon abandoned (`_claims` takes that next,
    then this one again, whose mails committed meanwhile are then duplicates)."""
    uids = list(claim.uids) or mailbox.uids_between(claim.low, claim.high)
    parts = mailbox.plan(uids) if uids else [[]]  # a range whose mails are gone still ends
    cursor = 0
    for number, part in enumerate(parts, 1):
        last = number == len(parts)
        batch = mailbox.fetch_batch(part) if part else []
        with database.transaction() as session:
            now = clock()
            outcomes = _process(session, batch, inbox, claim, now,
                                hold=claims.below(session, claim, now) != "clear")
            held = [mail for mail, outcome in zip(batch, outcomes, strict=True)
                    if outcome.action == "held"]
            if last and not held:
                cursor = claims.finish(session, claim)
        _done(mailbox, batch, outcomes, report, on_outcome)
        if held:
            # Replies to nothing stored, while the mails before them are not all in: what
            # they answer may be there. Once it is committed, they go on.
            if _wait_below(database, claim, clock) == "abandoned":
                with database.transaction() as session:
                    claims.give_back(session, claim, clock())
                return None
            with database.transaction() as session:
                outcomes = _process(session, held, inbox, claim, clock(), hold=False)
                if last:
                    cursor = claims.finish(session, claim)
            _done(mailbox, held, outcomes, report, on_outcome)
    return cursor


def _process(session: Session, batch: list[Fetched], inbox: Inbox, claim: claims.Claim,
             now: datetime, *, hold: bool) -> list[Outcome]:
    if not batch:
        return []
    return process_batch(session, [(m.uid, m.raw) for m in batch], inbox, now,
                         folder=claim.folder, hold_orphans=hold)


def _done(mailbox: Mailbox, batch: list[Fetched], outcomes: list[Outcome],
          report: IngestReport, on_outcome: Callable[[Outcome], None] | None) -> None:
    """After the commit: count the mails, flag them on the server, tell the listener; held
    mails wait for their own commit."""
    finished = [(mail, outcome) for mail, outcome in zip(batch, outcomes, strict=True)
                if outcome.action != "held"]
    for _, outcome in finished:
        report.add(outcome)
    mailbox.mark_processed([mail.uid for mail, _ in finished])
    if on_outcome is not None:
        for _, outcome in finished:
            on_outcome(outcome)


def _wait_below(database: Database, claim: claims.Claim,
                clock: Callable[[], datetime]) -> claims.Below:
    """While another live daemon ingests a range below `claim`: until it is done, or no
    longer worked on. A lease and a little at most: by then a silent daemon's lease ran out
    (and a daemon that never commits must not hold this one for ever)."""
    deadline = time.monotonic() + claims.LEASE.total_seconds() + 1
    while True:
        with database.reading() as session:
            state = claims.below(session, claim, clock())
        if state != "busy" or time.monotonic() > deadline:
            return state
        time.sleep(HOLD_POLL_S)
