"""Small builders shared by the outbound tests: tickets, queued mail, a settable clock."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.message import EmailMessage, MIMEPart
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.config.settings import SmtpSettings
from daemon.outbound.sender import Sender, SenderSettings
from daemon.outbound.smtp import SmtpPool
from daemon.outbound.writer import MailWriter, materialize
from daemon.store import repository
from daemon.store.database import Database
from daemon.store.models import Event, Outbox, Ticket
from daemon.workflow.facts import MailOrder
from daemon.workflow.mails import context
from tests.outbound.smtp_server import SmtpServer

ENVELOPE_FROM = "support@example.com"


def new_ticket(session: Session, now: datetime, *, requester: str = "ann@example.org",
               subject: str = "VPN drops every 5 minutes", state: str = "tier1",
               team: str = "tier1", vendor: str | None = None,
               assignee: str | None = None) -> Ticket:
    ticket = repository.create_ticket(
        session, requester=requester, subject=subject, workflow_name="it-support",
        workflow_version=1, initial_state=state, priority="P2", team=team, now=now)
    ticket.vendor, ticket.assignee = vendor, assignee
    session.flush()
    return ticket


def mail_context(ticket: Ticket, now: datetime, **changes: Any) -> dict[str, Any]:
    """The engine's context for a move of `ticket` (before = after unless changed)."""
    after = repository.facts(ticket)
    before = replace(after, state=changes.pop("from_state", after.state),
                     team=changes.pop("previous_team", after.team))
    facts = context(before, after, event=changes.pop("event", "transition"),
                    actor=changes.pop("actor", "alex.chen@example.com"),
                    reason=changes.pop("reason", "needs a network engineer"),
                    argument=changes.pop("argument", ""),
                    trigger=changes.pop("trigger", "escalate"),
                    deadline=changes.pop("deadline", now + timedelta(hours=3)))
    return {**facts, **changes}


def queue(session: Session, ticket: Ticket, template: str, role: str, now: datetime,
          writer: MailWriter | None = None, **changes: Any) -> Outbox:
    """An outbox row for `template` to `role`, rendered when a writer is given."""
    order = MailOrder(template, role, mail_context(ticket, now, **changes))
    row = repository.add_mail(session, order, now, domain="example.com", ticket=ticket)
    session.flush()
    if writer is not None:
        materialize(session, [row], writer, now)
        session.flush()
    return row


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def header_id(stored: str) -> str:
    """The Message-ID header of a stored id (the store may keep it bare or bracketed)."""
    return stored if stored.startswith("<") else f"<{stored}>"


def text_of(part: MIMEPart | None) -> str:
    """A text part's content; the parser keeps the wire format's CRLF line ends."""
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def all_defects(message: MIMEPart) -> list[object]:
    return [defect for part in message.walk() for defect in part.defects]


def rows(database: Database) -> list[Outbox]:
    with database.reading() as session:
        return list(session.scalars(select(Outbox).order_by(Outbox.id)))


def events(database: Database, kind: str) -> list[Event]:
    with database.reading() as session:
        return list(session.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


@dataclass
class Clock:
    """A settable `now` for the sender: tests move time instead of sleeping."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def smtp_settings(server: SmtpServer, **changes: Any) -> SmtpSettings:
    values: dict[str, Any] = {"host": server.host, "port": server.port, "security": "none",
                              "timeout": timedelta(seconds=5)}
    return SmtpSettings.model_validate({**values, **changes})


def sender(database: Database, pool: SmtpPool, clock: Clock, **settings: Any) -> Sender:
    return Sender(database, pool, ENVELOPE_FROM, settings=SenderSettings(**settings),
                  clock=clock, rng=lambda: 1.0)
