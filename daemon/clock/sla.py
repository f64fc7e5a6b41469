"""SLA metrics of one ticket, from its timeline: time in each state against that state's own
target, first response and resolution against the workflow's targets. Pure: the caller
passes the transitions, who counts as staff, and how a clock measures time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from daemon.workflow.model import Workflow

# (start, end, clock "business"|"wall", calendar name) -> the time that clock counted.
TimeBetween = Callable[[datetime, datetime, str, str], timedelta]
DEFAULT_CALENDAR = "default"
# Not a workflow state: the time a ticket spent as a report of an incident (#link), paused
# (the incident's clock governs), shown as a stint of its own.
LINKED = "(linked)"


@dataclass(frozen=True)
class Move:
    """A state change as the timeline recorded it."""

    at: datetime
    to_state: str


@dataclass(frozen=True)
class Measure:
    """One figure against its target; `done` is False while it is still counting."""

    name: str
    took: timedelta
    target: timedelta | None
    done: bool

    @property
    def breached(self) -> bool:
        return self.target is not None and self.took > self.target

    @property
    def left(self) -> timedelta | None:
        return None if self.target is None else self.target - self.took


@dataclass(frozen=True)
class Stint:
    """One stay in one state."""

    state: str
    entered: datetime
    left: datetime | None
    clock: str  # running, paused or stopped, as the state declares
    measure: Measure


@dataclass(frozen=True)
class SlaReport:
    stints: tuple[Stint, ...]
    first_response: Measure
    resolution: Measure

    @property
    def breaches(self) -> tuple[Measure, ...]:
        measures = (self.first_response, self.resolution, *(s.measure for s in self.stints))
        return tuple(m for m in measures if m.breached)

    def time_in(self, kind: str) -> timedelta:
        """Total time in states whose clock is `kind` (paused: waiting on someone else)."""
        return sum((s.measure.took for s in self.stints if s.clock == kind), timedelta())


def report(workflow: Workflow, priority: str, created_at: datetime, moves: Sequence[Move],
           first_staff_action: datetime | None, between: TimeBetween,
           now: datetime) -> SlaReport:
    stints = tuple(_stints(workflow, priority, created_at, moves, between, now))
    return SlaReport(stints, _first_response(workflow, priority, created_at,
                                             first_staff_action, between, now),
                     _resolution(workflow, priority, stints))


def _stints(workflow: Workflow, priority: str, created_at: datetime, moves: Sequence[Move],
            between: TimeBetween, now: datetime) -> list[Stint]:
    entries = [Move(created_at, workflow.initial), *moves]
    stints = []
    for entry, leaving in zip(entries, [*entries[1:], None], strict=True):
        end = leaving.at if leaving else now
        if entry.to_state == LINKED:
            took = between(entry.at, end, "wall", DEFAULT_CALENDAR)
            stints.append(Stint(LINKED, entry.at, leaving.at if leaving else None, "paused",
                                Measure(LINKED, took, None, leaving is not None)))
            continue
        state = workflow.states.get(entry.to_state)
        if state is None:  # a state since removed from the workflow: nothing to measure on
            continue
        end = leaving.at if leaving else now
        timeout = state.timeout
        clock, calendar = ((timeout.clock, timeout.calendar or DEFAULT_CALENDAR) if timeout
                           else ("wall", DEFAULT_CALENDAR))
        # Only a running clock is ours to keep; waiting on others has no target.
        target = timeout.limit(priority) if timeout and state.clock == "running" else None
        measure = Measure(entry.to_state, between(entry.at, end, clock, calendar), target,
                          leaving is not None)
        stints.append(Stint(entry.to_state, entry.at, leaving.at if leaving else None,
                            state.clock, measure))
    return stints


def _sla_clock(workflow: Workflow) -> tuple[str, str]:
    return workflow.sla.clock, workflow.sla.calendar or DEFAULT_CALENDAR


def _first_response(workflow: Workflow, priority: str, created_at: datetime,
                    responded: datetime | None, between: TimeBetween, now: datetime) -> Measure:
    clock, calendar = _sla_clock(workflow)
    took = between(created_at, responded or now, clock, calendar)
    return Measure("first response", took, workflow.sla.first_response.get(priority),
                   responded is not None)


def _resolution(workflow: Workflow, priority: str, stints: Sequence[Stint]) -> Measure:
    """Working time until the first stop of the clock; paused states do not count."""
    took, done = timedelta(), False
    for stint in stints:
        if stint.clock == "stopped":
            done = True
            break
        if stint.clock == "running":
            took += stint.measure.took
    return Measure("resolution", took, workflow.sla.resolution.get(priority), done)
