"""The outbox: filling freshly inserted rows with a rendered mail, in the caller's transaction,
and the row state changes the sender makes (claim, sent, retry, park, requeue).

`materialize` is the Runtime's mail hook: for each pending row it resolves the recipient
role, applies loop protection, renders the template and stores the finished MIME bytes, so
the sender only moves bytes. A row that cannot go out is never an exception for the caller:
it is `skipped` (loop protection, nobody to send to) or `parked` (a template or header
failure) with the reason, and the ticket's timeline says so.

Loop protection (issue 4): no automatic mail to our own address or its plus-variants; and,
for addresses outside the directory (requesters, vendors), none to an address that sent us
automatic mail in the past AUTO_SENDER_WINDOW (table auto_senders, filled by ingest through
`record_auto_sender`), nor beyond `mail.max_auto_replies_per_hour` in the past hour.
Directory addresses (teams, members, escalation manager) are exempt from the last two: a
storm of handoffs to a tier must not be throttled, and they are ours.

The SQL lives here rather than in store/repository.py because this module owns the outbox's
lifecycle; the queries are small and each says which index it walks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Table, bindparam, func, or_, select, tuple_, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from daemon.auth.directory import Directory
from daemon.auth.sender_auth import sign, signed_address
from daemon.config.settings import MailSettings, Settings, SiteSettings
from daemon.mail.message import InboundMessage, MailRejected, parse_message
from daemon.mail.mime import Address, Attachment, HeaderError, Mail, build, safe_message_ids
from daemon.outbound import notice_gate
from daemon.outbound.recipients import Recipient, resolve
from daemon.outbound.render import Renderer, RenderError, when
from daemon.store import repository
from daemon.store.deferred import OutboxRow
from daemon.store.journal import SentNote
from daemon.store.liveness import is_gone, this_process
from daemon.store.models import AutoSender, Event, Message, Outbox, Ticket
from daemon.workflow.facts import EventRecord

AUTO_SENDER_WINDOW = timedelta(days=1)  # a person's vacation reply must not silence them forever
RATE_WINDOW = timedelta(hours=1)
# Rows that count towards the hourly limit: everything on its way or gone (a bounce went).
COUNTED = ("pending", "sending", "sent", "bounced")
ATTACH_LIMIT = 10 * 1024 * 1024  # original attachments forwarded with a handoff, in total
# Mail bytes one claim may load: a backlog of handoffs with attachments must not fill memory.
CLAIM_BYTES = 32 * 1024 * 1024
TEXT_LIMIT = 4000  # characters of each mail quoted in a handoff's timeline
QUOTED_MAILS = 20  # besides the original report, only the latest mails are quoted in full
HISTORY_KEYS = frozenset({"original", "timeline", "attachments"})
ACTOR = "outbox"


# ------------------------------------------------------------------ the writer

class Site(Protocol):
    """What mail writing needs of the loaded site (daemon/site/config.py's Config has it): the
    outbound room does not depend on how the site is loaded."""

    @property
    def settings(self) -> Settings: ...

    @property
    def directory(self) -> Directory: ...

    @property
    def templates_dir(self) -> Path: ...


@dataclass(frozen=True)
class MailWriter:
    """What rendering needs, built once from the config; callable as the Runtime mail hook."""

    renderer: Renderer
    directory: Directory
    mail: MailSettings
    site: SiteSettings
    attach_limit: int = ATTACH_LIMIT
    secret: str = field(default="", repr=False)  # settings.auth.secret: signs reply addresses
    reply_lifetime: timedelta = timedelta(days=90)  # settings.auth.reply_address_lifetime
    notice_window: timedelta = timedelta(minutes=10)  # settings.auth.refusal_notices_every

    @classmethod
    def from_config(cls, config: Site) -> MailWriter:
        auth = config.settings.auth
        return cls(Renderer(config.templates_dir), config.directory, config.settings.mail,
                   config.settings.site, secret=auth.secret.get_secret_value(),
                   reply_lifetime=auth.reply_address_lifetime,
                   notice_window=auth.refusal_notices_every)

    def __call__(self, session: Session, rows: list[OutboxRow], now: datetime) -> None:
        materialize(session, rows, self, now)

    @property
    def sender(self) -> Address:
        return Address(self.mail.name, self.mail.address)

    def reply_to(self, ref: str) -> Address:
        """support+TD-12@<site domain>: replies thread by address even without headers."""
        local = self.mail.address.rsplit("@", 1)[0].split("+", 1)[0]
        return Address(self.mail.name, f"{local}+{ref}@{self.site.domain}")

    def reply_to_for(self, ref: str, recipient: Recipient, now: datetime) -> Address:
        """A directory member's own signed reply address (daemon/auth/sender_auth.py), working
        for `reply_lifetime` from now, so their answer authenticates them; everyone else
        gets support+TD-12@."""
        found = None if recipient.external else self.directory.member_by_address(
            recipient.address)
        if not self.secret or found is None:
            return self.reply_to(ref)
        last_day = (now + self.reply_lifetime).date()
        token = sign(ref, found[1].addresses[0], self.secret, last_day)
        return Address(self.mail.name,
                       signed_address(self.mail.address, self.site.domain, ref, token))

    def thread_root(self, ref: str) -> str:
        """A Message-ID every mail of the ticket references, so clients keep them together.
        Lower case, like the ids inbound parsing stores; never sent as a mail of its own."""
        return f"<{ref.lower()}.ticket@{self.site.domain.lower()}>"

    def is_own(self, address: str) -> bool:
        """Our support address, or a plus-variant of it on its own or the site's domain."""
        local, _, domain = address.lower().rpartition("@")
        own_local, _, own_domain = self.mail.address.lower().rpartition("@")
        return (local.split("+", 1)[0] == own_local.split("+", 1)[0]
                and domain in (own_domain, self.site.domain.lower()))


# ------------------------------------------------------------------ materialize

def materialize(session: Session, rows: Iterable[OutboxRow], writer: MailWriter,
                now: datetime) -> list[OutboxRow]:
    """Render every pending, unrendered row in `rows` (in the caller's transaction).

    A handful of queries per call, whatever the number of rows: loop protection and
    threading are looked up for all rows at once, and nothing flushes in between (the
    clock applies many decisions and flushes once)."""
    todo = [row for row in rows if row.status == "pending" and row.body is None]
    if not todo:
        return []
    if _must_flush(session, todo, writer):
        session.flush()
    with session.no_autoflush:
        tickets = _tickets(session, {row.ticket_id for row in todo})
        plans = [_plan(row, tickets, writer) for row in todo]
        found = [p.recipient for p in plans if p.recipient is not None]
        guard = LoopGuard.load(session, found, writer, now)
        threads = Threads.load(session, [p.ticket for p in plans if _answers_requester(p)])
        records = Records.load(session, [p.ticket for p in plans if p.recipient is not None
                                         and _wants_history(writer, p.row.template)])
        for plan in plans:
            _fill(session, plan, writer, guard, threads, records, now)
    return todo


def _must_flush(session: Session, todo: Sequence[OutboxRow], writer: MailWriter) -> bool:
    """Flush only when a query below must see this transaction's rows: a template quoting
    the ticket's history (its newest events), or mail rendered earlier in the transaction
    (it counts towards the hourly limit). Otherwise each row is inserted once, with its
    body, instead of inserted empty and then rewritten."""
    if any(_wants_history(writer, row.template) for row in todo):
        return True
    pending = set(map(id, todo))
    return any(isinstance(obj, Outbox) and id(obj) not in pending and obj.body is not None
               for obj in session.new)


def _wants_history(writer: MailWriter, template: str) -> bool:
    try:
        return bool(writer.renderer.variables(template) & HISTORY_KEYS)
    except RenderError:
        return True  # the row will be parked with the reason; be as careful as before


@dataclass(frozen=True)
class _Plan:
    row: OutboxRow
    ticket: Ticket | None
    facts: dict[str, Any]
    recipient: Recipient | None
    reason: str


def _tickets(session: Session, ids: set[int | None]) -> dict[int, Ticket]:
    """The rows' tickets: those the session holds already (a batch's new and locked ones)
    without a query each, the rest in one query."""
    found: dict[int, Ticket] = {}
    for ticket_id in ids - {None}:
        held = session.identity_map.get(identity_key(Ticket, ticket_id))
        if isinstance(held, Ticket):
            found[held.id] = held
    missing = sorted(i for i in ids if i is not None and i not in found)
    if missing:
        found.update((t.id, t) for t in session.scalars(
            select(Ticket).where(Ticket.id.in_(missing))))
    return found


def _plan(row: OutboxRow, tickets: dict[int, Ticket], writer: MailWriter) -> _Plan:
    ticket = tickets.get(row.ticket_id) if row.ticket_id is not None else None
    facts = _facts(row, ticket)
    resolved = resolve(row.to_role, facts, writer.directory)
    return _Plan(row, ticket, facts, resolved.recipient, resolved.reason)


def _answers_requester(plan: _Plan) -> bool:
    return plan.recipient is not None and plan.recipient.role == "requester"


def _fill(session: Session, plan: _Plan, writer: MailWriter, guard: LoopGuard,
          threads: Threads, records: Records, now: datetime) -> None:
    row, ticket, recipient = plan.row, plan.ticket, plan.recipient
    if recipient is None:
        return skip(session, row, ticket, plan.reason, now)
    reason = guard.check(recipient)
    if reason:
        return skip(session, row, ticket, reason, now)
    if row.template in notice_gate.LIMITED:
        plan = _gated(session, plan, recipient, writer, now)
    try:
        mail = compose(session, plan, recipient, writer, threads, records, now)
        body = build(mail)
    except (RenderError, HeaderError) as exc:
        return park(session, row, ticket, f"cannot build the mail: {exc}", now)
    guard.count(recipient)
    _store(row, mail, body, recipient)


def _gated(session: Session, plan: _Plan, recipient: Recipient, writer: MailWriter,
           now: datetime) -> _Plan:
    """A refusal notice goes now, waits, or replaces a waiting one (outbound/notice_gate.py)."""
    row = plan.row
    admission = notice_gate.admit(session, row, recipient.address,
                                  str(plan.facts.get("ref") or ""), writer.notice_window, now)
    old = admission.replaces
    if old is not None:
        held = session.get(Ticket, old.ticket_id) if old.ticket_id is not None else None
        skip(session, old, held, admission.merged, now)
    row.next_attempt_at = admission.due
    row.context = {**row.context, **admission.context}
    return replace(plan, facts={**plan.facts, **admission.context})


def _facts(row: OutboxRow, ticket: Ticket | None) -> dict[str, Any]:
    """The engine's context, with the ticket's current facts for anything it left out."""
    if ticket is None:
        return dict(row.context)
    base = {"ref": ticket.ref, "subject": ticket.subject, "requester": ticket.requester,
            "priority": ticket.priority, "state": ticket.state, "team": ticket.team,
            "assignee": ticket.assignee, "vendor": ticket.vendor}
    return {**base, **row.context}


def _store(row: OutboxRow, mail: Mail, body: bytes, recipient: Recipient) -> None:
    row.recipients = recipient.address
    row.subject = mail.subject
    row.body = body
    row.headers = {
        "From": mail.sender.header(), "To": recipient.address,
        "Reply-To": mail.reply_to.address if mail.reply_to else None,
        "In-Reply-To": mail.in_reply_to, "References": " ".join(mail.references),
        "Auto-Submitted": mail.auto_submitted,
        "Attachments": [a.filename for a in mail.attachments],
    }


def compose(session: Session, plan: _Plan, recipient: Recipient, writer: MailWriter,
            threads: Threads, records: Records, now: datetime) -> Mail:
    """The mail for one row: rendered parts plus every header."""
    row, ticket, facts = plan.row, plan.ticket, plan.facts
    wanted = writer.renderer.variables(row.template)
    history = (_history(session, records, ticket, recipient, writer.attach_limit)
               if wanted & HISTORY_KEYS else None)
    ref = str(facts.get("ref") or "")
    reply_to = writer.reply_to_for(ref, recipient, now) if ref else None
    context = {**facts, **enrich(facts, writer, now), **(history.context if history else {}),
               **({"reply_address": reply_to.address} if reply_to else {})}
    rendered = writer.renderer.render(row.template, context)
    in_reply_to, references = threads.headers(ticket, recipient, writer)
    return Mail(
        sender=writer.sender, to=(Address(recipient.name, recipient.address),),
        subject=_tagged(rendered.subject, ref), message_id=row.message_id, date=now,
        text=rendered.text, html=rendered.html,
        reply_to=reply_to,
        in_reply_to=in_reply_to, references=references,
        auto_submitted="auto-replied" if recipient.role == "requester" else "auto-generated",
        attachments=history.attachments if history else (),
        extra_headers=_extra_headers(ref),
    )


def _tagged(subject: str, ref: str) -> str:
    """Every subject carries [TD-n], even when an edited template forgot it."""
    tag = f"[{ref}]"
    return subject if not ref or tag in subject else f"{tag} {subject}"


def _extra_headers(ref: str) -> tuple[tuple[str, str], ...]:
    # Asks Exchange not to answer with out-of-office notes; bounces quote X-Tierdesk-Ref.
    suppress = (("X-Auto-Response-Suppress", "All"),)
    return (*suppress, ("X-Tierdesk-Ref", ref)) if ref else suppress


# ------------------------------------------------------------------ context the outbox adds

def enrich(facts: dict[str, Any], writer: MailWriter, now: datetime) -> dict[str, Any]:
    """The cheap keys of render.ENRICHED_SAMPLE: names from the directory, times, addresses."""
    directory = writer.directory
    ref = str(facts.get("ref") or "")
    deadline = _moment(facts.get("deadline"))
    return {
        "team_name": _team_name(directory, facts.get("team")),
        "previous_team_name": _team_name(directory, facts.get("previous_team")),
        "vendor_name": _vendor_name(directory, facts.get("vendor")),
        "assignee_name": _member_name(directory, facts.get("assignee")),
        "support_address": writer.mail.address,
        "reply_address": writer.reply_to(ref).address if ref else writer.mail.address,
        "deadline_text": when(deadline) if deadline else None,
        "time_left": time_left(deadline, now) if deadline else None,
    }


def _team_name(directory: Directory, key: object) -> str | None:
    team = directory.teams.get(str(key)) if key else None
    return team.name if team else None


def _vendor_name(directory: Directory, key: object) -> str | None:
    vendor = directory.vendors.get(str(key)) if key else None
    return vendor.name if vendor else None


def _member_name(directory: Directory, address: object) -> str | None:
    found = directory.member_by_address(str(address)) if address else None
    return found[1].name if found else None


def _moment(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


def time_left(deadline: datetime, now: datetime) -> str:
    """`3h 20m`, `2d 4h`, or `overdue by 15m`: wall-clock time until the engine's deadline."""
    seconds = int((deadline - now).total_seconds())
    text = _span(abs(seconds))
    return text if seconds >= 0 else f"overdue by {text}"


def _span(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return f"{days}d {hours}h" if days else f"{hours}h {minutes}m"


# ------------------------------------------------------------------ a ticket's history

@dataclass(frozen=True)
class History:
    context: dict[str, Any]
    attachments: tuple[Attachment, ...]


@dataclass(frozen=True)
class Records:
    """The timelines and inbound mail of the tickets whose mails quote their history, read
    for the whole batch in two queries (ix_events_ticket_id_id, ix_messages_ticket_id)."""

    events: dict[int, list[Event]]
    inbound: dict[int, list[Message]]

    @classmethod
    def load(cls, session: Session, tickets: Iterable[Ticket | None]) -> Records:
        ids = sorted({t.id for t in tickets if t is not None})
        events: dict[int, list[Event]] = {i: [] for i in ids}
        inbound: dict[int, list[Message]] = {i: [] for i in ids}
        if ids:
            for event in session.scalars(select(Event).where(Event.ticket_id.in_(ids))
                                         .order_by(Event.id)):
                events[event.ticket_id].append(event)
            # Direction checked here, not in SQL: see Threads.load.
            for message in session.scalars(
                    select(Message).where(Message.ticket_id.in_(ids)).order_by(Message.id)):
                if message.direction == "in":
                    inbound[message.ticket_id or 0].append(message)
        return cls(events, inbound)


def _history(session: Session, records: Records, ticket: Ticket | None, recipient: Recipient,
             attach_limit: int) -> History:
    """Original report, timeline and attachments; outsiders get no notes and no mails."""
    if ticket is None:
        return History({"original": None, "timeline": [], "attachments": []}, ())
    events = [_event_entry(e) for e in records.events[ticket.id]]
    if recipient.external:
        events = [e for e in events if not e["internal"]]
        return History({"original": None, "timeline": events, "attachments": []}, ())
    mails = [_parsed(session, m) for m in records.inbound[ticket.id]]
    entries = [_mail_entry(m, ticket) for m in mails]
    # The first mail is quoted as the original report; a long ticket quotes its latest mails.
    for entry in entries[:1] + entries[1:-QUOTED_MAILS]:
        entry["text"] = ""
    timeline = sorted([*entries, *events], key=lambda entry: entry["at"])
    listed, files = _attachments(mails, attach_limit)
    original = _original(mails[0]) if mails else None
    return History({"original": original, "timeline": timeline, "attachments": listed}, files)


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
    """A stored mail read by the same parser ingest uses (charsets, HTML, quoted history)."""
    known = session.info.get(PARSED, {}).get(row.message_id)
    if known is not None:
        return _Parsed(row, known)
    if not row.raw:
        return _Parsed(row, None)
    try:
        return _Parsed(row, parse_message(row.raw))
    except MailRejected:  # too big or unreadable: listed in the timeline without text
        return _Parsed(row, None)


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


def _attachments(mails: Sequence[_Parsed],
                 limit: int) -> tuple[list[dict[str, Any]], tuple[Attachment, ...]]:
    """Every attachment the ticket's mails carried: listed always, attached while the total
    stays under `limit`."""
    used = 0
    listed: list[dict[str, Any]] = []
    files: list[Attachment] = []
    for parsed in mails:
        for part in parsed.mail.attachments if parsed.mail else ():
            attach = used + part.size <= limit
            used += part.size if attach else 0
            listed.append({"filename": part.filename, "content_type": part.content_type,
                           "size": part.size, "sender": parsed.row.sender or "",
                           "at": _iso(parsed.row.received_at), "attached": attach})
            if attach:
                files.append(Attachment(part.filename, part.content_type, part.content))
    return listed, tuple(files)


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


# ------------------------------------------------------------------ threading

@dataclass(frozen=True)
class Threads:
    """The first and the latest mail each ticket got from outside, for threading."""

    inbound: dict[int, tuple[str, str]]

    @classmethod
    def load(cls, session: Session, tickets: Iterable[Ticket | None]) -> Threads:
        ids = sorted({t.id for t in tickets if t is not None})
        if not ids:
            return cls({})
        # Two indexed queries for the whole batch (ix_messages_ticket_id, then primary keys).
        # The direction is picked here, not in SQL: given `direction = 'in'`, SQLite walked
        # every inbound mail by the unique (direction, message_id) index instead.
        ends = [(tid, first, last) for tid, direction, first, last in session.execute(
            select(Message.ticket_id, Message.direction, func.min(Message.id),
                   func.max(Message.id))
            .where(Message.ticket_id.in_(ids))
            .group_by(Message.ticket_id, Message.direction)) if direction == "in"]
        wanted = {i for _, first, last in ends for i in (first, last)}
        found = {i: mid for i, mid in session.execute(
            select(Message.id, Message.message_id).where(Message.id.in_(wanted)))}
        return cls({tid: (found[first], found[last]) for tid, first, last in ends
                    if tid is not None})

    def headers(self, ticket: Ticket | None, recipient: Recipient,
                writer: MailWriter) -> tuple[str | None, tuple[str, ...]]:
        """In-Reply-To and References: every mail of a ticket references its thread root; a
        mail to the requester also answers their latest mail and references their first."""
        if ticket is None:
            return None, ()
        root = writer.thread_root(ticket.ref)
        first, last = self.inbound.get(ticket.id, (None, None))
        if recipient.role != "requester" or first is None:
            return root, (root,)
        references = safe_message_ids([root, first, last])
        return references[-1], references


# ------------------------------------------------------------------ loop protection

@dataclass
class LoopGuard:
    """Loop protection for one batch: what the database knew at its start, plus the mails
    the batch itself has let through."""

    writer: MailWriter
    now: datetime
    auto: dict[str, AutoSender]
    sent: dict[str, int]

    @classmethod
    def load(cls, session: Session, recipients: Sequence[Recipient], writer: MailWriter,
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
    bodies = {i: body for i, body in session.execute(
        select(Outbox.id, Outbox.body).where(Outbox.id.in_(ids)))}
    session.execute(update(Outbox).where(Outbox.id.in_(ids))
                    .values(status="sending", next_attempt_at=lease_until,
                            claimed_by=this_process())
                    .execution_options(synchronize_session=False))
    return [Claimed(r.id, r.message_id, r.recipients, bodies[r.id] or b"", r.attempts)
            for r in taken]


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
    stmt = (select(Outbox.id, Outbox.message_id, Outbox.recipients, Outbox.attempts,
                   func.length(Outbox.body))
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
