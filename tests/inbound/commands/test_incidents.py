"""Incidents by mail (issue 19): `#link TD-1` makes a ticket a report of incident TD-1, whose
news and resolution reach every linked requester on their own ticket; `#unlink` undoes it."""

from __future__ import annotations

from daemon.inbound.ingest import Inbox
from daemon.store.database import Database
from tests.inbound.commands.desk import (
    MORGAN,
    SAM,
    events,
    feed,
    last_id,
    later,
    mail,
    outbox,
    receipts,
    tech,
    ticket,
    timers,
)

REPORTERS = ("ann@example.org", "bo@example.org", "cy@example.org")
SUBJECTS = ("VPN is down", "Cannot connect to VPN", "VPN keeps failing")


def three_reports(database: Database, inbox: Inbox) -> None:
    for i, (who, subject) in enumerate(zip(REPORTERS, SUBJECTS, strict=True)):
        feed(database, inbox, mail(who, subject, "It does not work since 9."), later(i))


def link(database: Database, inbox: Inbox, ref: str, to: str = "TD-1", minute: int = 5,
         who: str = SAM) -> list[str]:
    since = last_id(database)
    feed(database, inbox, tech(who, f"#link {to}", ref), later(minute))
    return [r.text for r in receipts(outbox(database, since))]


def test_link_stops_the_reports_clock_and_unlink_restores_it(database: Database,
                                                              inbox: Inbox) -> None:
    three_reports(database, inbox)
    [receipt] = link(database, inbox, "TD-2")
    assert "linked to incident TD-1" in receipt
    assert ticket(database, "TD-2").parent_id == ticket(database, "TD-1").id
    mine = [t for t in timers(database) if t.ticket_id == ticket(database, "TD-2").id]
    assert mine == []  # its own clock stopped: TD-1's governs
    feed(database, inbox, tech(SAM, "#unlink", "TD-2"), later(10))
    assert ticket(database, "TD-2").parent_id is None
    kinds = {t.kind for t in timers(database) if t.ticket_id == ticket(database, "TD-2").id}
    assert {"expire", "resolve"} <= kinds
    assert [e.kind for e in events(database, "link", "unlink")] == ["link", "unlink"]


def test_refusals_say_why(database: Database, inbox: Inbox) -> None:
    three_reports(database, inbox)
    [itself] = link(database, inbox, "TD-2", to="TD-2")
    assert "cannot be linked to itself" in itself
    [unknown] = link(database, inbox, "TD-2", to="TD-99")
    assert "there is no ticket TD-99" in unknown
    link(database, inbox, "TD-2", to="TD-1")
    [chain] = link(database, inbox, "TD-3", to="TD-2")
    assert "TD-2 is itself a report of TD-1; link to TD-1 instead" in chain
    [parent] = link(database, inbox, "TD-1", to="TD-3")
    assert "TD-1 is itself an incident with 1 ticket linked" in parent
    [bad] = link(database, inbox, "TD-3", to="vpn")
    assert "'vpn' is not a ticket" in bad


def test_refused_when_the_incident_is_closed(database: Database, inbox: Inbox) -> None:
    three_reports(database, inbox)
    with database.transaction() as session:
        from daemon.store import repository
        row = repository.get_ticket(session, "TD-1")
        assert row is not None
        row.state = "closed"
    [closed] = link(database, inbox, "TD-2")
    assert "TD-1 is closed; link to an open incident" in closed


def test_resolving_the_incident_resolves_its_reports_and_tells_each_requester(
        database: Database, inbox: Inbox) -> None:
    three_reports(database, inbox)
    link(database, inbox, "TD-2")
    link(database, inbox, "TD-3", minute=6)
    since = last_id(database)
    feed(database, inbox, tech(SAM, "#resolve restarted the VPN concentrator", "TD-1"),
         later(30))
    notices = [s for s in outbox(database, since) if s.template == "resolution_notice"]
    assert sorted(s.to for s in notices) == sorted(REPORTERS)
    for sent in notices:
        ref = f"TD-{REPORTERS.index(sent.to) + 1}"
        assert sent.subject == f"[{ref}] {SUBJECTS[REPORTERS.index(sent.to)]}"
        assert f"support+{ref}@example.com" in sent.reply_to
        assert "restarted the VPN concentrator" in sent.text
    for ref in ("TD-1", "TD-2", "TD-3"):
        assert ticket(database, ref).state == "resolved"
    follows = [e for e in events(database, "transition") if e.data.get("incident") == "TD-1"]
    assert len(follows) == 2 and all(e.reason == "restarted the VPN concentrator"
                                     for e in follows)


def test_a_status_update_of_the_incident_reaches_each_report(database: Database,
                                                             inbox: Inbox) -> None:
    three_reports(database, inbox)
    feed(database, inbox, tech(SAM, "#route tier2", "TD-1"), later(3))
    link(database, inbox, "TD-2")
    since = last_id(database)
    feed(database, inbox, tech(MORGAN, "#escalate VPN concentrator", "TD-1"), later(8))
    updates = [s for s in outbox(database, since) if s.template == "status_update"]
    assert sorted((s.to, s.role) for s in updates) == [
        ("ann@example.org", "requester"), ("bo@example.org", "linked")]
    [linked] = [s for s in updates if s.role == "linked"]
    assert linked.subject == "[TD-2] Cannot connect to VPN"
    handoffs = [s for s in outbox(database, since) if s.template == "escalation_handoff"]
    assert handoffs and all("2 people affected" in s.text for s in handoffs)


def test_a_reply_on_a_report_reaches_the_incidents_team(database: Database,
                                                        inbox: Inbox) -> None:
    three_reports(database, inbox)
    feed(database, inbox, tech(SAM, "#route tier2", "TD-1"), later(3))
    link(database, inbox, "TD-2")
    since = last_id(database)
    feed(database, inbox, mail(REPORTERS[1], "Re: [TD-2] Cannot connect to VPN",
                               "Still down here, on floor 2 too."), later(12))
    sent = outbox(database, since)
    assert [s.template for s in sent] == ["requester_reply"] * len(sent) and sent
    assert MORGAN in {s.to for s in sent}  # tier2, the incident's team, not the helpdesk
    assert ticket(database, "TD-2").state == "triage"


def test_the_linked_requester_is_told_once_and_incident_news_says_so(
        database: Database, inbox: Inbox) -> None:
    three_reports(database, inbox)
    feed(database, inbox, tech(SAM, "#route tier2", "TD-1"), later(3))
    link(database, inbox, "TD-2")
    link(database, inbox, "TD-2", minute=6)  # the same link again: nothing new to tell
    notices = [s for s in outbox(database) if s.template == "linked_notice"]
    assert [(s.to, s.subject) for s in notices] == [(REPORTERS[1], "[TD-2] Cannot connect to VPN")]
    assert "part of a wider problem, TD-1 (VPN is down)" in notices[0].text
    assert "TD-1" in notices[0].html
    since = last_id(database)
    feed(database, inbox, tech(MORGAN, "#escalate VPN concentrator", "TD-1"), later(8))
    [news] = [s for s in outbox(database, since) if s.role == "linked"]
    assert "this news is about TD-1" in " ".join(news.text.split())
    [own] = [s for s in outbox(database, since)
             if s.template == "status_update" and s.role == "requester"]
    assert "wider problem" not in own.text  # TD-1's own requester: no incident of theirs
    feed(database, inbox, tech(SAM, "#resolve restarted the VPN concentrator", "TD-1"),
         later(30))
    [done] = [s for s in outbox(database) if s.template == "resolution_notice"
              and s.to == REPORTERS[1]]
    assert "the wider problem TD-1 (VPN is down)" in " ".join(done.text.split())


def test_unlink_tells_the_requester_it_is_handled_on_its_own(database: Database,
                                                            inbox: Inbox) -> None:
    three_reports(database, inbox)
    link(database, inbox, "TD-2")
    feed(database, inbox, tech(SAM, "#unlink", "TD-2"), later(10))
    [notice] = [s for s in outbox(database) if s.template == "unlinked_notice"]
    assert notice.to == REPORTERS[1] and "problem of its own" in notice.text
