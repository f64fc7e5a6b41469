"""The clock loop on real databases: due timers fire once, in order, and catch up after downtime."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from daemon.site.config import load_config
from daemon.store import repository
from daemon.store.database import Database
from daemon.store.models import Event, Outbox, Ticket, Timer
from daemon.tickets.runtime import Runtime
from daemon.tickets.timers import run_due, tick
from daemon.workflow.engine import wall_clock
from daemon.workflow.facts import CommandIssued

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
M = timedelta(minutes=1)
H = timedelta(hours=1)


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    # Wall-clock arithmetic keeps the expected times readable; business hours are tested
    # on their own (tests/clock/test_business_hours.py).
    return Runtime.build(load_config(ROOT, {}), add_time=wall_clock)


def open_ticket(database: Database, runtime: Runtime, subject: str = "Printer jams") -> str:
    with database.transaction() as session:
        ticket, _ = runtime.open_ticket(session, requester="ann@example.org", subject=subject,
                                     body="It jams on every page.", now=T0)
        return ticket.ref


def state_of(database: Database, ref: str) -> Ticket:
    with database.reading() as session:
        ticket = repository.get_ticket(session, ref)
        assert ticket is not None
        session.expunge(ticket)
        return ticket


def kinds(database: Database, ref: str) -> list[str]:
    with database.reading() as session:
        ticket = repository.get_ticket(session, ref)
        assert ticket is not None
        return [event.kind for event in repository.timeline(session, ticket)]


def breaches(database: Database, ref: str) -> list[str]:
    """What each sla_breach was about: the state that missed its deadline, or the target."""
    with database.reading() as session:
        ticket = repository.get_ticket(session, ref)
        assert ticket is not None
        return [e.data.get("target") or e.from_state or "" for e in
                repository.timeline(session, ticket) if e.kind == "sla_breach"]


def test_resolution_target_waits_out_paused_time(database: Database, runtime: Runtime) -> None:
    ref = open_ticket(database, runtime, "VPN down for all users")  # P1: resolve in 4h
    with database.transaction() as session:  # two hours waiting on the customer
        ticket = repository.get_ticket(session, ref)
        assert ticket is not None
        runtime.apply(session, ticket, runtime.engine_for(ticket).handle(
            repository.facts(ticket), cmd_wait(), T0 + 30 * M), T0 + 30 * M)
    assert state_of(database, ref).state == "waiting_on_customer"
    run_due(database, runtime, T0 + 4 * H + M)
    # Only 30 working minutes were used: no resolution breach, the timer moved out instead.
    assert "resolution" not in breaches(database, ref)
    with database.reading() as session:
        due = session.scalars(select(Timer.due_at).where(Timer.kind == "resolve")).all()
    assert due == [T0 + 4 * H + M + 3 * H + 30 * M]


def cmd_wait() -> CommandIssued:
    return CommandIssued("wait", "morgan.lee@example.com", "tier2", "which client version?")


def templates(database: Database) -> list[str]:
    with database.reading() as session:
        return list(session.scalars(select(Outbox.template).order_by(Outbox.id)))


def test_idle_tick_fires_nothing(database: Database, runtime: Runtime) -> None:
    open_ticket(database, runtime)
    assert tick(database, runtime, T0 + M).fired == 0


def test_warning_then_escalation(database: Database, runtime: Runtime) -> None:
    ref = open_ticket(database, runtime)  # P3, stays in triage: warn at 22m30s, expire at 30m
    assert tick(database, runtime, T0 + 25 * M).fired == 1
    assert kinds(database, ref)[-1] == "warning"
    assert templates(database)[-1] == "sla_warning"
    assert tick(database, runtime, T0 + 26 * M).fired == 0  # fired once only
    assert tick(database, runtime, T0 + 31 * M).fired == 1
    ticket = state_of(database, ref)
    assert (ticket.state, ticket.team) == ("tier1", "tier1")
    assert ticket.state_entered_at == T0 + 30 * M
    assert templates(database)[-2:] == ["status_update", "escalation_handoff"]


def test_catch_up_after_downtime_fires_each_step_once_in_order(
    database: Database, runtime: Runtime
) -> None:
    ref = open_ticket(database, runtime)
    # Down for ten hours: triage expired at 0:30, tier1 (4h) at 4:30; tier2 (8h from 4:30)
    # has not expired, but its reminders at 6:30 and 8:30 are due: only the latest goes out.
    result = run_due(database, runtime, T0 + 10 * H)
    ticket = state_of(database, ref)
    assert ticket.state == "tier2"
    assert ticket.state_entered_at == T0 + 4 * H + 30 * M
    moves = [k for k in kinds(database, ref) if k == "transition"]
    assert len(moves) == 2
    # The three state steps, and the whole ticket's first-response target (P3: 4h) missed.
    assert kinds(database, ref).count("late_timer") == 4
    assert breaches(database, ref) == ["triage", "first response", "tier1"]  # in due order
    # Triage's warning and tier1's reminders were superseded by their passed deadlines.
    assert kinds(database, ref).count("reminder") == 1
    assert kinds(database, ref).count("warning") == 0
    assert result.fired == 4 and result.superseded >= 4
    assert run_due(database, runtime, T0 + 10 * H).seen == 0


def test_stale_timer_is_dropped_silently(database: Database, runtime: Runtime) -> None:
    ref = open_ticket(database, runtime)
    with database.transaction() as session:
        ticket = repository.get_ticket(session, ref)
        assert ticket is not None
        session.add(Timer(ticket_id=ticket.id, kind="remind", state="tier3", seq=1,
                          due_at=T0 + M))
    before = kinds(database, ref)
    assert tick(database, runtime, T0 + 2 * M).seen == 1
    assert kinds(database, ref) == before


@pytest.mark.postgres
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_two_clocks_never_fire_the_same_timer(database: Database, runtime: Runtime) -> None:
    refs = [open_ticket(database, runtime, f"Printer {i} jams") for i in range(60)]
    barrier = threading.Barrier(2)
    results = []

    def clock() -> None:
        barrier.wait()
        results.append(run_due(database, runtime, T0 + 25 * M, batch=7))

    workers = [threading.Thread(target=clock) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sum(r.fired for r in results) == len(refs)
    with database.reading() as session:
        warnings = session.scalar(select(func.count()).select_from(Event)
                                  .where(Event.kind == "warning"))
    assert warnings == len(refs)


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_a_ticket_another_transaction_holds_fires_at_the_next_tick(
        database: Database, runtime: Runtime) -> None:
    """Two daemons' clocks (or a clock and ingest) on one ticket: the second neither waits
    (it could deadlock) nor fires on a stale copy; it leaves that ticket's timers due."""
    from sqlalchemy import text

    ref = open_ticket(database, runtime, "VPN down for all users")
    due = T0 + 2 * H
    with database.reading() as session:
        pending = session.scalar(select(func.count()).select_from(Timer)
                                 .where(Timer.due_at <= due))
    assert pending
    results: list[int] = []
    with database.transaction() as other:  # another daemon works on the ticket
        other.execute(text("SELECT id FROM tickets WHERE ref = :ref FOR UPDATE"), {"ref": ref})
        clock = threading.Thread(target=lambda: results.append(
            tick(database, runtime, due).seen), daemon=True)
        clock.start()
        clock.join(10)
        assert not clock.is_alive(), "the clock waits for the ticket another transaction holds"
    assert results == [0]
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Timer)
                              .where(Timer.due_at <= due)) == pending
    assert run_due(database, runtime, due).fired  # once it is free


def test_catching_up_a_timeout_that_stays_in_its_state_fires_it_once(
        database: Database, runtime: Runtime) -> None:
    """Tier 3's timeout alerts the escalation manager and stays in tier 3. After a month of
    downtime the ladder catches up (each late escalation from the deadline it missed), but
    tier 3 alerts once, from now: not once for every four hours it was away."""
    ref = open_ticket(database, runtime, "VPN down for all users")  # P1
    back = T0 + 30 * 24 * H
    run_due(database, runtime, back)
    with database.reading() as session:
        ticket = repository.get_ticket(session, ref)
        assert ticket is not None
        moves = [(e.from_state, e.to_state) for e in repository.timeline(session, ticket)
                 if e.kind == "transition"]
        alerts = session.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.ticket_id == ticket.id, Outbox.to_role == "escalation_manager"))
        pending = session.scalars(select(Timer.due_at).where(
            Timer.ticket_id == ticket.id, Timer.kind == "expire")).all()
    assert ticket.state == "tier3"
    assert moves.count(("tier3", "tier3")) == 1, moves
    assert alerts == 1
    assert pending and min(pending) > back  # the next round counts from now
