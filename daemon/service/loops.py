"""The daemon's two blocking loops, each in a thread of its own: ingest (imapclient and the
synchronous store) and clock (the store). daemon/service/daemon.py starts, wakes and stops them.

Both read `context.parts` once per pass, so a reload takes effect between batches, and both
end between batches once `context.stop` is set: a batch in hand commits or rolls back whole.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from daemon.config.settings import ImapSettings
from daemon.inbound.imap import Mailbox
from daemon.inbound.imap_session import ImapError
from daemon.inbound.ingest import Outcome
from daemon.inbound.ingest_loop import drain
from daemon.outbound.backoff import Backoff
from daemon.service.app import Parts
from daemon.service.malloc import release_free_memory
from daemon.service.outage import Outage
from daemon.service.pulse import beat
from daemon.store.database import StoreError, redact
from daemon.tickets.timers import tick

log = logging.getLogger("tierdesk.service")

# A quiet loop still beats this often; a busy one at most once a second (one small
# transaction each), so `status` sees it alive without the beats costing the work.
IDLE_BEAT_S = 15.0
BUSY_BEAT_S = 1.0
# The clock's catch-up on SQLite: timers per transaction, and the longest pause between two.
CATCH_UP_BATCH = 100
CATCH_UP_PAUSE_S = 0.5


@dataclass
class Context:
    """What the loops share; `parts` is replaced whole by a reload."""

    parts: Parts
    daemon: str
    clock: Callable[[], datetime]
    outbox_changed: Callable[[], None]  # from any thread: the sender should make a pass
    stop: threading.Event = field(default_factory=threading.Event)
    database: Outage = field(default_factory=lambda: Outage("database"))


def database_trouble(exc: BaseException) -> str | None:
    """One line for the store being unreachable (an outage), None for anything else."""
    if isinstance(exc, StoreError):
        return str(exc)
    if isinstance(exc, OperationalError | InterfaceError) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated):
        first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["?"])[0]
        return redact(first)
    return None


class Pulse:
    """Writes one loop's heartbeat when it is worth it: the outcome changed, or a second
    (busy) or IDLE_BEAT_S (quiet) went by; `flush()` writes the last one held back."""

    def __init__(self, loop: str, context: Context) -> None:
        self.loop, self.context = loop, context
        self._last: float | None = None
        self._ok: bool | None = None
        self._held: tuple[bool, str | None, Mapping[str, Any] | None] | None = None

    def due(self, ok: bool, busy: bool) -> bool:
        if self._last is None or ok != self._ok:
            return True
        return time.monotonic() - self._last >= (BUSY_BEAT_S if busy else IDLE_BEAT_S)

    def record(self, ok: bool, error: str | None = None,
               detail: Mapping[str, Any] | None = None, busy: bool = False) -> None:
        if self.due(ok, busy):
            self._write(ok, error, detail)
        else:
            self._held = (ok, error, detail)

    def flush(self) -> None:
        if self._held is not None:
            self._write(*self._held)

    def _write(self, ok: bool, error: str | None, detail: Mapping[str, Any] | None) -> None:
        self._last, self._ok, self._held = time.monotonic(), ok, None
        beat(self.context.parts.database, self.loop, self.context.daemon, self.context.clock(),
             ok=ok, error=error, detail=detail)


class Failures:
    """A loop's failures, each kind an Outage: one line when it starts, one when it ends."""

    def __init__(self, loop: str, context: Context, server: Outage | None = None) -> None:
        self.loop, self.context, self.server = loop, context, server
        self.bug = Outage(f"{loop} loop", Backoff(base=1.0, cap=60.0))

    def handle(self, exc: Exception) -> tuple[str, float]:
        """The reason and the seconds to wait before trying again."""
        if self.server is not None and isinstance(exc, ImapError):
            return str(exc), self.server.failed(str(exc), self.loop)
        reason = database_trouble(exc)
        if reason is not None:
            return reason, self.context.database.failed(reason, self.loop)
        reason = f"{type(exc).__name__}: {exc}"
        return reason, self.bug.failed(reason, self.loop, exc_info=exc)

    def ok(self) -> None:
        for outage in (self.server, self.context.database, self.bug):
            if outage is not None:
                outage.ok(self.loop)


class IngestLoop:
    """Connect, drain, IDLE (or poll); drain again on every wake-up."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.imap = Outage("imap")
        self.failures = Failures("ingest", context, self.imap)
        self.pulse = Pulse("ingest", context)
        self.mailbox: Mailbox | None = None
        self.processed = 0
        self.waiting = 0

    def wake(self) -> None:
        """From any thread: end the current wait (stop, reload)."""
        mailbox = self.mailbox
        if mailbox is not None:
            mailbox.wake()

    def run(self) -> None:
        try:
            while not self.context.stop.is_set():
                self._step()
        finally:
            if self.mailbox is not None:
                self.mailbox.close()
            self.pulse.flush()

    def _step(self) -> None:
        parts = self.context.parts
        mailbox = self._mailbox(parts.config.settings.imap)
        try:
            if not mailbox.connected:
                mailbox.connect()
            report = drain(mailbox, parts.database, parts.inbox, self.context.clock,
                           stop=self.context.stop, on_outcome=_log_outcome)
            if report.total:
                self.context.outbox_changed()
                release_free_memory()  # before waiting: the batch's pages are free now
            self.failures.ok()
            self.processed += report.total
            busy = bool(report.total)
            if self.pulse.due(True, busy):
                self.waiting = mailbox.count_waiting(report.last_uid)  # one UID SEARCH
            self.pulse.record(True, busy=busy, detail={
                "folder": mailbox.settings.folder, "waiting": self.waiting,
                "processed": self.processed})
            if not self.context.stop.is_set():
                mailbox.wait(IDLE_BEAT_S)
        except Exception as exc:  # noqa: BLE001 - every failure is an outage with a backoff
            mailbox.close()
            reason, delay = self.failures.handle(exc)
            self.pulse.record(False, error=reason, detail={"folder": mailbox.settings.folder})
            self.context.stop.wait(delay)

    def _mailbox(self, settings: ImapSettings) -> Mailbox:
        """The mailbox for these settings; a reload that changed them means a new one."""
        if self.mailbox is not None and self.mailbox.settings == settings:
            return self.mailbox
        if self.mailbox is not None:
            self.mailbox.close()
            log.info("imap settings changed: reconnecting", extra={"loop": "ingest"})
        self.mailbox = Mailbox(settings)
        if self.context.stop.is_set():
            self.mailbox.wake()
        return self.mailbox


def _log_outcome(outcome: Outcome) -> None:
    log.info("%s %s: %s", outcome.action, outcome.ref or "mail", outcome.detail,
             extra={"loop": "ingest", "ref": outcome.ref, "action": outcome.action})


class ClockLoop:
    """Fire what is due, every `daemon.clock_tick`."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.failures = Failures("clock", context)
        self.pulse = Pulse("clock", context)
        self.fired = 0

    def run(self) -> None:
        while not self.context.stop.is_set():  # at once first: catch up after downtime
            self._step()
            self.context.stop.wait(self._tick_s())
        self.pulse.flush()

    def _tick_s(self) -> float:
        return self.context.parts.config.settings.daemon.clock_tick.total_seconds()

    def _step(self) -> None:
        parts = self.context.parts
        fired = 0
        sqlite = not parts.database.is_postgres
        try:
            while not self.context.stop.is_set():  # one transaction per batch of timers
                began = time.monotonic()
                result = tick(parts.database, parts.runtime, self.context.clock(),
                              CATCH_UP_BATCH if sqlite else 500)
                if sqlite and result.seen:
                    # Catching up on SQLite, where writers take turns on one lock: a pause as
                    # long as the batch took lets ingest and the sender in. Back to back, the
                    # clock won the lock every time and held them off for many seconds.
                    self.context.stop.wait(min(time.monotonic() - began, CATCH_UP_PAUSE_S))
                for timer in result.timers:
                    log.info(timer.describe(), extra={"loop": "clock", "ref": timer.ref,
                                                      "timer": timer.kind})
                if result.fired:
                    self.context.outbox_changed()
                fired += result.fired
                if not result.seen:
                    break
        except Exception as exc:  # noqa: BLE001 - every failure is an outage with a backoff
            reason, delay = self.failures.handle(exc)
            self.pulse.record(False, error=reason)
            self.context.stop.wait(delay)
            return
        self.failures.ok()
        self.fired += fired
        self.pulse.record(True, detail={"fired": self.fired}, busy=bool(fired))
