"""The requester of a report is told, once, that its news now comes from the incident (notify
`link`), and again when it is handled on its own (`unlink`). Pure: the shipped workflow."""

from __future__ import annotations

from daemon.workflow.facts import CommandIssued, LinkFacts
from tests.workflow.test_engine import ENGINE, NOW, mails, ticket
from tests.workflow.test_engine_incidents import INCIDENT, SAM, link


def test_link_tells_the_requester_once_with_the_incident() -> None:
    _, decision = link()
    assert mails(decision) == [("linked_notice", "requester")]
    context = decision.mails[0].context
    assert (context["ref"], context["incident"], context["event"]) == ("TD-2", "TD-1", "link")
    assert context["incident_subject"] == INCIDENT.subject
    # The same #link again changes nothing and sends nothing.
    again = ENGINE.handle(decision.ticket, CommandIssued(
        "link", SAM, "helpdesk", "", "TD-1", link=LinkFacts(INCIDENT)), NOW)
    assert again.refusal is None and again.mails == ()


def test_a_refused_link_tells_nobody() -> None:
    _, decision = link(target="TD-2")
    assert decision.refusal is not None and decision.mails == ()


def test_unlink_tells_the_requester_while_the_ticket_is_open() -> None:
    linked = ticket("tier1", ref="TD-2", parent="TD-1", parent_team="tier2")
    decision = ENGINE.handle(linked, CommandIssued("unlink", SAM, "helpdesk"), NOW)
    assert mails(decision) == [("unlinked_notice", "requester")]
    assert decision.mails[0].context["incident"] == "TD-1"  # the incident it has left


def test_unlink_after_resolving_tells_nobody() -> None:
    resolved = ticket("resolved", ref="TD-2", parent="TD-1", parent_team="tier2")
    decision = ENGINE.handle(resolved, CommandIssued("unlink", SAM, "helpdesk"), NOW)
    assert decision.refusal is None and decision.mails == ()
