"""Helpers for the command tests: a site with a secret, raw mails from technicians as their
clients write them, tickets put in a given state, and the outbox read back as mail."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from sqlalchemy import select

from daemon.auth.sender_auth import sign
from daemon.inbound.ingest import Inbox, Outcome, process_mail
from daemon.outbound.writer import MailWriter
from daemon.site.config import Config, load_config
from daemon.store import repository
from daemon.store.database import Database
from daemon.store.models import Event, Outbox, Ticket, Timer
from daemon.tickets.runtime import Runtime
from daemon.workflow.engine import wall_clock

ROOT = Path(__file__).resolve().parents[3]
MAILS = ROOT / "tests" / "mails"
SECRET = "test-secret-0123456789-abcdefghijklmnop"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
LAST_DAY = (T0 + timedelta(days=90)).date()  # of a reply address handed out at T0
REQUESTER = "ann@example.org"
SUPPORT = "support@example.com"
# Who is who in the shipped config/teams.yaml.
SAM = "sam.rivera@example.com"  # helpdesk
ALEX = "alex.chen@example.com"  # tier1
JORDAN, JBLAKE = "jordan.blake@example.com", "jblake@example.com"  # tier1, two addresses
MORGAN = "morgan.lee@example.com"  # tier2
TAYLOR = "taylor.brooks@example.com"  # tier2, narrower commands
ROBIN = "robin.okafor@example.com"  # tier3
VENDOR = "support@vpnco.example"
DMARC = "mx.example.com; dkim=pass header.d=example.com; dmarc=pass header.from=example.com"


# The receiving server these tests stand behind writes Authentication-Results as
# mx.example.com and deletes incoming ones with that id; the shipped settings trust none.
TRUSTED = {"TIERDESK_AUTH_TRUSTED_AUTHSERV_IDS": "mx.example.com"}


def config(secret: str = SECRET, trusted: bool = True) -> Config:
    env = {**(TRUSTED if trusted else {}), **({"TIERDESK_AUTH_SECRET": secret} if secret else {})}
    return load_config(ROOT, env)


def build_inbox(site: Config) -> Inbox:
    """Engines on the wall clock (timers easy to check); mail rendered like the daemon's."""
    return Inbox.build(Runtime.build(site, add_time=wall_clock,
                                     mail_hook=MailWriter.from_config(site)))


def feed(database: Database, inbox: Inbox, raw: bytes, at: datetime = T0) -> Outcome:
    with database.transaction() as session:
        return process_mail(session, raw, inbox, at, folder="INBOX")


def requester_mail(subject: str = "Printer on floor 3 jams", **kw: Any) -> bytes:
    return mail(REQUESTER, subject, kw.pop("body", "It jams on every page."), **kw)


def mail(sender: str, subject: str, body: str, *, to: str = SUPPORT,
         auth: str | tuple[str, ...] | None = None, html: str | None = None,
         in_reply_to: str | None = None) -> bytes:
    """A plain mail; `auth` values become Authentication-Results headers on top, in order."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Date"] = format_datetime(T0)
    msg["Message-ID"] = make_msgid(domain="client.example")
    if in_reply_to:
        msg["In-Reply-To"] = msg["References"] = in_reply_to
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return with_auth(msg.as_bytes(), auth)


def with_auth(raw: bytes, auth: str | tuple[str, ...] | None) -> bytes:
    """Authentication-Results headers prepended, as receiving servers add theirs."""
    values = (auth,) if isinstance(auth, str) else auth or ()
    return b"".join(f"Authentication-Results: {v}\r\n".encode() for v in values) + raw


def tech(sender: str, body: str, ref: str = "TD-1", *, auth: str | tuple[str, ...] | None = DMARC,
         **kw: Any) -> bytes:
    """A technician's reply on `ref`, authenticated by our server unless auth=None."""
    return mail(sender, f"Re: [{ref}] Printer on floor 3 jams", body, auth=auth, **kw)


def signed(member: str, ref: str = "TD-1", secret: str = SECRET,
           last_day: date = LAST_DAY) -> str:
    """The member's reply address as a mail sent at T0 carries it."""
    return f"support+{ref}.{sign(ref, member, secret, last_day)}@example.com"


def rewrite(raw: bytes, **headers: str) -> bytes:
    """A corpus mail with some headers replaced (From, Subject, ...), the rest as written."""
    head, sep, body = raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in raw else raw.partition(b"\n\n")
    newline = b"\r\n" if sep == b"\r\n\r\n" else b"\n"
    lines = re.split(rb"\r?\n(?![ \t])", head)
    names = {name.lower().replace("_", "-").encode(): name for name in headers}
    kept = [line for line in lines if line.split(b":", 1)[0].strip().lower() not in names]
    added = [f"{names[k].replace('_', '-')}: {headers[names[k]]}".encode() for k in names]
    return newline.join(added + kept) + sep + body


# ------------------------------------------------------------------ the store

def ticket(database: Database, ref: str = "TD-1") -> Ticket:
    with database.reading() as session:
        found = repository.get_ticket(session, ref)
        assert found is not None
        session.expunge(found)
        return found


def put(database: Database, ref: str = "TD-1", **facts: Any) -> None:
    """Set a ticket's facts directly (a state the test starts from)."""
    with database.transaction() as session:
        row = repository.get_ticket(session, ref)
        assert row is not None
        for name, value in facts.items():
            setattr(row, name, value)


def open_in(database: Database, inbox: Inbox, state: str, **facts: Any) -> None:
    """TD-1 from Ann, moved to `state` with its owning team."""
    feed(database, inbox, requester_mail())
    team = inbox.runtime.config.workflows["it-support"].states[state].team
    put(database, state=state, team=team, **facts)


def events(database: Database, *kinds: str) -> list[Event]:
    with database.reading() as session:
        stmt = select(Event).order_by(Event.id)
        if kinds:
            stmt = stmt.where(Event.kind.in_(kinds))
        found = list(session.scalars(stmt))
        session.expunge_all()
        return found


def timers(database: Database) -> list[Timer]:
    with database.reading() as session:
        found = list(session.scalars(select(Timer).order_by(Timer.due_at)))
        session.expunge_all()
        return found


@dataclass(frozen=True)
class Sent:
    """An outbox row read back as the mail it became."""

    id: int
    template: str
    role: str
    to: str
    status: str
    subject: str
    text: str
    html: str
    reply_to: str
    context: dict[str, Any]

    @property
    def everything(self) -> str:
        return f"{self.subject}\n{self.text}\n{self.html}"


def outbox(database: Database, since: int = 0) -> list[Sent]:
    with database.reading() as session:
        rows = session.scalars(select(Outbox).where(Outbox.id > since).order_by(Outbox.id))
        return [_sent(row) for row in rows]


def _sent(row: Outbox) -> Sent:
    assert row.body is not None, f"row {row.id} ({row.template}) was not rendered"
    msg = email.message_from_bytes(row.body, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    parts = {p.get_content_type(): p for p in msg.walk() if not p.is_multipart()}
    text = parts["text/plain"].get_content() if "text/plain" in parts else ""
    html = parts["text/html"].get_content() if "text/html" in parts else ""
    return Sent(row.id, row.template, row.to_role, row.recipients or "", row.status,
                str(msg["Subject"]), text, html, str(msg.get("Reply-To", "")), dict(row.context))


def last_id(database: Database) -> int:
    with database.reading() as session:
        return max(session.scalars(select(Outbox.id)), default=0)


def receipts(sent: list[Sent]) -> list[Sent]:
    return [s for s in sent if s.template in ("command_receipt", "command_error")]


def later(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)
