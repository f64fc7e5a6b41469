"""Several daemons on one mailbox (daemon/store/claims.py): each ingests ranges of UIDs of its
own, a dead daemon's range is taken over, and a reply waits for the mail it answers when
another daemon is still ingesting it. The "other daemon" is a range claimed in the store in
the name of a real process of this machine (a child that sleeps, or is killed)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from daemon.inbound.ingest import process_batch
from daemon.inbound.ingest_loop import drain
from daemon.service.app import Parts
from daemon.store import claims
from daemon.store.database import Database
from daemon.store.liveness import this_process
from daemon.store.models import MailboxClaim, Message, Ticket
from tests.inbound.imap.servers import Account, ImapTestServer
from tests.inbound.ingest.conftest import Connect
from tests.inbound.ingest.mails import mail
from tests.inbound.ingest.test_drain import append_all, count, cursor

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PARENT = mail(subject="VPN down", message_id="<parent@example.org>")
# Answers the report before any acknowledgement: threads by In-Reply-To alone.
REPLY = mail(subject="Re: VPN down", body="Still down.", message_id="<reply@example.org>",
             in_reply_to="<parent@example.org>")


@pytest.fixture
def other() -> Iterator[subprocess.Popen[bytes]]:
    """A live process of this machine, to stand for another daemon."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield child
    child.kill()
    child.wait()


def claim_as(database: Database, process: subprocess.Popen[bytes], low: int, high: int,
             uidvalidity: int) -> None:
    host, _, namespace = this_process().split(":", 2)
    with database.transaction() as session:
        claims.reset(session, "INBOX", uidvalidity)
        session.add(MailboxClaim(folder="INBOX", low_uid=low, high_uid=high,
                                 uidvalidity=uidvalidity,
                                 claimed_by=f"{host}:{process.pid}:{namespace}",
                                 lease_until=datetime.now(UTC) + timedelta(minutes=2),
                                 done=False))


def tickets_and_mails(database: Database) -> list[tuple[str, int]]:
    with database.reading() as session:
        return [(ref, int(n)) for ref, n in session.execute(
            select(Ticket.ref, func.count(Message.id)).join(Message)
            .group_by(Ticket.ref).order_by(Ticket.ref))]


def drain_behind(imap_server: ImapTestServer, imap_account: Account, database: Database,
                 parts: Parts, connect: Connect, other: subprocess.Popen[bytes],
                 ) -> tuple[threading.Thread, list[dict[str, int]]]:
    """The report and its reply in the mailbox, the report's range claimed by `other`; this
    daemon's drain running in a thread, a second on, so it took the reply's range and holds
    the reply. Returns the thread and where its counts will be."""
    append_all(imap_server, imap_account, [PARENT, REPLY])
    box = connect()
    claim_as(database, other, 1, 1, box.select())
    done: list[dict[str, int]] = []
    ours = threading.Thread(target=lambda: done.append(
        dict(drain(box, database, parts.inbox).counts)))
    ours.start()
    time.sleep(1.0)
    return ours, done


def test_ranges_follow_each_other_and_the_cursor_passes_only_done_ones(
        database: Database) -> None:
    with database.transaction() as session:
        first = claims.take(session, "INBOX", 7, [3, 5, 8, 9], 2, NOW)
        second = claims.take(session, "INBOX", 7, [3, 5, 8, 9], 2, NOW)
        assert claims.take(session, "INBOX", 7, [3, 5, 8, 9], 2, NOW) is None  # all taken
    assert (first and first.low, first and first.high) == (1, 5)
    assert second is not None and (second.low, second.high, second.uids) == (6, 9, (8, 9))
    with database.transaction() as session:
        assert claims.finish(session, second) == 0  # done, but the range below is not
    with database.transaction() as session:
        assert claims.finish(session, first) == 9  # both done: the cursor passes both
        assert session.scalar(select(func.count()).select_from(MailboxClaim)) == 0
    for claim in (first, second):
        claims.let_go(claim)


def test_a_dead_daemons_range_is_taken_over_at_once(
        imap_server: ImapTestServer, imap_account: Account, database: Database,
        parts: Parts, connect: Connect, other: subprocess.Popen[bytes]) -> None:
    append_all(imap_server, imap_account, [PARENT, REPLY])
    box = connect()
    claim_as(database, other, 1, 1, box.select())
    other.kill()
    other.wait()  # died with its range undone, before committing anything
    report = drain(box, database, parts.inbox)
    assert report.counts == {"opened": 1, "updated": 1}
    assert tickets_and_mails(database) == [("TD-1", 2)] and cursor(database)[1] == 2


def test_a_reply_waits_for_the_mail_another_daemon_is_ingesting(
        imap_server: ImapTestServer, imap_account: Account, database: Database,
        parts: Parts, connect: Connect, other: subprocess.Popen[bytes]) -> None:
    ours, done = drain_behind(imap_server, imap_account, database, parts, connect, other)
    assert count(database, Message) == 0 and ours.is_alive()
    with database.transaction() as session:  # the other daemon commits the report
        process_batch(session, [(1, PARENT)], parts.inbox, NOW, folder="INBOX")
        claims.finish(session, claims.Claim("INBOX", 1, 1, (1,)))
    ours.join(10)
    assert done == [{"updated": 1}]
    assert tickets_and_mails(database) == [("TD-1", 2)] and cursor(database)[1] == 2


def test_a_reply_held_for_a_daemon_that_dies_goes_on_after_its_range(
        imap_server: ImapTestServer, imap_account: Account, database: Database,
        parts: Parts, connect: Connect, other: subprocess.Popen[bytes]) -> None:
    ours, done = drain_behind(imap_server, imap_account, database, parts, connect, other)
    other.kill()  # dies holding the report's range: this daemon takes it over, then its own
    other.wait()
    ours.join(10)
    assert done == [{"opened": 1, "updated": 1}]
    assert tickets_and_mails(database) == [("TD-1", 2)] and cursor(database)[1] == 2
