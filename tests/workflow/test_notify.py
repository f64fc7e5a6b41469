"""The workflow's `notify`: which mails an engine step orders, `only_in` narrowing a mail to
the states it is meant for, and the shipped front-line notice on a new ticket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon.config.yamlsource import load_yaml
from daemon.workflow.engine import Engine
from daemon.workflow.facts import NewTicket
from daemon.workflow.mails import Notifier, first_lines
from daemon.workflow.model import MailSpec, Workflow

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = Workflow.model_validate(load_yaml(ROOT / "workflows/it-support.yaml").data)
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, 10:00 in Berlin
PLAIN = "Hi,\n\n\nthe printer on the 3rd floor says 'offline'.\nI restarted it twice.\n\nPat"


def spec(**fields: Any) -> MailSpec:
    return MailSpec.model_validate({"template": "t", "to": "team", **fields})


@pytest.mark.parametrize(("only_in", "state", "sent"), [
    (None, "triage", True), (None, "tier2", True),  # no only_in: always
    ("triage", "triage", True), ("triage", "tier2", False),
    (["tier1", "tier2"], "tier2", True), (["tier1", "tier2"], "triage", False),
])
def test_only_in_sends_the_mail_only_in_its_states(only_in: str | list[str] | None,
                                                   state: str, sent: bool) -> None:
    mail = spec(**({} if only_in is None else {"only_in": only_in}))
    orders = Notifier({"created": (mail,)}).mails("created", {"state": state})
    assert [o.template for o in orders] == (["t"] if sent else [])


def test_only_in_takes_one_state_or_a_list() -> None:
    assert spec(only_in="triage").only_in == ("triage",)
    assert spec(only_in=["a", "b"]).only_in == ("a", "b")
    assert spec().only_in == ()


def test_a_new_ticket_no_rule_routed_tells_the_triage_team() -> None:
    decision = Engine(SHIPPED).open(NewTicket("TD-7", "pat@example.org",
                                              "cannot print to the 3rd-floor printer", PLAIN), NOW)
    assert decision.ticket.state == "triage"
    assert [(m.template, m.to) for m in decision.mails] == [
        ("acknowledgement", "requester"), ("new_ticket", "team")]
    facts = decision.mails[1].context
    assert (facts["team"], facts["requester"], facts["priority"]) == (
        "helpdesk", "pat@example.org", "P3")
    assert facts["reason"] == "no triage rule matched"
    assert facts["deadline"] == NOW + timedelta(minutes=30)  # triage's timeout, P3
    assert facts["excerpt"] == ("Hi,\n\nthe printer on the 3rd floor says 'offline'.\n"
                                "I restarted it twice.\n\nPat")


def test_a_rule_that_matches_without_routing_is_named_in_the_notice() -> None:
    decision = Engine(SHIPPED).open(NewTicket("TD-8", "ceo@exec.example.com", "Projector",
                                              "It flickers."), NOW)
    [notice] = [m for m in decision.mails if m.template == "new_ticket"]
    assert (notice.context["reason"], notice.context["priority"]) == (
        "triage rule vip matched", "P2")
    assert notice.context["deadline"] == NOW + timedelta(minutes=15)


@pytest.mark.parametrize(("subject", "state"), [
    ("Email outage", "tier2"), ("Forgot my password", "tier1"), ("Ransomware!", "tier3")])
def test_a_routed_ticket_gets_its_handoff_and_no_notice(subject: str, state: str) -> None:
    decision = Engine(SHIPPED).open(NewTicket("TD-9", "pat@example.org", subject, ""), NOW)
    assert decision.ticket.state == state
    assert [(m.template, m.to) for m in decision.mails] == [
        ("acknowledgement", "requester"), ("escalation_handoff", "team")]


def test_a_route_that_cannot_go_leaves_the_ticket_with_the_front_line() -> None:
    # The rule routes to `b`, which `route` cannot reach: the ticket stays, so the desk hears.
    data: dict[str, Any] = {
        "name": "small", "version": 1, "initial": "new",
        "states": {"new": {"team": "desk"}, "a": {"team": "desk", "tier": 1},
                   "b": {"team": "ops", "tier": 2}, "done": {"final": True}},
        "transitions": [{"trigger": "route", "source": "new", "dest": "a"},
                        {"trigger": "finish", "source": "*", "dest": "done"}],
        "triage": {"rules": [{"name": "misrouted", "match": {"subject": "x"}, "route": "b"}]},
        "notify": {"created": [{"template": "new_ticket", "to": "team", "only_in": "new"}],
                   "route": [{"template": "handoff", "to": "team"}]},
    }
    engine = Engine(Workflow.model_validate(data))
    stuck = engine.open(NewTicket("TD-1", "pat@example.org", "x", ""), NOW)
    assert stuck.ticket.state == "new" and [e.kind for e in stuck.events] == [
        "created", "route_refused"]
    assert [m.template for m in stuck.mails] == ["new_ticket"]
    data["triage"]["rules"][0]["route"] = "a"
    routed = Engine(Workflow.model_validate(data)).open(
        NewTicket("TD-2", "pat@example.org", "x", ""), NOW)
    assert routed.ticket.state == "a" and [m.template for m in routed.mails] == ["handoff"]


@pytest.mark.parametrize(("text", "expected"), [
    ("", ""),
    ("\n\n  one line  \n\n", "one line"),
    ("a\n\n\n\nb\r\nc", "a\n\nb\nc"),  # blank runs folded, CRLF read as lines
    ("\n".join(f"line {n}" for n in range(1, 12)),
     "\n".join(f"line {n}" for n in range(1, 9)) + "\n[...]"),
    ("x" * 700, "x" * 600 + "\n[...]"),
])
def test_first_lines_is_a_short_preview(text: str, expected: str) -> None:
    assert first_lines(text) == expected
