"""The typed, frozen shape of a workflow file (workflows/*.yaml)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from daemon.config.durations import format_duration, parse_duration
from daemon.config.frozen import Frozen, Int

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")]

# Named checks a transition may require; the engine implements each one.
CONDITIONS = {
    "has_summary": "the event carries a summary (e.g. `#resolve <what fixed it>`)",
    "has_reason": "the event carries a reason",
    "is_assigned": "the ticket has an assignee",
    "not_just_thanks": "the requester's reply is more than a thank-you (see workflow/thanks.py)",
}
# Built-in command actions that do not move a ticket.
ACTIONS = ("take", "assign", "note", "priority", "status", "help", "link", "unlink")
# Who a mail can go to; resolved to addresses from config/teams.yaml.
# `linked`: the requester of every ticket linked to this one (an incident's reports), each on
# their own ticket's thread.
RECIPIENTS = ("requester", "team", "previous_team", "assignee", "vendor",
              "escalation_manager", "actor", "linked")
# Events other than trigger names that `notify` may list; `link`/`unlink`: a ticket became a
# report of an incident (by #link or a triage rule), or stopped being one (#unlink).
INCIDENT_EVENTS = ("link", "unlink")
NOTIFY_EVENTS = ("created", "moved", "replied", "reminder", "warning", "bounce_flagged",
                 *INCIDENT_EVENTS)
ALL_SOURCES = "*"
PREVIOUS = "previous"


class Reminders(Frozen):
    times: Annotated[Int, Field(ge=1, le=100)]
    every: Duration


class Timeout(Frozen):
    after: Duration
    per_priority: dict[str, Duration] = {}
    clock: Literal["business", "wall"] = "business"
    calendar: Name | None = None
    remind: Reminders | None = None
    warn_at: Annotated[float, Field(gt=0, lt=1)] | None = None
    then: Name
    reason: str = "no progress within {after}"
    # While the ticket has a vendor (#vendor), its respond_within from config/teams.yaml on
    # the vendor's calendar replaces `after` and `per_priority` (daemon/workflow/timers.py).
    vendor_clock: bool = False

    def limit(self, priority: str) -> timedelta:
        return self.per_priority.get(priority, self.after)

    def spell_limit(self, priority: str) -> str:
        """The limit as people say it: "4 business hours", "30 business minutes", "5d"."""
        limit = self.limit(priority)
        if self.clock == "wall":
            return format_duration(limit)
        minutes = int(limit.total_seconds()) // 60
        if minutes % 60 == 0:
            hours = minutes // 60
            return f"{hours} business hour{'s' if hours != 1 else ''}"
        if minutes < 60:
            return f"{minutes} business minute{'s' if minutes != 1 else ''}"
        return f"{format_duration(timedelta(minutes=minutes), hours_only=True)} of business time"


class State(Frozen):
    team: Name | None = None
    tier: Annotated[Int, Field(ge=1)] | None = None
    clock: Literal["running", "paused", "stopped"] = "running"
    final: bool = False
    timeout: Timeout | None = None


def _one_or_many(value: object) -> object:
    return (value,) if isinstance(value, str) else value


class Transition(Frozen):
    trigger: Name
    source: Annotated[tuple[str, ...], Field(min_length=1), BeforeValidator(_one_or_many)]
    dest: Annotated[tuple[str, ...], Field(min_length=1), BeforeValidator(_one_or_many)]
    condition: str | None = None


class Command(Frozen):
    trigger: Name | None = None
    action: Literal["take", "assign", "note", "priority", "status", "help", "link",
                    "unlink"] | None = None
    teams: Literal["all"] | tuple[Name, ...] = "all"
    # The states the command may be used in; empty: every state (a trigger's own
    # transitions still decide where it can move a ticket).
    states: Annotated[tuple[Name, ...], BeforeValidator(_one_or_many)] = ()

    @model_validator(mode="after")
    def _exactly_one(self) -> Command:
        if (self.trigger is None) == (self.action is None):
            raise ValueError("a command needs exactly one of `trigger` or `action`")
        return self


def _regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value, re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


class TriageMatch(Frozen):
    subject: str | None = None
    body: str | None = None
    sender: str | None = None
    # The new report looks at least this much (0..1, settings.duplicates' measure) like an
    # open ticket opened within duplicates.window; required on top of any pattern.
    looks_like_open: Annotated[float, Field(gt=0, le=1)] | None = None

    _check = field_validator("subject", "body", "sender")(_regex)

    @model_validator(mode="after")
    def _something(self) -> TriageMatch:
        if not (self.subject or self.body or self.sender or self.looks_like_open):
            raise ValueError("a match needs at least one of subject, body, sender or "
                             "looks_like_open")
        return self


class TriageOutcome(Frozen):
    priority: str | None = None
    route: str | None = None


class TriageRule(TriageOutcome):
    name: str
    match: TriageMatch
    # Link the new ticket to the open ticket it looks like (`looks_like_open`), as `#link`
    # would: a report of that incident, told so by notify `link`.
    link: bool = False


class Triage(Frozen):
    default: TriageOutcome = TriageOutcome()
    rules: tuple[TriageRule, ...] = ()


class SlaTargets(Frozen):
    """Whole-ticket targets per priority; each state's own target is its timeout."""

    first_response: dict[str, Duration] = {}
    resolution: dict[str, Duration] = {}
    clock: Literal["business", "wall"] = "business"
    calendar: Name | None = None


class BounceGuard(Frozen):
    max_bounces: Annotated[Int, Field(ge=0)]


class MailSpec(Frozen):
    template: Name
    to: Literal["requester", "team", "previous_team", "assignee", "vendor",
                "escalation_manager", "actor", "linked"]
    # Sent only when the ticket is in one of these states after the event; empty: always.
    # `created` covers every new ticket, routed or not: `only_in: triage` there reaches the
    # front line only for the tickets no triage rule took elsewhere (those get a handoff).
    only_in: Annotated[tuple[Name, ...], BeforeValidator(_one_or_many)] = ()

    def applies(self, state: object) -> bool:
        return not self.only_in or state in self.only_in


class Workflow(Frozen):
    name: Name
    version: Annotated[Int, Field(ge=1)]
    initial: str
    priorities: Annotated[tuple[Name, ...], Field(min_length=1)] = ("P1", "P2", "P3", "P4")
    default_priority: str = "P3"
    states: dict[Name, State]
    transitions: tuple[Transition, ...]
    commands: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")], Command] = {}
    triage: Triage = Triage()
    bounce_guard: BounceGuard | None = None
    sla: SlaTargets = SlaTargets()
    notify: dict[Name, tuple[MailSpec, ...]] = {}
