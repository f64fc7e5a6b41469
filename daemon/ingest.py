"""Inbound mail, one at a time, inside the caller's transaction: parse, classify, thread to a
ticket, let the engine decide, record everything. A mail that cannot be processed is
quarantined with its reason and its raw bytes; it never stops the batch.

Every mail has exactly one effect: it is stored under its Message-ID (or a content hash) in
the same transaction as its effects and the mailbox cursor, so a replay finds it and stops.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.classify import Classification, classify
from daemon.correlate import Match, correlate, refs_to_check
from daemon.message import InboundMessage, MailRejected, ParseLimits, parse_message
from daemon.outbox import record_auto_sender
from daemon.runtime import Runtime
from daemon.store import repository
from daemon.store.models import Ticket
from daemon.thread_keys import base_subject, thread_keys
from daemon.workflow.facts import EventRecord, RequesterReplied

log = logging.getLogger(__name__)

Action = Literal["opened", "updated", "recorded", "duplicate", "quarantined"]


@dataclass(frozen=True)
class Outcome:
    action: Action
    ref: str | None
    detail: str


@dataclass(frozen=True)
class Inbox:
    """What processing a mail needs besides the store: built once per config."""

    runtime: Runtime
    limits: ParseLimits
    support_address: str
    domain: str

    @classmethod
    def build(cls, runtime: Runtime) -> Inbox:
        settings = runtime.config.settings
        mail = settings.mail
        limits = ParseLimits(mail.max_size, mail.max_attachments, mail.max_attachment_size)
        return cls(runtime, limits, mail.address, settings.site.domain)

    @property
    def own_addresses(self) -> tuple[str, ...]:
        return (self.support_address,)


class _Duplicate(Exception):
    """Another daemon stored the same mail first: roll this one back."""


def process_mail(session: Session, raw: bytes, inbox: Inbox, now: datetime, *,
                 folder: str | None = None, uid: int | None = None) -> Outcome:
    """One mail's whole effect, in a savepoint: on any failure it is quarantined instead."""
    try:
        with session.begin_nested():
            return _process(session, raw, inbox, now)
    except _Duplicate:
        return Outcome("duplicate", None, "stored meanwhile by another daemon")
    except MailRejected as exc:
        return _quarantine(session, raw, str(exc), now, folder, uid)
    except Exception as exc:  # one bad mail must never stop the batch
        log.exception("mail %s in %s could not be processed", uid, folder)
        return _quarantine(session, raw, f"{type(exc).__name__}: {exc}", now, folder, uid)


def _quarantine(session: Session, raw: bytes, reason: str, now: datetime,
                folder: str | None, uid: int | None) -> Outcome:
    subject, sender, message_id = _headline(raw)
    with session.begin_nested():
        row = repository.add_quarantine(session, raw=raw, reason=reason, now=now,
                                        subject=subject, sender=sender,
                                        message_id=message_id, folder=folder, uid=uid)
    return Outcome("quarantined", None, f"quarantine #{row.id}: {reason}")


def _headline(raw: bytes) -> tuple[str | None, str | None, str | None]:
    """Subject, sender and Message-ID for the quarantine list, from a mail that may be broken."""
    try:
        msg = parse_message(raw, ParseLimits(max_size=len(raw) + 1,
                                             max_attachment_size=len(raw) + 1))
    except Exception:  # whatever failed, the raw bytes are kept; the headline is a courtesy
        return None, None, None
    return msg.subject, msg.from_addr, msg.message_id


def _process(session: Session, raw: bytes, inbox: Inbox, now: datetime) -> Outcome:
    msg = parse_message(raw, inbox.limits)
    if repository.message_seen(session, "in", msg.message_id):
        return Outcome("duplicate", None, f"<{msg.message_id}> was processed before")
    verdict = classify(msg, inbox.own_addresses)
    match = _thread(session, msg, inbox)
    ticket = repository.get_ticket(session, match.ref, for_update=True) if match.ref else None
    if verdict.automatic:
        return _automatic(session, raw, msg, verdict, match, ticket, now)
    if ticket is None or inbox.runtime.is_final(ticket):
        return _open(session, raw, msg, verdict, match, ticket, inbox, now)
    return _update(session, raw, msg, verdict, match, ticket, inbox, now)


def _thread(session: Session, msg: InboundMessage, inbox: Inbox) -> Match:
    keys = thread_keys(msg, inbox.support_address, (inbox.domain,))
    known = repository.refs_for_message_ids(session, keys.message_ids)
    wanted = refs_to_check(keys)
    existing = set(session.scalars(select(Ticket.ref).where(Ticket.ref.in_(wanted)))) \
        if wanted else set()
    return correlate(keys, known, existing)


def _store(session: Session, raw: bytes, msg: InboundMessage, verdict: Classification,
           ticket: Ticket | None, now: datetime) -> None:
    stored = repository.add_message(
        session, direction="in", message_id=msg.message_id, at=now, raw=raw, ticket=ticket,
        in_reply_to=msg.in_reply_to, references=" ".join(msg.references) or None,
        sender=msg.from_addr, recipients=", ".join((*msg.to, *msg.cc)) or None,
        subject=msg.subject, kind=verdict.kind, reason=verdict.reason)
    if stored is None:
        raise _Duplicate


def _received(msg: InboundMessage, verdict: Classification, match: Match,
              state: str) -> EventRecord:
    """The timeline line every mail leaves: what it was and why, and how it was threaded."""
    return EventRecord("mail_in", msg.from_addr or "unknown sender", state, state,
                       f"{verdict.kind}: {verdict.reason}; {match.how}",
                       {"message_id": msg.message_id, "subject": msg.subject,
                        "kind": verdict.kind, "attachments": len(msg.attachments)})


def _automatic(session: Session, raw: bytes, msg: InboundMessage, verdict: Classification,
               match: Match, ticket: Ticket | None, now: datetime) -> Outcome:
    """Recorded, never acknowledged, never a move; its sender gets no automatic mail."""
    _store(session, raw, msg, verdict, ticket, now)
    if verdict.kind == "bounce":
        repository.mark_bounced(session, verdict.bounced_message_ids, verdict.reason, now)
    if verdict.kind != "own" and msg.from_addr:
        record_auto_sender(session, msg.from_addr, now, verdict.reason)
    if ticket is not None:
        repository.add_events(session, ticket, [_received(msg, verdict, match, ticket.state)],
                              now)
    return Outcome("recorded", ticket.ref if ticket else None, f"{verdict.kind}: "
                   f"{verdict.reason}")


def _open(session: Session, raw: bytes, msg: InboundMessage, verdict: Classification,
          match: Match, old: Ticket | None, inbox: Inbox, now: datetime) -> Outcome:
    """A new ticket; a reply to a closed one opens a new ticket that links the old."""
    runtime = inbox.runtime
    subject = base_subject(msg.subject) or "(no subject)"
    ticket = runtime.open_ticket(
        session, requester=msg.from_addr, subject=subject, body=msg.new_text or msg.body_text,
        now=now, linked_ref=old.ref if old is not None else None,
        first=[_received(msg, verdict, match, runtime.initial_state)])
    _store(session, raw, msg, verdict, ticket, now)
    linked = f", linked to closed {old.ref}" if old is not None else ""
    return Outcome("opened", ticket.ref, f"new ticket in {ticket.state}{linked}")


def _update(session: Session, raw: bytes, msg: InboundMessage, verdict: Classification,
            match: Match, ticket: Ticket, inbox: Inbox, now: datetime) -> Outcome:
    """A reply on an open ticket: the requester's may move it (a resolved ticket reopens)."""
    _store(session, raw, msg, verdict, ticket, now)
    runtime = inbox.runtime
    repository.add_events(session, ticket, [_received(msg, verdict, match, ticket.state)], now)
    if not _same_address(msg.from_addr, ticket.requester):
        return Outcome("updated", ticket.ref, f"reply from {msg.from_addr} recorded")
    before = ticket.state
    decision = runtime.engine_for(ticket).handle(
        repository.facts(ticket), RequesterReplied(msg.new_text), now)
    if decision.refused:
        repository.record_refusal(session, ticket, decision.refusal or "", now,
                                  actor="requester")
        return Outcome("updated", ticket.ref, decision.refusal or "")
    runtime.apply(session, ticket, decision, now)
    moved = f", {before} -> {ticket.state}" if ticket.state != before else ""
    return Outcome("updated", ticket.ref, f"requester replied{moved}")


def _same_address(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()
