"""What the loops share, built once from the loaded config: one engine per workflow and the
hook that turns a decision's outbox rows into mail."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from daemon.auth.policy import dkim_verifier
from daemon.clock.business_hours import calendar_clock
from daemon.outbound.recipients import per_member
from daemon.site.config import Config
from daemon.store import repository, search
from daemon.store.deferred import OutboxRow
from daemon.store.models import Ticket
from daemon.tickets.lookalike import best_open
from daemon.workflow.engine import AddTime, Engine, VendorClock, wall_clock
from daemon.workflow.facts import (
    Decision,
    EventRecord,
    Lookalike,
    MailOrder,
    NewTicket,
    TicketFacts,
)

# The workflow's recipient for an incident's reports (model.RECIPIENTS): one mail per linked
# ticket, on that ticket (its thread, subject and reply address), so answers land there.
LINKED = "linked"

if TYPE_CHECKING:
    from daemon.auth.dkim_check import DkimVerifier

# Fills freshly inserted outbox rows (recipients, rendering, MIME) in the same transaction.
MailHook = Callable[[Session, list[OutboxRow], datetime], None]


def _no_mail(session: Session, rows: list[OutboxRow], now: datetime) -> None:
    """Leaves rows as the store wrote them (tests of the pure loop logic)."""


@dataclass(frozen=True)
class Runtime:
    config: Config
    engines: Mapping[str, Engine]
    mail_hook: MailHook = field(default=_no_mail)
    add_time: AddTime = field(default=wall_clock)
    # Our own DKIM check with its DNS cache (auth.dkim); None when off.
    dkim: DkimVerifier | None = None

    @classmethod
    def build(cls, config: Config, add_time: AddTime | None = None,
              mail_hook: MailHook = _no_mail, previous: Runtime | None = None) -> Runtime:
        """Engines on the site's business calendars unless `add_time` says otherwise;
        `previous` is the runtime a reload replaces (its DNS cache is kept)."""
        clock = add_time or calendar_clock(config.settings.calendars)
        vendors = {key: VendorClock(v.respond_within, v.calendar)
                   for key, v in config.directory.vendors.items()}
        engines = {name: Engine(wf, clock, vendors) for name, wf in config.workflows.items()}
        return cls(config, engines, mail_hook, clock, _dkim(config, previous))

    @property
    def default_workflow(self) -> str:
        """The workflow new tickets start in: the only one, or the first by name."""
        return sorted(self.engines)[0]

    def engine_for(self, ticket: Ticket) -> Engine:
        # A ticket whose workflow file was removed runs on the default one rather than stalling.
        return self.engines.get(ticket.workflow_name) or self.engines[self.default_workflow]

    def apply(self, session: Session, ticket: Ticket, decision: Decision, now: datetime,
              *, flush: bool = True, mail: bool = True) -> list[OutboxRow]:
        """Write a decision in the caller's transaction and return its outbox rows; with
        mail=False the caller renders them later, many at once (`render`)."""
        workflow = self.config.workflows.get(ticket.workflow_name)
        linked = tuple(m for m in decision.mails if m.to == LINKED)
        if linked:  # written on the linked tickets below, not on this one
            decision = replace(decision, mails=tuple(m for m in decision.mails
                                                     if m.to != LINKED))
        if self.config.settings.auth.signing:  # each member gets their own signed Reply-To
            decision = replace(decision, mails=per_member(decision.mails, self.config.directory))
        before = ticket.state
        rows = repository.apply_decision(
            session, ticket, decision, now, domain=self.config.settings.site.domain,
            workflow_version=workflow.version if workflow else None, flush=flush)
        if not decision.refused:
            rows += self._incident(session, ticket, decision, linked, before, now, flush)
        if rows and mail:
            self.render(session, rows, now)
        return rows

    def _incident(self, session: Session, ticket: Ticket, decision: Decision,
                  linked: tuple[MailOrder, ...], before: str, now: datetime,
                  flush: bool) -> list[OutboxRow]:
        """What an incident's step does to its reports: the `linked` mails, one per report on
        its own ticket; and, when the incident's clock stops (resolved), each report follows
        it with the same summary. Nothing is looked up unless one of the two applies."""
        follow = self._stopping(ticket, decision, before)
        if not linked and follow is None:
            return []
        domain = self.config.settings.site.domain
        rows: list[OutboxRow] = []
        parent = repository.facts(ticket)
        for child in repository.children_of(session, ticket, for_update=True):
            if follow is not None:
                rows += self._follow(session, child, parent, follow, now)
            for order in linked:
                context = {**order.context, "ref": child.ref, "subject": child.subject,
                           "requester": child.requester, "incident": ticket.ref,
                           "incident_subject": ticket.subject}
                rows.append(repository.add_mail(session, replace(order, context=context), now,
                                                domain=domain, ticket=child))
        if flush:
            session.flush()
        return rows

    def _stopping(self, ticket: Ticket, decision: Decision,
                  before: str) -> EventRecord | None:
        """The transition that stopped the ticket's clock (it was running or paused), if any."""
        workflow = self.config.workflows.get(ticket.workflow_name)
        if workflow is None:
            return None

        def stopped(state: str | None) -> bool:
            found = workflow.states.get(state or "")
            return found is not None and (found.clock == "stopped" or found.final)
        if stopped(before):
            return None
        return next((e for e in decision.events if e.kind == "transition"
                     and stopped(e.to_state)), None)

    def _follow(self, session: Session, child: Ticket, parent: TicketFacts, move: EventRecord,
                now: datetime) -> list[OutboxRow]:
        trigger = str(move.data.get("trigger") or "")
        decision = self.engine_for(child).follow(repository.facts(child), parent, trigger,
                                                 move.actor, move.reason, now)
        if decision.refused:  # the report stays as it is; its timeline says why
            why = f"did not follow incident {parent.ref}: {decision.refusal}"
            repository.add_events(session, child, [repository.refusal(
                child, why, actor=move.actor, data={"incident": parent.ref})], now)
            return []
        return repository.apply_decision(session, child, decision, now,
                                         domain=self.config.settings.site.domain, flush=False)

    def render(self, session: Session, rows: list[OutboxRow], now: datetime) -> None:
        """Fill outbox rows (recipients, templates, MIME) in the caller's transaction."""
        if rows:
            self.mail_hook(session, rows, now)

    def _lookalike(self, session: Session, engine: Engine, ticket: Ticket, subject: str,
                   body: str) -> Lookalike | None:
        """The open look-alike a triage rule asks for (`looks_like_open`); no search at all
        when no rule of the workflow does."""
        threshold = engine.looks_like_open
        if threshold is None:
            return None
        return best_open(session, ticket, subject, body, threshold=threshold,
                         window=self.config.settings.duplicates.window, is_open=self.is_open)

    def is_open(self, ticket: Ticket) -> bool:
        """Neither final nor on a stopped clock (resolved): a ticket a report may join."""
        workflow = self.config.workflows.get(ticket.workflow_name)
        state = workflow.states.get(ticket.state) if workflow else None
        return state is not None and not state.final and state.clock != "stopped"

    @property
    def initial_state(self) -> str:
        return self.config.workflows[self.default_workflow].initial

    def is_final(self, ticket: Ticket) -> bool:
        workflow = self.config.workflows.get(ticket.workflow_name)
        state = workflow.states.get(ticket.state) if workflow else None
        return state is not None and state.final

    def open_ticket(self, session: Session, *, requester: str, subject: str, body: str,
                    now: datetime, linked_ref: str | None = None,
                    first: Sequence[EventRecord] = (), mail: bool = True,
                    ticket_id: int | None = None) -> tuple[Ticket, list[OutboxRow]]:
        """Create a ticket in the default workflow and run its triage, in one transaction;
        `first` are events to record before the engine's (the mail that opened it). With a
        reserved `ticket_id` nothing is flushed (see repository.ticket_ids)."""
        name = self.default_workflow
        workflow = self.config.workflows[name]
        ticket = repository.create_ticket(
            session, requester=requester, subject=subject, workflow_name=name,
            workflow_version=workflow.version, initial_state=workflow.initial,
            priority=workflow.default_priority, team=workflow.states[workflow.initial].team,
            now=now, linked_ref=linked_ref, ticket_id=ticket_id)
        # Indexed before triage's mails are rendered: they name its look-alikes.
        search.index_ticket(session, ticket, subject, body)
        engine = self.engines[name]
        alike = self._lookalike(session, engine, ticket, subject, body)
        report = NewTicket(ref=ticket.ref, requester=requester, subject=subject, body=body,
                           lookalike=alike)
        decision = engine.open(report, now)
        # A new ticket has no timers to cancel (and the DELETE would force a flush).
        decision = replace(decision, events=(*first, *decision.events), cancel_timers=False)
        return ticket, self.apply(session, ticket, decision, now, mail=mail,
                                  flush=ticket_id is None)


def _dkim(config: Config, previous: Runtime | None) -> DkimVerifier | None:
    if config.settings.auth.dkim and previous is not None and previous.dkim is not None \
            and _dns(previous.config) == _dns(config):
        return previous.dkim  # a reload keeps the keys and policies cached for their TTL
    return dkim_verifier(config.settings)


def _dns(config: Config) -> tuple[object, ...]:
    auth = config.settings.auth
    return tuple(auth.dns_servers), auth.dns_timeout
