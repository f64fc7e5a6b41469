"""At most one refusal notice per address per window (issue 16): no mail bomb by proxy.

Anyone can send fifty mails in a technician's name; each is refused and recorded on its
ticket, but the technician must not get fifty notices. For each address, in time order:

- no notice in the past window: this one goes now;
- one went (or goes) within the window: this one waits until a window after it;
- one is already waiting: this one replaces it (the waiting row is skipped, "merged into"
  the new one) and goes at the same time, counting every mail it stands for.

So an address gets a notice at once, then at most one per window that says how many mails
were refused meanwhile and on which tickets. The count lives in the row's context
(`refused_count`, `refused_refs`, `refused_since`), where a later row reads it back.

Rows of the same transaction (a batch of fifty forgeries) are remembered in the session;
earlier ones are found with one query per address over ix_outbox_recipients_created_at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.store.deferred import OutboxRow
from daemon.store.models import Outbox

# Templates limited this way: notices caused by mail someone else may have written.
LIMITED = frozenset({"command_refused"})
_KEY = "tierdesk.notices"


@dataclass(frozen=True)
class Admission:
    """What happens to a new notice row: when it goes, what it counts, and the waiting row
    it replaces (to be skipped with `merged` as the reason)."""

    due: datetime
    context: dict[str, Any]
    replaces: OutboxRow | None = None
    merged: str = ""


def admit(session: Session, row: OutboxRow, address: str, ref: str, window: timedelta,
          now: datetime) -> Admission:
    """Decide for `row`, a notice to `address` about ticket `ref`, and remember it as the
    address's latest notice for the rest of the transaction."""
    key = address.strip().lower()
    latest = _latest(session, key, address, window, now)
    admission = _decide(latest, ref, window, now)
    session.info.setdefault(_KEY, {})[key] = row
    return admission


def _decide(latest: OutboxRow | None, ref: str, window: timedelta,
            now: datetime) -> Admission:
    fresh = {"refused_count": 1, "refused_refs": [ref] if ref else [],
             "refused_since": now.isoformat()}
    if latest is None:
        return Admission(now, fresh)
    due = _due(latest)
    if latest.status == "pending" and due > now:  # waiting: take its place and its count
        old = latest.context
        refs = list(dict.fromkeys([*old.get("refused_refs", []), *fresh["refused_refs"]]))
        counted = {"refused_count": int(old.get("refused_count", 1)) + 1,
                   "refused_refs": refs,
                   "refused_since": old.get("refused_since", fresh["refused_since"])}
        return Admission(due, counted, latest, "merged into a later refusal notice that "
                                               "counts this mail too (one per "
                                               f"{_minutes(window)} to an address)")
    if due > now - window:  # one went within the window: wait until a window after it
        return Admission(due + window, fresh)
    return Admission(now, fresh)


def _due(row: OutboxRow) -> datetime:
    """When the row went or will go."""
    if row.status == "pending":
        return row.next_attempt_at
    return row.sent_at or row.created_at


def _latest(session: Session, key: str, address: str, window: timedelta,
            now: datetime) -> OutboxRow | None:
    held = session.info.get(_KEY, {}).get(key)
    if held is not None and held.status != "skipped":
        return held
    # A waiting row was created at most a window before it is due, and due at most a window
    # ahead; anything older than two windows has no bearing on now.
    stmt = (select(Outbox)
            .where(Outbox.recipients == address, Outbox.created_at > now - 2 * window,
                   Outbox.template.in_(sorted(LIMITED)),
                   Outbox.status.in_(("pending", "sending", "sent", "bounced")))
            .order_by(Outbox.id.desc()).limit(1))
    return session.scalars(stmt).first()


def _minutes(window: timedelta) -> str:
    minutes = int(window.total_seconds() // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}" if minutes else str(window)
