"""Full-text search in the store, on SQLite (FTS5) and PostgreSQL (tsvector): look-alikes in a
window, past fixes, resolutions recorded from decisions, safe queries, the migration's
backfill."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from daemon.mail import similarity as scoring
from daemon.store import repository as repo
from daemon.store import search
from daemon.store.database import Database, migrations_config
from daemon.store.deferred import deferred
from daemon.store.models import Ticket, TicketSearch
from daemon.workflow.facts import Decision, EventRecord

TECH = "rosa.okafor@example.com"


def opened(session: Session, now: datetime, subject: str, body: str = "",
           ticket_id: int | None = None) -> Ticket:
    ticket = repo.create_ticket(
        session, requester="ann@example.org", subject=subject, workflow_name="it-support",
        workflow_version=1, initial_state="triage", priority="P3", team="helpdesk", now=now,
        ticket_id=ticket_id)
    search.index_ticket(session, ticket, subject, body)
    return ticket


def resolve(session: Session, ticket: Ticket, summary: str, now: datetime,
            actor: str = TECH) -> None:
    facts = replace(repo.facts(ticket), state="resolved", state_entered_at=now)
    event = EventRecord("transition", actor, ticket.state, "resolved", summary,
                        {"trigger": "resolve", "target": None})
    repo.apply_decision(session, ticket, Decision(facts, (event,)), now, domain="example.com")


def refs(found: list[search.Found]) -> list[str]:
    return [item.ref for item in found]


def test_lookalikes_are_found_within_the_window_only(database: Database, now: datetime) -> None:
    with database.transaction() as session:
        old = opened(session, now - timedelta(hours=6), "VPN down, cannot connect")
        a = opened(session, now - timedelta(minutes=20), "VPN is down",
                   "Cannot connect to the VPN since 9:00.")
        opened(session, now - timedelta(minutes=15), "Printer jams on floor 3")
        b = opened(session, now - timedelta(minutes=5), "vpn not connecting",
                   "The VPN client says it cannot connect.")
        new = opened(session, now, "VPN down?", "I cannot connect to the VPN.")
    with database.reading() as session:
        report = search.report_of(session, new.id)
        assert report is not None
        found = search.lookalikes(session, new.id, report, since=now - timedelta(hours=4),
                                  limit=5, threshold=0.5)
    assert sorted(refs(found)) == sorted([a.ref, b.ref])
    assert old.ref not in refs(found)


def test_past_fixes_come_with_summary_author_and_time(database: Database,
                                                      now: datetime) -> None:
    with database.transaction() as session:
        fixed = opened(session, now - timedelta(days=30), "Certificate error in Outlook",
                       "Outlook says the server certificate is not trusted.")
        resolve(session, fixed, "imported the intermediate certificate again",
                now - timedelta(days=29))
        unfixed = opened(session, now - timedelta(days=20), "Outlook certificate warning")
        by_clock = opened(session, now - timedelta(days=10), "Outlook certificate untrusted")
        resolve(session, by_clock, "no answer from the requester within 40h", now, "clock")
        new = opened(session, now, "Outlook: certificate not trusted")
    with database.reading() as session:
        found = search.past_fixes(session, "Outlook: certificate not trusted", limit=3,
                                  threshold=0.5, ticket_id=new.id)
    assert refs(found) == [fixed.ref]
    assert unfixed.ref not in refs(found)
    [fix] = found
    assert fix.resolution == "imported the intermediate certificate again"
    assert fix.resolved_by == TECH
    assert fix.resolved_at == now - timedelta(days=29)


def test_the_latest_resolution_wins(database: Database, now: datetime) -> None:
    with database.transaction() as session:
        ticket = opened(session, now, "Printer offline")
        resolve(session, ticket, "power cycled the printer", now)
        resolve(session, ticket, "replaced the network cable of the printer", now)
    with database.reading() as session:
        found = search.past_fixes(session, "printer offline again", limit=3, threshold=0.5)
    assert [f.resolution for f in found] == ["replaced the network cable of the printer"]


@pytest.mark.parametrize("subject", [
    'NEAR("vpn" down) AND OR NOT', 'vpn* ^down "unbalanced', "col:vpn - down +",
    "vpn' | !down & (x:*", "\\' ; DROP TABLE tickets; --", "vpn\x00down", "",
])
def test_user_text_is_never_query_syntax(database: Database, now: datetime,
                                         subject: str) -> None:
    with database.transaction() as session:
        known = opened(session, now, "VPN down for sales")
        resolve(session, known, "restarted the VPN concentrator", now)
        new = opened(session, now, subject.replace("\x00", ""))
    with database.reading() as session:
        search.lookalikes(session, new.id, subject, since=now - timedelta(hours=4), limit=5,
                          threshold=0.0)
        found = search.past_fixes(session, subject, limit=3, threshold=0.0)
        assert session.scalar(select(Ticket.id).where(Ticket.id == known.id)) == known.id
    if "vpn" in subject.lower() and "down" in subject.lower():
        assert refs(found) == [known.ref]


def test_a_deferred_batch_indexes_its_tickets_and_their_resolutions(
        database: Database, now: datetime) -> None:
    with database.transaction() as session, deferred(session):
        ids = repo.ticket_ids(session)
        first = opened(session, now, "Laptop battery drains fast", ticket_id=next(ids))
        resolve(session, first, "replaced the laptop battery", now)
        opened(session, now, "Laptop battery drains in an hour", ticket_id=next(ids))
    with database.reading() as session:
        rows = session.scalars(select(TicketSearch).order_by(TicketSearch.ticket_id)).all()
        assert [r.resolution for r in rows] == ["replaced the laptop battery", None]
        found = search.past_fixes(session, "battery of my laptop drains", limit=3,
                                  threshold=0.5)
    assert refs(found) == [first.ref]


def test_words_and_quoting() -> None:
    assert search.words("Hi, the VPN is DOWN since 9:00 (error 809)!") == [
        "vpn", "down", "error", "809"]
    assert search.words("Printer printer PRINTER") == ["printer"]
    assert search.fts5_query(['say"hi', "x"]) == '"say""hi" OR "x"'
    assert search.tsquery(["o'neil", "a\\b"]) == "'o''neil' | 'a\\\\b'"
    assert search.similarity(search.stems("printers jam"), search.stems("printer jams")) == 1
    assert search.similarity(search.stems("printer jam"), search.stems("printer ok")) == 0


def test_the_migration_backfills_existing_tickets(empty_database: Database,
                                                  now: datetime) -> None:
    config = migrations_config()
    with empty_database.engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0007")
        connection.commit()
    with empty_database.engine.begin() as connection:
        for ticket_id, subject in ((1, "Wifi drops in room 4"), (2, "Wifi drops in room 5")):
            connection.execute(text(
                "INSERT INTO tickets (id, ref, state, priority, requester, subject, "
                "created_at, updated_at, state_entered_at, tiers_visited, bounces, flagged, "
                "workflow_name, workflow_version) VALUES (:id, :ref, 'resolved', 'P3', "
                "'ann@example.org', :subject, :at, :at, :at, '[]', 0, false, 'it-support', 1)"),
                {"id": ticket_id, "ref": f"TD-{ticket_id}", "subject": subject, "at": now})
        connection.execute(text(
            "INSERT INTO events (id, ticket_id, at, kind, actor, from_state, to_state, reason, "
            "data) VALUES (1, 1, :at, 'transition', :tech, 'tier1', 'resolved', "
            "'moved the access point', :data)"),
            {"at": now, "tech": TECH, "data": '{"trigger": "resolve"}'})
    with empty_database.engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()
    with empty_database.reading() as session:
        found = search.past_fixes(session, "wifi drops all the time in room 7", limit=3,
                                  threshold=0.5)
    assert [(f.ref, f.resolution, f.resolved_by) for f in found] == [
        ("TD-1", "moved the access point", TECH)]


def test_past_fix_queries_ask_for_the_rarest_terms(database: Database, now: datetime,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """40 resolved printer tickets: "printer" in all, "jam" in 10, "toner" in 1, "fuser" in
    none. A report naming all four asks the index for "toner" only (PostgreSQL: "fuser" too,
    which its statistics cannot tell from rare); one naming only common words ANDs them."""
    monkeypatch.setattr(scoring, "CHEAP_DOCS", 0)  # 40 documents: make 5% mean something
    with database.transaction() as session:
        for n in range(40):
            words = "printer jam" if n < 10 else "printer toner" if n == 10 else "printer"
            ticket = opened(session, now, f"{words} floor{n}")
            resolve(session, ticket, "cleaned it", now)
    with database.engine.begin() as connection:
        if database.is_postgres:
            connection.execute(text("ANALYZE ticket_search"))
    with database.reading() as session:
        [rare] = search.query_plan(session, "Printer jam, toner or fuser?")
        common = search.query_plan(session, "printer jam")
        found = search.past_fixes(session, "printer jam again", limit=3, threshold=0.5)
    assert rare.any_of and "toner" in rare.terms
    assert {"printer", "jam"}.isdisjoint(rare.terms)
    assert set(rare.terms) <= {"toner", "fuser"} and (
        "fuser" in rare.terms) == database.is_postgres
    assert common == [scoring.TermQuery(("jam", "printer"), any_of=False)]
    assert len(found) == 3 and all(item.subject.startswith("printer jam") for item in found)


def test_a_burst_reads_the_window_once(database: Database, now: datetime) -> None:
    with database.transaction() as session:
        burst = [opened(session, now, "VPN client cannot connect", f"Report {n}.")
                 for n in range(5)]
    statements: list[str] = []
    with database.reading() as session:
        windows = search.Windows()
        listen = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(session.connection(), "before_cursor_execute", listen)
        found = [search.lookalikes(session, ticket.id, "VPN client cannot connect",
                                   since=now - timedelta(hours=4), limit=5, threshold=0.5,
                                   windows=windows) for ticket in burst]
    assert len(statements) == 1
    assert [sorted(refs(item)) for item in found] == [
        sorted(t.ref for t in burst if t is not me) for me in burst]


def test_an_incident_lists_its_fix_once_and_is_found_by_its_reports_words(
        database: Database, now: datetime) -> None:
    """Linked reports are resolved with the incident's summary: only the incident is a past
    fix, and the words of every report linked to it find it."""
    with database.transaction() as session:
        incident = opened(session, now - timedelta(days=8), "Intranet does not load")
        reports = [opened(session, now - timedelta(days=8), subject) for subject in
                   ("Error 502 on the intranet", "intranet 502 bad gateway")]
        for report in reports:
            facts = replace(repo.facts(report), parent=incident.ref)
            repo.apply_decision(session, report, Decision(facts), now, domain="example.com")
        for ticket in (incident, *reports):
            resolve(session, ticket, "restarted the application pool", now - timedelta(days=7))
        new = opened(session, now, "Intranet shows 502 bad gateway again")
    with database.reading() as session:
        assert "intranet 502 bad gateway" in (search.report_of(session, incident.id) or "")
        found = search.past_fixes(session, "Intranet shows 502 bad gateway again", limit=3,
                                  threshold=0.5, ticket_id=new.id)
    assert refs(found) == [incident.ref]


def test_window_postings_score_as_the_plain_overlap_does(database: Database,
                                                         now: datetime) -> None:
    """Windows scores only tickets sharing words, with the counts it gathered: the result
    must be what scoring every ticket of the window with similarity() gives."""
    words_ = ["vpn", "printer", "outlook", "down", "slow", "error", "login", "floor",
              "laptop", "wifi", "password", "screen"]
    rng = random.Random(7)
    with database.transaction() as session:
        tickets = [opened(session, now - timedelta(minutes=n),
                          " ".join(rng.sample(words_, rng.randint(2, 6))))
                   for n in range(60)]
    since = now - timedelta(hours=1)
    with database.reading() as session:
        windows = search.Windows()
        rows = windows.since(session, since)
        for ticket in tickets[:15]:
            report = search.report_of(session, ticket.id) or ""
            query = scoring.stems(report)
            expected = [(round(score, 6), item.found.ref) for score, item in scoring.best(
                query, [r for r in rows if r.ticket_id != ticket.id], lambda r: r.stems,
                threshold=0.3, limit=5)]
            got = [(round(f.score, 6), f.ref) for f in search.lookalikes(
                session, ticket.id, report, since=since, limit=5, threshold=0.3,
                windows=windows)]
            assert got == expected
