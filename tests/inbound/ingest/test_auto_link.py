"""Through real ingest, with the workflow's `same-outage` rule switched on: a near-identical
second report of an open ticket is linked to it at once (the timeline has the score, the
front line's notice says so, its requester is told once); an unrelated one is not."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from daemon.inbound.ingest import Inbox, process_batch
from daemon.store.database import Database
from daemon.workflow.model import TriageRule
from tests.inbound.commands.desk import (
    SAM,
    T0,
    build_inbox,
    config,
    events,
    feed,
    later,
    mail,
    outbox,
    tech,
    ticket,
    timers,
)

BODY = "Since 9:00 the VPN client cannot connect, it says the gateway does not answer."


@pytest.fixture(scope="module")
def inbox() -> Inbox:
    site = config()
    rule = TriageRule.model_validate({"name": "same-outage", "link": True,
                                      "match": {"looks_like_open": 0.8}})
    workflows = {name: wf.model_copy(update={"triage": wf.triage.model_copy(
        update={"rules": (rule, *wf.triage.rules)})}) for name, wf in site.workflows.items()}
    return build_inbox(replace(site, workflows=workflows))


def test_a_near_identical_second_report_is_linked(database: Database, inbox: Inbox) -> None:
    feed(database, inbox, mail("ann@example.org", "VPN client cannot connect", BODY), T0)
    feed(database, inbox, mail("bo@example.org", "VPN client cannot connect", BODY), later(4))
    assert ticket(database, "TD-2").parent_id == ticket(database, "TD-1").id
    assert ticket(database, "TD-2").state == "triage"
    assert not [t for t in timers(database) if t.ticket_id == ticket(database, "TD-2").id]
    [link] = events(database, "link")
    assert link.actor == "triage" and link.data["score"] >= 0.8
    assert "looks 100% like open TD-1" in link.reason
    notices = [s for s in outbox(database) if s.template == "new_ticket"
               and "[TD-2]" in s.subject]  # one per member of the front line
    assert notices
    text = " ".join(notices[0].text.split())
    assert "made it a report of incident TD-1" in text and "reply `#unlink`" in text
    told = [s for s in outbox(database) if s.template == "linked_notice"]
    assert [(s.to, s.subject) for s in told] == [("bo@example.org",
                                                   "[TD-2] VPN client cannot connect")]
    # Resolving the incident takes the report along, and tells each requester once.
    feed(database, inbox, tech(SAM, "#resolve restarted the gateway", "TD-1"), later(30))
    assert ticket(database, "TD-2").state == "resolved"
    assert len([s for s in outbox(database) if s.template == "linked_notice"]) == 1


def test_an_unrelated_report_is_not_linked(database: Database, inbox: Inbox) -> None:
    feed(database, inbox, mail("ann@example.org", "VPN client cannot connect", BODY), T0)
    feed(database, inbox, mail("cy@example.org", "Printer on floor 3 jams",
                               "The printer jams on every second page since Monday."),
         later(4))
    assert ticket(database, "TD-2").parent_id is None
    assert not events(database, "link")
    assert not [s for s in outbox(database) if s.template == "linked_notice"]


def test_a_resolved_lookalike_is_not_joined(database: Database, inbox: Inbox) -> None:
    feed(database, inbox, mail("ann@example.org", "VPN client cannot connect", BODY), T0)
    feed(database, inbox, tech(SAM, "#resolve restarted the gateway", "TD-1"), later(2))
    feed(database, inbox, mail("bo@example.org", "VPN client cannot connect", BODY), later(4))
    assert ticket(database, "TD-2").parent_id is None


def test_a_lookalike_that_is_a_report_stands_for_its_incident(database: Database,
                                                              inbox: Inbox) -> None:
    feed(database, inbox, mail("ann@example.org", "VPN gone for the whole office",
                               "Nothing works on the network here."), T0)
    feed(database, inbox, mail("bo@example.org", "VPN client cannot connect", BODY), later(1))
    feed(database, inbox, tech(SAM, "#link TD-1", "TD-2"), later(2))
    feed(database, inbox, mail("cy@example.org", "VPN client cannot connect", BODY), later(4))
    assert ticket(database, "TD-3").parent_id == ticket(database, "TD-1").id  # not TD-2


def test_one_batch_links_its_later_reports_to_its_first(
        database: Database, inbox: Inbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="daemon.inbound.ingest")
    batch = [(n, mail(f"user{n}@example.org", "VPN client cannot connect", BODY))
             for n in (1, 2, 3)]
    with database.transaction() as session:
        outcomes = process_batch(session, batch, inbox, T0, folder="INBOX")
    assert [o.action for o in outcomes] == ["opened"] * 3
    assert "falls back" not in caplog.text  # the fast path: links to a ticket not written yet
    first = ticket(database, "TD-1").id
    assert [ticket(database, f"TD-{n}").parent_id for n in (1, 2, 3)] == [None, first, first]
    told = sorted(s.to for s in outbox(database) if s.template == "linked_notice")
    assert told == ["user2@example.org", "user3@example.org"]
