"""Whole-ticket SLA targets: first response and resolution timers, and what meets them."""

from __future__ import annotations

from datetime import timedelta

from daemon.workflow.facts import TimerFired
from tests.workflow.test_engine import ENGINE, NOW, cmd, ticket


def test_no_first_response_in_time_is_a_breach() -> None:
    decision = ENGINE.handle(ticket("tier2", priority="P2"), TimerFired("respond", ""), NOW)
    (breach,) = decision.events
    assert (breach.kind, breach.actor, breach.data["target"]) == (
        "sla_breach", "clock", "first response")
    assert breach.reason == "no first response within 1h of business time"
    assert decision.ticket == ticket("tier2", priority="P2") and not decision.timers


def test_a_first_response_in_time_meets_the_target() -> None:
    answered = ticket("tier2", responded_at=NOW - timedelta(minutes=5))
    (met,) = ENGINE.handle(answered, TimerFired("respond", ""), NOW).events
    assert (met.kind, met.reason) == ("sla_met", "first response within 4h of business time")


def test_resolution_target_is_met_once_the_clock_stopped() -> None:
    (met,) = ENGINE.handle(ticket("resolved"), TimerFired("resolve", ""), NOW).events
    assert met.kind == "sla_met"
    (breach,) = ENGINE.handle(ticket("tier3"), TimerFired("resolve", ""), NOW).events
    assert breach.reason == "no resolution within 40h of business time"


def test_a_technicians_first_move_is_the_first_response() -> None:
    moved = ENGINE.handle(ticket("tier2"), cmd("escalate", "needs tier 3", team="tier2"), NOW)
    assert moved.ticket.responded_at == NOW
    later = ENGINE.handle(moved.ticket, cmd("deescalate", "back"), NOW + timedelta(hours=1))
    assert later.ticket.responded_at == NOW  # the first one stays


def test_internal_work_is_not_a_response() -> None:
    noted = ENGINE.handle(ticket("tier2"), cmd("note", "looking at logs", team="tier2"), NOW)
    assert noted.ticket.responded_at is None
