"""The sender loop: drains the outbox over a pool of SMTP connections.

One pass claims due rows in batches (short transactions; rows become `sending` under a lease)
and hands them to one worker per connection, which keeps that connection for the pass. A
mail the server accepted is recorded before the worker sends the next one, in a write of its
own that never waits for ingest (daemon/outbound/recorder.py: on SQLite a journal beside the file,
folded into the outbox by the next claim; on PostgreSQL the row itself). The other outcomes
are recorded together with the next claim.

Mail is delivered at least once, and a kill re-sends at most one mail per connection: the
one on the wire, or accepted and not yet recorded. Its row stays `sending`, claimed by the
dead process; the next pass of a daemon on the same machine sees that process is gone and
sends it again at once (any other sender when the lease runs out), with the same
Message-ID, so the duplicate is recognisable.

- accepted: `sent` (recorded at once, before the connection's next mail).
- 4xx: back to `pending`, due after an exponential backoff with jitter; parked after
  `max_attempts` tries.
- 5xx or unsendable: `parked` with the server's answer.
- the server unreachable (refused, TLS, login, dropped line): the pass stops; the rows it
  had taken go back to `pending` with a backoff and are never parked for it. One log line
  says so; no traceback.

`run_once` is the `--once` mode: one pass over what is due at its start, no sleeping through
a backoff. `run` repeats passes until stopped, sleeping until the next row is due or `wake()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from daemon.clock.now import utc_now
from daemon.outbound import outbox_queue
from daemon.outbound.backoff import backoff_delay
from daemon.outbound.outbox_queue import Claimed, Outcome
from daemon.outbound.recorder import Book, Recorder, open_book
from daemon.outbound.smtp import (
    Accepted,
    Connection,
    ConnectionTrouble,
    PermanentFailure,
    SmtpError,
    SmtpPool,
    TemporaryFailure,
)
from daemon.outbound.writer import MailWriter, Site, materialize
from daemon.store.database import Database
from daemon.store.journal import SentNote

log = logging.getLogger("tierdesk.sender")



@dataclass(frozen=True)
class SenderSettings:
    # Rows per claim (and per batch of retries and parks recorded with it). Bigger batches
    # cost the database thread less per mail (a crash re-sends one mail per connection
    # whatever the size: sent mail is recorded at once). Each row holds its whole mail, and
    # two batches are in memory at once: 500 cost the daemon ~4 MB more RSS than 250, and
    # 100 fell below 80% of the raw SMTP rate (bench/send.py).
    batch: int = 250
    max_attempts: int = 8
    backoff: timedelta = timedelta(minutes=1)  # first retry; doubles each time
    backoff_cap: timedelta = timedelta(hours=1)
    # A claimed row is re-taken by another pass after this; longer than any batch can take.
    lease: timedelta = timedelta(minutes=15)
    idle_poll: timedelta = timedelta(seconds=30)
    # When the server is unreachable: None backs each row off on its own (the `--once` mode,
    # which nothing retries sooner); the daemon passes zero, so the rows stay due and no try
    # is counted, and backs off the server as a whole (daemon/service/outage.py) instead.
    outage_retry: timedelta | None = None
    log_outages: bool = True  # the daemon says an outage once, not on every pass


@dataclass
class PassReport:
    sent: int = 0
    retried: int = 0
    parked: int = 0
    released: int = 0
    outage: str | None = None

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.parked + self.released


def backoff(attempts: int, settings: SenderSettings, rng: Callable[[], float]) -> timedelta:
    """Exponential, capped, between half and all of the step, so senders that failed
    together do not all come back together."""
    seconds = backoff_delay(max(attempts - 1, 0), settings.backoff.total_seconds(),
                            settings.backoff_cap.total_seconds(), 2.0, 0.5, 1.0 - rng())
    return timedelta(seconds=seconds)


@dataclass
class _Pass:
    """The shared state of one pass: outcomes not yet written, and whether SMTP is down."""

    # Sent mail is recorded at once (the other outcomes wait in `outcomes`); None: in memory.
    recorder: Recorder | None
    report: PassReport = field(default_factory=PassReport)
    outcomes: list[Outcome] = field(default_factory=list)
    outage: str | None = None
    retry_at: datetime | None = None
    stop: asyncio.Event | None = None
    broken: bool = False  # the store failed: no more mail is tried in this pass

    @property
    def stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    @property
    def book(self) -> Book | None:
        return self.recorder.book if self.recorder else None

    def take(self) -> list[Outcome]:
        taken, self.outcomes = self.outcomes, []
        return taken


async def _finish(queue: asyncio.Queue[Claimed | None], workers: list[asyncio.Task[None]]) -> None:
    for _ in workers:
        await queue.put(None)
    await asyncio.gather(*workers)


class Sender:
    """Drains the outbox of one database over one SMTP pool; `close()` closes the pool."""

    @classmethod
    def from_config(cls, config: Site, database: Database, *, connections: int = 4,
                    settings: SenderSettings = SenderSettings(),
                    clock: Callable[[], datetime] = utc_now) -> Sender:
        """The daemon's sender: SMTP as configured, EHLO with the site's domain, and the mail
        writer for rows nobody rendered yet."""
        site = config.settings
        pool = SmtpPool(site.smtp, size=connections, local_hostname=site.site.domain)
        return cls(database, pool, site.mail.address, settings=settings,
                   writer=MailWriter.from_config(config), clock=clock)

    def __init__(self, database: Database, pool: SmtpPool, envelope_from: str, *,
                 settings: SenderSettings = SenderSettings(), writer: MailWriter | None = None,
                 clock: Callable[[], datetime] = utc_now,
                 rng: Callable[[], float] = random.random) -> None:
        self.database = database
        self.pool = pool
        self.envelope_from = envelope_from
        self.settings = settings
        self.writer = writer
        self.clock = clock
        self.rng = rng
        self._wake = asyncio.Event()
        # Outcomes a failed transaction could not record (the database went away): written
        # first once it is back, or a mail sent just before the outage would stay `sending`
        # and go out again when its lease ran out.
        self._unrecorded: list[Outcome] = []

    # ------------------------------------------------------------ loops

    async def run_once(self, stop: asyncio.Event | None = None) -> PassReport:
        """One pass over the rows due now; returns what happened to them. Once `stop` is
        set, no more rows are claimed and those claimed but not yet tried go back to the
        queue, due at once; mails being sent are finished. Cancelling the pass abandons
        those too: they stay claimed until this process is gone or their lease runs out."""
        cutoff = self.clock()
        if self.writer is not None:
            await asyncio.to_thread(self._render_leftovers, cutoff)
        book = await asyncio.to_thread(open_book, self.database)
        try:
            state = _Pass(Recorder(book) if book else None, stop=stop)
            await self._pass(state, cutoff)
        finally:
            if book is not None:
                await asyncio.to_thread(book.close)
        if state.outage:
            state.report.outage = state.outage
            if self.settings.log_outages:
                self._log_outage(state)
        return state.report

    async def _pass(self, state: _Pass, cutoff: datetime) -> None:
        queue: asyncio.Queue[Claimed | None] = asyncio.Queue(maxsize=self.settings.batch)
        workers = [asyncio.create_task(self._work(queue, state)) for _ in range(self.pool.size)]
        try:
            try:
                await self._feed(queue, state, cutoff)
            except Exception:
                # The store failed between claims: rows still queued go back untried, mails
                # on the wire are finished, and all of it is recorded once the store is back.
                state.broken = True
                await _finish(queue, workers)
                raise
            await _finish(queue, workers)
        except asyncio.CancelledError:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        finally:  # what was sent is recorded, also when cancelled or failing
            if state.recorder is not None:
                await asyncio.shield(state.recorder.idle())
            await asyncio.shield(asyncio.to_thread(self._record, state.take(), state.book))

    async def run(self, stop: asyncio.Event) -> None:
        """Pass after pass until `stop` is set; a failing pass is logged, never fatal."""
        while not stop.is_set():
            self._wake.clear()  # a wake() during the pass then starts the next one at once
            try:
                await self.run_once()
            except Exception as exc:  # the loop must outlive a database hiccup
                log.error("sender: pass failed: %s: %s", type(exc).__name__, exc)
            await self._sleep(stop)

    async def close(self) -> None:
        await self.pool.close()

    def wake(self) -> None:
        """New mail is committed: start the next pass now (ingest and clock call this)."""
        self._wake.set()

    # ------------------------------------------------------------ a pass

    async def _feed(self, queue: asyncio.Queue[Claimed | None], state: _Pass,
                    cutoff: datetime) -> None:
        """Claim batch after batch (recording the last batch's outcomes in the same
        transaction) until nothing is due or SMTP is down."""
        while state.outage is None and not state.stopping:
            rows = await asyncio.to_thread(self._record_and_claim, state.take(), cutoff,
                                           state.book)
            if not rows:
                return
            for row in rows:
                await queue.put(row)

    async def _work(self, queue: asyncio.Queue[Claimed | None], state: _Pass) -> None:
        """One worker per connection, which it keeps for the pass: a mail the server took is
        recorded before the next one goes out on it."""
        async with self.pool.connection() as smtp:
            while (row := await queue.get()) is not None:
                if state.outage is not None or state.stopping or state.broken:
                    state.outcomes.append(self._release(row, state))
                    continue
                if row.problem is not None:  # nothing to send: a try would fail the same way
                    state.outcomes.append(self._park(row, state, row.problem))
                    continue
                outcome = await self._deliver(smtp, row, state)
                if (outcome.status == "sent" and state.recorder is not None
                        and await self._noted(state.recorder, row, outcome, state)):
                    continue
                # Appended after the await: `take()` may have swapped the list meanwhile.
                state.outcomes.append(outcome)

    async def _noted(self, recorder: Recorder, row: Claimed, outcome: Outcome,
                     state: _Pass) -> bool:
        """Record a sent mail at once (outbound/recorder.py). If that fails, the outcome waits
        with the batch's others and this pass tries no more mail: each mail sent now would
        be one more to send again after a kill."""
        note = SentNote(row.id, row.message_id, outcome.attempts, self.clock(), outcome.note)
        try:
            await recorder.record(note)
        except asyncio.CancelledError:
            state.outcomes.append(outcome)  # the pass's last record writes it, if need be
            raise
        except Exception as exc:  # noqa: BLE001 - the store's trouble, reported by the pass
            if not state.broken:
                log.error("sender: cannot record sent mail <%s>: %s: %s; no more mail is "
                          "sent in this pass", row.message_id, type(exc).__name__, exc)
            state.broken = True
            return False
        return True

    async def _deliver(self, smtp: Connection, row: Claimed, state: _Pass) -> Outcome:
        try:
            accepted = await smtp.send(self.envelope_from, row.recipients, row.body)
        except ConnectionTrouble as exc:
            return self._down(row, state, str(exc))
        except TemporaryFailure as exc:
            return self._retry(row, state, str(exc))
        except PermanentFailure as exc:
            return self._park(row, state, f"refused: {exc}")
        except SmtpError as exc:
            return self._retry(row, state, str(exc))
        except Exception as exc:  # a bug must cost one mail a try, never the worker
            log.exception("sender: unexpected error sending outbox row %d", row.id)
            return self._retry(row, state, f"internal error: {type(exc).__name__}: {exc}")
        return self._sent(row, state, accepted)

    # ------------------------------------------------------------ outcomes

    def _sent(self, row: Claimed, state: _Pass, accepted: Accepted) -> Outcome:
        state.report.sent += 1
        note = None
        if accepted.refused:
            note = "some recipients refused: " + "; ".join(
                f"{rcpt}: {why}" for rcpt, why in accepted.refused.items())
        log.info("sent <%s> to %s%s", row.message_id, ", ".join(row.recipients),
                 f" ({note})" if note else "",
                 extra={"loop": "sender", "outbox_id": row.id, "message_id": row.message_id})
        return Outcome(row.id, "sent", row.attempts + 1, note)

    def _retry(self, row: Claimed, state: _Pass, reason: str) -> Outcome:
        attempts = row.attempts + 1
        if attempts >= self.settings.max_attempts:
            return self._park(row, state, f"gave up after {attempts} attempts: {reason}")
        state.report.retried += 1
        retry_at = self.clock() + backoff(attempts, self.settings, self.rng)
        log.info("not sent yet <%s>: %s; try %d at %s", row.message_id, reason, attempts + 1,
                 f"{retry_at:%H:%M:%S} UTC",
                 extra={"loop": "sender", "outbox_id": row.id, "message_id": row.message_id})
        return Outcome(row.id, "pending", attempts, reason, retry_at)

    def _park(self, row: Claimed, state: _Pass, reason: str) -> Outcome:
        state.report.parked += 1
        log.warning("parked <%s>: %s", row.message_id, reason,
                    extra={"loop": "sender", "outbox_id": row.id, "message_id": row.message_id})
        return Outcome(row.id, "parked", row.attempts + 1, reason, self.clock())

    def _down(self, row: Claimed, state: _Pass, reason: str) -> Outcome:
        """The server is unusable: this row counts a try (never parked for it); the pass ends.
        With `outage_retry` the daemon backs off the server, so no try is counted."""
        if self.settings.outage_retry is not None:
            attempts, retry_at = row.attempts, self.clock() + self.settings.outage_retry
        else:
            attempts = row.attempts + 1
            retry_at = self.clock() + backoff(attempts, self.settings, self.rng)
        if state.outage is None:
            state.outage, state.retry_at = reason, retry_at
        state.report.retried += 1
        return Outcome(row.id, "pending", attempts, reason, retry_at)

    def _release(self, row: Claimed, state: _Pass) -> Outcome:
        """Claimed but not tried because the server is down or the daemon stops: back to the
        queue, no try counted."""
        state.report.released += 1
        if state.outage is None:  # stopping: due at once for whoever runs next
            return Outcome(row.id, "pending", row.attempts, None, self.clock())
        return Outcome(row.id, "pending", row.attempts, state.outage, state.retry_at)

    # ------------------------------------------------------------ database (worker threads)

    def _record_and_claim(self, outcomes: list[Outcome], cutoff: datetime,
                          book: Book | None) -> list[Claimed]:
        now = self.clock()
        with self._keeping(outcomes) as kept, self.database.transaction() as session:
            # Dead claimers first, then their notes: all a dead sender wrote is folded in
            # before any of its rows can be taken again.
            gone = outbox_queue.gone_claimers(session, now)
            notes = book.notes() if book else []
            outbox_queue.fold_sent(session, notes)
            if kept:
                outbox_queue.record(session, kept, now)
            rows = outbox_queue.claim(session, cutoff, self.settings.batch,
                                      now + self.settings.lease, gone=gone)
        if book is not None:
            book.forget([note.outbox_id for note in notes])
        return rows

    def _record(self, outcomes: list[Outcome], book: Book | None) -> None:
        with self._keeping(outcomes) as kept:
            notes = book.notes() if book else []
            if kept or notes:
                with self.database.transaction() as session:
                    outbox_queue.fold_sent(session, notes)
                    outbox_queue.record(session, kept, self.clock())
            if book is not None:
                book.forget([note.outbox_id for note in notes])

    @contextlib.contextmanager
    def _keeping(self, outcomes: list[Outcome]) -> Iterator[list[Outcome]]:
        """These outcomes and any an earlier failure left; kept again if this one fails."""
        kept, self._unrecorded = [*self._unrecorded, *outcomes], []
        try:
            yield kept
        except BaseException:
            self._unrecorded = kept + self._unrecorded
            raise

    def _render_leftovers(self, cutoff: datetime) -> None:
        assert self.writer is not None
        while True:
            with self.database.transaction() as session:
                rows = outbox_queue.unrendered(session, cutoff, self.settings.batch)
                materialize(session, rows, self.writer, self.clock())
            if len(rows) < self.settings.batch:
                return

    def _next_due(self) -> datetime | None:
        with self.database.reading() as session:
            return outbox_queue.next_due(session)

    # ------------------------------------------------------------ sleeping and logging

    async def _sleep(self, stop: asyncio.Event) -> None:
        due = await asyncio.to_thread(self._next_due)
        limit = self.settings.idle_poll.total_seconds()
        delay = limit if due is None else (due - self.clock()).total_seconds()
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self._wake.wait())]
        await asyncio.wait(waiters, timeout=min(max(delay, 0.0), limit),
                           return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)

    def _log_outage(self, state: _Pass) -> None:
        queued = state.report.retried + state.report.released
        when = state.retry_at.strftime("%H:%M:%S UTC") if state.retry_at else "later"
        log.warning("sender: %s; %d mail(s) stay queued, next try at %s",
                    state.outage, queued, when)
