"""A requester's reply that moves nothing still reaches the owning team."""

from __future__ import annotations

from daemon.workflow.facts import RequesterReplied
from tests.test_engine import ENGINE, NOW, ticket


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
