"""`run.py demo`: the whole product on one machine, offline, through real mail.

An embedded IMAP server and an aiosmtpd server on 127.0.0.1, a temporary SQLite store, and
the real daemon parts (ingest, clock, sender), driven through a scripted story on a virtual
clock so business hours pass in seconds. Everything printed is read back from the store and
from the mail the SMTP server received.
"""

from __future__ import annotations

import email
import email.policy
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from daemon.app import Parts, run_once
from daemon.config import load_config
from daemon.imap_server import Controller
from daemon.smtp_sink import Delivered, SmtpSink
from daemon.store.database import Database, migrate, open_database
from daemon.store.models import Event, Ticket, Timer

SUPPORT_USER, SUPPORT_PASSWORD = "support", "demo"
REQUESTER = "Dana Sales <dana.sales@example.org>"
ZONE = ZoneInfo("Europe/Berlin")
START = datetime(2026, 11, 30, 9, 0, tzinfo=ZONE)  # a Monday morning


@dataclass(frozen=True)
class Scene:
    after: timedelta  # since START
    title: str
    mail: tuple[str, str] | None = None  # (subject, body) from the requester


STORY = (
    Scene(timedelta(0), "Dana reports an outage",
          ("VPN down for the whole sales team",
           "Hi,\n\nnobody in sales can connect to the VPN since 8:45. The client says\n"
           "'TLS handshake failed'. We are all in the Berlin office, Windows laptops.\n\n"
           "Dana")),
    Scene(timedelta(hours=1, minutes=20), "Dana asks for news",
          ("Re: [TD-1] VPN down for the whole sales team",
           "Any news? Still down for everyone here.\n\nDana")),
)


class Style:
    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def __call__(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text


def run_demo(root: Path, keep: bool = False, out: Callable[[str], None] = print) -> int:
    style = Style(sys.stdout.isatty() and "NO_COLOR" not in os.environ)
    started = time.monotonic()
    with ExitStack() as stack:
        imap = stack.enter_context(Controller({SUPPORT_USER: SUPPORT_PASSWORD}))
        smtp = stack.enter_context(SmtpSink())
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tierdesk-demo-")))
        database = stack.enter_context(_database(folder / "demo.db"))
        config = load_config(root, _environment(imap, smtp, folder / "demo.db"))
        parts = Parts.build(config, database)
        out(style("1", f"Tierdesk demo: IMAP {imap.host}:{imap.port}, SMTP {smtp.host}:"
                  f"{smtp.port}, store {folder / 'demo.db'}"))
        seen = 0
        for scene in STORY:
            seen = _play(scene, imap, smtp, parts, seen, style, out)
        out(style("1", f"\nDone in {time.monotonic() - started:.1f} s."))
        if keep:
            _keep_running(imap, smtp, folder, out)
    return 0


@contextmanager
def _database(path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{path}")
    try:
        migrate(database)
        yield database
    finally:
        database.close()


def _environment(imap: Controller, smtp: SmtpSink, db: Path) -> dict[str, str]:
    return {**os.environ,
            "TIERDESK_IMAP_HOST": imap.host, "TIERDESK_IMAP_PORT": str(imap.port),
            "TIERDESK_IMAP_SECURITY": "none", "TIERDESK_IMAP_USERNAME": SUPPORT_USER,
            "TIERDESK_IMAP_PASSWORD": SUPPORT_PASSWORD,
            "TIERDESK_SMTP_HOST": smtp.host, "TIERDESK_SMTP_PORT": str(smtp.port),
            "TIERDESK_SMTP_SECURITY": "none", "TIERDESK_DATABASE_URL": f"sqlite:///{db}"}


def _play(scene: Scene, imap: Controller, smtp: SmtpSink, parts: Parts, seen: int,
          style: Style, out: Callable[[str], None]) -> int:
    at = START + scene.after
    seen = _run_clock_until(parts, smtp, at, seen, style, out)
    out("\n" + style("1;36", f"── {at:%a %H:%M}  {scene.title}"))
    if scene.mail is not None:
        imap.deliver(_requester_mail(*scene.mail, at))
        out(style("33", f"  ✉ {REQUESTER} → support: {scene.mail[0]}"))
    notes: list[str] = []
    run_once(parts, say=notes.append, clock=lambda: at.astimezone(ZONE))
    for note in notes:
        out(style("2", f"    {note}"))
    seen = _show_events(parts.database, seen, style, out)
    for mail in smtp.take():
        _show_mail(mail, style, out)
    return seen


def _run_clock_until(parts: Parts, smtp: SmtpSink, until: datetime, seen: int, style: Style,
                     out: Callable[[str], None]) -> int:
    """The fast clock: jump to each timer's due time before `until` and run the daemon
    there, so every reminder and escalation happens on time, as a running daemon does it."""
    while (due := _next_due(parts.database)) is not None and due < until:
        out("\n" + style("1;36", f"── {due.astimezone(ZONE):%a %H:%M}  the clock"))
        run_once(parts, say=lambda note: None, clock=lambda due=due: due)
        seen = _show_events(parts.database, seen, style, out)
        for mail in smtp.take():
            _show_mail(mail, style, out)
    return seen


def _next_due(database: Database) -> datetime | None:
    with database.reading() as session:
        return session.scalar(select(func.min(Timer.due_at)))


def _requester_mail(subject: str, body: str, at: datetime) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = REQUESTER, "support@example.com", subject
    msg["Date"], msg["Message-ID"] = format_datetime(at), make_msgid(domain="example.org")
    msg.set_content(body)
    return msg.as_bytes()


def _show_events(database: Database, seen: int, style: Style,
                 out: Callable[[str], None]) -> int:
    with database.reading() as session:
        rows = session.execute(select(Event, Ticket.ref).join(Ticket).where(Event.id > seen)
                               .order_by(Event.id)).all()
    for event, ref in rows:
        out(style("32", f"  ● {ref} {event.kind:<11} {_move(event):<16}") + " "
            + style("2", _describe(event)))
        seen = event.id
    return seen


def _move(event: Event) -> str:
    if event.from_state and event.to_state and event.from_state != event.to_state:
        return f"{event.from_state} → {event.to_state}"
    return event.to_state or ""


def _describe(event: Event) -> str:
    if event.kind == "mail_in":  # the classification reason is long; its kind says enough
        data = event.data or {}
        return f"mail from {event.actor} ({data.get('kind', '?')}): {data.get('subject', '')}"
    return f"{event.actor}: {event.reason}"


def _show_mail(mail: Delivered, style: Style, out: Callable[[str], None]) -> None:
    parsed = email.message_from_bytes(mail.data, policy=email.policy.default)
    body = parsed.get_body(("plain",)) if isinstance(parsed, EmailMessage) else None
    text = body.get_content() if body is not None else ""
    lines = [line for line in text.splitlines() if line.strip()][:2]
    out(style("35", f"  ✉ Tierdesk → {', '.join(mail.rcpt_tos)}: {parsed['Subject']}"))
    for line in lines:
        out(style("2", f"      {line[:96]}"))


def _keep_running(imap: Controller, smtp: SmtpSink, folder: Path,
                  out: Callable[[str], None]) -> None:
    out(f"\nServers stay up until Ctrl-C. Point a mail client at IMAP {imap.host}:{imap.port} "
        f"(no TLS, user {SUPPORT_USER}, password {SUPPORT_PASSWORD}) and send through SMTP "
        f"{smtp.host}:{smtp.port} (no TLS, no login). In another shell, "
        f"TIERDESK_DATABASE_URL=sqlite:///{folder / 'demo.db'} python run.py show TD-1")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        out("stopped")
