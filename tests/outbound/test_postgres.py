"""Two senders on one PostgreSQL store never take, and so never send, the same row."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from daemon.outbound import outbox_queue
from daemon.outbound.sender import PassReport
from daemon.outbound.smtp import SmtpPool
from daemon.outbound.writer import MailWriter
from daemon.store.database import Database, open_database
from tests.outbound.helpers import Clock, new_ticket, queue, rows, sender, smtp_settings
from tests.outbound.smtp_server import SmtpServer

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database", ["postgresql"], indirect=True),
]


def fill(database: Database, writer: MailWriter, now: datetime, tickets: int,
         per_ticket: int) -> None:
    with database.transaction() as session:
        for _ in range(tickets):
            ticket = new_ticket(session, now)
            for _ in range(per_ticket):
                queue(session, ticket, "reminder", "team", now, writer)


def second_store(database: Database) -> Database:
    return open_database(database.url.render_as_string(hide_password=False))


def test_two_claims_take_disjoint_rows(database: Database, writer: MailWriter,
                                       now: datetime) -> None:
    fill(database, writer, now, tickets=1, per_ticket=5)
    other = second_store(database)
    try:
        with database.sessions() as first, other.sessions() as second:
            for session in (first, second):
                # Without SKIP LOCKED the second claim would wait: make that an error.
                session.execute(text("SET LOCAL lock_timeout = '2s'"))
            lease = now + timedelta(minutes=15)
            mine = {r.id for r in outbox_queue.claim(first, now, 3, lease)}
            theirs = {r.id for r in outbox_queue.claim(second, now, 10, lease)}
            assert len(mine) == 3 and len(theirs) == 2 and not mine & theirs
            first.commit()
            second.commit()
    finally:
        other.close()
    assert {r.status for r in rows(database)} == {"sending"}


def test_two_senders_never_send_the_same_row(database: Database, writer: MailWriter,
                                             smtp_server: SmtpServer, now: datetime) -> None:
    fill(database, writer, now, tickets=30, per_ticket=10)
    other = second_store(database)
    clock = Clock(now)

    async def both() -> list[PassReport]:
        async with SmtpPool(smtp_settings(smtp_server), size=2) as one, \
                SmtpPool(smtp_settings(smtp_server), size=2) as two:
            first = sender(database, one, clock, batch=10)
            second = sender(other, two, clock, batch=10)
            return list(await asyncio.gather(first.run_once(), second.run_once()))

    try:
        reports = asyncio.run(both())
    finally:
        other.close()
    assert sum(r.sent for r in reports) == 300 and all(r.sent > 0 for r in reports)
    received = smtp_server.wait_for(300)
    counts = Counter(r.message_id for r in received)
    assert len(received) == 300 and max(counts.values()) == 1
    assert {r.status for r in rows(database)} == {"sent"}
