"""A report's own clock stops while it is linked to an incident (issue 19): the SLA report
reads `link`/`unlink` events as a paused stint of its own, and a report resolved with its
incident is done."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.clock.business_hours import calendar_span
from daemon.clock.sla import LINKED, report
from daemon.site.config import load_config
from daemon.store.models import Event
from daemon.tickets.sla import sla_moves

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_config(ROOT, {})
WF = CONFIG.workflows["it-support"]
SPAN = calendar_span(CONFIG.settings.calendars)
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # Monday 09:00 in Berlin, working hours
H = timedelta(hours=1)


def event(kind: str, at: datetime, source: str, dest: str, **data: object) -> Event:
    return Event(kind=kind, at=at, from_state=source, to_state=dest, actor="x", reason="",
                 data=dict(data))


def stopped(state: str) -> bool:
    return WF.states[state].clock == "stopped" or WF.states[state].final


def measure(events: list[Event], now: datetime) -> tuple[timedelta, bool, list[str]]:
    moves = sla_moves(events, WF.initial, stopped)
    sla = report(WF, "P3", T0, moves, T0, SPAN, now)
    return sla.resolution.took, sla.resolution.done, [s.state for s in sla.stints]


def test_linked_time_does_not_count_and_moves_while_linked_stay_paused() -> None:
    events = [event("transition", T0, "triage", "tier1"),
              event("link", T0 + H, "tier1", "tier1", parent="TD-1"),
              event("transition", T0 + 2 * H, "tier1", "tier2"),
              event("unlink", T0 + 4 * H, "tier2", "tier2", parent="TD-1")]
    took, done, states = measure(events, T0 + 5 * H)
    assert (took, done) == (2 * H, False)  # tier1 09-10, tier2 from the unlink 13-14
    assert states == ["triage", "tier1", LINKED, "tier2"]


def test_resolved_with_the_incident_is_done() -> None:
    events = [event("link", T0 + H, "triage", "triage", parent="TD-1"),
              event("transition", T0 + 3 * H, "triage", "resolved")]
    took, done, states = measure(events, T0 + 5 * H)
    assert (took, done) == (H, True)
    assert states == ["triage", LINKED, "resolved"]


def test_an_already_linked_event_changes_nothing() -> None:
    events = [event("link", T0 + H, "triage", "triage")]  # "already a report of": no parent
    assert measure(events, T0 + 2 * H)[2] == ["triage"]
