"""Incidents, pure (issue 19): `#link`/`#unlink` as engine actions on the shipped workflow, the
refusals, a report following its incident, a report's reply going to the incident's team, and
the grammar of the tags. No store: the shell's look-ups come in as LinkFacts."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from daemon.config.yamlsource import load_yaml
from daemon.workflow.commands import Mistake, Request, Vocabulary, parse, ticket_ref
from daemon.workflow.engine import Engine
from daemon.workflow.facts import CommandIssued, LinkFacts, RequesterReplied, TicketFacts
from daemon.workflow.model import Command
from daemon.workflow.tags import find_tags
from daemon.workflow.validate import WorkflowContext, validate_workflow
from tests.workflow.test_engine import ENGINE, NOW, ROOT, WF, mails, ticket

SAM = "sam.rivera@example.com"
INCIDENT = ticket("tier2", ref="TD-1", team="tier2")


def link(target: str = "TD-1", parent: TicketFacts | None = INCIDENT, final: bool = False,
         children: int = 0, state: str = "triage", **changes: object) -> tuple[TicketFacts,
                                                                               object]:
    report = ticket(state, ref="TD-2", **changes)
    cmd = CommandIssued("link", SAM, "helpdesk", "", target,
                        link=LinkFacts(parent, final, children))
    return report, ENGINE.handle(report, cmd, NOW)


def test_link_makes_a_report_whose_clock_stops() -> None:
    _, decision = link()
    assert decision.refusal is None
    assert (decision.ticket.parent, decision.ticket.parent_team) == ("TD-1", "tier2")
    assert decision.cancel_timers and decision.cancel_targets and decision.timers == ()
    assert decision.ticket.responded_at == NOW  # the report was dealt with: a response
    [event] = decision.events
    assert (event.kind, event.reason, event.data["parent"]) == (
        "link", "linked to incident TD-1", "TD-1")


@pytest.mark.parametrize(("kwargs", "why"), [
    ({"target": "TD-2"}, "TD-2 cannot be linked to itself"),
    ({"parent": None, "target": "TD-99"}, "there is no ticket TD-99"),
    ({"parent": ticket("closed", ref="TD-1"), "final": True}, "TD-1 is closed; link to an open"),
    ({"parent": ticket("resolved", ref="TD-1")}, "TD-1 is resolved; link to an open"),
    ({"parent": replace(INCIDENT, parent="TD-5")},
     "TD-1 is itself a report of TD-5; link to TD-5 instead (no chains"),
    ({"children": 2}, "TD-2 is itself an incident with 2 tickets linked"),
])
def test_link_refusals_say_why(kwargs: dict[str, object], why: str) -> None:
    before, decision = link(**kwargs)  # type: ignore[arg-type]
    assert decision.refusal is not None and why in decision.refusal
    assert decision.ticket == before and not decision.events


def test_a_command_outside_its_states_is_refused() -> None:
    _, decision = link(state="resolved")
    assert decision.refusal is not None and "not used in resolved" in decision.refusal


def test_unlink_puts_the_report_on_its_own_clock_from_now() -> None:
    linked = ticket("tier1", ref="TD-2", parent="TD-1", parent_team="tier2")
    decision = ENGINE.handle(linked, CommandIssued("unlink", SAM, "helpdesk"), NOW)
    assert decision.ticket.parent is None and decision.cancel_timers
    kinds = {(t.kind, t.due_at == NOW) for t in decision.timers}
    assert ("expire", False) in kinds and ("resolve", True) in kinds  # re-measured at once
    assert min(t.due_at for t in decision.timers if t.kind != "resolve") > NOW


def test_unlink_of_a_ticket_not_linked_is_refused() -> None:
    decision = ENGINE.handle(ticket("tier1"), CommandIssued("unlink", SAM, "helpdesk"), NOW)
    assert decision.refusal == "TD-7 is not linked to an incident"


def test_a_report_follows_its_incident_into_resolved_without_mail_of_its_own() -> None:
    report = ticket("triage", ref="TD-2", parent="TD-1", parent_team="tier2")
    resolved = replace(INCIDENT, state="resolved")
    decision = ENGINE.follow(report, resolved, "resolve", SAM, "rebooted the gateway", NOW)
    assert decision.refusal is None and decision.ticket.state == "resolved"
    assert decision.mails == ()  # the incident's `linked` mails tell the requester
    assert {t.kind for t in decision.timers} == {"expire"}  # it still closes by itself
    [event] = decision.events
    assert (event.reason, event.data["incident"]) == ("rebooted the gateway", "TD-1")


def test_a_reports_moves_set_no_timers_of_its_own() -> None:
    report = ticket("triage", ref="TD-2", parent="TD-1", parent_team="tier2")
    decision = ENGINE.handle(report, CommandIssued("escalate", SAM, "helpdesk"), NOW)
    assert decision.ticket.state == "tier1" and decision.timers == ()


def test_a_reply_on_a_report_goes_to_the_incidents_team_and_moves_nothing() -> None:
    report = ticket("waiting_on_customer", ref="TD-2", parent="TD-1", parent_team="tier2")
    decision = ENGINE.handle(report, RequesterReplied("still broken"), NOW)
    assert decision.ticket == report
    assert mails(decision) == [("requester_reply", "team")]
    assert decision.mails[0].context["team"] == "tier2"
    assert decision.mails[0].context["incident"] == "TD-1"


def test_the_incidents_mails_name_the_linked_requesters() -> None:
    decision = ENGINE.handle(INCIDENT, CommandIssued("resolve", SAM, "tier2", "fixed"), NOW)
    assert ("resolution_notice", "linked") in mails(decision)


def test_a_commands_states_are_validated() -> None:
    source = load_yaml(ROOT / "workflows/it-support.yaml")
    data = {**source.data, "commands": {"link": {"action": "link", "states": ["tirage"]}}}
    context = WorkflowContext(None, None, {}, True)
    _, problems = validate_workflow(replace(source, data=data), context)
    assert any("command #link names unknown state 'tirage'" in str(p)
               and "triage" in str(p) for p in problems)


VOCABULARY = Vocabulary(commands=("link", "unlink"))


@pytest.mark.parametrize(("line", "target"), [
    ("#link TD-12", "TD-12"), ("#link td-12", "TD-12"), ("#link [TD-12]", "TD-12"),
    ("#link 12", "TD-12"), ("#link to TD-12 same outage", "TD-12"),
])
def test_link_grammar(line: str, target: str) -> None:
    [parsed] = parse(find_tags(line).commands, VOCABULARY)
    assert isinstance(parsed, Request) and parsed.target == target


@pytest.mark.parametrize(("line", "why"), [
    ("#link", "#link needs the ticket of the incident, e.g. #link TD-12"),
    ("#link the vpn one", "'the' is not a ticket; write its ref, e.g. #link TD-12"),
])
def test_link_mistakes(line: str, why: str) -> None:
    [parsed] = parse(find_tags(line).commands, VOCABULARY)
    assert isinstance(parsed, Mistake) and parsed.reason == why
    assert parsed.syntax == "#link <ticket>"


def test_ticket_ref() -> None:
    assert ticket_ref("TD-007") == "TD-7" and ticket_ref("vpn") is None


def engine_with(**link: object) -> Engine:
    return Engine(WF.model_copy(update={"commands": {
        "link": Command.model_validate({"action": "link", **link})}}))


def test_without_states_a_resolved_ticket_still_cannot_join() -> None:
    cmd = CommandIssued("link", SAM, "helpdesk", "", "TD-1", link=LinkFacts(INCIDENT))
    refused = engine_with().handle(ticket("resolved", ref="TD-2"), cmd, NOW).refusal
    assert refused == "TD-2 is resolved: only an open ticket can join an incident"


def test_engine_on_a_workflow_with_states_for_link() -> None:
    engine = engine_with(states=["tier1"])
    cmd = CommandIssued("link", SAM, "helpdesk", "", "TD-1", link=LinkFacts(INCIDENT))
    assert engine.handle(ticket("tier1", ref="TD-2"), cmd, NOW).refusal is None
    refused = engine.handle(ticket("tier2", ref="TD-2"), cmd, NOW + timedelta(1)).refusal
    assert refused == "#link is not used in tier2; the workflow allows it in tier1"


def test_a_report_reopened_by_its_requester_leaves_the_incident() -> None:
    report = ticket("resolved", ref="TD-2", parent="TD-1", parent_team="tier2",
                    return_state="triage")
    decision = ENGINE.handle(report, RequesterReplied("it fails again on my laptop"), NOW)
    assert decision.ticket.state == "triage" and decision.ticket.parent is None
    assert [e.kind for e in decision.events] == ["unlink", "transition"]
    assert {t.kind for t in decision.timers} >= {"expire"}  # its own clock again
