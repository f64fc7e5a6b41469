"""A ticket's history, quoted by the mails that ask for it (a handoff's original report and
timeline; its files: outbound/attachments.py), and the cache of mails ingest parsed in this
transaction (remember_parsed, forget_parsed) so a handoff does not parse them a second time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.mail.message import InboundMessage, MailRejected, parse_message
from daemon.outbound.recipients import Recipient
from daemon.store.models import Event, Message, Ticket

TEXT_LIMIT = 4000  # characters of each mail quoted in a handoff's timeline
QUOTED_MAILS = 20  # besides the original report, only the latest mails are quoted in full
# The template variables filled from the history (a template naming none is rendered without).
# `linked`: the tickets linked to this one as reports of its incident (#link), so a handoff
# says how many people are affected.
HISTORY_KEYS = frozenset({"original", "timeline", "linked"})


# ------------------------------------------------------------------ a ticket's history

@dataclass(frozen=True)
class History:
    context: dict[str, Any]


@dataclass(frozen=True)
class Records:
    """The timelines and inbound mail of the tickets whose mails quote their history, read
    for the whole batch in two queries (ix_events_ticket_id_id, ix_messages_ticket_id)."""

    events: dict[int, list[Event]]
    inbound: dict[int, list[Message]]
    linked: dict[int, list[dict[str, Any]]]

    @classmethod
    def load(cls, session: Session, tickets: Iterable[Ticket | None]) -> Records:
        ids = sorted({t.id for t in tickets if t is not None})
        events: dict[int, list[Event]] = {i: [] for i in ids}
        inbound: dict[int, list[Message]] = {i: [] for i in ids}
        linked: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        if ids:
            for child in session.scalars(select(Ticket).where(Ticket.parent_id.in_(ids))
                                         .order_by(Ticket.id)):
                linked[child.parent_id or 0].append(
                    {"ref": child.ref, "requester": child.requester, "subject": child.subject,
                     "state": child.state})
            for event in session.scalars(select(Event).where(Event.ticket_id.in_(ids))
                                         .order_by(Event.id)):
                events[event.ticket_id].append(event)
            # Direction checked here, not in SQL: see Threads.load.
            for message in session.scalars(
                    select(Message).where(Message.ticket_id.in_(ids)).order_by(Message.id)):
                if message.direction == "in":
                    inbound[message.ticket_id or 0].append(message)
        return cls(events, inbound, linked)


def ticket_history(session: Session, records: Records, ticket: Ticket | None,
                   recipient: Recipient) -> History:
    """Original report and timeline; outsiders get no notes and no mails."""
    if ticket is None:
        return History({"original": None, "timeline": [], "linked": []})
    events = [_event_entry(e) for e in records.events[ticket.id]]
    if recipient.external:
        events = [e for e in events if not e["internal"]]
        return History({"original": None, "timeline": events, "linked": []})
    mails = [_parsed(session, m) for m in records.inbound[ticket.id]]
    entries = [_mail_entry(m, ticket) for m in mails]
    # The first mail is quoted as the original report; a long ticket quotes its latest mails.
    for entry in entries[:1] + entries[1:-QUOTED_MAILS]:
        entry["text"] = ""
    timeline = sorted([*entries, *events], key=lambda entry: entry["at"])
    original = _original(mails[0]) if mails else None
    return History({"original": original, "timeline": timeline,
                    "linked": records.linked.get(ticket.id, [])})


@dataclass(frozen=True)
class _Parsed:
    row: Message
    mail: InboundMessage | None


# session.info key: mails ingest parsed in this transaction, by Message-ID, so a handoff
# rendered in the same batch does not parse its ticket's new mail a second time.
PARSED = "tierdesk.parsed"


def remember_parsed(session: Session, mail: InboundMessage) -> None:
    session.info.setdefault(PARSED, {})[mail.message_id] = mail


def forget_parsed(session: Session) -> None:
    session.info.pop(PARSED, None)


def _parsed(session: Session, row: Message) -> _Parsed:
    return _Parsed(row, parsed_mail(session, row))


def parsed_mail(session: Session, row: Message) -> InboundMessage | None:
    """A stored mail read by the same parser ingest uses (charsets, HTML, quoted history);
    None when it is not kept or cannot be read."""
    known = session.info.get(PARSED, {}).get(row.message_id)
    if known is not None and known.digest == row.digest:
        return known
    if not row.raw:
        return None
    try:
        return parse_message(row.raw)
    except MailRejected:  # too big or unreadable: listed in the timeline without text
        return None


def _event_entry(event: Event) -> dict[str, Any]:
    return {"at": event.at.isoformat(), "actor": event.actor, "kind": event.kind,
            "from_state": event.from_state, "to_state": event.to_state,
            "reason": event.reason, "text": "", "internal": bool(event.data.get("internal"))}


def _mail_entry(parsed: _Parsed, ticket: Ticket) -> dict[str, Any]:
    """A reply in the timeline: only its new text, not the history it quotes."""
    row, mail = parsed.row, parsed.mail
    at = row.received_at or row.sent_at
    sender = row.sender or ""
    text = (mail.new_text or mail.body_text) if mail else ""
    return {"at": at.isoformat() if at else "", "actor": sender, "kind": "mail",
            "from_state": None, "to_state": None, "reason": row.subject or "",
            "text": _shortened(text),
            "internal": ticket.requester.lower() not in sender.lower()}


def _original(parsed: _Parsed) -> dict[str, Any]:
    row = parsed.row
    return {"sender": row.sender or "", "subject": row.subject or "",
            "at": row.received_at.isoformat() if row.received_at else "",
            "text": _shortened(parsed.mail.body_text if parsed.mail else "")}


def _shortened(text: str) -> str:
    return text if len(text) <= TEXT_LIMIT else text[:TEXT_LIMIT] + "\n[...]"
