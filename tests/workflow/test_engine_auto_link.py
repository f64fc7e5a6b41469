"""The triage rule that links a new ticket to the open one it looks like (`looks_like_open`,
`link: true`), pure: the shell's search comes in as NewTicket.lookalike."""

from __future__ import annotations

from dataclasses import replace

import pytest

from daemon.config.yamlsource import load_yaml
from daemon.workflow.engine import Engine
from daemon.workflow.facts import Lookalike, NewTicket
from daemon.workflow.model import TriageRule, Workflow
from daemon.workflow.validate import WorkflowContext, validate_workflow
from tests.workflow.test_engine import NOW, ROOT, WF, mails, ticket

SAME = TriageRule.model_validate({"name": "same-outage", "match": {"looks_like_open": 0.8},
                                  "link": True})


def with_rules(*rules: TriageRule) -> Workflow:
    return WF.model_copy(update={"triage": WF.triage.model_copy(
        update={"rules": (*rules, *WF.triage.rules)})})


ENGINE = Engine(with_rules(SAME))
INCIDENT = ticket("tier2", ref="TD-1", team="tier2", subject="VPN is down")


def report(score: float | None, incident: object = INCIDENT, alike: str = "TD-3",
           subject: str = "VPN down since 9") -> NewTicket:
    found = None if score is None else Lookalike(alike, score, incident)  # type: ignore[arg-type]
    return NewTicket("TD-4", "zoe@example.org", subject, "It is down.", found)


def test_a_report_alike_enough_is_linked_and_says_why() -> None:
    decision = ENGINE.open(report(0.87), NOW)
    assert decision.ticket.parent == "TD-1" and decision.ticket.state == "triage"
    assert decision.timers == ()  # neither state timers nor targets: the incident's clock
    link = next(e for e in decision.events if e.kind == "link")
    assert link.reason == ("linked to incident TD-1: triage rule same-outage matched: looks "
                           "87% like open TD-3")
    assert (link.actor, link.data["score"], link.data["lookalike"]) == ("triage", 0.87, "TD-3")
    assert mails(decision) == [("acknowledgement", "requester"), ("new_ticket", "team"),
                               ("linked_notice", "requester")]
    notice = decision.mails[1].context["auto_link"]
    assert notice == {"incident": "TD-1", "lookalike": "TD-3", "rule": "same-outage",
                      "score": "87%"}
    assert decision.mails[2].context["incident_subject"] == "VPN is down"


@pytest.mark.parametrize("score", [None, 0.79])
def test_below_the_threshold_triage_goes_on_as_before(score: float | None) -> None:
    decision = ENGINE.open(report(score), NOW)
    assert decision.ticket.parent is None
    assert decision.ticket.state == "tier2"  # the outage rule ("down") routed it
    assert not any(e.kind == "link" for e in decision.events)
    assert "linked_notice" not in {t for t, _ in mails(decision)}


def test_at_the_threshold_it_links() -> None:
    assert ENGINE.open(report(0.8), NOW).ticket.parent == "TD-1"


def test_a_link_the_checks_refuse_leaves_the_ticket_on_its_own_clock() -> None:
    chained = replace(INCIDENT, parent="TD-0")  # the shell must give the incident itself
    decision = ENGINE.open(report(0.95, incident=chained), NOW)
    assert decision.ticket.parent is None
    refused = next(e for e in decision.events if e.kind == "link_refused")
    assert "no chains" in refused.reason
    assert any(t.kind == "expire" for t in decision.timers)


def test_the_shipped_workflow_asks_for_no_search() -> None:
    from tests.workflow.test_engine import ENGINE as SHIPPED
    assert SHIPPED.looks_like_open is None and ENGINE.looks_like_open == 0.8


def test_patterns_and_looks_like_open_must_both_hold() -> None:
    vpn = TriageRule.model_validate({"name": "vpn-alike", "link": True, "match": {
        "subject": "vpn", "looks_like_open": 0.5}})
    engine = Engine(with_rules(vpn))
    assert engine.open(report(0.9), NOW).ticket.parent == "TD-1"
    assert engine.open(report(0.9, subject="Printer jams"), NOW).ticket.parent is None


def problems(rule: dict[str, object]) -> list[str]:
    source = load_yaml(ROOT / "workflows/it-support.yaml")
    triage = {**source.data["triage"], "rules": [rule]}
    _, found = validate_workflow(replace(source, data={**source.data, "triage": triage}),
                                 WorkflowContext(None, None, {}, True))
    return [str(p) for p in found]


def test_a_linking_rule_needs_a_lookalike_and_cannot_route() -> None:
    found = problems({"name": "x", "match": {"subject": "vpn"}, "link": True, "route": "tier2"})
    assert any("links, but to what?" in p and "looks_like_open" in p for p in found)
    assert any("both links and routes" in p for p in found)


def test_looks_like_open_is_a_share() -> None:
    found = problems({"name": "x", "match": {"looks_like_open": 1.5}, "link": True})
    assert any("looks_like_open" in p for p in found)
