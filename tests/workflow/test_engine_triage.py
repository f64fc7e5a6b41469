"""Opening a ticket: the shipped triage rules, in order, and what a new ticket gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.config.yamlsource import load_yaml
from daemon.workflow.engine import Engine
from daemon.workflow.facts import NewTicket
from daemon.workflow.model import Workflow

ROOT = Path(__file__).resolve().parents[2]
WF = Workflow.model_validate(load_yaml(ROOT / "workflows/it-support.yaml").data)
ENGINE = Engine(WF)
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

# (sender, subject, body, rule, priority, state)
TRIAGE: list[tuple[str, str, str, str | None, str, str]] = [
    ("pat@example.com", "Email outage", "", "outage", "P1", "tier2"),
    ("pat@example.com", "SAP is DOWN", "", "outage", "P1", "tier2"),
    ("pat@example.com", "Whole office cannot print", "", "outage", "P1", "tier2"),
    ("pat@example.com", "Printer", "Since 8:00 nobody can print.", "outage", "P1", "tier2"),
    ("pat@example.com", "Printer", "The whole sales team is stuck", "outage", "P1", "tier2"),
    ("pat@example.com", "Phishing mail?", "", "security", "P1", "tier3"),
    ("pat@example.com", "I think my laptop has a virus", "", "security", "P1", "tier3"),
    ("pat@example.com", "Forgot my password", "", "password", "P3", "tier1"),
    ("pat@example.com", "Account locked after holiday", "", "password", "P3", "tier1"),
    ("ceo@exec.example.com", "Printer jam", "", "vip", "P2", "triage"),
    ("chair@BOARD.example.com", "Projector", "", "vip", "P2", "triage"),
    # first match wins: outage comes before password and vip
    ("ceo@exec.example.com", "password reset down for all users", "", "outage", "P1", "tier2"),
    ("ceo@exec.example.com", "Locked out", "", "password", "P3", "tier1"),
    # words, not fragments
    ("pat@example.com", "Download is slow", "", None, "P3", "triage"),
    ("pat@exec.example.com.evil.test", "Printer", "", None, "P3", "triage"),
    ("pat@example.com", "Printer jam", "The tray is stuck.", None, "P3", "triage"),
]


@pytest.mark.parametrize(("sender", "subject", "body", "rule", "priority", "state"), TRIAGE,
                         ids=[f"{r[3]}-{r[1]}" for r in TRIAGE])
def test_triage_rule(sender: str, subject: str, body: str, rule: str | None, priority: str,
                     state: str) -> None:
    decision = ENGINE.open(NewTicket("TD-1", sender, subject, body), NOW)
    created = decision.events[0]
    assert (created.kind, created.actor, created.data["rule"]) == ("created", "requester", rule)
    assert created.reason == (f"triage rule {rule} matched" if rule else "no triage rule matched")
    assert (decision.ticket.priority, decision.ticket.state) == (priority, state)


@pytest.mark.parametrize(("subject", "state"), [
    ("Forgot my password", "tier1"), ("Email outage", "tier2"), ("Ransomware!", "tier3")])
def test_a_routed_ticket_moves_on_from_triage(subject: str, state: str) -> None:
    decision = ENGINE.open(NewTicket("TD-2", "pat@example.com", subject, ""), NOW)
    ticket = decision.ticket
    assert (ticket.state, ticket.team, ticket.tiers_visited, ticket.return_state) == (
        state, state, (state,), "triage")
    assert (ticket.created_at, ticket.state_entered_at) == (NOW, NOW)
    created, moved = decision.events
    assert (moved.kind, moved.actor, moved.from_state, moved.to_state) == (
        "transition", "triage", "triage", state)
    assert (moved.data["trigger"], moved.data["target"]) == ("route", state)
    assert [(m.template, m.to) for m in decision.mails] == [
        ("acknowledgement", "requester"), ("escalation_handoff", "team")]
    assert decision.cancel_timers
    assert {t.state for t in decision.timers if t.kind not in ("respond", "resolve")} == {state}


def test_an_unrouted_ticket_waits_in_triage_with_its_timers() -> None:
    decision = ENGINE.open(NewTicket("TD-3", "ceo@exec.example.com", "Printer", "jam"), NOW)
    ticket = decision.ticket
    assert (ticket.state, ticket.team, ticket.priority, ticket.tiers_visited) == (
        "triage", "helpdesk", "P2", ())
    assert [e.kind for e in decision.events] == ["created"]
    # Nobody routed it: the front line hears of it (notify `created`, only_in triage).
    assert [(m.template, m.to) for m in decision.mails] == [
        ("acknowledgement", "requester"), ("new_ticket", "team")]
    # The state's timers, then the whole ticket's (sla: P2 first response 1h, resolution 16h).
    assert [(t.kind, t.state, t.due_at - NOW) for t in decision.timers] == [
        ("warn", "triage", timedelta(minutes=11, seconds=15)),
        ("expire", "triage", timedelta(minutes=15)),
        ("respond", "", timedelta(hours=1)), ("resolve", "", timedelta(hours=16))]


def test_the_acknowledgement_knows_where_the_ticket_went() -> None:
    decision = ENGINE.open(NewTicket("TD-4", "pat@example.com", "Email outage", ""), NOW)
    facts = decision.mails[0].context
    assert (facts["ref"], facts["priority"], facts["team"], facts["to_state"]) == (
        "TD-4", "P1", "tier2", "tier2")
    assert facts["deadline"] == NOW + timedelta(hours=1)
