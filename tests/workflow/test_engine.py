"""The workflow engine on the shipped workflow: every transition, every refusal, every action.

Tables first, one row per case; the tests under them only run the rows. A coverage test checks
that the transition table names every (source, trigger, destination) the workflow declares.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import transitions

from daemon.config.yamlsource import load_yaml
from daemon.workflow.engine import Engine
from daemon.workflow.facts import (
    CommandIssued,
    Decision,
    Event,
    RequesterReplied,
    TicketFacts,
    TimerFired,
    VendorReplied,
)
from daemon.workflow.model import ALL_SOURCES, PREVIOUS, Workflow

ROOT = Path(__file__).resolve().parents[2]
WF = Workflow.model_validate(load_yaml(ROOT / "workflows/it-support.yaml").data)
ENGINE = Engine(WF)
ENTERED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
NOW = ENTERED + timedelta(minutes=20)
TECH = "robin.okafor@example.com"


def _team(state: str) -> str:
    known = WF.states.get(state)
    return (known.team if known else None) or "helpdesk"


def ticket(state: str, **changes: Any) -> TicketFacts:
    facts: dict[str, Any] = {
        "ref": "TD-7", "state": state, "priority": "P3", "team": _team(state),
        "requester": "pat@example.com", "subject": "VPN drops", "created_at": ENTERED,
        "state_entered_at": ENTERED,
    }
    return TicketFacts(**{**facts, **changes})


def cmd(name: str, argument: str = "", target: str | None = None, team: str = "tier3",
        actor: str = TECH) -> CommandIssued:
    return CommandIssued(name=name, actor=actor, actor_team=team, argument=argument, target=target)


def mails(decision: Decision) -> list[tuple[str, str]]:
    return [(m.template, m.to) for m in decision.mails]


def assert_refused(before: TicketFacts, decision: Decision, *needles: str) -> None:
    assert decision.refusal is not None, "expected a refusal"
    assert decision.ticket == before
    assert (decision.events, decision.mails, decision.timers) == ((), (), ())
    assert not decision.cancel_timers
    assert "\n" not in decision.refusal and ". " not in decision.refusal  # one sentence
    for needle in needles:
        assert needle in decision.refusal


STATUS = ("status_update", "requester")
HANDOFF = ("escalation_handoff", "team")
RESOLUTION = ("resolution_notice", "requester")
VENDOR = ("vendor_handoff", "vendor")
MANAGER = ("sla_warning", "escalation_manager")
# The same news for the requesters of the tickets linked to this one (#link), if any.
LINKED_STATUS, LINKED_RESOLUTION = ("status_update", "linked"), ("resolution_notice", "linked")
MOVED = [STATUS, LINKED_STATUS]
UP, FIXED, OUT = ([STATUS, LINKED_STATUS, HANDOFF], [RESOLUTION, LINKED_RESOLUTION],
                  [VENDOR, STATUS, LINKED_STATUS])

# ---------------------------------------------------------------- every transition
# (source, trigger, destination variant, ticket changes, event, expected state, mails)
# The variant is the dest as written in the workflow: a state, or "previous".
MOVES: list[tuple[str, str, str, dict[str, Any], Event, str, list[tuple[str, str]]]] = [
    ("triage", "escalate", "tier1", {}, cmd("escalate", team="helpdesk"), "tier1", UP),
    ("triage", "escalate", "tier2", {}, cmd("escalate", target="tier2"), "tier2", UP),
    ("triage", "escalate", "tier3", {}, cmd("escalate", target="Tier3"), "tier3", UP),
    ("triage", "escalate", "tier1", {}, TimerFired("expire", "triage"), "tier1", UP),
    ("tier1", "escalate", "tier2", {}, cmd("escalate", team="tier1"), "tier2", UP),
    ("tier1", "escalate", "tier3", {}, cmd("escalate", target="tier3"), "tier3", UP),
    ("tier1", "escalate", "tier2", {}, TimerFired("expire", "tier1"), "tier2", UP),
    ("tier2", "escalate", "tier3", {}, cmd("escalate", team="tier2"), "tier3", UP),
    ("tier2", "escalate", "tier3", {}, cmd("escalate", target="tier3"), "tier3", UP),
    ("tier2", "escalate", "tier3", {}, TimerFired("expire", "tier2"), "tier3", UP),
    ("tier3", "deescalate", "tier2", {}, cmd("deescalate"), "tier2", [HANDOFF]),
    ("tier3", "deescalate", "tier1", {}, cmd("deescalate", target="tier1"), "tier1", [HANDOFF]),
    ("tier2", "deescalate", "tier1", {}, cmd("deescalate", team="tier2"), "tier1", [HANDOFF]),
    ("vendor", "deescalate", "tier3", {}, cmd("deescalate"), "tier3", [HANDOFF]),
    ("tier2", "to_vendor", "vendor", {}, cmd("vendor", team="tier2"), "vendor", OUT),
    ("tier3", "to_vendor", "vendor", {}, cmd("vendor", "VPNCo case 991"), "vendor", OUT),
    ("vendor", "vendor_overdue", "tier3", {}, TimerFired("expire", "vendor"), "tier3", [HANDOFF]),
    ("vendor", "vendor_replied", "tier3", {}, VendorReplied("fixed in 5.1.2"), "tier3", []),
    ("tier3", "remind_manager", "tier3", {}, TimerFired("expire", "tier3"), "tier3", [MANAGER]),
    ("triage", "wait", "waiting_on_customer", {}, cmd("wait", team="helpdesk"),
     "waiting_on_customer", MOVED),
    ("tier1", "wait", "waiting_on_customer", {}, cmd("wait", "which VPN client?", team="tier1"),
     "waiting_on_customer", MOVED),
    ("tier2", "wait", "waiting_on_customer", {}, cmd("wait"), "waiting_on_customer", MOVED),
    ("tier3", "wait", "waiting_on_customer", {}, cmd("wait"), "waiting_on_customer", MOVED),
    ("waiting_on_customer", "customer_replied", PREVIOUS, {"return_state": "tier2"},
     RequesterReplied("it is the Cisco one"), "tier2", MOVED),
    ("waiting_on_customer", "customer_replied", PREVIOUS, {"return_state": "triage"},
     RequesterReplied("here you go"), "triage", MOVED),
    ("triage", "resolve", "resolved", {}, cmd("resolve", "reset the token", team="helpdesk"),
     "resolved", FIXED),
    ("tier1", "resolve", "resolved", {}, cmd("resolve", "reset the token"), "resolved", FIXED),
    ("tier2", "resolve", "resolved", {}, cmd("resolve", "new profile"), "resolved", FIXED),
    ("tier3", "resolve", "resolved", {}, cmd("resolve", "patched the gateway"), "resolved",
     FIXED),
    ("vendor", "resolve", "resolved", {}, cmd("resolve", "vendor fixed it"), "resolved", FIXED),
    ("waiting_on_customer", "resolve", "resolved", {}, cmd("resolve", "works now", team="tier1"),
     "resolved", FIXED),
    ("waiting_on_customer", "resolve", "resolved", {"return_state": "tier1"},
     TimerFired("expire", "waiting_on_customer"), "resolved", FIXED),
    ("resolved", "customer_replied", PREVIOUS, {"return_state": "tier3"},
     RequesterReplied("still broken"), "tier3", MOVED),
    ("resolved", "reopen", PREVIOUS, {"return_state": "tier2"}, cmd("reopen", team="tier2"),
     "tier2", MOVED),
    ("resolved", "reopen", PREVIOUS, {"return_state": "tier1"}, cmd("reopen", target="tier1"),
     "tier1", MOVED),
    ("resolved", "close", "closed", {}, TimerFired("expire", "resolved"), "closed", []),
]
# `route` is fired by triage rules; test_engine_triage.py covers its three destinations.
ROUTED = {("triage", "route", "tier1"), ("triage", "route", "tier2"), ("triage", "route", "tier3")}


def _declared() -> set[tuple[str, str, str]]:
    working = [n for n, s in WF.states.items() if not s.final]
    return {(s, t.trigger, d) for t in WF.transitions
            for s in (working if ALL_SOURCES in t.source else t.source) for d in t.dest}


def test_the_table_covers_every_declared_transition() -> None:
    covered = {(source, trigger, variant) for source, trigger, variant, *_ in MOVES} | ROUTED
    assert covered == _declared()


def _row_id(row: tuple[Any, ...]) -> str:
    source, trigger, variant, _, event, *_ = row
    return f"{source}-{trigger}-{variant}-{type(event).__name__}"


@pytest.mark.parametrize("row", MOVES, ids=[_row_id(r) for r in MOVES])
def test_transition(row: tuple[Any, ...]) -> None:
    source, trigger, _, changes, event, expected, expected_mails = row
    before = ticket(source, **changes)
    decision = ENGINE.handle(before, event, NOW)
    assert decision.refusal is None
    assert decision.ticket.state == expected
    assert decision.ticket.state_entered_at == NOW
    assert decision.cancel_timers
    assert mails(decision) == expected_mails
    *before_move, event_record = decision.events
    assert (event_record.kind, event_record.from_state, event_record.to_state) == (
        "transition", source, expected)
    assert event_record.data["trigger"] == trigger
    # Only a deadline missed on a running clock adds an sla_breach before the move.
    breached = isinstance(event, TimerFired) and WF.states[source].clock == "running"
    assert [e.kind for e in before_move] == (["sla_breach"] if breached else [])


@pytest.mark.parametrize(("event", "actor", "reason"), [
    (cmd("escalate", "needs VPN admin rights", team="tier1", actor="alex.chen@example.com"),
     "alex.chen@example.com", "needs VPN admin rights"),
    (TimerFired("expire", "tier1"), "clock", "no response in tier 1 within 4 business hours"),
])
def test_a_move_records_who_moved_it_and_why(event: Event, actor: str, reason: str) -> None:
    *_, record = ENGINE.handle(ticket("tier1"), event, NOW).events
    assert (record.kind, record.actor, record.reason) == ("transition", actor, reason)


def test_a_reply_moves_with_the_requester_as_actor() -> None:
    before = ticket("waiting_on_customer", return_state="tier2")
    (record,) = ENGINE.handle(before, RequesterReplied("done"), NOW).events
    assert (record.kind, record.actor) == ("transition", "requester")


def test_mail_context_carries_the_facts_of_the_move() -> None:
    before = ticket("tier1", assignee="alex.chen@example.com")
    decision = ENGINE.handle(before, cmd("escalate", "needs admin", target="tier2", team="tier1",
                                         actor="alex.chen@example.com"), NOW)
    expire = next(t for t in decision.timers if t.kind == "expire")
    facts = decision.mails[0].context
    assert {k: facts[k] for k in ("ref", "subject", "priority", "from_state", "to_state", "trigger",
                                  "actor", "reason", "argument", "team", "previous_team",
                                  "deadline")} == {
        "ref": "TD-7", "subject": "VPN drops", "priority": "P3", "from_state": "tier1",
        "to_state": "tier2", "trigger": "escalate", "actor": "alex.chen@example.com",
        "reason": "needs admin", "argument": "needs admin", "team": "tier2",
        "previous_team": "tier1", "deadline": expire.due_at}


def test_close_sends_nothing_because_its_notify_entry_is_empty() -> None:
    decision = ENGINE.handle(ticket("resolved"), TimerFired("expire", "resolved"), NOW)
    assert decision.ticket.state == "closed" and decision.mails == ()


# ---------------------------------------------------------------- refusals
# (ticket state, ticket changes, event, words the refusal must contain)
REFUSALS: list[tuple[str, dict[str, Any], Event, tuple[str, ...]]] = [
    ("tier1", {}, cmd("frobnicate"),
     ("#frobnicate is not a command", "known commands: #escalate, #deescalate, #vendor, #wait",
      "#help")),
    ("tier2", {}, cmd("vendor", team="tier1"),
     ("#vendor may be used by tier2 and tier3 only, not by tier1",)),
    ("tier2", {}, cmd("deescalate", team="tier1"), ("#deescalate may be used by", "not by tier1")),
    ("tier1", {}, cmd("assign", "bob", team="tier1"), ("#assign may be used by", "not by tier1")),
    ("closed", {}, cmd("resolve", "again"),
     ("#resolve is not possible in state closed", "a reply from the requester opens a new ticket")),
    ("closed", {}, cmd("reopen"), ("#reopen is not possible in state closed",)),
    ("tier1", {}, cmd("reopen", team="tier1"),
     ("#reopen is not possible in state tier1; possible here: #escalate, #wait, #resolve",)),
    ("tier1", {}, cmd("vendor", team="tier2"),
     ("#vendor is not possible in state tier1; possible here: #escalate, #wait, #resolve",)),
    ("waiting_on_customer", {}, cmd("escalate", team="tier1"),
     ("#escalate is not possible in state waiting_on_customer; possible here: #resolve",)),
    ("tier3", {}, cmd("escalate"),
     ("#escalate is not possible: tier3 is the last tier",
      "the clock fires remind_manager after 16 business hours",
      "possible here: #deescalate, #vendor, #wait, #resolve")),
    ("tier3", {"priority": "P1"}, cmd("escalate"), ("remind_manager after 4 business hours",)),
    ("tier1", {}, cmd("deescalate", team="tier2"),
     ("#deescalate is not possible: tier1 is the first tier; possible here: #escalate",)),
    ("tier1", {}, cmd("escalate", target="tier1", team="tier1"),
     ("#escalate from tier1 can go to tier2 or tier3, not tier1",)),
    ("triage", {}, cmd("escalate", target="tier9", team="helpdesk"),
     ("#escalate from triage can go to tier1, tier2 or tier3, not tier9",)),
    ("tier2", {}, cmd("escalate", target="tier1", team="tier2"),
     ("#escalate from tier2 can go to tier3, not tier1",)),
    ("tier2", {}, cmd("resolve"), ("#resolve needs a summary: #resolve <what fixed it>",)),
    ("tier2", {}, cmd("resolve", "   "), ("#resolve needs a summary",)),
    ("vendor", {}, cmd("resolve"), ("#resolve needs a summary",)),
    ("resolved", {"return_state": None}, cmd("reopen"),
     ("#reopen returns to the state the ticket came from, and this ticket has none",)),
    ("resolved", {"return_state": "tier2"}, cmd("reopen", target="tier1"),
     ("#reopen from resolved can go to tier2, not tier1",)),
    ("tier1", {}, cmd("assign", team="tier2"),
     ("#assign needs someone to assign: #assign <address>",)),
    ("tier1", {}, cmd("note", "  "), ("#note needs the text to note: #note <text>",)),
    ("tier1", {}, cmd("priority", "urgent"), ("#priority needs one of P1, P2, P3, P4",)),
    ("tier1", {}, cmd("priority"),
     ("#priority needs one of P1, P2, P3, P4: #priority <priority>",)),
    ("closed", {}, RequesterReplied("thanks"), ("ticket is closed; a reply opens a new ticket",)),
    ("limbo", {}, cmd("take"), ("state limbo is not in workflow it-support",)),
]


@pytest.mark.parametrize(("state", "changes", "event", "needles"), REFUSALS,
                         ids=[f"{r[0]}-{getattr(r[2], 'name', type(r[2]).__name__)}-{i}"
                              for i, r in enumerate(REFUSALS)])
def test_refusal(state: str, changes: dict[str, Any], event: Event,
                 needles: tuple[str, ...]) -> None:
    before = ticket(state, **changes)
    assert_refused(before, ENGINE.handle(before, event, NOW), *needles)


def test_command_names_are_read_without_hash_and_case() -> None:
    decision = ENGINE.handle(ticket("tier1"), cmd("#Escalate", team="tier1"), NOW)
    assert decision.ticket.state == "tier2"


def _every_request() -> list[Event]:
    names = [*WF.commands, "frobnicate"]
    targets = [None, *WF.states, "nowhere"]
    commands = [cmd(n, a, t, team) for n in names for t in targets for a in ("", "x y")
                for team in ("helpdesk", "tier1", "tier2", "tier3", "sales")]
    timers = [TimerFired(k, s) for k in ("remind", "warn", "expire") for s in WF.states]
    return [*commands, *timers, RequesterReplied(""), RequesterReplied("hi")]


@pytest.mark.parametrize("state", list(WF.states))
@pytest.mark.parametrize("return_state", [None, "tier2", "closed"])
def test_nothing_raises_and_a_refusal_changes_nothing(state: str, return_state: str | None) -> None:
    before = ticket(state, return_state=return_state)
    for event in _every_request():
        decision = ENGINE.handle(before, event, NOW)
        if decision.refused:
            assert_refused(before, decision)


# ---------------------------------------------------------------- actions
def test_take_assigns_the_technician() -> None:
    take = cmd("take", team="tier1", actor="alex.chen@example.com")
    decision = ENGINE.handle(ticket("tier1"), take, NOW)
    assert decision.ticket.assignee == "alex.chen@example.com"
    (record,) = decision.events
    assert (record.kind, record.actor) == ("take", "alex.chen@example.com")
    assert decision.mails == () and decision.timers == () and not decision.cancel_timers


@pytest.mark.parametrize(("argument", "target", "assignee"), [
    ("jordan.blake@example.com", None, "jordan.blake@example.com"),
    ("jordan.blake@example.com please look", None, "jordan.blake@example.com"),
    ("", "morgan.lee@example.com", "morgan.lee@example.com"),
])
def test_assign(argument: str, target: str | None, assignee: str) -> None:
    decision = ENGINE.handle(ticket("tier1"), cmd("assign", argument, target, team="helpdesk"), NOW)
    assert decision.ticket.assignee == assignee
    assert [(e.kind, e.actor) for e in decision.events] == [("assign", TECH)]


def test_a_note_is_internal_and_mails_nobody() -> None:
    decision = ENGINE.handle(ticket("tier2"), cmd("note", "customer is on holiday"), NOW)
    (record,) = decision.events
    assert (record.kind, record.actor, record.reason) == ("note", TECH, "customer is on holiday")
    assert record.data["internal"] is True
    assert decision.mails == () and decision.ticket == ticket("tier2")


@pytest.mark.parametrize("name", ["status", "help"])
def test_status_and_help_only_record(name: str) -> None:
    decision = ENGINE.handle(ticket("tier2"), cmd(name), NOW)
    assert [(e.kind, e.actor) for e in decision.events] == [(name, TECH)]
    assert decision.ticket == ticket("tier2") and decision.mails == () and decision.timers == ()


def test_every_command_records_an_event_by_the_technician() -> None:
    requests = {"take": "", "assign": "bob", "note": "n", "priority": "P2", "status": "",
                "help": "", "escalate": "", "wait": "", "resolve": "fixed"}
    for name, argument in requests.items():
        decision = ENGINE.handle(ticket("tier2"), cmd(name, argument), NOW)
        assert decision.refusal is None, name
        assert [e.actor for e in decision.events] == [TECH], name


# ---------------------------------------------------------------- teams and assignees
@pytest.mark.parametrize(("state", "event", "team", "assignee"), [
    ("tier1", cmd("escalate", team="tier1"), "tier2", None),
    ("tier2", cmd("wait"), "tier1", None),
    ("tier3", cmd("vendor"), "tier3", TECH),  # tier 3 keeps the ticket while the vendor works
    ("tier3", TimerFired("expire", "tier3"), "tier3", TECH),
    ("vendor", TimerFired("expire", "vendor"), "tier3", TECH),
    ("tier3", cmd("resolve", "fixed"), "helpdesk", None),
    ("resolved", TimerFired("expire", "resolved"), "helpdesk", TECH),  # closed has no team
])
def test_a_team_change_clears_the_assignee(state: str, event: Event, team: str,
                                           assignee: str | None) -> None:
    decision = ENGINE.handle(ticket(state, assignee=TECH), event, NOW)
    assert (decision.ticket.team, decision.ticket.assignee) == (team, assignee)
    if mails(decision):
        assert decision.mails[0].context["previous_team"] == ticket(state).team


# ---------------------------------------------------------------- return_state chains
def run(start: TicketFacts, events: list[Event]) -> tuple[TicketFacts, list[str]]:
    states, current = [], start
    for i, event in enumerate(events):
        decision = ENGINE.handle(current, event, NOW + timedelta(minutes=i))
        assert decision.refusal is None, decision.refusal
        current = decision.ticket
        states.append(current.state)
    return current, states


CHAINS: list[tuple[str, list[Event], list[str], str | None]] = [
    ("tier2", [cmd("wait"), RequesterReplied("answer")], ["waiting_on_customer", "tier2"], "tier2"),
    ("tier3", [cmd("resolve", "fixed"), cmd("reopen")], ["resolved", "tier3"], "tier3"),
    ("tier2", [cmd("wait"), cmd("resolve", "fixed"), RequesterReplied("not fixed")],
     ["waiting_on_customer", "resolved", "tier2"], "tier2"),
    ("tier1", [cmd("wait"), TimerFired("expire", "waiting_on_customer"), cmd("reopen")],
     ["waiting_on_customer", "resolved", "tier1"], "tier1"),
    ("tier3", [cmd("vendor"), cmd("resolve", "vendor patch"), cmd("reopen")],
     ["vendor", "resolved", "tier3"], "tier3"),
    ("tier1", [cmd("escalate"), cmd("wait"), RequesterReplied("a"), cmd("resolve", "x"),
               cmd("reopen")], ["tier2", "waiting_on_customer", "tier2", "resolved", "tier2"],
     "tier2"),
    ("triage", [cmd("wait"), RequesterReplied("a")], ["waiting_on_customer", "triage"], "triage"),
    ("tier3", [TimerFired("expire", "tier3")], ["tier3"], "tier3"),
    ("tier3", [cmd("resolve", "fixed"), TimerFired("expire", "resolved")], ["resolved", "closed"],
     "tier3"),
]


@pytest.mark.parametrize(("start", "events", "path", "return_state"), CHAINS)
def test_return_state_chain(start: str, events: list[Event], path: list[str],
                            return_state: str | None) -> None:
    end, states = run(ticket(start), events)
    assert states == path
    assert end.return_state == return_state


# ---------------------------------------------------------------- bounces
def test_bounces_flag_the_ticket_exactly_once() -> None:
    current = ticket("tier1", tiers_visited=("tier1",))
    steps = [("escalate", "tier2", 0), ("deescalate", "tier1", 1), ("escalate", "tier2", 2),
             ("deescalate", "tier1", 3), ("escalate", "tier2", 4)]
    flags = []
    for name, state, bounces in steps:
        decision = ENGINE.handle(current, cmd(name, team="tier2"), NOW)
        current = decision.ticket
        assert (current.state, current.bounces) == (state, bounces)
        flags.append([e.kind for e in decision.events].count("bounce_flagged"))
        if flags[-1]:
            assert ("bounce_alert", "escalation_manager") in mails(decision)
            assert decision.events[-1].actor == TECH
    assert flags == [0, 0, 0, 1, 0]
    assert current.flagged and current.tiers_visited == ("tier1", "tier2")


@pytest.mark.parametrize(("start", "events"), [
    ("tier2", [cmd("wait"), RequesterReplied("a")]),
    ("tier3", [cmd("resolve", "x"), cmd("reopen")]),
    ("tier3", [cmd("vendor"), TimerFired("expire", "vendor")]),
    ("tier3", [cmd("vendor"), cmd("deescalate")]),
    ("tier3", [TimerFired("expire", "tier3")]),
])
def test_returning_to_the_tier_just_worked_in_is_no_bounce(start: str, events: list[Event]) -> None:
    end, _ = run(ticket(start, tiers_visited=(start,), bounces=2), events)
    assert (end.state, end.bounces, end.flagged) == (start, 2, False)


def test_entering_a_tier_records_it_once() -> None:
    end, _ = run(ticket("triage"), [cmd("escalate", team="helpdesk"), cmd("escalate"),
                                    cmd("escalate")])
    assert end.tiers_visited == ("tier1", "tier2", "tier3") and end.bounces == 0


# ---------------------------------------------------------------- one shared machine
def test_triggers_from() -> None:
    assert ENGINE.triggers_from("tier3") == ("deescalate", "to_vendor", "remind_manager", "wait",
                                             "resolve")
    assert ENGINE.triggers_from("closed") == ()
    assert ENGINE.triggers_from("limbo") == ()


def test_one_machine_serves_every_ticket(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(WF)
    machine = engine.machine
    built: list[object] = []
    original = transitions.Machine.__init__

    def counting(self: transitions.Machine, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(transitions.Machine, "__init__", counting)
    for n in range(300):
        before = ticket("tier1", ref=f"TD-{n}")
        engine.handle(engine.handle(before, cmd("escalate", team="tier1"), NOW).ticket,
                      cmd("deescalate"), NOW)
    assert built == []
    assert engine.machine is machine and isinstance(machine, transitions.Machine)
    assert machine.models == []  # tickets are never added to it


def test_threads_share_the_machine_safely() -> None:
    engine = Engine(WF)
    results: dict[int, list[str]] = {}

    def work(n: int) -> None:
        current, seen = ticket("tier1"), []
        for i in range(400):
            name = "escalate" if i % 2 == 0 else "deescalate"
            current = engine.handle(current, cmd(name, team="tier2"), NOW).ticket
            seen.append(current.state)
        results[n] = seen

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(seen == ["tier2", "tier1"] * 200 for seen in results.values())
