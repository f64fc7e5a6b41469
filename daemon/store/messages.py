"""The stored mails (the messages table): what came in and went out, by Message-ID and
content digest, and which ticket a Message-ID belongs to.

Callers own the transaction, as in daemon/store/repository.py; nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from daemon.store.deferred import current as deferred_rows
from daemon.store.models import Message, Outbox, Ticket


def stored_digests(session: Session, direction: str,
                   message_ids: Iterable[str]) -> dict[str, set[str]]:
    """The content digests stored under each of `message_ids` that is stored at all (one
    query for a whole batch); see daemon.mail.digest.is_redelivery."""
    ids = sorted(set(message_ids))
    found: dict[str, set[str]] = {}
    if not ids:
        return found
    for message_id, digest in session.execute(select(Message.message_id, Message.digest).where(
            Message.direction == direction, Message.message_id.in_(ids))):
        found.setdefault(message_id, set()).add(digest)
    return found


def stored_copies(session: Session, direction: str,
                  message_id: str) -> list[tuple[str, str | None]]:
    """(digest, ticket ref or None) of each mail stored under `message_id`, oldest first."""
    return [(digest, ref) for digest, ref in session.execute(
        select(Message.digest, Ticket.ref).outerjoin(Ticket, Message.ticket_id == Ticket.id)
        .where(Message.direction == direction, Message.message_id == message_id)
        .order_by(Message.id))]


def add_message(
    session: Session,
    *,
    direction: str,
    message_id: str,
    at: datetime,
    digest: str = "",
    raw: bytes | None = None,
    ticket: Ticket | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    sender: str | None = None,
    recipients: str | None = None,
    subject: str | None = None,
    kind: str | None = None,
    reason: str | None = None,
) -> Message | None:
    """Store a mail, or return None if (direction, message_id, digest) is already stored.

    INSERT .. ON CONFLICT DO NOTHING: a duplicate from a racing daemon is skipped
    without aborting the caller's transaction.
    """
    values = {
        "direction": direction, "message_id": message_id, "digest": digest, "raw": raw,
        "ticket_id": ticket.id if ticket is not None else None,
        "in_reply_to": in_reply_to, "references": references, "sender": sender,
        "recipients": recipients, "subject": subject, "kind": kind, "reason": reason,
        "received_at": at if direction == "in" else None,
        "sent_at": at if direction == "out" else None,
    }
    stmt = (
        dialect_insert(session, Message)
        .values(values)
        .on_conflict_do_nothing(index_elements=["direction", "message_id", "digest"])
        .returning(Message)
    )
    return session.scalars(stmt).one_or_none()


def new_message(session: Session, *, direction: str, message_id: str, at: datetime,
                **fields: Any) -> None:
    """Like add_message, but written at the end of the caller's deferred batch
    (store/deferred.py), whose write then fails as a whole on a duplicate (and the batch
    is redone mail by mail with add_message)."""
    buffer = deferred_rows(session)
    if buffer is None:
        raise RuntimeError("new_message needs a deferred batch; use add_message")
    ticket = fields.pop("ticket", None)
    if unknown := fields.keys() - set(_MESSAGE_FIELDS):  # one executemany: same keys each row
        raise TypeError(f"not a message column: {', '.join(sorted(unknown))}")
    row = dict.fromkeys(_MESSAGE_FIELDS)
    row.update(fields, direction=direction, message_id=message_id,
               ticket_id=ticket.id if ticket is not None else None,
               received_at=at if direction == "in" else None,
               sent_at=at if direction == "out" else None)
    buffer.messages.append(row)


_MESSAGE_FIELDS = ("direction", "message_id", "digest", "ticket_id", "in_reply_to",
                   "references", "sender", "recipients", "subject", "received_at", "sent_at",
                   "raw", "kind", "reason")


def refs_for_message_ids(session: Session, message_ids: Iterable[str]) -> dict[str, str]:
    """Which ticket each known Message-ID (stored or sent by us) belongs to, for threading."""
    ids = sorted({mid for mid in message_ids if mid})
    if not ids:
        return {}
    stored = (
        select(Message.message_id, Ticket.ref)
        .join(Ticket, Message.ticket_id == Ticket.id)
        .where(Message.message_id.in_(ids))
    )
    sent = (
        select(Outbox.message_id, Ticket.ref)
        .join(Ticket, Outbox.ticket_id == Ticket.id)
        .where(Outbox.message_id.in_(ids))
    )
    found: dict[str, str] = {}
    for query in (stored, sent):
        for message_id, ref in session.execute(query):
            found.setdefault(message_id, ref)
    return found


def dialect_insert(session: Session, model: type[Any]) -> Any:
    """INSERT with the dialect's ON CONFLICT support (both backends spell it the same)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql  # 2 MB a SQLite site need not load

        return postgresql.insert(model)
    return sqlite.insert(model)
