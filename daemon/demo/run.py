"""`run.py demo`: the whole product on one machine, offline, through real mail.

An embedded IMAP server and an aiosmtpd server on 127.0.0.1, a temporary SQLite store, and
the real daemon parts (ingest, clock, sender), driven through the story in demo_story.py on
a virtual clock, so days pass in seconds. Each mail of the story is APPENDed to the support
mailbox over IMAP; each mail the daemon sends goes through the SMTP server, which delivers
it, as an MTA would, to the support mailbox (mail for the support address) or to a `demo`
catch-all mailbox (everyone else), where a real mail client can read it with `--keep`.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import TextIO

from imapclient import IMAPClient
from sqlalchemy import func, select

from daemon.demo.imap_server.server import Controller
from daemon.demo.smtp_sink import Delivered, SmtpSink
from daemon.demo.story import START, STORY, ZONE, compose
from daemon.demo.timeline import Style, Timeline
from daemon.service.app import Parts, run_once
from daemon.site.config import load_config
from daemon.store.database import Database, migrate, open_database
from daemon.store.models import Timer

SUPPORT_USER, SUPPORT_PASSWORD = "support", "demo"  # the daemon's mailbox
CLIENT_USER, CLIENT_PASSWORD = "demo", "demo"  # everyone else's mail, for a mail client
MAX_CLOCK_STEPS = 200  # far more timers than the story sets; a loop that never ends is a bug


class DemoError(Exception):
    """The story could not be played; the message says which step failed."""


def _say(line: str) -> None:
    print(line, flush=True)  # flushed: `--keep` is read line by line through a pipe


def run_demo(root: Path, keep: bool = False, out: Callable[[str], None] = _say) -> int:
    started = time.monotonic()
    with demo_world(root, out) as world:
        end = play(world)
        out("\n" + world.timeline.style("1", world.timeline.summary(time.monotonic() - started)))
        if keep:
            _keep_running(world, end, out)
    return 0


def wants_colour(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Colour on a terminal only, and never with NO_COLOR set (no-color.org)."""
    return stream.isatty() and not environ.get("NO_COLOR")


@dataclass(frozen=True)
class World:
    """The servers, the store and the daemon's parts the story runs through."""

    imap: Controller
    smtp: SmtpSink
    inbox: IMAPClient  # logged in to the support mailbox, to APPEND the story's mail
    parts: Parts
    timeline: Timeline
    db: Path


@contextmanager
def demo_world(root: Path, out: Callable[[str], None]) -> Iterator[World]:
    """Everything up and ready on 127.0.0.1; all of it stopped and removed on exit."""
    with ExitStack() as stack:
        imap = stack.enter_context(Controller({SUPPORT_USER: SUPPORT_PASSWORD,
                                               CLIENT_USER: CLIENT_PASSWORD}))
        mta = _Mta(imap)
        smtp = stack.enter_context(SmtpSink(relay=mta.deliver))
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tierdesk-demo-")))
        database = stack.enter_context(_database(folder / "demo.db"))
        config = load_config(root, _environment(imap, smtp, folder / "demo.db"))
        mta.support = config.settings.mail.address
        style = Style(wants_colour(sys.stdout, os.environ))
        inbox = stack.enter_context(_imap_login(imap, SUPPORT_USER, SUPPORT_PASSWORD))
        yield World(imap, smtp, inbox, Parts.build(config, database),
                    Timeline(database, style, out, ZONE), folder / "demo.db")


def play(world: World) -> datetime:
    """The story, then the clock until nothing is due; returns the clock's last time."""
    world.timeline.out(world.timeline.style(
        "1", f"Tierdesk demo: IMAP {world.imap.host}:{world.imap.port}, SMTP "
             f"{world.smtp.host}:{world.smtp.port}, store {world.db}, clock from "
             f"{START:%a %d %b %Y}"))
    for scene in STORY:
        at = START + scene.after
        _clock_until(world, at)
        world.timeline.heading(at, scene.title)
        world.inbox.append("INBOX", compose(scene, world.smtp.received, at), msg_time=at)
        _step(world, at, notes=True)
    return _clock_until(world, None)  # until nothing is due: the auto-close


class _Mta:
    """The SMTP server's delivery: mail for the support address (plus-addresses too) to the
    daemon's mailbox, everything else to the catch-all a mail client may read."""

    def __init__(self, imap: Controller) -> None:
        self.imap = imap
        self.support = ""

    def deliver(self, mail: Delivered) -> None:
        ours = [r for r in mail.rcpt_tos if _is_support(r, self.support)]
        if ours:
            self.imap.deliver(mail.data, user=SUPPORT_USER)
        if len(ours) < len(mail.rcpt_tos):
            self.imap.deliver(mail.data, user=CLIENT_USER)


def _is_support(address: str, support: str) -> bool:
    local, _, domain = parseaddr(address)[1].lower().rpartition("@")
    want_local, _, want_domain = support.lower().rpartition("@")
    return domain == want_domain and local.split("+", 1)[0] == want_local


@contextmanager
def _database(path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{path}")
    try:
        migrate(database)
        yield database
    finally:
        database.close()


@contextmanager
def _imap_login(imap: Controller, user: str, password: str) -> Iterator[IMAPClient]:
    client = IMAPClient(imap.host, imap.port, ssl=False, timeout=10)
    try:
        client.login(user, password)
        yield client
    finally:
        client.logout()


def _environment(imap: Controller, smtp: SmtpSink, db: Path) -> dict[str, str]:
    return {**os.environ,
            "TIERDESK_IMAP_HOST": imap.host, "TIERDESK_IMAP_PORT": str(imap.port),
            "TIERDESK_IMAP_SECURITY": "none", "TIERDESK_IMAP_USERNAME": SUPPORT_USER,
            "TIERDESK_IMAP_PASSWORD": SUPPORT_PASSWORD,
            "TIERDESK_SMTP_HOST": smtp.host, "TIERDESK_SMTP_PORT": str(smtp.port),
            "TIERDESK_SMTP_SECURITY": "none", "TIERDESK_DATABASE_URL": f"sqlite:///{db}",
            # Signed reply addresses: technicians authenticate by answering their own mail.
            "TIERDESK_AUTH_SECRET": secrets.token_urlsafe(32)}


def _step(world: World, at: datetime, notes: bool = False) -> None:
    """One burst of the daemon at `at`; what it did is read back and printed."""
    said: list[str] = []
    if not run_once(world.parts, say=said.append, clock=lambda: at):
        raise DemoError(f"the daemon could not reach a server at {at:%a %H:%M}: "
                        + "; ".join(said))
    # The indented lines are what happened to each mail (e.g. how a technician was
    # authenticated); the counts are noise here.
    # Mail a client sent to the support address shows up as mail in, once ingested.
    support = world.parts.config.settings.mail.address
    sent = [m for m in world.smtp.take()
            if not all(_is_support(rcpt, support) for rcpt in m.rcpt_tos)]
    world.timeline.show(sent, [n for n in said if n.startswith("  ")] if notes else [])


def _clock_until(world: World, until: datetime | None) -> datetime:
    """The fast clock: jump to each timer's due time before `until` (None: while any is
    due) and run the daemon there, as a running daemon would at that moment."""
    at = START
    for _ in range(MAX_CLOCK_STEPS):
        due = _next_due(world.parts.database)
        if due is None or (until is not None and due >= until):
            return at
        at = due
        world.timeline.heading(at, "the clock", lazy=True)
        _step(world, at)
    raise DemoError(f"timers kept coming due after {MAX_CLOCK_STEPS} steps of the clock")


def _next_due(database: Database) -> datetime | None:
    with database.reading() as session:
        return session.scalar(select(func.min(Timer.due_at)))


def _keep_running(world: World, end: datetime, out: Callable[[str], None]) -> None:
    imap, smtp, db = world.imap, world.smtp, world.db
    support = world.parts.config.settings.mail.address
    for line in (
        "",
        "The servers stay up until Ctrl-C; the daemon keeps working, its clock now at real "
        "speed. Connect a mail client (plain connections, 127.0.0.1 only):",
        f"  IMAP    host {imap.host}  port {imap.port}  security none  user {CLIENT_USER}  "
        f"password {CLIENT_PASSWORD}  (every mail Tierdesk sent, to anyone)",
        f"  SMTP    host {smtp.host}  port {smtp.port}  security none  no login",
        f"  Send to {support} from any address to open a ticket; its mails arrive in the "
        f"{CLIENT_USER} mailbox. Answer a handoff from a member's address (e.g. "
        "morgan.lee@example.com) to use #tags.",
        f"  The daemon's own mailbox: user {SUPPORT_USER}, password {SUPPORT_PASSWORD}. "
        f"Timeline: TIERDESK_DATABASE_URL=sqlite:///{db} python run.py show TD-1",
    ):
        out(line)
    began = time.monotonic()
    try:
        while True:
            time.sleep(1)
            now = end + timedelta(seconds=time.monotonic() - began)
            world.timeline.heading(now, "the daemon, live", lazy=True)
            _step(world, now, notes=True)
    except KeyboardInterrupt:
        out("stopped: servers shut down, temporary store removed")
