"""Writing the outbox's mail: filling freshly inserted rows with a rendered mail, in the
caller's transaction (MailWriter, materialize, compose), and the context the outbox adds to
the engine's (enrich).

`materialize` is the Runtime's mail hook: for each pending row it resolves the recipient
role, applies loop protection (outbound/loop_guard.py), renders the template and stores the
finished MIME bytes, so the sender only moves bytes. A row that cannot go out is never an
exception for the caller: it is `skipped` (loop protection, nobody to send to) or `parked` (a
template or header failure) with the reason, and the ticket's timeline says so
(outbound/outbox_queue.py). A handoff's quoted history comes from outbound/history.py,
its threading headers from outbound/threads.py, the files it carries from
outbound/attachments.py (kept as references: `body` is then the mail without them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from daemon.auth.directory import Directory
from daemon.auth.sender_auth import sign, signed_address
from daemon.config.settings import DuplicatesSettings, MailSettings, Settings, SiteSettings
from daemon.mail.mime import Address, HeaderError, Mail, build, build_shell
from daemon.outbound import notice_gate
from daemon.outbound.attachments import ATTACH, Chosen, Files, Want, wanted
from daemon.outbound.history import HISTORY_KEYS, Records, ticket_history
from daemon.outbound.lookalikes import SIMILAR_KEYS, Similar, find_similar, similar_context
from daemon.outbound.loop_guard import LoopGuard
from daemon.outbound.outbox_queue import park, skip
from daemon.outbound.recipients import REQUESTER_ROLES, Recipient, resolve
from daemon.outbound.render import Renderer, RenderError, moment, when
from daemon.outbound.threads import Threads
from daemon.store.deferred import OutboxRow
from daemon.store.models import Outbox, Ticket
from daemon.store.search import Windows
from daemon.workflow.timers import DEFAULT_CALENDAR

SIMILAR_CACHE = "tierdesk.similar"  # session.info: the searches of one materialize call
WINDOW_CACHE = "tierdesk.similar.window"  # ... and their one read of the recent tickets


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
    secret: str = field(default="", repr=False)  # settings.auth.secret: signs reply addresses
    reply_lifetime: timedelta = timedelta(days=90)  # settings.auth.reply_address_lifetime
    notice_window: timedelta = timedelta(minutes=10)  # settings.auth.refusal_notices_every
    # Calendar name -> its zone (settings.calendars): a mail shows times in the zone of the
    # calendar that governs the ticket's state (the context's `calendar`), else `default`'s.
    zones: Mapping[str, tzinfo] = field(default_factory=dict)
    # settings.duplicates: look-alikes and past fixes for the templates that name them.
    duplicates: DuplicatesSettings = field(default_factory=DuplicatesSettings)

    @classmethod
    def from_config(cls, config: Site) -> MailWriter:
        auth = config.settings.auth
        zones = {name: calendar.timezone for name, calendar in config.settings.calendars.items()}
        return cls(Renderer(config.templates_dir), config.directory, config.settings.mail,
                   config.settings.site, secret=auth.secret.get_secret_value(),
                   reply_lifetime=auth.reply_address_lifetime,
                   notice_window=auth.refusal_notices_every, zones=zones,
                   duplicates=config.settings.duplicates)

    def zone_for(self, calendar: object) -> tzinfo:
        """The zone of the named calendar, else the default calendar's, else UTC."""
        found = self.zones.get(str(calendar)) if calendar else None
        return found or self.zones.get(DEFAULT_CALENDAR) or UTC

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
        files = Files.load(session, [(p.ticket, p.files) for p in plans if p.files])
        try:
            for plan in plans:
                _fill(session, plan, writer, guard, threads, records, files, now)
        finally:
            session.info.pop(SIMILAR_CACHE, None)  # a later call sees newer tickets
            session.info.pop(WINDOW_CACHE, None)
    return todo


def _must_flush(session: Session, todo: Sequence[OutboxRow], writer: MailWriter) -> bool:
    """Flush only when a query below must see this transaction's rows: a template quoting
    the ticket's history (its newest events), or mail rendered earlier in the transaction
    (it counts towards the hourly limit). Otherwise each row is inserted once, with its
    body, instead of inserted empty and then rewritten."""
    if any(ATTACH in row.context or _names_any(writer, row.template, _FLUSH_KEYS,
                                                 if_broken=True) for row in todo):
        return True
    pending = set(map(id, todo))
    return any(isinstance(obj, Outbox) and id(obj) not in pending and obj.body is not None
               for obj in session.new)


# What a template names that a query before rendering must see: its history, the files it
# lists, the tickets like its own (the search reads the batch's new ticket_search rows).
_FILES_KEY = frozenset({"attachments"})
_FLUSH_KEYS = HISTORY_KEYS | SIMILAR_KEYS | _FILES_KEY


def _names_any(writer: MailWriter, template: str, keys: frozenset[str], *,
               if_broken: bool) -> bool:
    """Whether `template` uses any of `keys`; `if_broken` for one that does not parse (the
    row is parked with the reason when rendered)."""
    try:
        return bool(writer.renderer.variables(template) & keys)
    except RenderError:
        return if_broken


def _wants_history(writer: MailWriter, template: str) -> bool:
    return _names_any(writer, template, HISTORY_KEYS, if_broken=True)  # careful, as before


@dataclass(frozen=True)
class _Plan:
    row: OutboxRow
    ticket: Ticket | None
    facts: dict[str, Any]
    recipient: Recipient | None
    reason: str
    files: Want | None = None  # the stored files it carries (outbound/attachments.py)


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
    recipient = resolved.recipient
    files = None if recipient is None else wanted(
        row.context, _names_any(writer, row.template, _FILES_KEY, if_broken=False),
        recipient.external,
        writer.mail.handoff_attachments_max, writer.mail.reply_attachments_max)
    return _Plan(row, ticket, facts, recipient, resolved.reason, files)


def _answers_requester(plan: _Plan) -> bool:
    return plan.recipient is not None and plan.recipient.role in REQUESTER_ROLES


def _fill(session: Session, plan: _Plan, writer: MailWriter, guard: LoopGuard,
          threads: Threads, records: Records, files: Files, now: datetime) -> None:
    row, ticket, recipient = plan.row, plan.ticket, plan.recipient
    if recipient is None:
        return skip(session, row, ticket, plan.reason, now)
    reason = guard.check(recipient)
    if reason:
        return skip(session, row, ticket, reason, now)
    if row.template in notice_gate.LIMITED:
        plan = _gated(session, plan, recipient, writer, now)
    chosen = files.choose(ticket, plan.files) if plan.files else Chosen()
    try:
        mail = compose(session, plan, recipient, writer, threads, records, now, chosen)
        # With files: the mail without them, and references the sender resolves.
        body = build_shell(mail) if chosen.attached else build(mail)
    except (RenderError, HeaderError) as exc:
        return park(session, row, ticket, f"cannot build the mail: {exc}", now)
    guard.count(recipient)
    _store(row, mail, body, recipient, chosen)


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
            "assignee": ticket.assignee, "vendor": ticket.vendor,
            "state_entered_at": ticket.state_entered_at}
    return {**base, **row.context}


def _store(row: OutboxRow, mail: Mail, body: bytes, recipient: Recipient,
           chosen: Chosen) -> None:
    row.recipients = recipient.address
    row.subject = mail.subject
    row.body = body
    row.attachments = [ref.as_json() for ref in chosen.attached]
    row.attachment_bytes = chosen.size
    row.headers = {
        "From": mail.sender.header(), "To": recipient.address,
        "Reply-To": mail.reply_to.address if mail.reply_to else None,
        "In-Reply-To": mail.in_reply_to, "References": " ".join(mail.references),
        "Auto-Submitted": mail.auto_submitted,
        "Attachments": [ref.filename for ref in chosen.attached],
    }


def compose(session: Session, plan: _Plan, recipient: Recipient, writer: MailWriter,
            threads: Threads, records: Records, now: datetime,
            chosen: Chosen | None = None) -> Mail:
    """The mail for one row: rendered parts plus every header; `chosen` lists its files
    (the caller keeps them as references, outside the Mail)."""
    row, ticket, facts = plan.row, plan.ticket, plan.facts
    variables = writer.renderer.variables(row.template)
    history = (ticket_history(session, records, ticket, recipient)
               if variables & HISTORY_KEYS else None)
    ref = str(facts.get("ref") or "")
    reply_to = writer.reply_to_for(ref, recipient, now) if ref else None
    listed = list(chosen.listed) if chosen else []
    context = {**facts, **enrich(facts, writer, now), **(history.context if history else {}),
               "attachments": listed,
               **({"reply_address": reply_to.address} if reply_to else {})}
    if variables & SIMILAR_KEYS:
        context.update(_similar(session, ticket, recipient, writer, facts, now))
    rendered = writer.renderer.render(row.template, context)
    in_reply_to, references = threads.headers(ticket, recipient, writer)
    return Mail(
        sender=writer.sender, to=(Address(recipient.name, recipient.address),),
        subject=_tagged(rendered.subject, ref), message_id=row.message_id, date=now,
        text=rendered.text, html=rendered.html,
        reply_to=reply_to,
        in_reply_to=in_reply_to, references=references,
        auto_submitted="auto-replied" if recipient.role in REQUESTER_ROLES else "auto-generated",
        extra_headers=_extra_headers(ref),
    )


def _similar(session: Session, ticket: Ticket | None, recipient: Recipient,
             writer: MailWriter, facts: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Look-alikes and past fixes; other people's tickets are never told to outsiders."""
    settings = writer.duplicates
    if ticket is None or recipient.external or not (settings.max or settings.past_fixes):
        return {"lookalikes": None, "past_fixes": []}
    # One search per ticket and transaction: each member of a team gets their own row.
    cache: dict[int, Similar] = session.info.setdefault(SIMILAR_CACHE, {})
    found = cache.get(ticket.id)
    if found is None:
        windows: Windows = session.info.setdefault(WINDOW_CACHE, Windows())
        found = cache[ticket.id] = find_similar(session, ticket, settings, windows)
    return similar_context(found, writer.directory, writer.zone_for(facts.get("calendar")),
                           now)


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
    """The cheap keys of render.ENRICHED_SAMPLE: names from the directory, times, addresses.

    Times are given in the zone of the calendar that governs the ticket's state, each as an
    aware datetime and as text; the row's context (what the store keeps) stays UTC."""
    directory = writer.directory
    ref = str(facts.get("ref") or "")
    zone = writer.zone_for(facts.get("calendar"))
    local_now = now.astimezone(zone)
    deadline = moment(facts.get("deadline"), zone)
    since = moment(facts.get("state_entered_at"), zone)
    return {
        "zone": str(zone),
        "now": local_now,
        "deadline": deadline,
        "deadline_text": when(deadline, zone, local_now) if deadline else None,
        "since": since,
        "since_text": when(since, zone, local_now) if since else None,
        "waiting_on": facts.get("waiting_on"),
        "team_name": _team_name(directory, facts.get("team")),
        "previous_team_name": _team_name(directory, facts.get("previous_team")),
        "vendor_name": _vendor_name(directory, facts.get("vendor")),
        "assignee_name": _member_name(directory, facts.get("assignee")),
        "support_address": writer.mail.address,
        "reply_address": writer.reply_to(ref).address if ref else writer.mail.address,
        "time_left": time_left(deadline, now) if deadline else None,
        # Set on an incident's mails to its reports (tickets/runtime.py) and on the link
        # notice; None elsewhere, so templates test it without tripping StrictUndefined.
        "incident_subject": facts.get("incident_subject"),
        # A new ticket a triage rule linked (workflow/engine.py open); None on other mails.
        "auto_link": facts.get("auto_link"),
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
