"""Threading: the In-Reply-To and References headers that keep a ticket's mails together
in the recipient's client.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from daemon.mail.mime import safe_message_ids
from daemon.outbound.recipients import REQUESTER_ROLES, Recipient
from daemon.store.models import Message, Ticket


class ThreadRoot(Protocol):
    """What threading needs of the MailWriter (outbound/writer.py, which imports this module)."""

    def thread_root(self, ref: str) -> str: ...


# ------------------------------------------------------------------ threading

@dataclass(frozen=True)
class Threads:
    """The first and the latest mail each ticket got from outside, for threading."""

    inbound: dict[int, tuple[str, str]]

    @classmethod
    def load(cls, session: Session, tickets: Iterable[Ticket | None]) -> Threads:
        ids = sorted({t.id for t in tickets if t is not None})
        if not ids:
            return cls({})
        # Two indexed queries for the whole batch (ix_messages_ticket_id, then primary keys).
        # The direction is picked here, not in SQL: given `direction = 'in'`, SQLite walked
        # every inbound mail by the unique (direction, message_id) index instead.
        ends = [(tid, first, last) for tid, direction, first, last in session.execute(
            select(Message.ticket_id, Message.direction, func.min(Message.id),
                   func.max(Message.id))
            .where(Message.ticket_id.in_(ids))
            .group_by(Message.ticket_id, Message.direction)) if direction == "in"]
        wanted = {i for _, first, last in ends for i in (first, last)}
        found = {i: mid for i, mid in session.execute(
            select(Message.id, Message.message_id).where(Message.id.in_(wanted)))}
        return cls({tid: (found[first], found[last]) for tid, first, last in ends
                    if tid is not None})

    def headers(self, ticket: Ticket | None, recipient: Recipient,
                writer: ThreadRoot) -> tuple[str | None, tuple[str, ...]]:
        """In-Reply-To and References: every mail of a ticket references its thread root; a
        mail to the requester also answers their latest mail and references their first."""
        if ticket is None:
            return None, ()
        root = writer.thread_root(ticket.ref)
        first, last = self.inbound.get(ticket.id, (None, None))
        if recipient.role not in REQUESTER_ROLES or first is None:
            return root, (root,)
        references = safe_message_ids([root, first, last])
        return references[-1], references
