"""Two daemons on one PostgreSQL: row locks with SKIP LOCKED hand each row to one of them."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from daemon.store import repository as repo
from daemon.store.database import Database
from daemon.workflow.facts import MailOrder, TimerOrder

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database", ["postgresql"], indirect=True),
]


def fail_fast(session: Session) -> None:
    # Without SKIP LOCKED the second claim would wait; make that an error, not a hang.
    session.execute(text("SET LOCAL lock_timeout = '2s'"))


def test_two_sessions_never_claim_the_same_timer(database: Database, now: datetime) -> None:
    with database.transaction() as session:
        ticket = repo.create_ticket(
            session, requester="a@x", subject="s", workflow_name="w", workflow_version=1,
            initial_state="triage", priority="P3", team="helpdesk", now=now)
        repo.add_timers(session, ticket, [
            TimerOrder("remind", "triage", now - timedelta(minutes=n)) for n in range(6)])
    with database.sessions() as first, database.sessions() as second:
        fail_fast(first)
        fail_fast(second)
        claimed_first = {t.id for t in repo.due_timers(first, now, limit=4)}
        claimed_second = {t.id for t in repo.due_timers(second, now, limit=10)}
        assert len(claimed_first) == 4 and len(claimed_second) == 2
        assert not claimed_first & claimed_second
        for timer in repo.due_timers(first, now, limit=4):
            repo.delete_timer(first, timer)
        first.commit()
        second.rollback()
    with database.sessions() as third:
        assert {t.id for t in repo.due_timers(third, now, limit=10)} == claimed_second


def test_two_sessions_never_claim_the_same_outbox_row(database: Database, now: datetime) -> None:
    with database.transaction() as session:
        for _ in range(3):
            repo.add_mail(session, MailOrder("t", "requester"), now, domain="x.org")
    with database.sessions() as first, database.sessions() as second:
        fail_fast(first)
        fail_fast(second)
        claimed_first = {row.id for row in repo.due_outbox(first, now, limit=2)}
        claimed_second = {row.id for row in repo.due_outbox(second, now, limit=10)}
        assert len(claimed_first) == 2 and len(claimed_second) == 1
        assert not claimed_first & claimed_second


def test_ticket_lock_keeps_a_second_writer_out(database: Database, now: datetime) -> None:
    with database.transaction() as session:
        ref = repo.create_ticket(
            session, requester="a@x", subject="s", workflow_name="w", workflow_version=1,
            initial_state="triage", priority="P3", team="helpdesk", now=now).ref
    with database.sessions() as first, database.sessions() as second:
        assert repo.get_ticket(first, ref, for_update=True) is not None
        second.execute(text("SET LOCAL lock_timeout = '100ms'"))
        with pytest.raises(OperationalError, match="lock timeout"):
            repo.get_ticket(second, ref, for_update=True)
