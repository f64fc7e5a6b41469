"""Timers a state sets when a ticket enters it: reminders, an SLA warning, and the expiry."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from daemon.config.durations import format_duration
from daemon.workflow.facts import TimerOrder
from daemon.workflow.model import Timeout, Workflow

# (start, duration, clock "business"|"wall", calendar name) -> when the duration is over.
AddTime = Callable[[datetime, timedelta, str, str], datetime]

DEFAULT_CALENDAR = "default"


def wall_clock(start: datetime, duration: timedelta, clock: str, calendar: str) -> datetime:
    """Every hour counts; the default until the business calendar lands."""
    return start + duration


def _due(order: TimerOrder) -> datetime:
    return order.due_at


@dataclass(frozen=True)
class VendorClock:
    """A vendor's own response time (config/teams.yaml), counted on its calendar."""

    respond_within: timedelta
    calendar: str


class Timers:
    """Schedules the timers of each state's `timeout`, through one AddTime function."""

    def __init__(self, workflow: Workflow, add_time: AddTime,
                 vendors: Mapping[str, VendorClock] | None = None) -> None:
        self._timeouts = {n: s.timeout for n, s in workflow.states.items() if s.timeout}
        self._add_time = add_time
        self._vendors = dict(vendors or {})

    def timeout(self, state: str, vendor: str | None = None) -> Timeout | None:
        """The state's timeout. With `vendor_clock: true` and a ticket whose vendor is known,
        the limit is that vendor's respond_within on its calendar, not the workflow's `after`
        (which then counts only for a ticket without a vendor)."""
        timeout = self._timeouts.get(state)
        clock = self._vendors.get(vendor or "") if timeout and timeout.vendor_clock else None
        if timeout is None or clock is None:
            return timeout
        return timeout.model_copy(update={"after": clock.respond_within, "per_priority": {},
                                          "clock": "business", "calendar": clock.calendar})

    def calendar(self, state: str, vendor: str | None = None) -> str:
        """The calendar that governs `state`: the one its timeout counts on (the vendor's,
        on a vendor clock), else the default. Mail about the ticket shows times in its zone."""
        timeout = self.timeout(state, vendor)
        return (timeout.calendar if timeout else None) or DEFAULT_CALENDAR

    def schedule(self, state: str, priority: str, start: datetime,
                 vendor: str | None = None) -> tuple[TimerOrder, ...]:
        """Every timer for a ticket of `priority` that entered `state` at `start`, by due time."""
        timeout = self.timeout(state, vendor)
        if timeout is None:
            return ()
        end = self._at(timeout, start, timeout.limit(priority))
        reminders = self._reminders(timeout, start, end)
        orders = [TimerOrder("remind", state, due, k) for k, due in reminders]
        if timeout.warn_at is not None:
            warn = self._at(timeout, start, timeout.limit(priority) * timeout.warn_at)
            orders.append(TimerOrder("warn", state, warn))
        orders.append(TimerOrder("expire", state, end))
        return tuple(sorted(orders, key=_due))

    def deadline(self, state: str, priority: str, start: datetime,
                 vendor: str | None = None) -> datetime | None:
        timeout = self.timeout(state, vendor)
        return None if timeout is None else self._at(timeout, start, timeout.limit(priority))

    def reason(self, state: str, priority: str, vendor: str | None = None) -> str:
        """The expiry's reason, with {after} spelled out (other braces are left as written)."""
        timeout = self.timeout(state, vendor)
        assert timeout is not None, f"state {state} has no timeout"
        return timeout.reason.replace("{after}", timeout.spell_limit(priority))

    def _reminders(self, timeout: Timeout, start: datetime,
                   end: datetime) -> Iterator[tuple[int, datetime]]:
        if timeout.remind is None:
            return
        for k in range(1, timeout.remind.times + 1):
            due = self._at(timeout, start, timeout.remind.every * k)
            if due >= end:
                return
            yield k, due

    def _at(self, timeout: Timeout, start: datetime, duration: timedelta) -> datetime:
        return self._add_time(start, duration, timeout.clock, timeout.calendar or DEFAULT_CALENDAR)


class TicketTargets:
    """The whole ticket's first-response and resolution deadlines (the workflow's `sla:`),
    as timers of their own that outlive the ticket's moves."""

    KINDS = {"respond": "first response", "resolve": "resolution"}

    def __init__(self, workflow: Workflow, add_time: AddTime) -> None:
        self._sla = workflow.sla
        self._add_time = add_time

    def target(self, kind: str, priority: str) -> timedelta | None:
        targets = self._sla.first_response if kind == "respond" else self._sla.resolution
        return targets.get(priority)

    def schedule(self, priority: str, start: datetime) -> tuple[TimerOrder, ...]:
        return tuple(TimerOrder(kind, "", self.due(start, target))  # type: ignore[arg-type]
                     for kind in self.KINDS
                     if (target := self.target(kind, priority)) is not None)

    def due(self, start: datetime, duration: timedelta) -> datetime:
        return self._add_time(start, duration, self._sla.clock,
                              self._sla.calendar or DEFAULT_CALENDAR)

    def spell(self, kind: str, priority: str) -> str:
        target = self.target(kind, priority) or timedelta()
        unit = "business " if self._sla.clock == "business" else ""
        return f"{format_duration(target, hours_only=bool(unit))} of {unit}time"
