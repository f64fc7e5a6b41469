"""The long-running daemon, `run.py run`: ingest, clock and sender in one process.

The sender runs on the asyncio event loop (aiosmtplib); ingest and clock, which block
(imapclient, the synchronous SQLAlchemy session), each run in a thread of their own
(daemon/service/loops.py). Ingest and clock wake the sender right after they commit new
outbox rows, so an acknowledgement leaves within milliseconds of its mail's commit.

- SIGTERM / SIGINT: stop gracefully. IDLE is woken, the batch in hand commits (or rolls back)
  whole, the sender claims nothing more and puts rows claimed but not tried back in the queue,
  mails being sent are finished; heartbeats are marked stopped; exit 0. A second signal
  abandons the mails being sent (they stay claimed and go again as soon as a daemon on this
  machine runs again, or when their lease runs out) and does not wait for the threads
  (whatever they had not committed rolls back); exit 1.
- SIGHUP, or a changed file under config/, workflows/ or mail_templates/: reload. The whole
  configuration is loaded and validated first; an invalid one is refused with its
  file:line problems and the running one kept.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path

from daemon.clock.now import utc_now
from daemon.config.problems import ConfigError
from daemon.outbound.outbox_queue import next_due
from daemon.outbound.sender import Sender, SenderSettings
from daemon.outbound.smtp import describe
from daemon.service.app import Parts
from daemon.service.gc_tuning import settle_after_startup, thaw
from daemon.service.loops import ClockLoop, Context, Failures, IngestLoop, Pulse
from daemon.service.malloc import limit_arenas, release_free_memory
from daemon.service.outage import Outage
from daemon.service.pulse import stopped
from daemon.service.reload import Snapshot, changed_files, changes, snapshot, stranded
from daemon.site.config import Config, load_config
from daemon.store.database import Database, StoreError, open_and_migrate
from daemon.store.heartbeats import daemon_name

log = logging.getLogger("tierdesk.service")

# Rows stay due while SMTP is down; the server as a whole is retried with backoff instead.
DAEMON_SENDER = SenderSettings(outage_retry=timedelta(0), log_outages=False)
SENDER_IDLE_S = 30.0  # a pass at least this often (rows whose lease ran out)


def startup_line(parts: Parts, daemon: str) -> str:
    s = parts.config.settings
    workflows = ", ".join(f"{wf.name} v{wf.version}" for wf in parts.config.workflows.values())
    return (f"tierdesk started: imap {s.imap.host}:{s.imap.port} ({s.imap.security}) "
            f"{s.imap.folder}, smtp {describe(s.smtp)}, database {parts.database.safe_url}, "
            f"workflow {workflows} (daemon {daemon})")


class Service:
    def __init__(self, root: Path, config: Config, database: Database,
                 environ: Mapping[str, str] = os.environ,
                 clock: Callable[[], datetime] = utc_now, files: Snapshot | None = None) -> None:
        """`files`: the watched files as they were before `config` was loaded, so a change
        made while starting up is not missed."""
        self.root, self.environ = root, environ
        self.files = files
        self.outbox_ready = asyncio.Event()
        self.stopping = asyncio.Event()
        self.reload_wanted = asyncio.Event()
        self.forced = asyncio.Event()
        self.died = False
        self.context = Context(Parts.build(config, database), daemon_name(), clock,
                               self._outbox_changed)
        self.ingest = IngestLoop(self.context)
        self.clock = ClockLoop(self.context)
        self.smtp = Outage("smtp")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sender_task: asyncio.Task[None] | None = None
        settle_after_startup()

    @property
    def parts(self) -> Parts:
        return self.context.parts

    # ------------------------------------------------------------ life cycle

    async def run(self) -> int:
        self._loop = asyncio.get_running_loop()
        self._signals(self._loop)
        log.info(startup_line(self.parts, self.context.daemon))
        threads = [self._thread("ingest", self.ingest.run), self._thread("clock", self.clock.run)]
        self._sender_task = asyncio.create_task(self._sender())
        watcher = asyncio.create_task(self._watch())
        await self.stopping.wait()
        log.info("stopping: finishing the work in hand", extra={"loop": "service"})
        self.context.stop.set()
        self.ingest.wake()
        watcher.cancel()
        work = asyncio.gather(watcher, self._sender_task, *threads, return_exceptions=True)
        forced = asyncio.create_task(self.forced.wait())
        await asyncio.wait([work, forced], return_when=asyncio.FIRST_COMPLETED)
        if self.forced.is_set():
            log.warning("stopped at once (second signal): mails being sent go again when "
                        "the daemon runs again; uncommitted work rolls back")
            return 1
        forced.cancel()
        await asyncio.gather(forced, return_exceptions=True)
        await asyncio.to_thread(stopped, self.parts.database, self.context.daemon,
                                self.context.clock())
        self.parts.database.close()
        log.info("tierdesk stopped", extra={"loop": "service"})
        return 1 if self.died else 0

    def _signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self.reload_wanted.set)

    def _stop_signal(self, sig: signal.Signals) -> None:
        if not self.stopping.is_set():
            log.info("%s received", sig.name, extra={"loop": "service"})
            self.stopping.set()
            return
        log.info("%s received again: stopping at once", sig.name, extra={"loop": "service"})
        self.forced.set()
        if self._sender_task is not None:
            self._sender_task.cancel()

    def _thread(self, name: str, target: Callable[[], None]) -> asyncio.Future[None]:
        """Run `target` in a daemon thread (a forced stop need not wait for it); the future
        completes when it returns."""
        assert self._loop is not None
        loop, done = self._loop, self._loop.create_future()

        def settle(error: BaseException | None) -> None:
            if done.done():
                return
            if error is not None:
                self.died = True
                self.stopping.set()
                done.set_exception(error)
            else:
                done.set_result(None)

        def main() -> None:
            error: BaseException | None = None
            try:
                target()
            except BaseException as exc:  # noqa: BLE001 - handed to the event loop
                log.exception("%s loop died", name)
                error = exc
            finally:
                try:
                    loop.call_soon_threadsafe(settle, error)
                except RuntimeError:  # the event loop is gone: a forced stop
                    pass

        threading.Thread(target=main, name=f"tierdesk-{name}", daemon=True).start()
        return done

    def _outbox_changed(self) -> None:
        """From the ingest or clock thread, right after a commit."""
        if self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self.outbox_ready.set)
            except RuntimeError:  # the event loop has closed
                pass

    # ------------------------------------------------------------ sender

    async def _sender(self) -> None:
        failures = Failures("sender", self.context)
        pulse = Pulse("sender", self.context)
        sender: Sender | None = None
        built_for: Parts | None = None
        sent = 0
        try:
            while not self.stopping.is_set():
                if built_for is not self.parts:  # start, or a reload
                    if sender is not None:
                        await sender.close()
                    built_for = self.parts
                    sender = Sender.from_config(built_for.config, built_for.database,
                                                settings=DAEMON_SENDER, clock=self.context.clock)
                assert sender is not None and built_for is not None
                self.outbox_ready.clear()  # set during the pass: another pass at once
                try:
                    report = await sender.run_once(stop=self.stopping)
                except Exception as exc:  # noqa: BLE001 - the database, or a bug
                    reason, delay = failures.handle(exc)
                    await self._beat(pulse, False, reason)
                    await self._sleep(delay, wake=False)
                    continue
                failures.ok()
                sent += report.sent
                detail = {"sent": sent, "parked": report.parked}
                if report.outage:
                    delay = self.smtp.failed(report.outage, "sender")
                    await self._beat(pulse, False, report.outage, detail)
                    await self._sleep(delay, wake=False)
                    continue
                if report.handled:
                    self.smtp.ok("sender")
                    release_free_memory()
                await self._beat(pulse, True, None, detail, busy=bool(report.handled))
                await self._sleep(await self._until_due(built_for.database), wake=True)
        finally:
            if sender is not None:
                await asyncio.shield(sender.close())
            await asyncio.shield(asyncio.to_thread(pulse.flush))

    async def _beat(self, pulse: Pulse, ok: bool, error: str | None,
                    detail: dict[str, int] | None = None, busy: bool = False) -> None:
        await asyncio.to_thread(pulse.record, ok, error, detail, busy)

    async def _until_due(self, database: Database) -> float:
        try:
            due = await asyncio.to_thread(_next_due, database)
        except Exception:  # noqa: BLE001 - the next pass reports the database
            return 1.0
        if due is None:
            return SENDER_IDLE_S
        return min(max((due - self.context.clock()).total_seconds(), 0.0), SENDER_IDLE_S)

    async def _sleep(self, seconds: float, wake: bool) -> None:
        """Until `seconds` pass or the daemon stops; with `wake`, also until new rows."""
        events = [self.stopping] + ([self.outbox_ready] if wake else [])
        waiters = [asyncio.create_task(event.wait()) for event in events]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    # ------------------------------------------------------------ reload

    async def _watch(self) -> None:
        """Reload on SIGHUP, or when the watched files changed (checked every
        daemon.reload_check)."""
        files = self.files if self.files is not None else await asyncio.to_thread(
            snapshot, self.root)
        while True:
            interval = self.parts.config.settings.daemon.reload_check.total_seconds()
            with_signal = await self._wait_reload(interval)
            now = await asyncio.to_thread(snapshot, self.root)
            if now != files or with_signal:
                changed, files = changed_files(self.root, files, now), now
                await self.reload("SIGHUP" if with_signal else "files changed", changed)

    async def _wait_reload(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.reload_wanted.wait(), seconds)
        except TimeoutError:
            return False
        self.reload_wanted.clear()
        return True

    async def reload(self, why: str, files: tuple[str, ...] = ()) -> bool:
        """Load, validate and swap in the configuration; False when it was refused."""
        old = self.parts
        try:
            config = await asyncio.to_thread(load_config, self.root, self.environ)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload refused: %s", problem, extra={"loop": "reload"})
            self._refused(f"{len(exc.problems)} problem(s)")
            return False
        found = changes(old.config, config, files)
        try:
            parts = await asyncio.to_thread(self._build, old, config)
        except (StoreError, ReloadRefused) as exc:
            log.error("reload refused: %s", exc, extra={"loop": "reload"})
            self._refused(str(exc).split(":")[0])
            return False
        self.context.parts = parts
        if parts.database is not old.database:
            old.database.close()
        thaw()
        if found.touches("imap"):
            self.ingest.wake()  # it reconnects with the new settings
        self.outbox_ready.set()  # the sender rebuilds on the new parts
        workflows = ", ".join(f"{wf.name} v{wf.version}" for wf in config.workflows.values())
        log.info("reloaded (%s): %s; running workflow %s", why, found.describe(), workflows,
                 extra={"loop": "reload", "workflows": workflows})
        return True

    def _build(self, old: Parts, config: Config) -> Parts:
        """New parts on the same database unless its URL changed (in a thread)."""
        database = old.database
        if config.settings.database.url != old.config.settings.database.url:
            database = open_and_migrate(config.settings.database.url)
        try:
            lost = stranded(database, old.config, config)
            if lost:
                raise ReloadRefused("open tickets would be stranded: " + "; ".join(lost)
                                    + " (keep those states, or move the tickets first)")
            return Parts.build(config, database, old)
        except BaseException:
            if database is not old.database:
                database.close()
            raise

    def _refused(self, what: str) -> None:
        workflows = ", ".join(f"{wf.name} v{wf.version}"
                              for wf in self.parts.config.workflows.values())
        log.error("reload refused (%s); still running workflow %s", what, workflows,
                  extra={"loop": "reload"})


class ReloadRefused(Exception):
    """A valid configuration that still may not replace the running one."""


def _next_due(database: Database) -> datetime | None:
    with database.reading() as session:
        return next_due(session)


def run_service(root: Path, config: Config, database: Database,
                files: Snapshot | None = None) -> int:
    """`run.py run`: until SIGTERM or SIGINT; the exit status."""

    async def main() -> int:
        return await Service(root, config, database, files=files).run()

    limit_arenas()  # before any thread starts

    return asyncio.run(main())
