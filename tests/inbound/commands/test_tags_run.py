"""Every tag, alone and combined, from an authenticated technician, through
daemon.inbound.ingest.process_mail on real SQLite and PostgreSQL stores: the ticket, its events and
the outbox rows (rendered) afterwards. One receipt per mail, listing each result."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete

from daemon.inbound.ingest import Inbox
from daemon.store.database import Database
from daemon.store.models import Timer
from daemon.workflow.timers import TicketTargets
from tests.inbound.commands.desk import (
    ALEX,
    MORGAN,
    REQUESTER,
    ROBIN,
    SAM,
    VENDOR,
    events,
    feed,
    last_id,
    later,
    open_in,
    outbox,
    receipts,
    tech,
    ticket,
    timers,
)

# (start state, technician, body) -> (state, assignee, priority) afterwards
ALONE = {
    "take": ("tier2", MORGAN, "#take", ("tier2", MORGAN, "P3")),
    "route": ("triage", SAM, "#route tier2 the switch logs point at the network",
              ("tier2", None, "P3")),
    "assign by name": ("tier2", MORGAN, "#assign Robin Okafor", ("tier2", ROBIN, "P3")),
    "assign by address": ("tier2", SAM, "#assign to alex.chen@example.com",
                          ("tier2", ALEX, "P3")),
    "escalate": ("tier2", MORGAN, "#escalate needs a network engineer", ("tier3", None, "P3")),
    "escalate to": ("tier1", ALEX, "#escalate to Tier3 core switch", ("tier3", None, "P3")),
    "deescalate": ("tier3", ROBIN, "#deescalate a password reset", ("tier2", None, "P3")),
    "deescalate to": ("tier3", ROBIN, "#deescalate to tier1", ("tier1", None, "P3")),
    "priority": ("tier2", MORGAN, "#priority p1 whole floor", ("tier2", None, "P1")),
    "vendor": ("tier3", ROBIN, "#vendor vpnco is the gateway patched?",
               ("vendor", None, "P3")),
    "wait": ("tier2", MORGAN, "#wait Which laptop is it?", ("waiting_on_customer", None, "P3")),
    "resolve": ("tier2", MORGAN, "#resolve replaced the fuser", ("resolved", None, "P3")),
    "reopen": ("resolved", MORGAN, "#reopen", ("tier2", None, "P3")),
    "note": ("tier2", MORGAN, "#note called Ann, no answer", ("tier2", None, "P3")),
    "status": ("tier2", MORGAN, "#status", ("tier2", None, "P3")),
    "help": ("tier2", MORGAN, "#help", ("tier2", None, "P3")),
}


@pytest.mark.parametrize("case", sorted(ALONE))
def test_every_tag_alone(database: Database, inbox: Inbox, case: str) -> None:
    state, sender, body, expected = ALONE[case]
    open_in(database, inbox, state, return_state="tier2" if state == "resolved" else None)
    since = last_id(database)
    outcome = feed(database, inbox, tech(sender, body), later(5))
    assert outcome.action == "updated" and "1 done, 0 refused" in outcome.detail, outcome
    after = ticket(database)
    assert (after.state, after.assignee, after.priority) == expected
    [receipt] = receipts(outbox(database, since))
    assert receipt.template == "command_receipt" and receipt.to == sender
    assert receipt.context["results"][0]["done"] is True
    assert receipt.context["results"][0]["command"] == body.split("\n")[0]


def test_vendor_hands_off_and_runs_on_the_vendors_clock(database: Database,
                                                         inbox: Inbox) -> None:
    open_in(database, inbox, "tier3")
    since = last_id(database)
    feed(database, inbox, tech(ROBIN, "#vendor VPNCo is the gateway patched?"), later(5))
    assert (ticket(database).state, ticket(database).vendor) == ("vendor", "vpnco")
    [handoff] = [s for s in outbox(database, since) if s.template == "vendor_handoff"]
    assert handoff.to == VENDOR and "is the gateway patched?" in handoff.text
    expire = [t for t in timers(database) if t.kind == "expire"]
    assert [t.due_at for t in expire] == [later(5) + timedelta(days=1)]  # vpnco: 1d


def test_priority_moves_the_pending_sla_targets(database: Database, inbox: Inbox) -> None:
    """First response and resolution are due from the opening, at the new priority's
    targets; a target already recorded (its timer fired) is not set again."""
    open_in(database, inbox, "tier2")
    opened = ticket(database).created_at
    targets = TicketTargets(inbox.runtime.config.workflows["it-support"],
                            inbox.runtime.add_time)

    def pending() -> dict[str, datetime]:
        return {t.kind: t.due_at for t in timers(database) if t.kind in ("respond", "resolve")}

    def wanted(priority: str) -> dict[str, datetime]:
        return {order.kind: order.due_at for order in targets.schedule(priority, opened)}

    assert pending() == wanted("P3")
    feed(database, inbox, tech(MORGAN, "#priority p1 whole floor"), later(5))
    assert pending() == wanted("P1")
    assert pending()["respond"] < wanted("P3")["respond"]
    with database.transaction() as session:  # as the clock does once it has fired
        session.execute(delete(Timer).where(Timer.kind == "respond"))
    feed(database, inbox, tech(MORGAN, "#priority p4"), later(6))
    assert pending() == {"resolve": wanted("P4")["resolve"]}


def test_status_receipt_shows_state_and_timeline(database: Database, inbox: Inbox) -> None:
    open_in(database, inbox, "tier2")
    feed(database, inbox, tech(MORGAN, "#note checked the cables"), later(5))
    since = last_id(database)
    feed(database, inbox, tech(MORGAN, "#status"), later(6))
    [receipt] = receipts(outbox(database, since))
    assert "tier2, priority P3, team tier2, assigned to nobody" in receipt.text
    assert "History, oldest first" in receipt.text and "checked the cables" in receipt.text


def test_help_lists_what_this_member_may_use_here(database: Database, inbox: Inbox) -> None:
    open_in(database, inbox, "tier3")
    since = last_id(database)
    feed(database, inbox, tech(ROBIN, "#help"), later(5))
    [receipt] = receipts(outbox(database, since))
    detail = receipt.context["results"][0]["detail"]
    assert "#vendor <name> [+attachments] [what to ask]" in detail and "#deescalate" in detail
    assert "#escalate" not in detail and "#reopen" not in detail  # not from tier3


def test_several_tags_run_in_order_with_one_receipt(database: Database, inbox: Inbox) -> None:
    open_in(database, inbox, "tier1")
    since = last_id(database)
    body = "#take\n#priority P2\n#note dock replaced\n#escalate to tier2 needs AD rights"
    outcome = feed(database, inbox, tech(ALEX, body), later(5))
    assert "4 done, 0 refused" in outcome.detail
    after = ticket(database)
    # #take made Alex the assignee; moving to tier2 (another team) clears it.
    assert (after.state, after.priority, after.assignee) == ("tier2", "P2", None)
    kinds = [e.kind for e in events(database, "take", "priority", "note", "transition")]
    assert kinds[-4:] == ["take", "priority", "note", "transition"]
    sent = outbox(database, since)
    [receipt] = receipts(sent)
    assert [r["command"] for r in receipt.context["results"]] == body.split("\n")
    assert receipt.subject.startswith("[TD-1] Done: #take, #priority, #note, #escalate:")


def test_later_tags_see_the_state_earlier_ones_left(database: Database, inbox: Inbox) -> None:
    open_in(database, inbox, "tier2")
    feed(database, inbox, tech(MORGAN, "#resolve restarted the spooler\n#reopen"), later(5))
    assert ticket(database).state == "tier2"
    moves = [(e.from_state, e.to_state) for e in events(database, "transition")]
    assert moves[-2:] == [("tier2", "resolved"), ("resolved", "tier2")]


def test_text_goes_to_the_requester_without_tag_lines(database: Database,
                                                      inbox: Inbox) -> None:
    open_in(database, inbox, "tier2")
    since = last_id(database)
    feed(database, inbox, tech(MORGAN, "Hi Ann,\n#take\nplease restart the printer.\n"), later(5))
    [update] = [s for s in outbox(database, since) if s.template == "technician_update"]
    assert update.to == REQUESTER and update.role == "requester"
    assert "please restart the printer." in update.text and "#take" not in update.everything
    [receipt] = receipts(outbox(database, since))
    assert f"Your text was sent to the requester ({REQUESTER})" in receipt.text


def test_text_without_tags_is_a_public_update_without_receipt(database: Database,
                                                               inbox: Inbox) -> None:
    open_in(database, inbox, "tier2")
    since = last_id(database)
    outcome = feed(database, inbox, tech(MORGAN, "Hi Ann, we ordered a new fuser."), later(5))
    assert "text sent to the requester" in outcome.detail
    assert [s.template for s in outbox(database, since)] == ["technician_update"]
    assert ticket(database).responded_at == later(5)  # the ticket's first response


def test_tags_are_case_insensitive(database: Database, inbox: Inbox) -> None:
    open_in(database, inbox, "tier2")
    feed(database, inbox, tech(MORGAN, "#TAKE\n#Priority P1"), later(5))
    assert (ticket(database).assignee, ticket(database).priority) == (MORGAN, "P1")
