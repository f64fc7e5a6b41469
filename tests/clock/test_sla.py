"""SLA metrics from a timeline: each state against its own target, first response,
resolution (paused states not counted), breaches; on the real calendars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.clock.business_hours import calendar_span
from daemon.clock.sla import Move, report
from daemon.site.config import load_config

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_config(ROOT, {})
WF = CONFIG.workflows["it-support"]
SPAN = calendar_span(CONFIG.settings.calendars)
# Monday 30 Nov 2026, 09:00 in Berlin (default calendar: Mon-Thu 08:00-18:00).
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
M, H = timedelta(minutes=1), timedelta(hours=1)


def test_each_state_is_measured_against_its_own_target() -> None:
    moves = [Move(T0, "tier2"), Move(T0 + 70 * M, "tier3"), Move(T0 + 2 * H, "resolved")]
    sla = report(WF, "P1", T0, moves, T0 + 5 * M, SPAN, T0 + 3 * H)
    by_state = {s.state: s.measure for s in sla.stints}
    assert by_state["tier2"].took == 70 * M and by_state["tier2"].target == H
    assert by_state["tier2"].breached
    assert by_state["tier3"].took == 50 * M and not by_state["tier3"].breached
    assert by_state["resolved"].target is None  # a stopped clock has no target of ours
    assert [m.name for m in sla.breaches] == ["tier2"]


def test_first_response_and_resolution() -> None:
    moves = [Move(T0, "tier2"), Move(T0 + 30 * M, "resolved")]
    sla = report(WF, "P1", T0, moves, T0 + 20 * M, SPAN, T0 + 3 * H)
    assert (sla.first_response.took, sla.first_response.target) == (20 * M, 15 * M)
    assert sla.first_response.breached and sla.first_response.done
    assert (sla.resolution.took, sla.resolution.done) == (30 * M, True)
    assert not sla.resolution.breached


def test_paused_time_does_not_count_towards_resolution() -> None:
    moves = [Move(T0, "tier1"), Move(T0 + H, "waiting_on_customer"),
             Move(T0 + 5 * H, "tier1"), Move(T0 + 6 * H, "resolved")]
    sla = report(WF, "P3", T0, moves, T0 + M, SPAN, T0 + 7 * H)
    assert sla.resolution.took == 2 * H
    assert sla.time_in("paused") == 4 * H


def test_open_ticket_counts_so_far_and_nights_do_not_count() -> None:
    # Enters tier1 Monday 17:00 Berlin; "now" is Tuesday 09:00 Berlin: 1h Monday + 1h Tuesday.
    entered = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    sla = report(WF, "P3", entered, [Move(entered, "tier1")], None, SPAN,
                 datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    tier1 = sla.stints[-1].measure
    assert (tier1.took, tier1.done, tier1.left) == (2 * H, False, 2 * H)
    assert not sla.first_response.done and sla.first_response.took == 2 * H


@pytest.mark.parametrize("state", ["waiting_on_customer", "vendor"])
def test_waiting_on_others_is_never_a_breach(state: str) -> None:
    moves = [Move(T0, "tier2"), Move(T0 + 10 * M, state)]
    sla = report(WF, "P3", T0, moves, T0 + M, SPAN, T0 + 30 * 24 * H)
    assert [m.name for m in sla.breaches if m.name == state] == []
