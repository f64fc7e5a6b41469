"""Ingest killed with SIGKILL at the worst moments, then run again: every mail has exactly one
effect (one ticket, one stored message, one acknowledgement), none is lost.

The drain runs in a subprocess (crash_ingest.py) configured like the daemon, through TIERDESK_*
variables pointing at the test's IMAP server and database.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from daemon.store import intake
from daemon.store.database import Database
from daemon.store.models import Message, Outbox, Ticket
from tests.inbound.imap.servers import Account, DovecotServer, ImapTestServer, client
from tests.inbound.ingest.mails import mail
from tests.processes import pythonpath

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)
ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(__file__).with_name("crash_ingest.py")


@dataclass
class Site:
    """One daemon's environment: the shipped config, this test's IMAP account and database."""

    server: ImapTestServer
    account: Account
    database: Database
    env: dict[str, str]

    def start(self, **hooks: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(ROOT)], env={**self.env, **hooks},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        if line != "connected":
            child.kill()
            _, err = child.communicate(timeout=10)
            pytest.fail(f"crash_ingest.py did not start: {line} {err}")
        return child

    def run(self, **hooks: str) -> str:
        """Run to completion; the last line of its output."""
        with self.start(**hooks) as child:
            out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        return out.strip().splitlines()[-1]

    def append(self, raws: list[bytes]) -> None:
        with client(self.server, self.account) as imap:
            for raw in raws:
                imap.append("INBOX", raw)


def kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=10)


def site_for(server: ImapTestServer, account: Account, database: Database) -> Site:
    overrides = {
        "TIERDESK_IMAP_HOST": server.host, "TIERDESK_IMAP_PORT": str(server.port),
        "TIERDESK_IMAP_SECURITY": "none", "TIERDESK_IMAP_USERNAME": account.username,
        "TIERDESK_IMAP_PASSWORD": account.password, "TIERDESK_IMAP_TIMEOUT": "10s",
        "TIERDESK_DATABASE_URL": database.url.render_as_string(hide_password=False),
    }
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("TIERDESK_")}
    return Site(server, account, database,
                {**inherited, **overrides, "PYTHONPATH": pythonpath(ROOT)})


@pytest.fixture
def site(imap_server: ImapTestServer, imap_account: Account, database: Database) -> Site:
    return site_for(imap_server, imap_account, database)


@pytest.fixture
def dovecot_site(dovecot: DovecotServer, database: Database) -> Iterator[Site]:
    yield site_for(dovecot, dovecot.new_account(), database)


def numbered(n: int) -> bytes:
    return mail(subject=f"Problem number {n}", message_id=f"<problem-{n}@example.org>",
                sender=f"user{n}@example.org")


# Outbox rows per new ticket: the acknowledgement and the front line's new-ticket notice.
PER_TICKET = 2


def effects(database: Database) -> tuple[list[str], int, int]:
    """Ticket subjects in order, stored inbound messages, outbox rows."""
    with database.reading() as session:
        subjects = list(session.scalars(select(Ticket.subject).order_by(Ticket.id)))
        messages = session.scalar(select(func.count()).select_from(Message)) or 0
        outbox = session.scalar(select(func.count()).select_from(Outbox)) or 0
    return subjects, int(messages), int(outbox)


def exactly_once(database: Database, count: int) -> None:
    subjects, messages, outbox = effects(database)
    assert sorted(subjects) == sorted(f"Problem number {n}" for n in range(count))
    assert (messages, outbox) == (count, count * PER_TICKET)


def last_uid(database: Database) -> int | None:
    with database.reading() as session:
        cursor = intake.get_cursor(session, "INBOX")
        return cursor.last_uid if cursor else None


def unseen(site: Site) -> list[int]:
    with client(site.server, site.account) as imap:
        imap.select_folder("INBOX", readonly=True)
        return sorted(imap.search("UNSEEN"))


def test_kill_between_fetch_and_commit_then_rerun(site: Site) -> None:
    site.append([numbered(n) for n in range(7)])
    child = site.start(TIERDESK_TEST_BATCH_SIZE="3", TIERDESK_TEST_PAUSE_AT_BATCH="2")
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "fetched 2"  # batch 2 in memory, not written
    kill(child)
    subjects, messages, outbox = effects(site.database)
    # Batch 1 only, with its cursor.
    assert (len(subjects), messages, outbox) == (3, 3, 3 * PER_TICKET)
    assert last_uid(site.database) == 3 and len(unseen(site)) == 4
    assert site.run(TIERDESK_TEST_BATCH_SIZE="3") == "done 4 mails: 4 opened"
    exactly_once(site.database, 7)
    assert unseen(site) == [] and last_uid(site.database) == 7


def test_kill_between_commit_and_flags_then_rerun(dovecot_site: Site) -> None:
    """The other window: batch 2 committed with its cursor, its mails not flagged yet."""
    site = dovecot_site
    site.append([numbered(n) for n in range(7)])
    child = site.start(TIERDESK_TEST_BATCH_SIZE="3", TIERDESK_TEST_PAUSE_AFTER_BATCH="2")
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "committed 2"
    kill(child)
    assert last_uid(site.database) == 6 and len(effects(site.database)[0]) == 6
    assert site.run(TIERDESK_TEST_BATCH_SIZE="3") == "done 1 mail: 1 opened"  # not 4
    exactly_once(site.database, 7)
    # The rerun flags what the crash left unflagged below the cursor, processing none again.
    assert not unseen(site)


def test_kill_at_random_moments_then_rerun(dovecot_site: Site) -> None:
    """Kills land before, inside and after batch transactions and between commit and the
    \\Seen flags; more mail arrives between the crashes."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    site, total, killed = dovecot_site, 0, 0
    deadline = time.monotonic() + 20  # bounded, whatever the machine's speed
    for _ in range(4):
        site.append([numbered(n) for n in range(total, total + 8)])
        total += 8
        child = site.start(TIERDESK_TEST_BATCH_SIZE="3", TIERDESK_TEST_BATCH_DELAY="0.03")
        time.sleep(rng.uniform(0, 0.4))
        killed += child.poll() is None
        kill(child)
        if time.monotonic() > deadline:
            break
    last = site.run()
    print(f"\nseed {seed}: {killed} kills mid-drain, {total} mails; last run: {last}")
    exactly_once(site.database, total)
    assert last_uid(site.database) == total
    assert unseen(site) == []  # the last run flagged what the kills left unflagged
