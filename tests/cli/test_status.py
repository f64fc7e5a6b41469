"""`tierdesk status [--json] [--health]` against real databases (SQLite and PostgreSQL) and a
real IMAP server: heartbeats written through beat()/stopped(), tickets and outbox rows from
processing real mail, and the exit code of each attention rule."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient

from daemon.cli.main import main
from daemon.inbound.imap import Mailbox
from daemon.inbound.ingest import process_mail
from daemon.inbound.ingest_loop import drain
from daemon.outbound.outbox_queue import park
from daemon.service.app import Parts
from daemon.site.config import load_config
from daemon.store import intake
from daemon.store.database import Database, migrate, shipped_head
from daemon.store.heartbeats import LOOPS, beat, stopped
from daemon.store.models import Outbox
from tests.inbound.imap.servers import Account, EmbeddedServer, ImapTestServer, free_port
from tests.inbound.ingest.mails import mail

ROOT = Path(__file__).resolve().parents[2]
HOST = "mail1"


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Site:
    database: Database
    imap: ImapTestServer
    account: Account
    env: dict[str, str]

    def beat_all(self, daemon: str, at: datetime, **kw: Any) -> None:
        with self.database.transaction() as session:
            for loop in LOOPS:
                beat(session, loop, daemon, at, ok=True, **kw)

    def append(self, raw: bytes, arrived: datetime) -> None:
        with IMAPClient(self.imap.host, self.imap.port, ssl=False, timeout=30) as imap:
            imap.login(self.account.username, self.account.password)
            imap.append("INBOX", raw, msg_time=arrived)

    def drain(self, expected: int, clock: Callable[[], datetime] = now) -> None:
        """Process the mailbox as the ingest loop does; the cursor moves past it."""
        mailbox = Mailbox(load_config(ROOT, self.env).settings.imap)
        mailbox.connect()
        try:
            assert drain(mailbox, self.database, self.parts().inbox, clock).total == expected
        finally:
            mailbox.close()

    def parts(self) -> Parts:
        return Parts.build(load_config(ROOT, self.env), self.database)

    def process(self, raw: bytes, at: datetime) -> None:
        with self.database.transaction() as session:
            outcome = process_mail(session, raw, self.parts().inbox, at)
        assert outcome.action != "quarantined", outcome


@pytest.fixture
def site(database: Database, embedded_imap: EmbeddedServer,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    yield _site(database, embedded_imap, monkeypatch)


def _site(database: Database, server: ImapTestServer, monkeypatch: pytest.MonkeyPatch) -> Site:
    for name in list(os.environ):
        if name.startswith("TIERDESK_") and not name.startswith("TIERDESK_TEST_"):
            monkeypatch.delenv(name)
    account = server.new_account()
    env = {"TIERDESK_DATABASE_URL": database.url.render_as_string(hide_password=False),
           "TIERDESK_IMAP_HOST": server.host, "TIERDESK_IMAP_PORT": str(server.port),
           "TIERDESK_IMAP_SECURITY": "none", "TIERDESK_IMAP_USERNAME": account.username,
           "TIERDESK_IMAP_PASSWORD": account.password, "TIERDESK_IMAP_TIMEOUT": "5s",
           "TIERDESK_MAIL_ADDRESS": "support@example.com"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Site(database, server, account, env)


def server_time(site: Site) -> datetime:
    """The IMAP server's clock: the INTERNALDATE it gives a mail appended without one (in a
    folder of its own, deleted again)."""
    with IMAPClient(site.imap.host, site.imap.port, ssl=False, timeout=30) as imap:
        imap.login(site.account.username, site.account.password)
        imap.create_folder("Probe")
        imap.append("Probe", mail(subject="What time is it?"))
        imap.select_folder("Probe", readonly=True)
        (found,) = imap.fetch(imap.search("ALL"), ["INTERNALDATE"]).values()
        imap.close_folder()
        imap.delete_folder("Probe")
    moment = found[b"INTERNALDATE"]
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def status(capsys: pytest.CaptureFixture[str], *flags: str,
           clock: Callable[[], datetime] = now) -> tuple[int, str, str]:
    code = main(["status", "--config", str(ROOT), *flags], clock=clock)
    out, err = capsys.readouterr()
    return code, out, err


def status_json(capsys: pytest.CaptureFixture[str], *flags: str,
                clock: Callable[[], datetime] = now) -> tuple[int, dict[str, Any]]:
    code, out, _ = status(capsys, "--json", *flags, clock=clock)
    return code, json.loads(out)


def codes(report: dict[str, Any]) -> list[str]:
    return [item["code"] for item in report["attention"]]


# ------------------------------------------------------------------ all well

def test_all_well_is_exit_0_with_every_section(site: Site,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    site.beat_all(f"{HOST}:1", now(), detail={"waiting": 0})
    code, out, err = status(capsys)
    assert (code, err) == (0, "")
    assert out.rstrip().endswith("all well")
    for loop in LOOPS:
        assert f" {loop} " in out
    assert "0 waiting in INBOX on" in out and "0 pending, 0 parked" in out

    code, report = status_json(capsys)
    assert code == 0 and report["status"] == "ok" and report["attention"] == []
    (daemon,) = report["daemons"]
    assert (daemon["daemon"], daemon["state"]) == (f"{HOST}:1", "running")
    assert [(lp["loop"], lp["state"], lp["detail"]) for lp in daemon["loops"]] == [
        (loop, "alive", {"waiting": 0}) for loop in LOOPS]
    assert report["mailbox"]["reachable"] and report["mailbox"]["waiting"] == 0
    assert report["limits"]["stale_after_s"] == 3 * 60 + 30  # defaults: 60 s poll, 30 s SMTP


# ------------------------------------------------------------------ daemons and loops

def test_no_daemon_ever_and_a_stopped_daemon_need_attention(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = status(capsys)
    assert code == 1 and "Daemons: none has run on this database" in out
    assert "no daemon is running (none has ever run on this database)" in out

    site.beat_all(f"{HOST}:1", now() - timedelta(minutes=2))
    with site.database.transaction() as session:
        stopped(session, f"{HOST}:1", now())
    code, report = status_json(capsys, "--health")
    assert code == 1 and codes(report) == ["no_daemon"]
    assert report["daemons"][0]["state"] == "stopped"


def test_a_silent_loop_is_stale(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    site.beat_all(f"{HOST}:1", now() - timedelta(minutes=10))
    with site.database.transaction() as session:
        for loop in ("clock", "sender"):
            beat(session, loop, f"{HOST}:1", now(), ok=True)
    code, out, _ = status(capsys, "--health")
    assert code == 1
    assert f"{HOST}:1: the ingest loop has been silent for 10m (stale after 3m30s)" in out
    assert "ingest (stale)" in out
    _, report = status_json(capsys)
    assert codes(report) == ["loop_stale"]


def test_a_failing_loop_needs_attention_but_one_blip_does_not(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    daemon = f"{HOST}:1"
    site.beat_all(daemon, now() - timedelta(seconds=20))
    with site.database.transaction() as session:  # failed once, right after a success
        beat(session, "sender", daemon, now(), ok=False, error="smtp: connection refused")
    code, report = status_json(capsys)
    assert code == 0, report["attention"]
    sender = report["daemons"][0]["loops"][2]
    assert (sender["error"], sender["failing"]) == ("smtp: connection refused", False)

    site.beat_all(daemon, now() - timedelta(minutes=20))
    with site.database.transaction() as session:
        for loop in LOOPS:
            beat(session, loop, daemon, now(), ok=loop != "sender",
                 error="smtp: connection refused" if loop == "sender" else None)
    code, out, _ = status(capsys)
    assert code == 1
    assert (f"{daemon}: the sender loop is failing (no success 20m ago): smtp: connection "
            "refused: check the SMTP server") in out


def test_a_dead_daemon_needs_attention_unless_restarted_on_its_host(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    site.beat_all(f"{HOST}:1", now() - timedelta(hours=1))   # crashed an hour ago
    site.beat_all(f"{HOST}:2", now())                          # systemd started it again
    code, report = status_json(capsys)
    assert code == 0, report["attention"]
    dead = next(d for d in report["daemons"] if d["daemon"] == f"{HOST}:1")
    assert (dead["state"], dead["replaced_by"]) == ("dead", f"{HOST}:2")

    site.beat_all("mail2:7", now() - timedelta(hours=1))      # another host's daemon died
    code, out, _ = status(capsys, "--health")
    assert code == 1
    assert "daemon mail2:7 went silent 1h ago without stopping" in out


# ------------------------------------------------------------------ the mailbox

def test_imap_unreachable_is_attention_with_the_reason(
        site: Site, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    site.beat_all(f"{HOST}:1", now())
    monkeypatch.setenv("TIERDESK_IMAP_PORT", str(free_port()))
    code, report = status_json(capsys, "--health")
    assert code == 1 and codes(report) == ["imap_unreachable"]
    assert report["mailbox"]["reachable"] is False and report["mailbox"]["waiting"] is None
    assert "Connection refused" in report["attention"][0]["message"]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_mail_waiting_counts_after_the_cursor_and_too_long_is_attention(
        database: Database, imap_server: ImapTestServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """On Dovecot and on the embedded server: the cursor left by really processing mail.
    Times follow the IMAP server's clock: Dovecot gives a mail appended with a date in its
    future its own time instead, and the date-shifted runs put this process years ahead."""
    site = _site(database, imap_server, monkeypatch)
    ahead = server_time(site) - datetime.now(UTC)

    def now() -> datetime:
        return datetime.now(UTC) + ahead

    site.beat_all(f"{HOST}:1", now())
    site.append(mail(subject="Processed already"), now() - timedelta(hours=2))
    site.drain(1, now)
    site.append(mail(subject="Just arrived"), now() - timedelta(seconds=5))
    code, report = status_json(capsys, clock=now)
    assert code == 0, report["attention"]
    assert report["mailbox"]["waiting"] == 1

    site.drain(1, now)
    # Arrival order is UID order; the first mail after the cursor has waited longest.
    site.append(mail(subject="Sent during the night"), now() - timedelta(hours=1))
    site.append(mail(subject="And this morning"), now())
    code, out, _ = status(capsys, "--health", clock=now)
    assert code == 1
    assert "2 mails waiting in INBOX on" in out and "the oldest for 1h" in out


# ------------------------------------------------------------------ outbox, quarantine, tickets

def test_outbox_pending_too_long_is_a_service_problem(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    site.beat_all(f"{HOST}:1", now())
    site.process(mail(subject="Monitor flickers"), now() - timedelta(minutes=3))
    code, report = status_json(capsys)
    assert report["outbox"]["pending"] >= 1 and "outbox_pending" not in codes(report)

    site.process(mail(subject="Keyboard missing keys"), now() - timedelta(hours=1))
    code, report = status_json(capsys, "--health")
    assert code == 1 and "outbox_pending" in codes(report)
    assert report["outbox"]["oldest_pending_s"] >= 3600


def test_parked_and_quarantined_mail_fail_status_but_not_the_health_check(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    site.beat_all(f"{HOST}:1", now())
    site.process(mail(subject="Scanner offline"), now())
    with site.database.transaction() as session:
        rows = list(session.query(Outbox))
        for row in rows:
            park(session, row, row.ticket, "550 mailbox unavailable", now())
        intake.add_quarantine(session, raw=b"Subject: x\r\n\r\nbroken\r\n",
                              reason="could not parse", now=now(), subject="x",
                              sender=None, message_id=None, folder="INBOX", uid=9)
    code, out, _ = status(capsys)
    assert code == 1
    assert f"{len(rows)} mail{'s' if len(rows) != 1 else ''} parked in the outbox: see " \
           "run.py outbox" in out
    assert "1 mail quarantined: see run.py quarantine" in out

    code, out, _ = status(capsys, "--health")
    assert code == 0
    assert out.count("(not counted by --health)") == 2
    _, report = status_json(capsys)
    assert report["outbox"]["parked"] == len(rows) and report["quarantine"]["waiting"] == 1
    assert {(a["code"], a["service"]) for a in report["attention"]} == {
        ("outbox_parked", False), ("quarantine", False)}


def test_tickets_past_their_deadline_reuse_the_tickets_numbers(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    site.beat_all(f"{HOST}:1", now())
    site.process(mail(subject="Laptop stolen at the airport"), now() - timedelta(days=8))
    site.process(mail(subject="New starter needs an account"), now())
    with site.database.transaction() as session:
        for row in session.query(Outbox):
            row.status = "sent"  # delivered: only the tickets are left to look at

    code, report = status_json(capsys, "--health")
    assert code == 0, report["attention"]
    code, report = status_json(capsys)
    assert code == 1 and codes(report) == ["tickets_overdue"]
    tickets = report["tickets"]
    assert tickets["open"] == 2 and sum(tickets["by_team"].values()) == 2
    assert tickets["past_deadline"] == 1
    (late,) = tickets["past_deadline_first"]
    assert main(["tickets", "--json", "--config", str(ROOT)]) == 0
    listed = {t["ref"]: t for t in json.loads(capsys.readouterr().out)}
    assert late["deadline"] == listed[late["ref"]]["deadline"]
    assert late["time_left_s"] < 0
    assert abs(late["time_left_s"] - listed[late["ref"]]["time_left_s"]) <= 5
    code, out, _ = status(capsys)
    assert f"1 ticket past the deadline ({late['ref']} by " in out


# ------------------------------------------------------------------ status unknown: exit 2

@pytest.fixture
def bare_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("TIERDESK_") and not name.startswith("TIERDESK_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_invalid_config_is_exit_2_in_one_line(bare_env: None, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TIERDESK_IMAP_PORT", "nine")
    code, out, err = status(capsys, "--json")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("tierdesk: status unknown: the configuration has 1 problem")
    assert "TIERDESK_IMAP_PORT" in err
    assert json.loads(out)["status"] == "unknown"


def test_unreachable_database_is_exit_2_without_the_password(
        bare_env: None, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TIERDESK_DATABASE_URL",
                       f"postgresql://tierdesk:s3cret@127.0.0.1:{free_port()}/tierdesk")
    code, out, err = status(capsys)
    assert (code, out) == (2, "")
    assert "status unknown: cannot reach database" in err and "s3cret" not in err
    assert len(err.strip().splitlines()) == 1


def test_missing_or_old_schema_is_exit_2(bare_env: None, empty_database: Database,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TIERDESK_DATABASE_URL",
                       empty_database.url.render_as_string(hide_password=False))
    code, _, err = status(capsys)
    assert code == 2 and "has no tables yet" in err
    migrate(empty_database, "0002")
    code, _, err = status(capsys)
    assert code == 2 and f"has schema 0002, this Tierdesk {shipped_head()}" in err
    assert "start the daemon (it migrates on start)" in err
