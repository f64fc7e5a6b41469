"""Several daemons, one mailbox: each ingests a range of UIDs it claimed, not every mail.

The cursor (mailbox_cursors) says "every UID up to last_uid is done". Above it lie the
claims (mailbox_claims), ranges that follow one another without a gap: a daemon takes the
next range (from the top claim + 1 up to the last of the next `limit` UIDs it found), ingests
its mails, and in the transaction of its last batch marks the range done; the cursor then
moves past every done range that nothing undone lies below. So two daemons fetch, parse and
process different mail at the same time, and each mail is still processed once:

- a daemon that dies leaves its range undone: another takes it over at once when the dead
  one was a process of this machine (daemon/store/liveness.py), else when its lease runs out, and
  replays it (every mail deduplicates, so what was committed has no second effect);
- taking a range locks the cursor row for a moment (one short transaction per batch), so two
  daemons never take the same range; on SQLite, BEGIN IMMEDIATE does that.

A range's lease is renewed by nothing: it is longer than any batch takes. A daemon slower
than that may find its range taken over and replayed, which costs time, never a mail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from daemon.store.intake import set_cursor
from daemon.store.liveness import is_gone, this_process
from daemon.store.models import MailboxClaim, MailboxCursor

LEASE = timedelta(minutes=2)
# The ranges this process's drains are working on now. A range claimed by this process but
# not in here was left by a drain that failed (the IMAP server went away mid-range): the next
# drain takes it over at once rather than after its lease.
_working: set[tuple[str, int]] = set()


@dataclass(frozen=True)
class Claim:
    """A range taken for ingest; `uids` are those known in it when taken (empty for a range
    taken over from a dead daemon: its mails must be looked up again)."""

    folder: str
    low: int
    high: int
    uids: tuple[int, ...]


def frontier(session: Session, folder: str) -> int:
    """The highest UID that is done or claimed: new mail lies above it. Read without locks:
    `take` checks again under the lock."""
    cursor = session.get(MailboxCursor, folder)
    top = session.scalar(select(func.max(MailboxClaim.high_uid))
                         .where(MailboxClaim.folder == folder))
    return max(cursor.last_uid if cursor else 0, top or 0)


def take(session: Session, folder: str, uidvalidity: int, found: Sequence[int], limit: int,
         now: datetime, lease: timedelta = LEASE) -> Claim | None:
    """The range to ingest next: first a dead daemon's unfinished range, else a new one over
    the first `limit` of `found` (ascending UIDs the caller searched) above every claim.
    None when there is neither (`found` was taken meanwhile, or nothing is new)."""
    cursor = _locked_cursor(session, folder, uidvalidity)
    if cursor.uidvalidity != uidvalidity:
        return None  # renumbered since this drain selected the folder: the next one resets
    claims = []
    for claim in session.scalars(select(MailboxClaim).where(MailboxClaim.folder == folder)
                                 .order_by(MailboxClaim.low_uid)):
        if claim.uidvalidity == uidvalidity:
            claims.append(claim)
        else:  # a range of the folder's old numbering names no mail any more
            session.delete(claim)
    me = this_process()
    for claim in claims:
        if not claim.done and _abandoned(claim, me, now):
            claim.claimed_by, claim.lease_until = me, now + lease
            return _working_on(Claim(folder, claim.low_uid, claim.high_uid, ()))
    top = max([cursor.last_uid, *(claim.high_uid for claim in claims)])
    fresh = tuple(uid for uid in found if uid > top)[:limit]
    if not fresh:
        return None
    session.add(MailboxClaim(folder=folder, low_uid=top + 1, high_uid=fresh[-1],
                             uidvalidity=uidvalidity, claimed_by=me, lease_until=now + lease,
                             done=False))
    return _working_on(Claim(folder, top + 1, fresh[-1], fresh))


Below = Literal["clear", "busy", "abandoned"]


def below(session: Session, claim: Claim, now: datetime) -> Below:
    """What lies below this range: all done ("clear"), a range another live daemon is still
    ingesting ("busy"), or a range nobody works on any more ("abandoned": its daemon died,
    or its lease ran out). A reply in this range may answer a mail of such a range, not
    stored yet: ingest holds such replies back (daemon/inbound/ingest_loop.py)."""
    rows = session.execute(select(MailboxClaim).where(
        MailboxClaim.folder == claim.folder, MailboxClaim.low_uid < claim.low,
        MailboxClaim.done.is_(False))).scalars().all()
    me = this_process()
    if any(_abandoned(row, me, now) for row in rows):
        return "abandoned"
    return "busy" if rows else "clear"


def give_back(session: Session, claim: Claim, now: datetime) -> None:
    """Leave the range undone, for anyone to take again at once (ranges below first): its
    held replies wait for an abandoned range below, which this daemon takes over next."""
    row = session.get(MailboxClaim, (claim.folder, claim.low))
    if row is not None and row.claimed_by == this_process() and not row.done:
        row.lease_until = now


def let_go(claim: Claim) -> None:
    """The drain is done with the range, finished or failed (then `take` gives it again)."""
    _working.discard((claim.folder, claim.low))


def _abandoned(claim: MailboxClaim, me: str, now: datetime) -> bool:
    if claim.claimed_by == me:
        return (claim.folder, claim.low_uid) not in _working
    return claim.lease_until <= now or is_gone(claim.claimed_by)


def _working_on(claim: Claim) -> Claim:
    # Marked before the commit: a failed commit leaves a range nobody holds, retaken later.
    _working.add((claim.folder, claim.low))
    return claim


def finish(session: Session, claim: Claim) -> int:
    """Mark the range done, in the transaction that commits its last mails, and move the
    cursor past every done range with nothing undone below it; returns the cursor."""
    cursor = _locked_cursor(session, claim.folder, None)
    row = session.get(MailboxClaim, (claim.folder, claim.low))
    if row is not None:  # else it was finished by a daemon that took it over
        row.done = True
    last = cursor.last_uid
    for done in session.scalars(select(MailboxClaim).where(MailboxClaim.folder == claim.folder)
                                .order_by(MailboxClaim.low_uid)):
        if not done.done:
            break
        last = max(last, done.high_uid)
        session.delete(done)
    cursor.last_uid = last
    return last


def reset(session: Session, folder: str, uidvalidity: int) -> None:
    """The folder was renumbered: start again from UID 0, with no claims."""
    session.execute(delete(MailboxClaim).where(MailboxClaim.folder == folder))
    set_cursor(session, folder, uidvalidity, 0)


def _locked_cursor(session: Session, folder: str, uidvalidity: int | None) -> MailboxCursor:
    """The folder's cursor, locked for this transaction (created at UID 0 if missing)."""
    stmt = select(MailboxCursor).where(MailboxCursor.folder == folder).with_for_update()
    cursor = session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()
    if cursor is None:
        if uidvalidity is None:
            raise LookupError(f"no cursor for folder {folder!r}")
        set_cursor(session, folder, uidvalidity, 0)  # an upsert: two daemons may race here
        cursor = session.scalars(stmt.execution_options(populate_existing=True)).one()
    return cursor
