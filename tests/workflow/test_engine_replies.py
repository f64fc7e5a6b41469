"""A requester's reply that moves nothing still reaches the owning team."""

from __future__ import annotations

from daemon.workflow.facts import RequesterReplied, VendorReplied
from tests.workflow.test_engine import ENGINE, NOW, ticket


def test_reply_in_a_working_state_is_forwarded_to_the_team() -> None:
    decision = ENGINE.handle(ticket("tier2"), RequesterReplied("Still down, error 809."), NOW)
    assert decision.ticket == ticket("tier2")
    assert [e.kind for e in decision.events] == ["reply"]
    (mail,) = decision.mails
    assert (mail.template, mail.to) == ("requester_reply", "team")
    assert mail.context["argument"] == "Still down, error 809."


def test_reply_that_reopens_sends_the_move_mails_instead() -> None:
    decision = ENGINE.handle(ticket("resolved", return_state="tier2"),
                             RequesterReplied("It broke again."), NOW)
    assert decision.ticket.state == "tier2"
    assert "requester_reply" not in [m.template for m in decision.mails]


def test_vendor_answer_hands_the_ticket_back_to_tier3() -> None:
    decision = ENGINE.handle(ticket("vendor", vendor="vpnco"),
                             VendorReplied("Patch 4.2.1 fixes it."), NOW)
    assert (decision.ticket.state, decision.ticket.team) == ("tier3", "tier3")
    assert decision.cancel_timers and decision.timers  # tier3's own clock again
    (move,) = decision.events
    assert (move.kind, move.actor, move.data["trigger"]) == ("transition", "vendor",
                                                             "vendor_replied")
    assert "Patch 4.2.1" not in str([m.context.get("reason") for m in decision.mails])


def test_vendor_mail_outside_the_vendor_state_moves_nothing() -> None:
    decision = ENGINE.handle(ticket("tier2"), VendorReplied("fyi"), NOW)
    assert decision == type(decision)(ticket("tier2"))


def test_thanks_on_a_resolved_ticket_is_recorded_not_a_reopen() -> None:
    resolved = ticket("resolved", return_state="tier3")
    decision = ENGINE.handle(resolved, RequesterReplied("Thanks, works now!\n\nPat"), NOW)
    assert decision.ticket == resolved and not decision.timers  # auto-close keeps running
    (event,) = decision.events
    assert (event.kind, event.to_state) == ("reply", "resolved")
    assert "a thank-you does not reopen" in event.reason
    assert [(m.template, m.to) for m in decision.mails] == [("requester_reply", "team")]


def test_thanks_with_a_problem_still_reopens() -> None:
    decision = ENGINE.handle(ticket("resolved", return_state="tier3"),
                             RequesterReplied("Thanks, but it is still down."), NOW)
    assert decision.ticket.state == "tier3"
