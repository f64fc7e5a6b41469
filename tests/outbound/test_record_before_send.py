"""Issue 15: a mail the SMTP server accepted is recorded before the next one goes out on that
connection, in a write that never waits for ingest's: on SQLite the sent journal beside the
database file, on PostgreSQL the outbox row itself. So a kill re-sends at most the one mail
each connection had in flight."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from aiosmtpd.smtp import Session as SmtpSession
from sqlalchemy import select

from daemon.outbound.sender import PassReport
from daemon.outbound.smtp import SmtpPool
from daemon.outbound.writer import MailWriter
from daemon.store.database import Database, migrate, open_database
from daemon.store.journal import journal_path
from daemon.store.models import Outbox
from tests.outbound.helpers import Clock, rows, sender, smtp_settings
from tests.outbound.smtp_server import Received, SmtpServer
from tests.outbound.test_sender import fill


@pytest.fixture
def clock(now: datetime) -> Clock:
    return Clock(now)


def bare(message_id: str) -> str:
    return message_id.strip().strip("<>")


def journaled(database: Database) -> dict[str, int]:
    """Message-ID -> outbox id of the notes in the sent journal (none on PostgreSQL)."""
    file = database.sqlite_file
    if file is None or not journal_path(file).exists():
        return {}
    with closing(sqlite3.connect(journal_path(file))) as journal:
        found = journal.execute("SELECT outbox_id, message_id FROM sent").fetchall()
    return {bare(mid): i for i, mid in found}


def sent_in_outbox(database: Database) -> set[str]:
    with database.reading() as session:
        return {bare(mid) for mid in session.scalars(
            select(Outbox.message_id).where(Outbox.status == "sent"))}


def drain(database: Database, server: SmtpServer, clock: Clock, size: int) -> PassReport:
    async def once() -> PassReport:
        async with SmtpPool(smtp_settings(server), size=size) as pool:
            return await sender(database, pool, clock).run_once()
    return asyncio.run(once())


def test_each_mail_is_recorded_before_the_next_goes_out_on_its_connection(
        database: Database, writer: MailWriter, smtp_server: SmtpServer, clock: Clock) -> None:
    fill(database, writer, clock.now, count=40)
    last: dict[int, str] = {}  # per SMTP session: the Message-ID it accepted last
    checked: list[str] = []
    unrecorded: list[str] = []

    def check(session: SmtpSession, mail: Received) -> None:
        """Runs in the server before it answers mail N: mail N-1 of this connection must be
        recorded by now (sent in the outbox, or noted in the journal)."""
        previous = last.get(id(session))
        if previous is not None:
            checked.append(previous)
            if previous not in sent_in_outbox(database) | set(journaled(database)):
                unrecorded.append(previous)
        last[id(session)] = bare(mail.message_id)

    smtp_server.handler.before_accept = check
    report = drain(database, smtp_server, clock, size=3)
    assert report.sent == 40
    assert unrecorded == []
    assert len(checked) >= 40 - 3  # every mail but each connection's last was checked
    assert {row.status for row in rows(database)} == {"sent"}
    assert journaled(database) == {}  # folded into the outbox by the pass's last record


@contextmanager
def ingest_writing(database: Database, now: datetime) -> Iterator[None]:
    """Another writer holds the database, as ingest does during a batch: on SQLite its write
    lock on the file; on PostgreSQL an open transaction that has inserted an outbox row."""
    file = database.sqlite_file
    if file is not None:
        holder = sqlite3.connect(file, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    with database.sessions() as session:
        session.add(Outbox(template="reminder", to_role="team", message_id="<held@example.com>",
                           next_attempt_at=now, created_at=now))
        session.flush()  # the row is written and its transaction stays open
        try:
            yield
        finally:
            session.rollback()


def test_sending_goes_on_while_ingest_holds_the_write_lock(
        database: Database, writer: MailWriter, smtp_server: SmtpServer, clock: Clock) -> None:
    fill(database, writer, clock.now, count=20)
    started, go_on = smtp_server.handler.hold_next()  # the first mail: after the claim
    reports: list[PassReport] = []
    run = threading.Thread(target=lambda: reports.append(drain(database, smtp_server,
                                                                clock, size=2)))
    run.start()
    try:
        assert started.wait(10)
        with ingest_writing(database, clock.now):
            go_on.set()
            received = smtp_server.wait_for(20, timeout=10)
            assert len(received) == 20  # all sent while the other writer held on
            ids = {bare(r.message_id) for r in received}
            if database.is_postgres:  # recorded in the outbox itself, past ingest's rows
                run.join(10)
                assert not run.is_alive() and reports[0].sent == 20
                assert sent_in_outbox(database) == ids
            else:  # noted in the journal; the outbox still waits for the write lock
                deadline = threading.Event()
                for _ in range(100):
                    if set(journaled(database)) == ids:
                        break
                    deadline.wait(0.05)
                assert set(journaled(database)) == ids
                assert sent_in_outbox(database) == set()
                assert run.is_alive()  # its last record waits for the lock
    finally:
        go_on.set()
        run.join(30)
    assert reports and reports[0].sent == 20
    assert {row.status for row in rows(database)} == {"sent"}
    assert {row.attempts for row in rows(database)} == {1}
    assert journaled(database) == {}


# PostgreSQL records in the outbox itself: it has no journal.
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_a_restarted_sender_folds_the_journal_before_claiming(
        database: Database, writer: MailWriter, smtp_server: SmtpServer, clock: Clock,
        tmp_path: Path) -> None:
    """A note left by a killed sender marks its row sent at the next claim: not sent again.
    A note whose Message-ID is not the row's (another database's leftovers) marks nothing."""
    from daemon.store.journal import SentJournal, SentNote

    fill(database, writer, clock.now, count=3)
    with database.transaction() as session:  # as a killed sender leaves them
        session.execute(Outbox.__table__.update().values(
            status="sending", next_attempt_at=clock.now))  # its lease has run out
    first, second, third = rows(database)
    assert database.sqlite_file is not None
    with SentJournal(journal_path(database.sqlite_file)) as journal:
        journal.write([SentNote(first.id, first.message_id, 1, clock.now),
                       SentNote(second.id, "<someone-else@example.com>", 1, clock.now)])
    report = drain(database, smtp_server, clock, size=1)
    assert report.sent == 2
    assert sorted(bare(r.message_id) for r in smtp_server.received) == sorted(
        bare(row.message_id) for row in (second, third))
    after = {row.id: row for row in rows(database)}
    assert after[first.id].status == "sent" and after[first.id].sent_at == clock.now
    assert {row.status for row in after.values()} == {"sent"}
    assert journaled(database) == {}


def test_in_memory_sqlite_has_no_journal_and_records_with_the_claims(
        writer: MailWriter, smtp_server: SmtpServer, clock: Clock, tmp_path: Path) -> None:
    memory = open_database("sqlite://")
    try:
        migrate(memory)
        assert memory.sqlite_file is None
        fill(memory, writer, clock.now, count=5)
        assert drain(memory, smtp_server, clock, size=2).sent == 5
        assert {row.status for row in rows(memory)} == {"sent"}
        assert list(tmp_path.glob("*-sent")) == []
    finally:
        memory.close()


def test_the_journal_never_makes_the_event_loop_wait(tmp_path: Path, now: datetime) -> None:
    """try_write (on the loop) gives up at once while another writer has the journal; the
    Recorder then writes in a thread, which waits its turn."""
    from daemon.store.journal import SentJournal, SentNote

    path = journal_path(tmp_path / "tierdesk.db")
    with SentJournal(path) as journal:
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            assert journal.try_write([SentNote(1, "<a@example.com>", 1, now)]) is False
            holder.execute("ROLLBACK")
        finally:
            holder.close()
        assert journal.try_write([SentNote(1, "<a@example.com>", 1, now)]) is True
        assert [(n.outbox_id, n.sent_at) for n in journal.notes()] == [(1, now)]
        journal.forget([1])
        assert journal.notes() == []
