"""Loop protection (issue 4): no automatic mail to our own address or its plus-variants; and,
for addresses outside the directory (requesters, vendors), none to an address that sent us
automatic mail in the past AUTO_SENDER_WINDOW (table auto_senders, filled by ingest through
`record_auto_sender`), nor beyond `mail.max_auto_replies_per_hour` in the past hour.
Directory addresses (teams, members, escalation manager) are exempt from the last two: a
storm of handoffs to a tier must not be throttled, and they are ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from daemon.config.settings import MailSettings
from daemon.outbound.recipients import Recipient
from daemon.outbound.render import when
from daemon.store.models import AutoSender, Outbox

AUTO_SENDER_WINDOW = timedelta(days=1)  # a person's vacation reply must not silence them forever
RATE_WINDOW = timedelta(hours=1)
# Rows that count towards the hourly limit: everything on its way or gone (a bounce went).
COUNTED = ("pending", "sending", "sent", "bounced")


class OurAddress(Protocol):
    """What loop protection needs of the MailWriter (outbound/writer.py, which imports this
    module): our own address and the hourly limit."""

    @property
    def mail(self) -> MailSettings: ...

    def is_own(self, address: str) -> bool: ...


# ------------------------------------------------------------------ loop protection

@dataclass
class LoopGuard:
    """Loop protection for one batch: what the database knew at its start, plus the mails
    the batch itself has let through."""

    writer: OurAddress
    now: datetime
    auto: dict[str, AutoSender]
    sent: dict[str, int]

    @classmethod
    def load(cls, session: Session, recipients: Sequence[Recipient], writer: OurAddress,
             now: datetime) -> LoopGuard:
        outside = sorted({r.address for r in recipients if r.external})
        if not outside:
            return cls(writer, now, {}, {})
        keys = sorted({address.lower() for address in outside})
        auto = {a.address: a for a in session.scalars(
            select(AutoSender).where(AutoSender.address.in_(keys)))}
        return cls(writer, now, auto, recent_mails(session, outside, now))

    def check(self, recipient: Recipient) -> str | None:
        """Why no automatic mail may go to this recipient now, or None."""
        if self.writer.is_own(recipient.address):
            return f"{recipient.address} is our own address: a mail to it would loop"
        if not recipient.external:
            return None
        auto = self.auto.get(recipient.key)
        if auto is not None and auto.last_seen > self.now - AUTO_SENDER_WINDOW:
            return (f"{recipient.address} sent automatic mail at {when(auto.last_seen)} "
                    f"({auto.reason or 'auto-reply'}); no automatic mail to it for "
                    f"{int(AUTO_SENDER_WINDOW.total_seconds() // 3600)}h")
        limit = self.writer.mail.max_auto_replies_per_hour
        count = self.sent.get(recipient.address, 0)
        if count >= limit:
            return (f"{recipient.address} already got {count} automatic mails in the past "
                    f"hour (mail.max_auto_replies_per_hour is {limit})")
        return None

    def count(self, recipient: Recipient) -> None:
        self.sent[recipient.address] = self.sent.get(recipient.address, 0) + 1


def recent_mails(session: Session, addresses: Sequence[str], now: datetime) -> dict[str, int]:
    """Automatic mails to each address created in the past hour, one grouped query over
    ix_outbox_recipients_created_at. The status is checked here, not in SQL: given
    `status IN (...)`, SQLite walked every pending row by the status index instead."""
    stmt = (select(Outbox.recipients, Outbox.status, func.count())
            .where(Outbox.recipients.in_(addresses), Outbox.created_at > now - RATE_WINDOW)
            .group_by(Outbox.recipients, Outbox.status))
    counts: dict[str, int] = {}
    for address, status, count in session.execute(stmt):
        if status in COUNTED:
            counts[str(address)] = counts.get(str(address), 0) + int(count)
    return counts


def record_auto_sender(session: Session, address: str, now: datetime, reason: str) -> None:
    """Ingest calls this for every automatic mail it sees (auto-reply, bounce, list)."""
    key = address.strip().lower()
    # An unflushed row from earlier in the same batch first: session.get does not see it,
    # and a second insert would fail the whole batch on the unique address.
    row = next((o for o in session.new if isinstance(o, AutoSender) and o.address == key),
               None) or session.get(AutoSender, key, with_for_update=True)
    if row is None:
        session.add(AutoSender(address=key, first_seen=now, last_seen=now, count=1,
                               reason=reason))
        return
    row.last_seen = max(row.last_seen, now)
    row.count += 1
    row.reason = reason
