"""Inbound mail, one at a time, inside the caller's transaction: parse, classify, thread to a
ticket, let the engine decide, record everything. A mail that cannot be processed is
quarantined with its reason and its raw bytes; it never stops the batch.

Every mail has exactly one effect: it is stored under its Message-ID (or a content hash) in
the same transaction as its effects and the mailbox cursor, so a replay finds it and stops.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from daemon.inbound import technician
from daemon.inbound.ticket_limit import Hold, NewTickets
from daemon.mail.classify import Classification, classify
from daemon.mail.correlate import Match, correlate, refs_to_check
from daemon.mail.digest import is_redelivery
from daemon.mail.message import InboundMessage, MailRejected, ParseLimits, parse_message
from daemon.mail.thread_keys import ThreadKeys, base_subject, reply_ids, thread_keys
from daemon.outbound.history import forget_parsed, remember_parsed
from daemon.outbound.loop_guard import record_auto_sender
from daemon.store import intake, messages, repository
from daemon.store.deferred import OutboxRow, deferred, insert_outbox
from daemon.store.models import Ticket
from daemon.tickets.runtime import Runtime
from daemon.workflow.facts import EventRecord, RequesterReplied

log = logging.getLogger(__name__)

# "held": not processed now, see process_batch's `hold_orphans`.
Action = Literal["opened", "updated", "recorded", "duplicate", "quarantined", "held"]


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

    def new_tickets(self, session: Session, now: datetime, *, remember: bool) -> NewTickets:
        limit = self.runtime.config.settings.mail.max_new_tickets_per_hour
        return NewTickets(session, now, limit, self._counted, remember=remember)

    def _counted(self, address: str) -> bool:
        """Loop protection counts this sender's new tickets: not ours, not a member's."""
        if not address or any(_same_address(address, own) for own in self.own_addresses):
            return False
        return self.runtime.config.directory.member_by_address(address) is None


class _Duplicate(Exception):
    """Another daemon stored the same mail first: roll this one back."""


def process_mail(session: Session, raw: bytes, inbox: Inbox, now: datetime, *,
                 folder: str | None = None, uid: int | None = None) -> Outcome:
    """One mail's whole effect, its mail rendered; on any failure it is quarantined."""
    (outcome,) = process_batch(session, [(uid, raw)], inbox, now, folder=folder)
    return outcome


def process_batch(session: Session, mails: Sequence[tuple[int | None, bytes]], inbox: Inbox,
                  now: datetime, *, folder: str | None = None,
                  hold_orphans: bool = False) -> list[Outcome]:
    """Every mail (uid, raw) of a batch; one failure costs only that mail. The outbox rows of
    the whole batch are rendered together at the end (a few queries in all).

    `hold_orphans` (another daemon is still ingesting the mail before this batch): a reply
    that threads to nothing and would open a ticket is not processed but "held", touching
    nothing, since what it answers may be in that daemon's batch; the caller processes it
    again once that batch is committed.

    Fast path first: the batch in one savepoint, nothing flushed until the end, so it is
    written in a few multi-row statements (messages, events and timers as plain rows, see
    store/deferred.py). Should any mail fail (or a racing daemon have
    stored one), that savepoint is rolled back and the batch runs again carefully, with a
    savepoint and an immediate write per mail: the failing one is quarantined, the rest kept.
    """
    try:
        with session.begin_nested(), session.no_autoflush, deferred(session) as held:
            parsed = [(uid, raw, _parse(raw, inbox)) for uid, raw in mails]
            fast = _Pass(session, inbox, now, folder,
                         pending=_Pending.prefetch(session, inbox, parsed, now),
                         hold_orphans=hold_orphans)
            results = [fast.mail(uid, raw, msg) for uid, raw, msg in parsed]
        unsaved = held.outbox  # rendered first, then inserted once, body and all
    except Exception as exc:  # noqa: BLE001 - the careful pass sorts it out mail by mail
        log.info("batch falls back to one mail at a time: %s: %s", type(exc).__name__, exc)
        forget_parsed(session)
        careful = _Pass(session, inbox, now, folder, pending=None, hold_orphans=hold_orphans)
        results = [careful.guarded(uid, raw) for uid, raw in mails]
        unsaved = []
    try:
        inbox.runtime.render(session, [row for _, rows in results for row in rows], now)
        insert_outbox(session, unsaved)
    finally:
        forget_parsed(session)  # the batch's parsed mail must not outlive it
    return [outcome for outcome, _ in results]


Result = tuple[Outcome, list[OutboxRow]]


def _parse(raw: bytes, inbox: Inbox) -> InboundMessage | MailRejected:
    try:
        return parse_message(raw, inbox.limits)
    except MailRejected as exc:
        return exc


@dataclass
class _Pending:
    """The fast path's view: what the store held at the start of the batch (looked up for
    all its mails at once) plus what the batch added and has not flushed yet."""

    ids: Iterator[int]
    # Message-ID -> the digests stored under it: before the batch, then by the batch.
    digests: dict[str, set[str]]
    # Message-ID -> ref: those stored before the batch, then those the batch stores.
    known_refs: dict[str, str]
    # Every ticket a mail may thread to (stored ones locked), then those the batch opens.
    tickets: dict[str, Ticket]
    keys: dict[int, ThreadKeys]  # by id() of the parsed mail: computed once per mail
    new_tickets: NewTickets  # each sender's of the past hour, then those the batch opens

    @classmethod
    def prefetch(cls, session: Session, inbox: Inbox,
                 parsed: Sequence[tuple[int | None, bytes, InboundMessage | MailRejected]],
                 now: datetime) -> _Pending:
        msgs = [msg for _, _, msg in parsed if isinstance(msg, InboundMessage)]
        keys = {id(msg): thread_keys(msg, inbox.support_address, (inbox.domain,))
                for msg in msgs}
        ids = {msg.message_id for msg in msgs}
        known = messages.refs_for_message_ids(
            session, {m for k in keys.values() for m in k.message_ids})
        # Every ticket a mail may thread to, read and locked in one query (not one per reply).
        refs = {ref for key in keys.values() for ref in refs_to_check(key)}
        tickets = repository.tickets_by_ref(session, refs | set(known.values()), for_update=True)
        new_tickets = inbox.new_tickets(session, now, remember=True)
        new_tickets.preload(msg.from_addr for msg in msgs)
        return cls(repository.ticket_ids(session),
                   messages.stored_digests(session, "in", ids), known, tickets, keys,
                   new_tickets)


@dataclass
class _Pass:
    """One pass over mails in one transaction; `pending` is None on the careful pass."""

    session: Session
    inbox: Inbox
    now: datetime
    folder: str | None
    pending: _Pending | None
    hold_orphans: bool = False
    # The mail in hand has a Message-ID that another mail (another digest) already has.
    reused: bool = False

    def mail(self, uid: int | None, raw: bytes, msg: InboundMessage | MailRejected) -> Result:
        if isinstance(msg, MailRejected):
            return self._quarantine(raw, str(msg), uid), []
        return self._handle(raw, msg)

    def guarded(self, uid: int | None, raw: bytes) -> Result:
        try:
            with self.session.begin_nested():
                return self._process(raw)
        except _Duplicate:
            return Outcome("duplicate", None, "stored meanwhile by another daemon"), []
        except MailRejected as exc:
            return self._quarantine(raw, str(exc), uid), []
        except (OperationalError, InterfaceError):
            # The database, not the mail: a lost connection, a restart, a deadlock with
            # another daemon. Quarantining would shelve a good mail; the batch is redone.
            raise
        except Exception as exc:  # one bad mail must never stop the batch
            log.exception("mail %s in %s could not be processed", uid, self.folder)
            return self._quarantine(raw, f"{type(exc).__name__}: {exc}", uid), []

    def _quarantine(self, raw: bytes, reason: str, uid: int | None) -> Outcome:
        subject, sender, message_id = _headline(raw)
        with self.session.begin_nested():
            row = intake.add_quarantine(self.session, raw=raw, reason=reason, now=self.now,
                                        subject=subject, sender=sender,
                                        message_id=message_id, folder=self.folder, uid=uid)
        return Outcome("quarantined", None, f"quarantine #{row.id}: {reason}")

    # ------------------------------------------------------------ one mail

    def _process(self, raw: bytes) -> Result:
        return self._handle(raw, parse_message(raw, self.inbox.limits))

    def _handle(self, raw: bytes, msg: InboundMessage) -> Result:
        earlier = self._digests(msg.message_id)
        if is_redelivery(msg.digest, earlier):
            return Outcome("duplicate", None, f"<{msg.message_id}> was processed before "
                           "(same Message-ID and content)"), []
        self.reused = bool(earlier)  # a mail of its own under an id used before
        verdict = classify(msg, self.inbox.own_addresses)
        match = self._thread(msg)
        if match.ref is None and verdict.bounced_message_ids:
            match = self._bounced(verdict.bounced_message_ids) or match
        ticket = self._ticket(match.ref) if match.ref else None
        if verdict.author is not None:  # the person, not our group's address (never a member)
            msg = replace(msg, from_addr=verdict.author, from_name=_ungrouped(msg.from_name))
        if verdict.automatic:
            return self._automatic(raw, msg, verdict, match, ticket)
        if ticket is None and self.hold_orphans and reply_ids(msg):
            return Outcome("held", None, "answers a mail not stored yet"), []
        if ticket is None or self.inbox.runtime.is_final(ticket):
            return self._open(raw, msg, verdict, match, ticket)
        return self._update(raw, msg, verdict, match, ticket)

    def _digests(self, message_id: str) -> set[str]:
        if self.pending is not None:
            return self.pending.digests.get(message_id, set())
        return messages.stored_digests(self.session, "in", [message_id]).get(message_id, set())

    def _thread(self, msg: InboundMessage) -> Match:
        pending = self.pending
        if pending is not None:
            return correlate(pending.keys[id(msg)], pending.known_refs, pending.tickets)
        keys = thread_keys(msg, self.inbox.support_address, (self.inbox.domain,))
        wanted = refs_to_check(keys)
        known = messages.refs_for_message_ids(self.session, keys.message_ids)
        existing = set(self.session.scalars(
            select(Ticket.ref).where(Ticket.ref.in_(wanted)))) if wanted else set()
        return correlate(keys, known, existing)

    def _bounced(self, message_ids: Sequence[str]) -> Match | None:
        """A bounce belongs to the ticket of the mail of ours it returns."""
        known = messages.refs_for_message_ids(self.session, message_ids)
        ref = next((known[m] for m in message_ids if m in known), None)
        return Match(ref, "bounce of our mail") if ref else None

    def _ticket(self, ref: str) -> Ticket | None:
        if self.pending is not None and ref in self.pending.tickets:
            return self.pending.tickets[ref]
        return repository.get_ticket(self.session, ref, for_update=True)

    def _store(self, raw: bytes, msg: InboundMessage, verdict: Classification,
               ticket: Ticket | None) -> None:
        fields = {"raw": raw, "ticket": ticket, "in_reply_to": msg.in_reply_to,
                  "references": " ".join(msg.references) or None, "sender": msg.from_addr,
                  "recipients": ", ".join((*msg.to, *msg.cc)) or None, "subject": msg.subject,
                  "kind": verdict.kind, "reason": verdict.reason}
        if self.pending is not None:
            messages.new_message(self.session, direction="in", message_id=msg.message_id,
                                 digest=msg.digest, at=self.now, **fields)
            self.pending.digests.setdefault(msg.message_id, set()).add(msg.digest)
            if ticket is not None:  # later mails of the batch may reply to this one
                self.pending.known_refs[msg.message_id] = ticket.ref
        elif messages.add_message(self.session, direction="in", message_id=msg.message_id,
                                  digest=msg.digest, at=self.now, **fields) is None:
            raise _Duplicate
        remember_parsed(self.session, msg)

    def _arrival(self, msg: InboundMessage, verdict: Classification, match: Match,
                 state: str) -> EventRecord:
        return _received(msg, verdict, match, state, self.reused)

    # ------------------------------------------------------------ what it does

    def _automatic(self, raw: bytes, msg: InboundMessage, verdict: Classification,
                   match: Match, ticket: Ticket | None) -> Result:
        """Recorded, never acknowledged, never a move; its sender gets no automatic mail."""
        self._store(raw, msg, verdict, ticket)
        if verdict.kind == "bounce":
            repository.mark_bounced(self.session, verdict.bounced_message_ids, verdict.reason,
                                    self.now)
        if verdict.kind != "own" and msg.from_addr:
            record_auto_sender(self.session, msg.from_addr, self.now, verdict.reason)
        if ticket is not None:
            repository.add_events(self.session, ticket,
                                  [self._arrival(msg, verdict, match, ticket.state)], self.now)
        return Outcome("recorded", ticket.ref if ticket else None,
                       f"{verdict.kind}: {verdict.reason}"), []

    def _open(self, raw: bytes, msg: InboundMessage, verdict: Classification, match: Match,
              old: Ticket | None) -> Result:
        """A new ticket; a reply to a closed one opens a new ticket that links the old."""
        hold = self._new_tickets().check(msg.from_addr)
        if hold is not None:
            return self._held_back(raw, msg, verdict, match, hold)
        runtime = self.inbox.runtime
        ticket, rows = runtime.open_ticket(
            self.session, requester=msg.from_addr,
            subject=base_subject(msg.subject) or "(no subject)",
            body=msg.new_text or msg.body_text, now=self.now,
            linked_ref=old.ref if old is not None else None,
            first=[self._arrival(msg, verdict, match, runtime.initial_state)], mail=False,
            ticket_id=next(self.pending.ids) if self.pending else None)
        if self.pending is not None:
            self.pending.tickets[ticket.ref] = ticket
            self.pending.new_tickets.opened(ticket)
        self._store(raw, msg, verdict, ticket)
        linked = f", linked to closed {old.ref}" if old is not None else ""
        # Without a sender the requester's mails are skipped when rendered (recipients.py).
        unknown = f"; {msg.from_problem}: no acknowledgement" if msg.from_problem else ""
        return Outcome("opened", ticket.ref,
                       f"new ticket in {ticket.state}{linked}{unknown}"), rows

    def _new_tickets(self) -> NewTickets:
        if self.pending is not None:
            return self.pending.new_tickets
        # The careful pass has written every mail before this one: the store knows them.
        return self.inbox.new_tickets(self.session, self.now, remember=False)

    def _held_back(self, raw: bytes, msg: InboundMessage, verdict: Classification,
                   match: Match, hold: Hold) -> Result:
        """Over the new-ticket limit: on the sender's latest ticket, and no mail to anyone."""
        ticket = hold.ticket
        self._store(raw, msg, verdict, ticket)
        repository.add_events(self.session, ticket, [
            self._arrival(msg, verdict, match, ticket.state), hold.event(msg.message_id)],
            self.now)
        self._new_tickets().recorded(hold)
        return Outcome("recorded", ticket.ref, f"{hold.reason}; `{hold.release}` lifts the "
                       "hold"), []

    def _update(self, raw: bytes, msg: InboundMessage, verdict: Classification, match: Match,
                ticket: Ticket) -> Result:
        """A reply on an open ticket: the requester's may move it (a resolved one reopens)."""
        self._store(raw, msg, verdict, ticket)
        runtime = self.inbox.runtime
        repository.add_events(self.session, ticket,
                              [self._arrival(msg, verdict, match, ticket.state)], self.now)
        if msg.from_problem is not None:  # nobody's commands, nobody's reply: only recorded
            return Outcome("updated", ticket.ref, f"recorded only: {msg.from_problem}"), []
        # A member's or vendor's mail (issue 5); a member who is the requester writes as one.
        # Through our group, From is the group's: nothing proves who wrote, so no commands.
        colleague = (technician.identify(msg.from_addr, runtime.config.directory)
                     if verdict.author is None else None)
        if colleague is not None and not _same_address(msg.from_addr, ticket.requester):
            detail, rows = technician.handle(self.session, ticket, msg, colleague, runtime,
                                             self.now, flush=self.pending is None, raw=raw)
            return Outcome("updated", ticket.ref, detail), rows
        if not _same_address(msg.from_addr, ticket.requester):
            return Outcome("updated", ticket.ref, f"reply from {msg.from_addr} recorded"), []
        before = ticket.state
        decision = runtime.engine_for(ticket).handle(
            repository.facts(ticket), RequesterReplied(msg.new_text), self.now)
        if decision.refused:
            # Not record_refusal: it flushes, and the fast path writes only at its end.
            repository.add_events(self.session, ticket, [repository.refusal(
                ticket, decision.refusal or "", actor="requester")], self.now)
            return Outcome("updated", ticket.ref, decision.refusal or ""), []
        rows = runtime.apply(self.session, ticket, decision, self.now, mail=False,
                             flush=self.pending is None)
        moved = f", {before} -> {ticket.state}" if ticket.state != before else ""
        return Outcome("updated", ticket.ref, f"requester replied{moved}"), rows


def _headline(raw: bytes) -> tuple[str | None, str | None, str | None]:
    """Subject, sender and Message-ID for the quarantine list, from a mail that may be broken."""
    try:
        msg = parse_message(raw, ParseLimits(max_size=len(raw) + 1, max_attachments=len(raw),
                                             max_attachment_size=len(raw) + 1))
    except Exception:  # whatever failed, the raw bytes are kept; the headline is a courtesy
        return None, None, None
    return msg.subject, msg.from_addr, msg.message_id


def _received(msg: InboundMessage, verdict: Classification, match: Match,
              state: str, reused: bool) -> EventRecord:
    """The timeline line every mail leaves: what it was and why, and how it was threaded."""
    data = {"message_id": msg.message_id, "subject": msg.subject, "kind": verdict.kind,
            "attachments": len(msg.attachments)}
    reason = f"{verdict.kind}: {verdict.reason}; {match.how}"
    if msg.from_problem is not None:
        data["from_problem"] = msg.from_problem
        reason += f"; {msg.from_problem}, so it runs no commands and gets no answer"
    if reused:
        data["reused_message_id"] = True
        reason += ("; its Message-ID was used before by another mail (other content), "
                   "so it is a mail of its own")
    return EventRecord("mail_in", msg.from_addr or "unknown sender", state, state, reason, data)


_VIA = re.compile(r"^'?(.*?)'? via .*$")


def _ungrouped(name: str) -> str:
    """Google Groups names a rewritten sender "'Ann Lee' via Support"."""
    return _VIA.sub(r"\1", name)


def _same_address(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()
