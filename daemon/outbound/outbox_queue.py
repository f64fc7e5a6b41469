"""The outbox as a queue: the state changes of its rows. Skipping and parking a row that
cannot go out (outbound/writer.py), the sender's side (claim, record, fold_sent, next_due,
unrendered) and the `outbox` and `outbox retry` commands' store helpers (rows_with_status,
requeue). A skipped, parked or requeued row is noted in its ticket's timeline.

The SQL lives here rather than in store/repository.py because this module owns the outbox's
lifecycle; the queries are small and each says which index it walks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, bindparam, func, or_, select, tuple_, update
from sqlalchemy.orm import Session

from daemon.outbound.attachments import MissingAttachment, complete
from daemon.store import repository
from daemon.store.deferred import OutboxRow
from daemon.store.journal import SentNote
from daemon.store.liveness import is_gone, this_process
from daemon.store.models import Outbox, Ticket
from daemon.workflow.facts import EventRecord

# Mail bytes one claim may load: a backlog of handoffs with attachments must not fill memory.
CLAIM_BYTES = 32 * 1024 * 1024
ACTOR = "outbox"


# ------------------------------------------------------------------ skipping and parking

def skip(session: Session, row: OutboxRow, ticket: Ticket | None, reason: str,
         now: datetime) -> None:
    row.status, row.last_error = "skipped", reason
    _note(session, ticket, row, "mail_skipped", reason, now)


def park(session: Session, row: OutboxRow, ticket: Ticket | None, reason: str,
         now: datetime) -> None:
    row.status, row.last_error = "parked", reason
    _note(session, ticket, row, "mail_parked", reason, now)


def _note(session: Session, ticket: Ticket | None, row: OutboxRow, kind: str, reason: str,
          now: datetime) -> None:
    if ticket is None:
        return
    record = EventRecord(kind, ACTOR, ticket.state, ticket.state, reason,
                         {"template": row.template, "to": row.to_role,
                          "message_id": row.message_id})
    repository.add_events(session, ticket, [record], now)


# ------------------------------------------------------------------ the sender's side

@dataclass(frozen=True)
class Claimed:
    """A rendered row taken for sending; only what SMTP needs."""

    id: int
    message_id: str
    recipients: tuple[str, ...]
    body: bytes
    attempts: int
    # Why the mail cannot be put together (a file it refers to is gone): the sender parks it.
    problem: str | None = None


def claim(session: Session, now: datetime, limit: int, lease_until: datetime,
          max_bytes: int = CLAIM_BYTES, gone: Sequence[str] | None = None) -> list[Claimed]:
    """Take up to `limit` due rows, and no more than `max_bytes` of mail (at least one row):
    `sending` ones whose sender died (its lease ran out, or it is a process of this machine
    that no longer exists: `gone`, looked up here unless given) first, then pending ones.
    They become `sending` until `lease_until`, claimed by this process; on PostgreSQL rows
    another sender holds are skipped, so no row is sent by two senders."""
    if gone is None:
        gone = gone_claimers(session, now)
    due = _due(session, "sending", now, limit, also=gone)
    due += _due(session, "pending", now, limit - len(due))
    taken = _within(due, max_bytes)
    if not taken:
        return []
    ids = [row.id for row in taken]
    stored = {i: (body, files) for i, body, files in session.execute(
        select(Outbox.id, Outbox.body, Outbox.attachments).where(Outbox.id.in_(ids)))}
    session.execute(update(Outbox).where(Outbox.id.in_(ids))
                    .values(status="sending", next_attempt_at=lease_until,
                            claimed_by=this_process())
                    .execution_options(synchronize_session=False))
    return [_claimed(session, r, *stored[r.id]) for r in taken]


def _claimed(session: Session, due: _Due, body: bytes | None,
             files: list[dict[str, object]] | None) -> Claimed:
    """The mail as it goes out: its files read back from the stored mail they came with."""
    problem = None
    if files:
        try:
            body = complete(session, body or b"", files)
        except (MissingAttachment, ValueError) as exc:
            problem = f"cannot attach its files: {exc}"
    return Claimed(due.id, due.message_id, due.recipients, body or b"", due.attempts, problem)


@dataclass(frozen=True)
class _Due:
    id: int
    message_id: str
    recipients: tuple[str, ...]
    attempts: int
    size: int


def gone_claimers(session: Session, now: datetime) -> list[str]:
    """Holders of unexpired claims that are provably dead processes (daemon/store/liveness.py)."""
    held = session.scalars(select(Outbox.claimed_by).distinct().where(
        Outbox.status == "sending", Outbox.next_attempt_at > now))
    return [claimer for claimer in held if is_gone(claimer)]


def _due(session: Session, status: str, now: datetime, limit: int,
         also: Sequence[str] = ()) -> list[_Due]:
    """Rows of `status` due at `now`, and `also` those claimed by these claimers."""
    # One status at a time: ix_outbox_status_next_attempt_at then yields rows in order and
    # the LIMIT stops the walk. (status IN (...) made SQLite sort every due row, bodies and
    # all, on each claim: quadratic in the backlog.)
    if limit <= 0:
        return []
    due = Outbox.next_attempt_at <= now
    if also:
        due = or_(due, Outbox.claimed_by.in_(also))
    # A mail's size: its shell plus the files it refers to (outbound/attachments.py).
    stmt = (select(Outbox.id, Outbox.message_id, Outbox.recipients, Outbox.attempts,
                   func.length(Outbox.body) + Outbox.attachment_bytes)
            .where(Outbox.status == status, due, Outbox.body.is_not(None))
            .order_by(Outbox.next_attempt_at, Outbox.id).limit(limit)
            .with_for_update(skip_locked=True))
    return [_Due(i, mid, tuple(_split(rcpts)), attempts, int(size or 0))
            for i, mid, rcpts, attempts, size in session.execute(stmt)]


def _within(due: Sequence[_Due], max_bytes: int) -> list[_Due]:
    """The leading rows that fit in `max_bytes` (always the first: one big mail still goes)."""
    taken: list[_Due] = []
    used = 0
    for row in due:
        if taken and used + row.size > max_bytes:
            break
        taken.append(row)
        used += row.size
    return taken


def _split(recipients: str | None) -> list[str]:
    return [part.strip() for part in (recipients or "").split(",") if part.strip()]


def unrendered(session: Session, now: datetime, limit: int) -> list[Outbox]:
    """Due rows nobody rendered (a caller without the mail hook, or a requeued failure)."""
    stmt = (select(Outbox).where(Outbox.status == "pending", Outbox.body.is_(None),
                                 Outbox.next_attempt_at <= now)
            .order_by(Outbox.id).limit(limit).with_for_update(skip_locked=True))
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class Outcome:
    """What happened to one claimed row. status: sent, pending (retry) or parked."""

    id: int
    status: str
    attempts: int
    note: str | None = None
    next_attempt_at: datetime | None = None


def record(session: Session, outcomes: Sequence[Outcome], now: datetime) -> None:
    """Write the outcomes of a batch. Only rows still `sending` are touched: a row another
    sender re-took after a lapsed lease is left to that sender."""
    table = Outbox.__table__
    assert isinstance(table, Table)
    plain = [o.id for o in outcomes if o.status == "sent" and o.note is None]
    if plain:
        # The common case as one statement: each executemany row is a round through the GIL
        # for the database thread, which the event loop sending the mail then waits for.
        session.connection().execute(
            update(table).where(table.c.id.in_(plain), table.c.status == "sending")
            .values(status="sent", sent_at=now, attempts=table.c.attempts + 1, last_error=None))
    done = set(plain)
    _record_each(session, table, [o for o in outcomes if o.id not in done], now)
    _note_parked(session, [o for o in outcomes if o.status == "parked"], now)


def fold_sent(session: Session, notes: Sequence[SentNote]) -> None:
    """Mark sent the rows the sent journal (daemon/store/journal.py) says the server took.
    Only rows still `sending` with the noted Message-ID: folding twice changes nothing, and a
    note about some other database's row matches none. One statement for the notes without
    a remark, like `record` (their sent_at is the latest among them: when the last of them
    was accepted); the few partly refused mails row by row."""
    table = Outbox.__table__
    assert isinstance(table, Table)
    plain = [n for n in notes if n.note is None]
    if plain:
        session.connection().execute(
            update(table).where(
                tuple_(table.c.id, table.c.message_id).in_(
                    [(n.outbox_id, n.message_id) for n in plain]),
                table.c.status == "sending")
            .values(status="sent", sent_at=max(n.sent_at for n in plain),
                    attempts=table.c.attempts + 1, last_error=None))
    remarked = [n for n in notes if n.note is not None]
    if remarked:
        noted = ((table.c.id == bindparam("b_id")) & (table.c.message_id == bindparam("b_mid"))
                 & (table.c.status == "sending"))
        session.connection().execute(
            update(table).where(noted).values(
                status="sent", attempts=bindparam("b_attempts"), last_error=bindparam("b_note"),
                sent_at=bindparam("b_sent")),
            [{"b_id": n.outbox_id, "b_mid": n.message_id, "b_attempts": n.attempts,
              "b_note": n.note, "b_sent": n.sent_at} for n in remarked])


def _record_each(session: Session, table: Table, outcomes: Sequence[Outcome],
                 now: datetime) -> None:
    """Retries, parks and partly refused mails: each row its own values."""
    if not outcomes:
        return
    mine = (table.c.id == bindparam("b_id")) & (table.c.status == "sending")
    session.connection().execute(
        update(table).where(mine).values(
            status=bindparam("b_status"), attempts=bindparam("b_attempts"),
            last_error=bindparam("b_note"), next_attempt_at=bindparam("b_next"),
            sent_at=bindparam("b_sent")),
        [{"b_id": o.id, "b_status": o.status, "b_attempts": o.attempts, "b_note": o.note,
          "b_next": o.next_attempt_at or now, "b_sent": now if o.status == "sent" else None}
         for o in outcomes])


def _note_parked(session: Session, parked: Sequence[Outcome], now: datetime) -> None:
    if not parked:
        return
    rows = session.scalars(select(Outbox).where(Outbox.id.in_([o.id for o in parked])))
    for row in rows:
        ticket = session.get(Ticket, row.ticket_id) if row.ticket_id is not None else None
        _note(session, ticket, row, "mail_parked", row.last_error or "", now)


def next_due(session: Session) -> datetime | None:
    """When the earliest pending or leased row comes due (the daemon's sleep)."""
    stmt = select(func.min(Outbox.next_attempt_at)).where(
        Outbox.status.in_(("pending", "sending")))
    return session.scalar(stmt)


# ------------------------------------------------------------------ `outbox` and `outbox retry`

def rows_with_status(session: Session, statuses: Sequence[str], *, limit: int,
                     newest_first: bool = False, since: datetime | None = None) -> list[Outbox]:
    stmt = select(Outbox).where(Outbox.status.in_(statuses))
    if since is not None:
        stmt = stmt.where(Outbox.sent_at >= since)
    order = (Outbox.sent_at.desc(), Outbox.id.desc()) if newest_first else (Outbox.id,)
    return list(session.scalars(stmt.order_by(*order).limit(limit)))


class NotParked(LookupError):
    """`outbox retry` named a row that does not exist or is not parked."""


def requeue(session: Session, row_id: int, now: datetime) -> Outbox:
    """A parked row back to pending, due now, with a fresh set of attempts."""
    row = session.get(Outbox, row_id, with_for_update=True)
    if row is None:
        raise NotParked(f"no outbox row {row_id}")
    if row.status != "parked":
        raise NotParked(f"outbox row {row_id} is {row.status}, not parked; only parked "
                        "mail can be retried")
    row.status, row.attempts, row.next_attempt_at = "pending", 0, now
    ticket = session.get(Ticket, row.ticket_id) if row.ticket_id is not None else None
    _note(session, ticket, row, "mail_requeued", f"requeued by hand after: {row.last_error}", now)
    return row
