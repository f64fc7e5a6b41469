"""The daemon's parts wired together from one Config: ingest, clock, sender.

`run_once` is the burst mode (`run.py run --once`): drain the mailbox, fire what is due,
make one sending pass, report each in one line, exit. The long-running service arrives with
the daemon issue; it will reuse the same pieces.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from daemon.clock import run_due
from daemon.config import Config
from daemon.imap import ImapError, Mailbox
from daemon.ingest import Inbox
from daemon.ingest_loop import drain
from daemon.now import utc_now
from daemon.outbox import MailWriter
from daemon.runtime import Runtime
from daemon.sender import Sender
from daemon.store.database import Database

log = logging.getLogger("tierdesk")



@dataclass(frozen=True)
class Parts:
    config: Config
    database: Database
    runtime: Runtime
    inbox: Inbox

    @classmethod
    def build(cls, config: Config, database: Database) -> Parts:
        runtime = Runtime.build(config, mail_hook=MailWriter.from_config(config))
        return cls(config, database, runtime, Inbox.build(runtime))


def run_once(parts: Parts, say: Callable[[str], None] = print,
             clock: Callable[[], datetime] = utc_now) -> bool:
    """One burst over all pending work; False when a server could not be reached (each
    problem said in one line; whatever could be done was done)."""
    ok = _ingest(parts, say, clock)
    fired = run_due(parts.database, parts.runtime, clock())
    say(f"clock: {fired.fired} timers fired" + (f", {fired.superseded} superseded"
                                                  if fired.superseded else ""))
    return _send(parts, say, clock) and ok


def _ingest(parts: Parts, say: Callable[[str], None], clock: Callable[[], datetime]) -> bool:
    mailbox = Mailbox(parts.config.settings.imap)
    try:
        mailbox.connect()
        report = drain(mailbox, parts.database, parts.inbox, clock)
    except ImapError as exc:
        say(f"imap: {exc}; mail stays in the mailbox until the next run")
        return False
    finally:
        mailbox.close()
    say(f"imap: {report.summary()}")
    for outcome in report.outcomes:
        say(f"  {outcome.detail}")
    return True


def _send(parts: Parts, say: Callable[[str], None], clock: Callable[[], datetime]) -> bool:
    async def one_pass() -> bool:
        sender = Sender.from_config(parts.config, parts.database, clock=clock)
        try:
            report = await sender.run_once()
        finally:
            await sender.close()
        if report.outage:
            say(f"smtp: {report.outage}; mail stays queued")
            return False
        say(f"smtp: {report.sent} sent, {report.retried} to retry, {report.parked} parked")
        return True

    return asyncio.run(one_pass())
