"""`run.py demo`: the whole product on one machine, offline, through real mail.

An embedded IMAP server and an aiosmtpd server on 127.0.0.1, a temporary SQLite store, and
the real daemon parts (ingest, clock, sender), driven through the story in demo/story.py on
a virtual clock, so days pass in seconds. The story is placed in the past, so that it has
ended by now; with `--keep` the clock then hands over to the real clock
(daemon/clock/handover.py). Each mail of the story is APPENDed to the support mailbox over
IMAP; each mail the daemon sends goes through the SMTP server, which delivers it, as an MTA
would, to the support mailbox (mail for the support address) or to a `demo` catch-all
mailbox (everyone else), where a real mail client can read it with `--keep`.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from types import FrameType
from typing import TextIO

from imapclient import IMAPClient
from sqlalchemy import func, select

from daemon.clock.handover import ClockRanBackwards, HandoverClock, story_start
from daemon.clock.now import utc_now
from daemon.demo.imap_server.server import Controller
from daemon.demo.smtp_sink import Delivered, SmtpSink
from daemon.demo.story import START, STORY, ZONE, compose
from daemon.demo.timeline import Style, Timeline
from daemon.service.app import Parts, run_once
from daemon.service.pulse import stopped
from daemon.site.config import load_config
from daemon.store.database import Database, migrate, open_database
from daemon.store.heartbeats import daemon_name
from daemon.store.models import Timer

SUPPORT_USER, SUPPORT_PASSWORD = "support", "demo"  # the daemon's mailbox
CLIENT_USER, CLIENT_PASSWORD = "demo", "demo"  # everyone else's mail, for a mail client
MAX_CLOCK_STEPS = 200  # far more timers than the story sets; a loop that never ends is a bug
# How long the story may last, report to auto-close (today just under 6 days): it starts at
# least this long before now, so that all of it lies in the past when it ends.
STORY_SPAN = timedelta(days=7)


class DemoError(Exception):
    """The story could not be played; the message says which step failed."""


def _say(line: str) -> None:
    print(line, flush=True)  # flushed: `--keep` is read line by line through a pipe


def run_demo(root: Path, keep: bool = False, out: Callable[[str], None] = _say) -> int:
    started = time.monotonic()
    with _sigterm_as_interrupt(), demo_world(root, out) as world:
        play(world)
        out("\n" + world.timeline.style("1", world.timeline.summary(time.monotonic() - started)))
        if keep:
            _keep_running(world, root, out)
    return 0


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (kill, a service manager, a test) stops the demo as Ctrl-C does: the servers
    shut down and the temporary folder is removed, instead of the process just dying."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        # A second SIGTERM must not cut the cleanup short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
    clock: HandoverClock  # the story's time, then (with --keep) the real time
    settings_env: dict[str, str]  # the TIERDESK_* variables that point at this demo


@contextmanager
def demo_world(root: Path, out: Callable[[str], None],
               clock: HandoverClock | None = None) -> Iterator[World]:
    """Everything up and ready on 127.0.0.1; all of it stopped and removed on exit. The
    default clock starts the story so that it has ended by now."""
    clock = clock or HandoverClock(story_start(START, utc_now(), STORY_SPAN))
    with ExitStack() as stack:
        imap = stack.enter_context(Controller({SUPPORT_USER: SUPPORT_PASSWORD,
                                               CLIENT_USER: CLIENT_PASSWORD}))
        mta = _Mta(imap)
        smtp = stack.enter_context(SmtpSink(relay=mta.deliver))
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tierdesk-demo-")))
        database = stack.enter_context(_database(folder / "demo.db"))
        settings_env = _settings_env(imap, smtp, folder / "demo.db")
        config = load_config(root, {**os.environ, **settings_env})
        mta.support = config.settings.mail.address
        style = Style(wants_colour(sys.stdout, os.environ))
        inbox = stack.enter_context(_imap_login(imap, SUPPORT_USER, SUPPORT_PASSWORD))
        yield World(imap, smtp, inbox, Parts.build(config, database),
                    Timeline(database, style, out, ZONE), folder / "demo.db", clock,
                    settings_env)


def play(world: World) -> datetime:
    """The story, then the clock until nothing is due; returns the clock's last time."""
    start = world.clock.start
    world.timeline.out(world.timeline.style(
        "1", f"Tierdesk demo: IMAP {world.imap.host}:{world.imap.port}, SMTP "
             f"{world.smtp.host}:{world.smtp.port}, store {world.db}, clock from "
             f"{start.astimezone(ZONE):%a %d %b %Y}"))
    for scene in STORY:
        at = start + scene.after
        _clock_until(world, at)
        world.clock.jump(at)
        world.timeline.heading(at, scene.title)
        world.inbox.append("INBOX", compose(scene, world.smtp.received, at), msg_time=at)
        _step(world, notes=True)
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


def _settings_env(imap: Controller, smtp: SmtpSink, db: Path) -> dict[str, str]:
    return {"TIERDESK_IMAP_HOST": imap.host, "TIERDESK_IMAP_PORT": str(imap.port),
            "TIERDESK_IMAP_SECURITY": "none", "TIERDESK_IMAP_USERNAME": SUPPORT_USER,
            "TIERDESK_IMAP_PASSWORD": SUPPORT_PASSWORD,
            "TIERDESK_SMTP_HOST": smtp.host, "TIERDESK_SMTP_PORT": str(smtp.port),
            "TIERDESK_SMTP_SECURITY": "none", "TIERDESK_DATABASE_URL": f"sqlite:///{db}",
            # Signed reply addresses: technicians authenticate by answering their own mail.
            "TIERDESK_AUTH_SECRET": secrets.token_urlsafe(32)}


def _step(world: World, notes: bool = False, daemon: str | None = None) -> None:
    """One burst of the daemon at the clock's time; what it did is read back and printed.
    A `daemon` name is a running daemon's: its heartbeats are not marked stopped."""
    said: list[str] = []
    if not run_once(world.parts, say=said.append, clock=world.clock, daemon=daemon,
                    stop=daemon is None):
        raise DemoError(f"the daemon could not reach a server at {world.clock():%a %H:%M}: "
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
    for _ in range(MAX_CLOCK_STEPS):
        due = _next_due(world.parts.database)
        if due is None or (until is not None and due >= until):
            return world.clock()
        world.clock.jump(max(due, world.clock()))  # a timer due before now fires now
        world.timeline.heading(world.clock(), "the clock", lazy=True)
        _step(world)
    raise DemoError(f"timers kept coming due after {MAX_CLOCK_STEPS} steps of the clock")


def _next_due(database: Database) -> datetime | None:
    with database.reading() as session:
        return session.scalar(select(func.min(Timer.due_at)))


def _keep_running(world: World, root: Path, out: Callable[[str], None]) -> None:
    """The same daemon on the real clock, bursting every second, until Ctrl-C or SIGTERM."""
    try:
        end = world.clock.hand_over()
    except ClockRanBackwards as exc:
        raise DemoError(f"{exc}: STORY_SPAN in daemon/demo/run.py is too short") from exc
    # Its own name and never marked stopped between bursts: `status` sees it running.
    daemon = daemon_name()
    try:
        _live_step(world, daemon)  # beating before the user is told to look
        _tell_how_to_connect(world, root, end, out)
        while True:
            time.sleep(1)
            _live_step(world, daemon)
    except KeyboardInterrupt:
        stopped(world.parts.database, daemon, world.clock())
        out("stopped: servers shut down, temporary store removed")


def _live_step(world: World, daemon: str) -> None:
    world.timeline.heading(world.clock(), "the daemon, live", lazy=True)
    _step(world, notes=True, daemon=daemon)


def _tell_how_to_connect(world: World, root: Path, end: datetime,
                         out: Callable[[str], None]) -> None:
    imap, smtp, db = world.imap, world.smtp, world.db
    support = world.parts.config.settings.mail.address
    env = _write_env(world)
    config = "" if root.resolve() == Path.cwd() else f" --config {shlex.quote(str(root))}"
    for line in (
        "",
        "The servers stay up until Ctrl-C (or SIGTERM); the daemon keeps working, on the real "
        f"clock from here (the story ended {end.astimezone(ZONE):%a %d %b %H:%M %Z}). "
        "Connect a mail client (plain connections, 127.0.0.1 only):",
        f"  IMAP    host {imap.host}  port {imap.port}  security none  user {CLIENT_USER}  "
        f"password {CLIENT_PASSWORD}  (every mail Tierdesk sent, to anyone)",
        f"  SMTP    host {smtp.host}  port {smtp.port}  security none  no login",
        f"  Send to {support} from any address to open a ticket; its mails arrive in the "
        f"{CLIENT_USER} mailbox. Answer a handoff from a member's address (e.g. "
        "morgan.lee@example.com) to use #tags.",
        f"  The daemon's own mailbox: user {SUPPORT_USER}, password {SUPPORT_PASSWORD}. "
        f"Store: {db}",
        f"  Commands on this demo's store and servers: . {shlex.quote(str(env))} && "
        f"tierdesk status{config}  (or tickets, show TD-1)",
    ):
        out(line)


def _write_env(world: World) -> Path:
    """The TIERDESK_* variables of this demo as a shell file, so that `status`, `tickets`
    and `show` look at this store and these servers rather than the configured ones."""
    path = world.db.parent / "demo.env"
    path.write_text("".join(f"export {name}={shlex.quote(value)}\n"
                            for name, value in world.settings_env.items()), encoding="utf-8")
    path.chmod(0o600)  # it holds the demo's signing secret
    return path
