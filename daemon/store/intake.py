"""What the ingest loop keeps of its mailbox: the folder's cursor (UIDVALIDITY and the last
UID read) and the quarantine of mails it set aside.

Callers own the transaction, as in daemon/store/repository.py; nothing here commits.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.store.messages import dialect_insert
from daemon.store.models import MailboxCursor, Quarantine

# ---------------------------------------------------------------- mailbox cursor

def get_cursor(session: Session, folder: str) -> MailboxCursor | None:
    return session.get(MailboxCursor, folder)


def set_cursor(session: Session, folder: str, uidvalidity: int, last_uid: int) -> MailboxCursor:
    """Insert or update the folder's cursor (an upsert: two daemons may race on a new folder)."""
    values = {"folder": folder, "uidvalidity": uidvalidity, "last_uid": last_uid}
    stmt = (
        dialect_insert(session, MailboxCursor)
        .values(values)
        .on_conflict_do_update(
            index_elements=["folder"], set_={"uidvalidity": uidvalidity, "last_uid": last_uid}
        )
    )
    session.execute(stmt)
    # Reload: the upsert bypassed any copy of the row already held by the session.
    cursor = session.get(MailboxCursor, folder, populate_existing=True)
    if cursor is None:  # pragma: no cover - the upsert just wrote it
        raise LookupError(f"cursor for {folder!r} vanished")
    return cursor


# ---------------------------------------------------------------- quarantine

def add_quarantine(
    session: Session,
    *,
    raw: bytes,
    reason: str,
    now: datetime,
    subject: str | None = None,
    sender: str | None = None,
    message_id: str | None = None,
    folder: str | None = None,
    uid: int | None = None,
) -> Quarantine:
    """Set a mail aside with the reason it failed; the raw bytes allow a later retry."""
    row = Quarantine(
        received_at=now, reason=reason, subject=subject, sender=sender,
        message_id=message_id, raw=raw, folder=folder, uid=uid,
    )
    session.add(row)
    session.flush()
    return row


def list_quarantine(session: Session, *, include_retried: bool = False) -> list[Quarantine]:
    stmt = select(Quarantine).order_by(Quarantine.id)
    if not include_retried:
        stmt = stmt.where(Quarantine.retried_at.is_(None))
    return list(session.scalars(stmt))
