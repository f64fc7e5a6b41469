"""The daemon's parts wired together from one Config: ingest, clock, sender.

`run_once` is the burst mode (`run.py run --once`): drain the mailbox, fire what is due,
make one sending pass, report each in one line, exit. Each part leaves a heartbeat under the
daemon name host:once, so cron-style use shows in `run.py status`. The long-running service
(daemon/service/daemon.py) reuses the same pieces.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from daemon.clock.now import utc_now
from daemon.inbound.imap import Mailbox
from daemon.inbound.imap_session import ImapError
from daemon.inbound.ingest import Inbox
from daemon.inbound.ingest_loop import drain
from daemon.outbound.sender import Sender
from daemon.outbound.writer import MailWriter
from daemon.service.pulse import beat, stopped
from daemon.site.config import Config
from daemon.store.database import Database
from daemon.store.heartbeats import daemon_name
from daemon.tickets.runtime import Runtime
from daemon.tickets.timers import run_due

log = logging.getLogger("tierdesk")



@dataclass(frozen=True)
class Parts:
    config: Config
    database: Database
    runtime: Runtime
    inbox: Inbox

    @classmethod
    def build(cls, config: Config, database: Database, previous: Parts | None = None) -> Parts:
        runtime = Runtime.build(config, mail_hook=MailWriter.from_config(config),
                                previous=previous.runtime if previous else None)
        return cls(config, database, runtime, Inbox.build(runtime))


def run_once(parts: Parts, say: Callable[[str], None] = print,
             clock: Callable[[], datetime] = utc_now, daemon: str | None = None,
             stop: bool = True) -> bool:
    """One burst over all pending work; False when a server could not be reached (each
    problem said in one line; whatever could be done was done).

    `daemon` names the heartbeats (default host:once). A caller that bursts again and again
    as its way of running (the kept demo) passes its own name and stop=False, so `status`
    sees it running between bursts rather than stopped after each."""
    daemon = daemon or daemon_name(burst=True)
    ok = _ingest(parts, say, clock, daemon)
    fired = run_due(parts.database, parts.runtime, clock())
    say(f"clock: {fired.fired} timers fired" + (f", {fired.superseded} superseded"
                                                  if fired.superseded else ""))
    beat(parts.database, "clock", daemon, clock(), ok=True, detail={"fired": fired.fired})
    ok = _send(parts, say, clock, daemon) and ok
    if stop:
        stopped(parts.database, daemon, clock())
    return ok


def _ingest(parts: Parts, say: Callable[[str], None], clock: Callable[[], datetime],
            daemon: str) -> bool:
    folder = parts.config.settings.imap.folder
    mailbox = Mailbox(parts.config.settings.imap)
    try:
        mailbox.connect()
        report = drain(mailbox, parts.database, parts.inbox, clock)
        waiting = mailbox.count_waiting(report.last_uid)  # arrived during the drain
    except ImapError as exc:
        say(f"imap: {exc}; mail stays in the mailbox until the next run")
        beat(parts.database, "ingest", daemon, clock(), ok=False, error=str(exc),
             detail={"folder": folder})
        return False
    finally:
        mailbox.close()
    beat(parts.database, "ingest", daemon, clock(), ok=True,
         detail={"folder": folder, "waiting": waiting, "processed": report.total})
    say(f"imap: {report.summary()}")
    for outcome in report.outcomes:
        say(f"  {outcome.detail}")
    return True


def _send(parts: Parts, say: Callable[[str], None], clock: Callable[[], datetime],
          daemon: str) -> bool:
    async def one_pass() -> bool:
        sender = Sender.from_config(parts.config, parts.database, clock=clock)
        try:
            report = await sender.run_once()
        finally:
            await sender.close()
        detail = {"sent": report.sent, "retried": report.retried, "parked": report.parked}
        if report.outage:
            say(f"smtp: {report.outage}; mail stays queued")
            await asyncio.to_thread(beat, parts.database, "sender", daemon, clock(), ok=False,
                                    error=report.outage, detail=detail)
            return False
        say(f"smtp: {report.sent} sent, {report.retried} to retry, {report.parked} parked")
        await asyncio.to_thread(beat, parts.database, "sender", daemon, clock(), ok=True,
                                detail=detail)
        return True

    return asyncio.run(one_pass())
