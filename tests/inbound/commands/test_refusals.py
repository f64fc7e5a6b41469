"""Each refusal explains itself in the one receipt of the mail, changes nothing, and is an
event: wrong team, the member's narrower commands, illegal in the state, missing summary,
past the last tier, unknown member or vendor, and "did you mean" for a mistyped tag."""

from __future__ import annotations

import pytest

from daemon.inbound.ingest import Inbox
from daemon.store.database import Database
from tests.inbound.commands.desk import (
    ALEX,
    MORGAN,
    ROBIN,
    SAM,
    TAYLOR,
    events,
    feed,
    last_id,
    later,
    open_in,
    outbox,
    receipts,
    tech,
    ticket,
)

# case -> (state, technician, body, words the refusal must say, the syntax it gives)
REFUSALS = {
    "route is the front line's": ("triage", ALEX, "#route tier2",
                                  "#route may be used by helpdesk only, not by tier1",
                                  "#route <tier> [reason]"),
    "route only out of triage": ("tier1", SAM, "#route tier2",
                                 "route is not possible in state tier1", "#route <tier>"),
    "wrong team": ("tier1", ALEX, "#assign Morgan Lee",
                   "#assign may be used by helpdesk, tier2 and tier3 only, not by tier1",
                   "#assign <member>"),
    "wrong team for vendor": ("tier2", ALEX, "#vendor vpnco",
                              "#vendor may be used by tier2 and tier3 only, not by tier1",
                              "#vendor <name> [+attachments] [what to ask]"),
    "member's narrower commands": (
        "tier2", TAYLOR, "#priority P1",
        "your entry in config/teams.yaml allows you #take, #note, #status, #help, #escalate, "
        "#deescalate, #wait, #resolve only, not #priority", "#priority P1..P4 [reason]"),
    "illegal in state": ("tier2", MORGAN, "#reopen",
                         "reopen is not possible in state tier2; possible here:",
                         "#reopen"),
    "missing summary": ("tier2", MORGAN, "#resolve",
                        "#resolve needs a summary of what fixed it", "#resolve <summary>"),
    "past the last tier": ("tier3", ROBIN, "#escalate",
                           "escalate is not possible: tier3 is the last tier", "#escalate"),
    "no way down from tier1": ("tier1", ALEX, "#deescalate",
                               "#deescalate may be used by tier2, tier3 and helpdesk only",
                               "#deescalate"),
    "wrong tier": ("tier2", MORGAN, "#escalate to tier1",
                   "escalate from tier2 can go to tier3, not tier1", "#escalate [to <tier>]"),
    "unknown member": ("tier2", MORGAN, "#assign Morgn Lee",
                       "there is no member 'Morgn Lee'; did you mean Morgan Lee?",
                       "#assign <member>"),
    "unknown vendor": ("tier3", ROBIN, "#vendor acme",
                       "there is no vendor 'acme'; known vendors: vpnco", "#vendor <name>"),
    "bad priority": ("tier2", MORGAN, "#priority urgent", "#priority needs one of P1, P2",
                     "#priority P1..P4"),
    "did you mean": ("tier2", MORGAN, "#esclate to tier3",
                     "#esclate is not a command; did you mean #escalate?",
                     "#escalate [to <tier>] [reason]"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_each_refusal(database: Database, inbox: Inbox, case: str) -> None:
    state, sender, body, words, right = REFUSALS[case]
    open_in(database, inbox, state)
    before = ticket(database)
    since = last_id(database)
    outcome = feed(database, inbox, tech(sender, body), later(5))
    assert "0 done, 1 refused" in outcome.detail
    after = ticket(database)
    assert (after.state, after.assignee, after.priority, after.vendor) == (
        before.state, before.assignee, before.priority, before.vendor)
    sent = outbox(database, since)
    assert [s.template for s in sent] == ["command_error"]
    [receipt] = sent
    [result] = receipt.context["results"]
    assert result["done"] is False and words in result["detail"], result["detail"]
    assert result["syntax"].startswith(right)
    assert receipt.to == sender and words in receipt.text and "NOT DONE" in receipt.text
    [refused] = events(database, "refused")
    assert refused.actor == sender and words in refused.reason


def test_did_you_mean_names_the_tag_and_its_syntax(database: Database, inbox: Inbox) -> None:
    open_in(database, inbox, "tier2")
    since = last_id(database)
    feed(database, inbox, tech(MORGAN, "#esclate to tier3"), later(5))
    [receipt] = receipts(outbox(database, since))
    assert receipt.subject == "[TD-1] Not done: #esclate: Printer on floor 3 jams"
    assert "did you mean #escalate?" in receipt.text
    assert "Write it as: #escalate [to <tier>] [reason]" in receipt.text
    assert "did you mean #escalate?" in receipt.html


def test_one_receipt_lists_done_and_refused_together(database: Database,
                                                     inbox: Inbox) -> None:
    open_in(database, inbox, "tier2")
    since = last_id(database)
    outcome = feed(database, inbox, tech(MORGAN, "#take\n#reopen\n#priority P2\n#resolve"),
                   later(5))
    assert "2 done, 2 refused" in outcome.detail
    [receipt] = receipts(outbox(database, since))
    assert receipt.template == "command_error"
    assert [(r["command"], r["done"]) for r in receipt.context["results"]] == [
        ("#take", True), ("#reopen", False), ("#priority P2", True), ("#resolve", False)]
    assert receipt.subject.startswith("[TD-1] Not done: #reopen, #resolve:")
    assert (ticket(database).assignee, ticket(database).priority) == (MORGAN, "P2")


def test_a_mistyped_tag_keeps_the_text_from_the_requester(database: Database,
                                                           inbox: Inbox) -> None:
    """`#nte` may have meant #note: the rest of the mail stays internal."""
    open_in(database, inbox, "tier2")
    since = last_id(database)
    feed(database, inbox, tech(MORGAN, "#nte the user is difficult\nHi Ann, on it."), later(5))
    sent = outbox(database, since)
    assert [s.template for s in sent] == ["command_error"]
    assert "Your text was NOT sent to the requester" in sent[0].text
