"""Loop protection for new tickets: an outside address opens at most
mail.max_new_tickets_per_hour tickets in a rolling hour. A further new conversation from it
is recorded on its latest ticket, with no ticket and no mail of its own: an autoresponder
that starts a conversation for every mail it gets (and so looks like a person) gets nothing
more to answer, and the loop stops.

Counted from the store: the address's tickets created in the past hour
(ix_tickets_requester_created_at), from its last release if that is later (`tierdesk release
ADDRESS`). Ingest decides who is exempt (our own addresses, directory members).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from daemon.inbound.held_senders import HeldSender, release_command
from daemon.store.models import Event, Ticket, TicketLimitRelease
from daemon.workflow.facts import EventRecord

WINDOW = timedelta(hours=1)
HELD = "new_ticket_limit"  # the timeline event of a mail recorded instead of a new ticket
ACTOR = "ingest"


@dataclass(frozen=True)
class Hold:
    """Why a new conversation opens no ticket, and where it is recorded instead."""

    address: str
    ordinal: int  # its place among the address's new conversations in the window
    limit: int
    ticket: Ticket  # the address's latest ticket

    @property
    def reason(self) -> str:
        return (f"{ordinal(self.ordinal)} new conversation from {self.address} within an hour "
                f"(mail.max_new_tickets_per_hour is {self.limit}): recorded here, no new "
                "ticket, no acknowledgement")

    @property
    def release(self) -> str:
        return release_command(self.address)

    def event(self, message_id: str) -> EventRecord:
        state = self.ticket.state
        return EventRecord(HELD, ACTOR, state, state, self.reason, {
            "message_id": message_id, "from": self.address, "conversation": self.ordinal,
            "limit": self.limit, "release": self.release})


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 21st."""
    suffix = "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# ------------------------------------------------------------------ one pass over a batch

@dataclass
class _Sender:
    """One address's past hour as a pass sees it."""

    since: datetime  # the window's start, or the address's release if later
    tickets: int
    latest_id: int | None
    latest: Ticket | None = None  # loaded on its first hold, or opened by the pass
    held: int | None = None  # held since `since`; looked up on its first hold


@dataclass
class NewTickets:
    """The new tickets of each address for one pass over a batch. The fast pass writes
    nothing until its end, so it keeps count itself (remember=True): the store's numbers,
    looked up once per address, plus what the pass opened and held. The careful pass writes
    each mail at once and asks the store every time."""

    session: Session
    now: datetime
    limit: int
    counted: Callable[[str], bool]  # False for the exempt: our own addresses, members
    remember: bool = True
    senders: dict[str, _Sender] = field(default_factory=dict)

    def preload(self, addresses: Iterable[str]) -> None:
        """The addresses of a batch, in one query rather than one per mail."""
        wanted = {a for a in addresses if a not in self.senders and self.counted(a)}
        self.senders.update(recent(self.session, wanted, self.now))

    def check(self, address: str) -> Hold | None:
        """A Hold when a new conversation from `address` may not open a ticket now."""
        if not self.counted(address):
            return None
        sender = self._sender(address)
        if sender.tickets < self.limit:
            return None
        if sender.latest is None:  # counted a moment ago, so it is there
            sender.latest = self.session.get_one(Ticket, sender.latest_id)
        if sender.held is None:
            sender.held = held_mails(self.session, address, sender.since)
        return Hold(address, sender.tickets + sender.held + 1, self.limit, sender.latest)

    def opened(self, ticket: Ticket) -> None:
        if self.remember and self.counted(ticket.requester):
            sender = self._sender(ticket.requester)
            sender.tickets, sender.latest = sender.tickets + 1, ticket

    def recorded(self, hold: Hold) -> None:
        if self.remember:
            sender = self._sender(hold.address)
            sender.held = (sender.held or 0) + 1

    def _sender(self, address: str) -> _Sender:
        if not self.remember or address not in self.senders:
            self.senders[address] = recent(self.session, [address], self.now)[address]
        return self.senders[address]


# ------------------------------------------------------------------ the store

def recent(session: Session, addresses: Iterable[str], now: datetime) -> dict[str, _Sender]:
    """Each address's tickets of the past hour (since its release, if later), in two
    queries. Addresses are matched as written, the way tickets store their requester."""
    wanted = sorted(set(addresses))
    start = now - WINDOW
    released = releases(session, wanted)
    found = {a: _Sender(max(start, released.get(a.lower(), start)), 0, None) for a in wanted}
    if not wanted:
        return found
    rows = session.execute(
        select(Ticket.requester, Ticket.created_at, Ticket.id)
        .where(Ticket.requester.in_(wanted), Ticket.created_at > start)
        .order_by(Ticket.created_at, Ticket.id))
    for requester, created_at, ticket_id in rows:
        sender = found[requester]
        if created_at > sender.since:
            sender.tickets, sender.latest_id = sender.tickets + 1, ticket_id
    return found


def releases(session: Session, addresses: Iterable[str]) -> dict[str, datetime]:
    keys = sorted({a.strip().lower() for a in addresses})
    if not keys:
        return {}
    rows = session.execute(select(TicketLimitRelease.address, TicketLimitRelease.released_at)
                           .where(TicketLimitRelease.address.in_(keys)))
    return {address: released_at for address, released_at in rows}


def held_mails(session: Session, address: str, since: datetime) -> int:
    """New conversations from `address` recorded on its tickets since `since`."""
    return int(session.scalar(
        select(func.count()).select_from(Event).join(Ticket, Event.ticket_id == Ticket.id)
        .where(Ticket.requester == address, Event.kind == HELD, Event.at > since)) or 0)


def release(session: Session, address: str, now: datetime) -> None:
    """Tickets `address` opened until now no longer count against the limit."""
    key = address.strip().lower()
    row = session.get(TicketLimitRelease, key)
    if row is None:
        session.add(TicketLimitRelease(address=key, released_at=now))
    else:
        row.released_at = now


def spellings(session: Session, address: str, now: datetime) -> list[str]:
    """How the tickets of the past hour write `address` (any case)."""
    return list(session.scalars(
        select(Ticket.requester).distinct()
        .where(func.lower(Ticket.requester) == address.strip().lower(),
               Ticket.created_at > now - WINDOW)))


def held_senders(session: Session, now: datetime, limit: int) -> list[HeldSender]:
    """Every address over the limit that had a new conversation recorded instead of a
    ticket since the window's start (or its release), most tickets first."""
    candidates = session.scalars(
        select(Ticket.requester).where(Ticket.created_at > now - WINDOW)
        .group_by(Ticket.requester).having(func.count() >= limit))
    found = []
    for address, sender in recent(session, candidates, now).items():
        held = held_mails(session, address, sender.since)
        if sender.tickets >= limit and held and sender.latest_id is not None:
            ref = session.scalar(select(Ticket.ref).where(Ticket.id == sender.latest_id))
            found.append(HeldSender(address, sender.tickets, held, str(ref), limit))
    return sorted(found, key=lambda h: (-h.tickets - h.held, h.address))
