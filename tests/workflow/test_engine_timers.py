"""Engine timers on the shipped workflow: what entering a state schedules, and what firing does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest

from daemon.config.yamlsource import load_yaml
from daemon.workflow.engine import Engine, wall_clock
from daemon.workflow.facts import CommandIssued, Event, RequesterReplied, TicketFacts, TimerFired
from daemon.workflow.model import Workflow
from daemon.workflow.timers import TicketTargets

ROOT = Path(__file__).resolve().parents[2]
WF = Workflow.model_validate(load_yaml(ROOT / "workflows/it-support.yaml").data)
ENGINE = Engine(WF)
TARGETS = TicketTargets(WF, wall_clock)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
H, M, D = timedelta(hours=1), timedelta(minutes=1), timedelta(days=1)
TECH = "robin.okafor@example.com"


def ticket(state: str, **changes: Any) -> TicketFacts:
    facts: dict[str, Any] = {
        "ref": "TD-9", "state": state, "priority": "P3",
        "team": WF.states[state].team or "helpdesk",
        "requester": "pat@example.com", "subject": "Printer", "created_at": T0,
        "state_entered_at": T0,
    }
    return TicketFacts(**{**facts, **changes})


def cmd(name: str, argument: str = "", target: str | None = None) -> CommandIssued:
    return CommandIssued(name=name, actor=TECH, actor_team="tier3", argument=argument,
                         target=target)


def schedule(timers: tuple[Any, ...]) -> list[tuple[str, int, timedelta]]:
    return [(t.kind, t.seq, t.due_at - T0) for t in timers]


# A way into each state with a timeout: state -> (from state, event)
ENTRIES: dict[str, tuple[str, Event]] = {
    "triage": ("waiting_on_customer", RequesterReplied("the answer")),  # with return_state=triage
    "tier1": ("triage", cmd("escalate")),
    "tier2": ("tier1", cmd("escalate")),
    "tier3": ("tier2", cmd("escalate")),
    "vendor": ("tier3", cmd("vendor")),
    "waiting_on_customer": ("tier2", cmd("wait")),
    "resolved": ("tier2", cmd("resolve", "fixed")),
}

# (state entered, priority, [(kind, seq, offset from entering)])
SCHEDULES: list[tuple[str, str, list[tuple[str, int, timedelta]]]] = [
    ("triage", "P3", [("warn", 0, 22 * M + timedelta(seconds=30)), ("expire", 0, 30 * M)]),
    ("triage", "P1", [("warn", 0, 7 * M + timedelta(seconds=30)), ("expire", 0, 10 * M)]),
    ("triage", "P2", [("warn", 0, 11 * M + timedelta(seconds=15)), ("expire", 0, 15 * M)]),
    ("tier1", "P3", [("remind", 1, H), ("remind", 2, 2 * H), ("warn", 0, 3 * H),
                     ("expire", 0, 4 * H)]),
    ("tier1", "P1", [("warn", 0, 22 * M + timedelta(seconds=30)), ("expire", 0, 30 * M)]),
    ("tier1", "P2", [("remind", 1, H), ("warn", 0, 90 * M), ("expire", 0, 2 * H)]),
    ("tier1", "P4", [("remind", 1, H), ("remind", 2, 2 * H), ("warn", 0, 12 * H),
                     ("expire", 0, 16 * H)]),
    ("tier2", "P3", [("remind", 1, 2 * H), ("remind", 2, 4 * H), ("warn", 0, 6 * H),
                     ("expire", 0, 8 * H)]),
    ("tier2", "P1", [("warn", 0, 45 * M), ("expire", 0, H)]),
    ("tier2", "P2", [("remind", 1, 2 * H), ("warn", 0, 3 * H), ("expire", 0, 4 * H)]),
    ("tier3", "P3", [("remind", 1, 4 * H), ("remind", 2, 8 * H), ("remind", 3, 12 * H),
                     ("warn", 0, 12 * H + 48 * M), ("expire", 0, 16 * H)]),
    ("tier3", "P1", [("warn", 0, 3 * H + 12 * M), ("expire", 0, 4 * H)]),
    ("tier3", "P2", [("remind", 1, 4 * H), ("warn", 0, 6 * H + 24 * M), ("expire", 0, 8 * H)]),
    ("vendor", "P1", [("remind", 1, 8 * H), ("remind", 2, 16 * H), ("expire", 0, 24 * H)]),
    ("waiting_on_customer", "P3", [("remind", 1, 24 * H), ("expire", 0, 40 * H)]),
    ("resolved", "P2", [("expire", 0, 5 * D)]),
]


@pytest.mark.parametrize(("state", "priority", "expected"), SCHEDULES,
                         ids=[f"{s}-{p}" for s, p, _ in SCHEDULES])
def test_entering_a_state_schedules_its_timers(state: str, priority: str,
                                               expected: list[tuple[str, int, timedelta]]) -> None:
    source, event = ENTRIES[state]
    before = ticket(source, priority=priority, return_state=state)
    decision = ENGINE.handle(before, event, T0)
    assert decision.ticket.state == state
    assert decision.cancel_timers
    assert schedule(decision.timers) == expected
    assert {t.state for t in decision.timers} == {state}


def test_a_state_without_timeout_sets_no_timers_but_cancels_the_old_ones() -> None:
    decision = ENGINE.handle(ticket("resolved"), TimerFired("expire", "resolved"), T0)
    assert decision.ticket.state == "closed"
    assert decision.timers == () and decision.cancel_timers


def test_re_entering_tier3_restarts_its_clock() -> None:
    later = T0 + 2 * D
    decision = ENGINE.handle(ticket("tier3"), TimerFired("expire", "tier3"), later)
    assert decision.ticket.state_entered_at == later
    assert decision.cancel_timers
    assert decision.timers[-1].due_at == later + 16 * H


@pytest.mark.parametrize(("state", "clock", "calendar"), [
    ("tier1", "business", "default"),
    ("tier3", "business", "office-hours"),
    ("resolved", "wall", "default"),
])
def test_add_time_gets_the_clock_and_calendar(state: str, clock: str, calendar: str) -> None:
    calls: list[tuple[datetime, timedelta, str, str]] = []

    def recording(start: datetime, duration: timedelta, clk: str, cal: str) -> datetime:
        calls.append((start, duration, clk, cal))
        return wall_clock(start, duration, clk, cal) + timedelta(days=7)  # a long weekend

    source, event = ENTRIES[state]
    decision = Engine(WF, recording).handle(ticket(source), event, T0)
    assert calls and {(s, c, k) for s, _, c, k in calls} == {(T0, clock, calendar)}
    assert [t.due_at for t in decision.timers] == sorted(T0 + d + timedelta(days=7)
                                                         for _, d, _, _ in calls)


# ---------------------------------------------------------------- firing
def test_a_stale_timer_does_nothing() -> None:
    before = ticket("tier2")
    for kind in ("remind", "warn", "expire"):
        decision = ENGINE.handle(before, TimerFired(kind, "tier1"), T0 + 5 * H)
        assert decision.ticket == before and decision.refusal is None
        assert (decision.events, decision.mails, decision.timers) == ((), (), ())
        assert not decision.cancel_timers


def test_a_timer_in_a_state_without_timeout_is_stale() -> None:
    decision = ENGINE.handle(ticket("closed"), TimerFired("expire", "closed"), T0)
    assert decision.refusal is None and decision.events == ()


@pytest.mark.parametrize(("kind", "event", "template"), [
    ("remind", "reminder", "reminder"),
    ("warn", "warning", "sla_warning"),
])
def test_reminders_and_warnings_tell_the_team(kind: Literal["remind", "warn"], event: str,
                                              template: str) -> None:
    before = ticket("tier1", assignee=TECH)
    decision = ENGINE.handle(before, TimerFired(kind, "tier1", 1 if kind == "remind" else 0),
                             T0 + 3 * H)
    assert decision.ticket == before and not decision.cancel_timers and decision.timers == ()
    (record,) = decision.events
    assert (record.kind, record.actor) == (event, "clock")
    assert [(m.template, m.to) for m in decision.mails] == [(template, "team")]
    assert decision.mails[0].context["deadline"] == T0 + 4 * H
    assert decision.mails[0].context["team"] == "tier1"


@pytest.mark.parametrize(("state", "priority", "then", "dest", "reason"), [
    ("triage", "P1", "escalate", "tier1", "not triaged within 10 business minutes"),
    ("tier1", "P3", "escalate", "tier2", "no response in tier 1 within 4 business hours"),
    ("tier1", "P4", "escalate", "tier2", "no response in tier 1 within 16 business hours"),
    ("tier2", "P2", "escalate", "tier3", "no response in tier 2 within 4 business hours"),
    ("tier3", "P1", "remind_manager", "tier3", "no progress in tier 3 within 4 business hours"),
    ("vendor", "P3", "vendor_overdue", "tier3", "vendor has not answered within 24 business hours"),
    ("waiting_on_customer", "P3", "resolve", "resolved",
     "no answer from the requester within 40 business hours"),
    ("resolved", "P3", "close", "closed", "resolved and quiet for 5d"),
])
def test_expiry_fires_then_with_the_clock_as_actor(state: str, priority: str, then: str, dest: str,
                                                   reason: str) -> None:
    before = ticket(state, priority=priority, return_state="tier1")
    decision = ENGINE.handle(before, TimerFired("expire", state), T0 + 5 * D)
    assert decision.ticket.state == dest
    *breach, record = decision.events
    assert (record.kind, record.actor, record.reason, record.data["trigger"]) == (
        "transition", "clock", reason, then)
    # A missed target of a running clock is recorded as a breach; waiting is not one.
    running = WF.states[state].clock == "running"
    assert [(e.kind, e.actor) for e in breach] == ([("sla_breach", "clock")] if running else [])


# ---------------------------------------------------------------- priority changes
def test_priority_change_reschedules_from_when_the_state_was_entered() -> None:
    before = ticket("tier1", state_entered_at=T0)
    decision = ENGINE.handle(before, cmd("priority", "P1 - whole floor affected"), T0 + 40 * M)
    assert decision.ticket.priority == "P1"
    assert decision.ticket.state_entered_at == T0
    assert decision.cancel_timers
    # the warning is already past and dropped; the expiry, past too, is kept for the clock
    assert schedule(decision.timers) == [("expire", 0, 30 * M)]
    (record,) = decision.events
    assert (record.kind, record.actor, record.data["previous"], record.data["priority"]) == (
        "priority", TECH, "P3", "P1")


def test_priority_change_keeps_warnings_still_ahead() -> None:
    decision = ENGINE.handle(ticket("tier1", state_entered_at=T0), cmd("priority", "P1"),
                             T0 + 10 * M)
    assert schedule(decision.timers) == [("warn", 0, 22 * M + timedelta(seconds=30)),
                                         ("expire", 0, 30 * M)]


def test_priority_is_read_in_any_case_and_from_a_target() -> None:
    assert ENGINE.handle(ticket("tier2"), cmd("priority", "p4"), T0).ticket.priority == "P4"
    assert ENGINE.handle(ticket("tier2"), cmd("priority", target="P2"), T0).ticket.priority == "P2"


def test_a_lower_priority_moves_the_deadline_out() -> None:
    decision = ENGINE.handle(ticket("tier2"), cmd("priority", "P4"), T0 + H)
    assert decision.timers[-1].due_at == T0 + 24 * H


def test_the_same_priority_changes_no_timers() -> None:
    decision = ENGINE.handle(ticket("tier2"), cmd("priority", "P3"), T0 + H)
    assert decision.ticket == ticket("tier2")
    assert decision.timers == () and not decision.cancel_timers
    assert [e.kind for e in decision.events] == ["priority"]


def test_priority_in_a_state_without_timeout_only_records() -> None:
    decision = ENGINE.handle(ticket("closed"), cmd("priority", "P1"), T0)
    assert decision.ticket.priority == "P1"
    assert decision.timers == () and not decision.cancel_timers


def test_priority_change_moves_the_sla_targets_from_the_opening() -> None:
    opened = ticket("tier1", created_at=T0 - H)
    decision = ENGINE.handle(opened, cmd("priority", "P1"), T0)
    assert [(order.kind, order.due_at) for order in decision.retarget] == [
        (kind, TARGETS.due(T0 - H, target))
        for kind, target in (("respond", WF.sla.first_response["P1"]),
                             ("resolve", WF.sla.resolution["P1"]))]
    assert ENGINE.handle(opened, cmd("priority", "P3"), T0).retarget == ()
