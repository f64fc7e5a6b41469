"""Engine features the shipped workflow does not use: other conditions, `*` sources, `previous`
in a list, a route that cannot go, no bounce guard."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from daemon.workflow.engine import Engine
from daemon.workflow.facts import CommandIssued, NewTicket, TicketFacts
from daemon.workflow.model import Workflow

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DATA: dict[str, Any] = {
    "name": "small", "version": 1, "initial": "new",
    "states": {
        "new": {"team": "desk", "timeout": {"after": "1h", "then": "take_over", "clock": "wall"}},
        "a": {"team": "desk", "tier": 1},
        "b": {"team": "ops", "tier": 2},
        "parked": {"team": "desk", "clock": "paused"},
        "done": {"final": True, "clock": "stopped"},
    },
    "transitions": [
        {"trigger": "route", "source": "new", "dest": "a"},
        {"trigger": "up", "source": "a", "dest": "b", "condition": "is_assigned"},
        {"trigger": "down", "source": "b", "dest": "a", "condition": "has_reason"},
        {"trigger": "park", "source": ["a", "b"], "dest": "parked"},
        {"trigger": "unpark", "source": "parked", "dest": ["previous", "a"]},
        {"trigger": "finish", "source": "*", "dest": "done"},
        {"trigger": "poke", "source": "b", "dest": "b"},
    ],
    "commands": {"up": {"trigger": "up"}, "down": {"trigger": "down"},
                 "park": {"trigger": "park"}, "unpark": {"trigger": "unpark"},
                 "finish": {"trigger": "finish"}, "take": {"action": "take"},
                 "poke": {"trigger": "poke"}},
    "triage": {"rules": [{"name": "misrouted", "match": {"subject": "x"}, "route": "b"},
                         {"name": "fine", "match": {"subject": "y"}, "route": "a"}]},
    "notify": {"moved": [{"template": "status", "to": "requester"}]},
}
WF = Workflow.model_validate(DATA)
ENGINE = Engine(WF)


def ticket(state: str, **changes: Any) -> TicketFacts:
    facts: dict[str, Any] = {
        "ref": "TD-1", "state": state, "priority": "P3", "team": WF.states[state].team,
        "requester": "pat@example.com", "subject": "s", "created_at": NOW, "state_entered_at": NOW,
    }
    return TicketFacts(**{**facts, **changes})


def cmd(name: str, argument: str = "", target: str | None = None) -> CommandIssued:
    return CommandIssued(name=name, actor="kim@example.com", actor_team="desk", argument=argument,
                         target=target)


@pytest.mark.parametrize(("before", "event", "state", "refusal"), [
    (ticket("a"), cmd("up"), "a", "#up needs an assignee first: #take it, or #assign <who>"),
    (ticket("a", assignee="kim@example.com"), cmd("up"), "b", None),
    (ticket("b"), cmd("down"), "b", "#down needs a reason: #down <why>"),
    (ticket("b"), cmd("down", target="a"), "b", "#down needs a reason: #down to a <why>"),
    (ticket("b"), cmd("down", "wrong tier"), "a", None),
    (ticket("parked", return_state="b"), cmd("unpark"), "b", None),
    (ticket("parked", return_state="b"), cmd("unpark", target="a"), "a", None),
    (ticket("parked", return_state="b"), cmd("unpark", target="b"), "b", None),
    (ticket("parked"), cmd("unpark"), "parked",
     "#unpark returns to the state the ticket came from, and this ticket has none; "
     "name one instead: #unpark to a"),
    (ticket("parked", return_state="b"), cmd("unpark", target="new"), "parked",
     "#unpark from parked can go to b or a, not new"),
    (ticket("new"), cmd("finish"), "done", None),
    (ticket("parked"), cmd("finish"), "done", None),
    (ticket("done"), cmd("finish"), "done", "#finish is not possible in state done"),
    (ticket("new"), cmd("up"), "new", "possible here: #finish"),
])
def test_custom_rule(before: TicketFacts, event: CommandIssued, state: str,
                     refusal: str | None) -> None:
    decision = ENGINE.handle(before, event, NOW)
    assert decision.ticket.state == state
    if refusal is None:
        assert decision.refusal is None
    else:
        assert decision.refusal is not None and refusal in decision.refusal


def test_star_sources_exclude_final_states() -> None:
    assert ENGINE.triggers_from("done") == ()
    assert "finish" in ENGINE.triggers_from("parked")


def test_a_route_that_cannot_go_leaves_the_ticket_in_triage_and_says_why() -> None:
    decision = ENGINE.open(NewTicket("TD-5", "pat@example.com", "x", ""), NOW)
    assert decision.refusal is None and decision.ticket.state == "new"
    created, failed = decision.events
    assert (failed.kind, failed.actor) == ("route_refused", "triage")
    assert "route from new can go to a, not b" in failed.reason
    assert [t.kind for t in decision.timers] == ["expire"]


def test_without_a_bounce_guard_bounces_count_but_never_flag() -> None:
    current = ticket("a", tiers_visited=("a", "b"), bounces=5, assignee="kim@example.com")
    decision = ENGINE.handle(current, cmd("up"), NOW)
    assert (decision.ticket.bounces, decision.ticket.flagged) == (6, False)
    assert [e.kind for e in decision.events] == ["transition"]


def test_moved_mail_only_on_a_state_change() -> None:
    decision = ENGINE.handle(ticket("b"), cmd("down", "x"), NOW)
    assert [(m.template, m.to) for m in decision.mails] == [("status", "requester")]
    again = ENGINE.handle(ticket("b"), cmd("poke"), NOW)
    assert again.ticket.state == "b" and again.ticket.state_entered_at == NOW
    assert again.mails == () and again.cancel_timers


def test_an_unknown_condition_is_refused_when_the_engine_is_built() -> None:
    data = copy.deepcopy(DATA)
    data["transitions"][1]["condition"] = "is_lucky"
    with pytest.raises(ValueError, match="unknown condition 'is_lucky'"):
        Engine(Workflow.model_validate(data))
