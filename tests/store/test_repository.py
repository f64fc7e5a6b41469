"""The repository against real databases: tickets, decisions, timers, mail, cursors, quarantine."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from daemon.store import intake, messages
from daemon.store import repository as repo
from daemon.store.database import Database
from daemon.store.models import Outbox, Ticket, Timer
from daemon.workflow.facts import Decision, EventRecord, MailOrder, TimerOrder

DOMAIN = "support.example.org"


def new_ticket(session: Session, now: datetime, subject: str = "Printer on fire") -> Ticket:
    return repo.create_ticket(
        session, requester="ann@example.org", subject=subject, workflow_name="it-support",
        workflow_version=1, initial_state="triage", priority="P3", team="helpdesk", now=now,
    )


def load(session: Session, ref: str) -> Ticket:
    ticket = repo.get_ticket(session, ref)
    assert ticket is not None
    return ticket


def escalation(ticket: Ticket, now: datetime) -> Decision:
    """triage -> tier1, with an event, two timers and two mails."""
    moved = replace(repo.facts(ticket), state="tier1", team="tier1", state_entered_at=now,
                    tiers_visited=("tier1",))
    return Decision(
        ticket=moved,
        events=(EventRecord("transition", "triage", "triage", "tier1", "not triaged in 30m",
                            {"deadline": now + timedelta(hours=4), "tags": ("a", "b")}),),
        cancel_timers=True,
        timers=(TimerOrder("warn", "tier1", now + timedelta(hours=3)),
                TimerOrder("expire", "tier1", now + timedelta(hours=4), seq=1)),
        mails=(MailOrder("moved", "team", {"ref": ticket.ref, "due": now + timedelta(hours=4)}),
               MailOrder("moved_requester", "requester", {"ref": ticket.ref})),
    )


def count(session: Session, model: type[object]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


# ---------------------------------------------------------------- tickets

def test_create_ticket_assigns_unique_td_refs(session: Session, now: datetime) -> None:
    tickets = [new_ticket(session, now, f"subject {n}") for n in range(3)]
    session.commit()
    refs = [ticket.ref for ticket in tickets]
    assert all(re.fullmatch(r"TD-\d+", ref) for ref in refs)
    assert len(set(refs)) == 3
    assert refs == [f"TD-{ticket.id}" for ticket in tickets]
    assert repo.get_ticket(session, refs[1]) is tickets[1]
    assert repo.get_ticket(session, "TD-999999") is None


def test_ticket_times_come_back_as_aware_utc(database: Database, now: datetime) -> None:
    local = now.astimezone(timezone(timedelta(hours=2)))
    with database.transaction() as session:
        ref = new_ticket(session, local).ref
    with database.sessions() as session:
        ticket = load(session, ref)
        assert ticket.created_at == now
        assert ticket.created_at.tzinfo is UTC


def test_naive_datetimes_are_refused(session: Session) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        new_ticket(session, datetime(2026, 1, 1, 12, 0))


def test_facts_round_trip(session: Session, now: datetime) -> None:
    ticket = new_ticket(session, now)
    facts = repo.facts(ticket)
    assert facts.ref == ticket.ref
    assert (facts.state, facts.priority, facts.team) == ("triage", "P3", "helpdesk")
    assert facts.tiers_visited == ()
    assert facts.created_at == facts.state_entered_at == now


def test_list_tickets_filters_by_state(session: Session, now: datetime) -> None:
    first, second = new_ticket(session, now), new_ticket(session, now)
    repo.apply_decision(session, second, escalation(second, now), now, domain=DOMAIN)
    assert repo.list_tickets(session) == [first, second]
    assert repo.list_tickets(session, state="tier1") == [second]
    assert repo.list_tickets(session, state="closed") == []


def test_ticket_summary_is_json_ready(session: Session, now: datetime) -> None:
    summary = repo.ticket_summary(new_ticket(session, now))
    required = {"ref", "state", "priority", "team", "requester", "subject", "created_at",
                "updated_at"}
    assert required <= summary.keys()
    assert datetime.fromisoformat(summary["created_at"]) == now
    assert json.loads(json.dumps(summary)) == summary


# ---------------------------------------------------------------- decisions

def test_apply_decision_writes_facts_events_timers_and_mails(
    database: Database, now: datetime
) -> None:
    later = now + timedelta(minutes=30)
    with database.transaction() as session:
        ticket = new_ticket(session, now)
        mails = repo.apply_decision(session, ticket, escalation(ticket, later), later,
                                    domain=DOMAIN, workflow_version=2)
        ref, ticket_id = ticket.ref, ticket.id
        assert all(mail.id is not None for mail in mails)
    with database.sessions() as session:
        ticket = load(session, ref)
        assert (ticket.state, ticket.team, ticket.tiers_visited) == ("tier1", "tier1", ["tier1"])
        assert ticket.updated_at == ticket.state_entered_at == later
        assert ticket.created_at == now
        assert ticket.workflow_version == 2
        [event] = repo.timeline(session, ticket)
        assert (event.kind, event.from_state, event.to_state) == ("transition", "triage", "tier1")
        assert event.data == {"deadline": (later + timedelta(hours=4)).isoformat(),
                              "tags": ["a", "b"]}
        timers = session.scalars(select(Timer).order_by(Timer.due_at)).all()
        assert [(t.kind, t.state, t.seq) for t in timers] == [("warn", "tier1", 0),
                                                               ("expire", "tier1", 1)]
        outbox = session.scalars(select(Outbox).order_by(Outbox.id)).all()
        assert [(o.template, o.to_role, o.status) for o in outbox] == [
            ("moved", "team", "pending"), ("moved_requester", "requester", "pending")]
        assert outbox[0].context["due"] == (later + timedelta(hours=4)).isoformat()
        assert all(re.fullmatch(rf"td-{ticket_id}-[0-9a-f]{{32}}@{re.escape(DOMAIN.lower())}",
                                o.message_id) for o in outbox)
        assert outbox[0].body is None and outbox[0].next_attempt_at == later


def test_cancel_timers_deletes_only_that_tickets_timers(session: Session, now: datetime) -> None:
    mine, other = new_ticket(session, now), new_ticket(session, now)
    for ticket in (mine, other):
        repo.add_timers(session, ticket, [TimerOrder("expire", "triage", now)])
    session.flush()
    repo.apply_decision(session, mine, escalation(mine, now), now, domain=DOMAIN)
    timers = session.scalars(select(Timer)).all()
    assert sorted((t.ticket_id, t.state) for t in timers) == [
        (mine.id, "tier1"), (mine.id, "tier1"), (other.id, "triage")]


def test_decision_without_cancel_keeps_existing_timers(session: Session, now: datetime) -> None:
    ticket = new_ticket(session, now)
    repo.add_timers(session, ticket, [TimerOrder("remind", "triage", now)])
    decision = Decision(ticket=repo.facts(ticket),
                        timers=(TimerOrder("warn", "triage", now + timedelta(hours=1)),))
    repo.apply_decision(session, ticket, decision, now, domain=DOMAIN)
    assert count(session, Timer) == 2


def test_refusal_leaves_the_ticket_untouched(database: Database, now: datetime) -> None:
    later = now + timedelta(hours=1)
    with database.transaction() as session:
        ticket = new_ticket(session, now)
        repo.add_timers(session, ticket, [TimerOrder("expire", "triage", later)])
        ref = ticket.ref
    with database.transaction() as session:
        ticket = load(session, ref)
        before = repo.ticket_summary(ticket)
        refused = Decision(ticket=escalation(ticket, later).ticket, cancel_timers=True,
                           mails=(MailOrder("moved", "team"),), refusal="tier1 may not close")
        assert repo.apply_decision(session, ticket, refused, later, domain=DOMAIN) == []
        event = repo.record_refusal(session, ticket, refused.refusal or "", later,
                                    actor="tech@example.org")
        assert (event.kind, event.reason) == ("refused", "tier1 may not close")
    with database.sessions() as session:
        ticket = load(session, ref)
        assert repo.ticket_summary(ticket) == before
        assert count(session, Timer) == 1 and count(session, Outbox) == 0
        assert [e.kind for e in repo.timeline(session, ticket)] == ["refused"]


def test_decision_for_another_ticket_is_rejected(session: Session, now: datetime) -> None:
    first, second = new_ticket(session, now), new_ticket(session, now)
    with pytest.raises(ValueError, match="applied to"):
        repo.apply_decision(session, first, escalation(second, now), now, domain=DOMAIN)


def test_timeline_is_in_insertion_order(session: Session, now: datetime) -> None:
    ticket, other = new_ticket(session, now), new_ticket(session, now)
    kinds = ["created", "assign", "note", "transition", "reminder"]
    for kind in kinds:
        # Same timestamp for all: order must come from insertion, not from `at`.
        repo.add_events(session, ticket, [EventRecord(kind, "triage")], now)
        repo.add_events(session, other, [EventRecord("noise", "clock")], now)
        session.flush()
    assert [event.kind for event in repo.timeline(session, ticket)] == kinds


# ---------------------------------------------------------------- timers

def test_due_timers_returns_only_due_ones_in_due_order(session: Session, now: datetime) -> None:
    ticket = new_ticket(session, now)
    offsets = [timedelta(minutes=m) for m in (5, -30, 60, -1, 0, -90)]
    repo.add_timers(session, ticket, [TimerOrder("remind", "triage", now + o) for o in offsets])
    session.flush()
    due = repo.due_timers(session, now, limit=10)
    assert [t.due_at - now for t in due] == sorted(o for o in offsets if o <= timedelta(0))
    assert len(repo.due_timers(session, now, limit=2)) == 2


def test_due_timers_skips_leased_timers_until_the_lease_ends(
    session: Session, now: datetime
) -> None:
    ticket = new_ticket(session, now)
    [timer] = repo.add_timers(session, ticket, [TimerOrder("expire", "triage", now)])
    repo.lease_timers([timer], owner="daemon-a", until=now + timedelta(minutes=5))
    session.flush()
    assert repo.due_timers(session, now, limit=10) == []
    assert repo.due_timers(session, now + timedelta(minutes=5), limit=10) == [timer]
    repo.delete_timer(session, timer)
    session.flush()
    assert repo.due_timers(session, now + timedelta(days=1), limit=10) == []


def test_due_timer_query_uses_the_due_at_index(session: Session, now: datetime) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL enable_seqscan = off"))
        plan_sql = "EXPLAIN SELECT id FROM timers WHERE due_at <= :now ORDER BY due_at LIMIT 5"
    else:
        plan_sql = ("EXPLAIN QUERY PLAN SELECT id FROM timers WHERE due_at <= :now "
                    "ORDER BY due_at LIMIT 5")
    plan = " ".join(str(row) for row in session.execute(text(plan_sql), {"now": now}))
    assert "ix_timers_due_at" in plan


def test_due_outbox_returns_pending_due_rows(session: Session, now: datetime) -> None:
    ticket = new_ticket(session, now)
    first, second, third = (repo.add_mail(session, MailOrder("t", "requester"), now + o,
                                          domain=DOMAIN, ticket=ticket)
                            for o in (timedelta(0), timedelta(minutes=-5), timedelta(hours=1)))
    third.status = "sent"
    session.flush()
    assert repo.due_outbox(session, now + timedelta(hours=2), limit=10) == [second, first]


# ---------------------------------------------------------------- messages

def test_message_dedup_by_direction_message_id_and_digest(database: Database,
                                                         now: datetime) -> None:
    raw = b"Message-ID: <a@x>\r\nSubject: hi\r\n\r\nbody\r\n"
    with database.transaction() as session:
        ticket = new_ticket(session, now)
        stored = messages.add_message(session, direction="in", message_id="a@x", digest="d1",
                                      at=now, raw=raw, ticket=ticket, kind="human",
                                      reason="plain reply")
        assert stored is not None and stored.raw == raw and stored.digest == "d1"
        assert messages.add_message(session, direction="in", message_id="a@x", digest="d1",
                                    at=now) is None
        # Another mail reusing the id is stored; so is the id outbound (we may quote it).
        assert messages.add_message(session, direction="in", message_id="a@x", digest="d2", at=now)
        assert messages.add_message(session, direction="out", message_id="a@x", at=now)
        # Ids are compared exactly: case matters.
        assert messages.add_message(session, direction="in", message_id="A@x", digest="d1", at=now)
    with database.transaction() as session:
        assert messages.stored_digests(session, "in", ["a@x", "A@x", "b@x"]) == {
            "a@x": {"d1", "d2"}, "A@x": {"d1"}}
        assert messages.stored_digests(session, "out", ["a@x"]) == {"a@x": {""}}
        message = messages.add_message(session, direction="in", message_id="b@x", at=now)
        assert message is not None and message.received_at == now and message.sent_at is None


def test_refs_for_message_ids_finds_stored_and_sent_mail(session: Session, now: datetime) -> None:
    ticket = new_ticket(session, now)
    messages.add_message(session, direction="in", message_id="<in@x>", at=now, ticket=ticket)
    mail = repo.apply_decision(session, ticket, escalation(ticket, now), now, domain=DOMAIN)[0]
    assert messages.refs_for_message_ids(session, ["<in@x>", mail.message_id, "<none@x>"]) == {
        "<in@x>": ticket.ref, mail.message_id: ticket.ref}
    assert messages.refs_for_message_ids(session, []) == {}


# ---------------------------------------------------------------- cursor, quarantine

def test_cursor_upsert(database: Database) -> None:
    with database.transaction() as session:
        assert intake.get_cursor(session, "INBOX") is None
        intake.set_cursor(session, "INBOX", uidvalidity=7, last_uid=10)
    with database.transaction() as session:
        cursor = intake.get_cursor(session, "INBOX")
        assert cursor is not None and (cursor.uidvalidity, cursor.last_uid) == (7, 10)
        updated = intake.set_cursor(session, "INBOX", uidvalidity=7, last_uid=2**32 - 1)
        assert updated is cursor and cursor.last_uid == 2**32 - 1
    with database.sessions() as session:
        cursor = intake.get_cursor(session, "INBOX")
        assert cursor is not None and cursor.last_uid == 2**32 - 1


def test_quarantine_round_trip_keeps_raw_bytes(database: Database, now: datetime) -> None:
    raw = bytes(range(256)) + b"\r\n.\r\n\x00"
    with database.transaction() as session:
        intake.add_quarantine(session, raw=raw, reason="unparseable MIME", now=now,
                              subject="?", sender="x@y", message_id="<q@x>", folder="INBOX",
                              uid=42)
    with database.transaction() as session:
        [row] = intake.list_quarantine(session)
        assert (row.raw, row.reason, row.uid, row.received_at) == (
            raw, "unparseable MIME", 42, now)
        row.retried_at = now
    with database.sessions() as session:
        assert intake.list_quarantine(session) == []
        assert len(intake.list_quarantine(session, include_retried=True)) == 1


# ---------------------------------------------------------------- JSON

def test_jsonable_turns_datetimes_into_iso_strings(now: datetime) -> None:
    data = {"at": now, "nested": [{"day": now.date()}], "pair": (1, "x"), 3: None}
    converted = repo.jsonable(data)
    assert converted == {"at": now.isoformat(), "nested": [{"day": now.date().isoformat()}],
                         "pair": [1, "x"], "3": None}
    assert datetime.fromisoformat(converted["at"]) == now
    with pytest.raises(TypeError, match="set"):
        repo.jsonable({"bad": {1, 2}})

