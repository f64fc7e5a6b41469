"""Plain data that goes into and comes out of the engine: ticket facts, events, decisions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal


@dataclass(frozen=True)
class TicketFacts:
    """What the engine needs to know about a ticket; the store builds it from a row."""

    ref: str
    state: str
    priority: str
    team: str | None
    requester: str
    subject: str
    created_at: datetime
    state_entered_at: datetime
    assignee: str | None = None
    # The working state `dest: previous` returns to (last state left whose clock was running).
    return_state: str | None = None
    tiers_visited: tuple[str, ...] = ()
    bounces: int = 0
    flagged: bool = False
    vendor: str | None = None
    responded_at: datetime | None = None  # a technician's first action
    # The incident this ticket is a report of (`#link TD-12`), and that incident's team: while
    # linked, the parent's clock governs and the requester's replies go to the parent's team.
    parent: str | None = None
    parent_team: str | None = None


@dataclass(frozen=True)
class Lookalike:
    """The open ticket of the last hours a new report looks most like (the shell's search,
    daemon/tickets/lookalike.py), scored 0..1, and the incident the report would join: that
    ticket, or its own incident when it is a report already (no chains)."""

    ref: str
    score: float
    incident: TicketFacts


@dataclass(frozen=True)
class NewTicket:
    """A first mail that opens a ticket; triage rules look at subject, body and sender, and
    at `lookalike` (searched only when a rule asks `looks_like_open`)."""

    ref: str
    requester: str
    subject: str
    body: str
    lookalike: Lookalike | None = None


@dataclass(frozen=True)
class RequesterReplied:
    text: str = ""


@dataclass(frozen=True)
class VendorReplied:
    """The vendor answered: where the workflow says so, the ticket goes back to its tier."""

    text: str = ""


@dataclass(frozen=True)
class LinkFacts:
    """What `#link TD-12` needs of the store, looked up by the shell: the ticket it names
    (None: there is none), whether that one is in a final state, and how many tickets are
    linked to the ticket being linked (an incident cannot become a report of another)."""

    parent: TicketFacts | None
    parent_final: bool = False
    children: int = 0


@dataclass(frozen=True)
class CommandIssued:
    """A technician's command tag, authenticated and parsed (e.g. `#escalate to tier3 x`)."""

    name: str
    actor: str
    actor_team: str
    argument: str = ""
    target: str | None = None
    link: LinkFacts | None = None  # `#link` only


@dataclass(frozen=True)
class TimerFired:
    """A timer row came due. `state` is the state it was set for: a stale timer is ignored."""

    kind: Literal["remind", "warn", "expire", "respond", "resolve"]
    state: str
    seq: int = 0


Event = RequesterReplied | VendorReplied | CommandIssued | TimerFired


@dataclass(frozen=True)
class EventRecord:
    """One line of a ticket's audit trail."""

    kind: str  # created, transition, note, assign, priority, reminder, warning, bounce_flagged, ...
    actor: str  # an address, "requester", "triage" or "clock"
    from_state: str | None = None
    to_state: str | None = None
    reason: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TimerOrder:
    """A timer to create; the clock loop fires it as TimerFired(kind, state, seq) at due_at."""

    kind: Literal["remind", "warn", "expire", "respond", "resolve"]
    state: str  # "" for the ticket-level respond and resolve timers
    due_at: datetime
    seq: int = 0


@dataclass(frozen=True)
class MailOrder:
    """A mail to send: a template, a recipient role, and the facts the template may use."""

    template: str
    to: str  # a role from model.RECIPIENTS; the shell resolves it to addresses
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """The whole outcome of one event. A refusal changes nothing and says why."""

    ticket: TicketFacts
    events: tuple[EventRecord, ...] = ()
    cancel_timers: bool = False  # drop the ticket's pending timers before adding `timers`
    # Drop its first-response and resolution timers too (`#link`: the incident's clock governs).
    cancel_targets: bool = False
    timers: tuple[TimerOrder, ...] = ()
    # New due times for the ticket's first-response and resolution timers still pending.
    retarget: tuple[TimerOrder, ...] = ()
    mails: tuple[MailOrder, ...] = ()
    refusal: str | None = None

    @property
    def refused(self) -> bool:
        return self.refusal is not None
