"""What the demo prints: each mail in and out, each move and clock event, read back from the
store and from what the SMTP server received, never from the script's own intentions."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from daemon.demo.smtp_sink import Delivered
from daemon.mail.message import parse_message
from daemon.store.database import Database
from daemon.store.models import Event, Message, Ticket

_SIGNED = re.compile(r"\+TD-\d+\.[a-z0-9]+@", re.IGNORECASE)  # sender_auth.signed_address
_GREETING = re.compile(r"^(hello|hi|dear)\b[^.]*,$", re.IGNORECASE)
# Lines of our own mail worth showing beyond its first ones: why a ticket moved (a handoff,
# the clock's escalation), what triage made of a new ticket and by when it must be sorted.
_KEY_LINES = ("Reason:", "Triage:", "Sort it by:")
# Clock events, and the moves anyone makes, stand out from the bookkeeping.
_COLOURS = {"transition": "1;32", "warning": "1;31", "sla_breach": "31", "reminder": "33",
            "security": "1;31", "refused": "31"}


class Style:
    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def __call__(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text


@dataclass
class Timeline:
    database: Database
    style: Style
    out: Callable[[str], None]
    zone: ZoneInfo
    events_seen: int = 0
    mails_seen: int = 0
    sent: list[Delivered] = field(default_factory=list)
    _heading: str | None = None

    def heading(self, at: datetime, title: str, lazy: bool = False) -> None:
        """A scene's title; a lazy one is printed only if something happens under it."""
        when = at.astimezone(self.zone).strftime("%a %d %b %H:%M %Z")
        self._heading = "\n" + self.style("1;36", f"── {when}  {title}")
        if not lazy:
            self._print("")

    def _print(self, line: str) -> None:
        if self._heading is not None:
            self.out(self._heading)
            self._heading = None
        if line:
            self.out(line)

    def show(self, delivered: list[Delivered], notes: Sequence[str] = ()) -> None:
        """Mail that came in, what the daemon said about it, the events, the mail sent."""
        self._mails_in()
        for note in notes:
            self._print(self.style("2", f"    daemon: {note.strip()}"))
        self._events()
        self._mails_out(delivered)

    def _mails_in(self) -> None:
        with self.database.reading() as session:
            rows = session.execute(select(Message.id, Message.raw, Message.kind)
                                   .where(Message.direction == "in", Message.id > self.mails_seen)
                                   .order_by(Message.id)).all()
        for row_id, raw, kind in rows:
            msg = parse_message(raw or b"")
            sender = f"{msg.from_name} <{msg.from_addr}>" if msg.from_name else msg.from_addr
            self._print(self.style("33", f"  ✉ in   {sender} → {', '.join(msg.to)}"))
            how = ", to their signed reply address" if any(map(_SIGNED.search, msg.to)) else ""
            self._print(self.style("33", f"         {msg.subject}")
                        + self.style("2", f"  ({kind}{how})"))
            self._lines(msg.new_text, 3)
            self.mails_seen = row_id

    def _events(self) -> None:
        with self.database.reading() as session:
            rows = session.execute(select(Event, Ticket.ref).join(Ticket)
                                    .where(Event.id > self.events_seen).order_by(Event.id)).all()
        for event, ref in rows:
            self.events_seen = event.id
            if event.kind == "mail_in":  # shown as the mail itself
                continue
            head = f"  ● {ref} {event.kind:<13} {_move(event):<18}"
            self._print(self.style(_COLOURS.get(event.kind, "32"), head) + " "
                     + self.style("2", _short(f"{event.actor}: {event.reason}", 110)))

    def _mails_out(self, delivered: list[Delivered]) -> None:
        """One line per subject: a team's mail goes to each member on their own."""
        groups: dict[str, tuple[list[str], str]] = {}
        for mail in delivered:
            msg = parse_message(mail.data)
            # Our own mail in full: a forwarded answer would look like quoted history.
            recipients, _ = groups.setdefault(msg.subject, ([], msg.body_text))
            recipients.extend(mail.rcpt_tos)
        for subject, (recipients, text) in groups.items():
            self._print(self.style("35", f"  ✉ out  Tierdesk → {', '.join(recipients)}"))
            self._print(self.style("35", f"         {subject}"))
            self._lines(text, 2, _KEY_LINES)
        self.sent.extend(delivered)

    def _lines(self, text: str, count: int, keys: tuple[str, ...] = ()) -> None:
        """The first `count` lines worth reading, then any further line starting with one
        of `keys` (a handoff's reason, a notice's triage and deadline)."""
        lines = [line.strip() for line in text.splitlines()
                 if line.strip() and not _GREETING.match(line.strip())]
        shown = lines[:count] + [line for line in lines[count:] if line.startswith(keys)]
        for line in shown:
            self._print(self.style("2", f"         │ {_short(line, 96)}"))

    def summary(self, elapsed: float) -> str:
        """Each ticket's way up and down the ladder, then the counts: one line."""
        with self.database.reading() as session:
            tickets = session.scalars(select(Ticket).order_by(Ticket.id)).all()
            mails_in = session.scalar(select(func.count()).select_from(Message)
                                      .where(Message.direction == "in"))
            # `created` holds the state a ticket started in, each transition the next one.
            steps = session.execute(select(Event.ticket_id, Event.to_state)
                                    .where(Event.kind.in_(("created", "transition")))
                                    .order_by(Event.id)).all()
        if not tickets:
            return f"no ticket was opened; {elapsed:.1f} s"
        paths: dict[int, list[str]] = {}
        for ticket_id, state in steps:
            paths.setdefault(ticket_id, []).append(state or "?")
        told = "; ".join(f"{t.ref} {t.state} ({' → '.join(paths.get(t.id, [t.state]))})"
                         for t in tickets)
        count = f"{len(tickets)} ticket{'s' if len(tickets) != 1 else ''}"
        return f"{told}; {count}, {mails_in} mails in, {len(self.sent)} out; {elapsed:.1f} s"


def _move(event: Event) -> str:
    if event.from_state and event.to_state and event.from_state != event.to_state:
        return f"{event.from_state} → {event.to_state}"
    return event.to_state or ""


def _short(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width - 1] + "…"
