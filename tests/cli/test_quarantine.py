"""`tierdesk quarantine [--json] [--all]`, `quarantine show ID` and `quarantine retry ID`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from daemon.cli.main import main
from daemon.inbound.ingest import Inbox, process_mail
from daemon.site.config import load_config
from daemon.store import intake, repository
from daemon.store.database import Database
from daemon.store.models import Message, Outbox, Quarantine, Ticket
from daemon.tickets.runtime import Runtime
from tests.inbound.ingest.mails import mail

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GOOD = mail(subject="Laptop will not boot", message_id="<boot@example.org>")
SQLITE_ONLY = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


def with_attachments(count: int) -> bytes:
    """A harmless mail that only a tightened mail.max_attachments rejects."""
    msg = message_from_bytes(mail(subject="Scans attached", message_id="<scans@example.org>"),
                             policy=policy.default)
    assert isinstance(msg, EmailMessage)
    for n in range(count):
        msg.add_attachment(f"page {n}".encode(), maintype="application",
                           subtype="octet-stream", filename=f"scan{n}.bin")
    return msg.as_bytes()


@pytest.fixture
def url(database: Database, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI reads this database (TIERDESK_DATABASE_URL)."""
    rendered = database.url.render_as_string(hide_password=False)
    monkeypatch.setenv("TIERDESK_DATABASE_URL", rendered)
    return rendered


def quarantine(database: Database, raw: bytes, environ: dict[str, str] | None = None,
               uid: int = 7) -> int:
    """Feed a mail the way ingest does, under `environ`'s settings; it must be set aside."""
    inbox = Inbox.build(Runtime.build(load_config(ROOT, environ or {})))
    with database.transaction() as session:
        outcome = process_mail(session, raw, inbox, T0, folder="INBOX", uid=uid)
    assert outcome.action == "quarantined", outcome
    with database.reading() as session:
        return max(q.id for q in intake.list_quarantine(session))


def set_aside(database: Database, raw: bytes, reason: str) -> int:
    """A quarantine row as a transient failure (a locked database, a bug since fixed) leaves."""
    with database.transaction() as session:
        row = intake.add_quarantine(session, raw=raw, reason=reason, now=T0,
                                    subject="Laptop will not boot", sender="ann@example.org",
                                    message_id="boot@example.org", folder="INBOX", uid=3)
        return row.id


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["quarantine", *args, "--config", str(ROOT)])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err


def count(database: Database, model: type) -> int:
    with database.reading() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


# ------------------------------------------------------------------ list

@SQLITE_ONLY
def test_list_json_has_the_documented_keys(database: Database, url: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    raw = with_attachments(3)
    row_id = quarantine(database, raw, {"TIERDESK_MAIL_MAX_ATTACHMENTS": "2"})
    code, out, _ = run(capsys, "--json")
    assert code == 0
    [item] = json.loads(out)
    assert {"id", "reason", "received_at", "subject", "sender", "message_id", "folder", "uid",
            "size"} <= set(item)
    assert item["id"] == row_id and item["subject"] == "Scans attached"
    assert "3 attachments" in item["reason"] and "max_attachments" in item["reason"]
    assert (item["sender"], item["message_id"]) == ("ann@example.org", "scans@example.org")
    assert (item["folder"], item["uid"], item["size"]) == ("INBOX", 7, len(raw))
    assert datetime.fromisoformat(item["received_at"]) == T0


@SQLITE_ONLY
def test_a_mail_with_too_many_attachments_still_has_its_headline(
        database: Database, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    quarantine(database, with_attachments(101))  # over the shipped limit of 100
    [item] = json.loads(run(capsys, "--json")[1])
    assert (item["subject"], item["sender"]) == ("Scans attached", "ann@example.org")


@SQLITE_ONLY
def test_list_table_and_empty(database: Database, url: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys)
    assert (code, out.strip()) == (0, "no quarantined mail")
    set_aside(database, GOOD, "OperationalError: database is locked")
    code, out, _ = run(capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0] == "Quarantined: 1"
    assert lines[1].split()[:4] == ["ID", "RECEIVED", "SENDER", "SUBJECT"]
    assert "ann@example.org" in lines[2] and "database is locked" in lines[2]
    assert "quarantine retry ID" in out


def test_without_a_database_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TIERDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'none.db'}")
    for args in ((), ("show", "1"), ("retry", "1")):
        code, _, err = run(capsys, *args)
        one_line_error(code, err, "does not exist")
    assert not (tmp_path / "none.db").exists()


# ------------------------------------------------------------------ show

@SQLITE_ONLY
def test_show_prints_reason_and_raw_headers_only(database: Database, url: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    row_id = set_aside(database, GOOD, "ValueError: boom")
    code, out, _ = run(capsys, "show", str(row_id))
    assert code == 0
    assert out.startswith(f"quarantine #{row_id}, received 2026-03-02 09:00:00 UTC "
                          "(folder INBOX, uid 3, ")
    assert "reason: ValueError: boom" in out
    assert "Message-ID: <boot@example.org>" in out and "Subject: Laptop will not boot" in out
    assert "It jams on every page." not in out  # the body is not printed


@SQLITE_ONLY
def test_show_neutralises_terminal_escapes(database: Database, url: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    raw = b"From: a@example.org\r\nSubject: \x1b]0;owned\x07\x1b[2J hi\r\n\r\nbody\r\n"
    row_id = set_aside(database, raw, "ValueError: boom")
    code, out, _ = run(capsys, "show", str(row_id))
    assert code == 0 and "\x1b" not in out and "\x07" not in out
    assert "Subject: \\x1b]0;owned\\x07\\x1b[2J hi" in out
    code, out, _ = run(capsys, "show", str(row_id), "--json")
    assert json.loads(out)["headers"].startswith("From: a@example.org\nSubject: \\x1b")


@SQLITE_ONLY
@pytest.mark.parametrize("action", ["show", "retry"])
def test_unknown_id_is_one_line(database: Database, url: str, action: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, action, "42")
    one_line_error(code, err, "no quarantined mail 42")


@SQLITE_ONLY
def test_misuse_is_one_line(database: Database, url: str,
                            capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "retry")
    one_line_error(code, err, "needs the ID")
    code, _, err = run(capsys, "7")  # argparse: exit 2, one line
    assert code == 2 and len(err.strip().splitlines()) == 1 and "invalid choice" in err


# ------------------------------------------------------------------ retry

def test_retry_processes_the_mail_once(database: Database, url: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    row_id = set_aside(database, GOOD, "OperationalError: database is locked")
    code, out, _ = run(capsys, "retry", str(row_id))
    assert code == 0
    assert out.strip().startswith(f"quarantine #{row_id} processed: opened TD-1")
    with database.reading() as session:
        ticket = repository.get_ticket(session, "TD-1")
        assert ticket is not None and ticket.subject == "Laptop will not boot"
        templates = session.scalars(select(Outbox.template)).all()
        row = session.get(Quarantine, row_id)
        assert row is not None and row.retried_at is not None
    assert "acknowledgement" in templates
    code, out, _ = run(capsys, "--json")
    assert json.loads(out) == []
    code, out, _ = run(capsys, "--all", "--json")
    assert [item["retried_at"] is not None for item in json.loads(out)] == [True]
    code, _, err = run(capsys, "retry", str(row_id))  # done is done: no second effect
    one_line_error(code, err, "already processed")
    assert (count(database, Ticket), count(database, Message)) == (1, 1)


def test_retry_with_the_config_fixed_succeeds(database: Database, url: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    row_id = quarantine(database, with_attachments(3), {"TIERDESK_MAIL_MAX_ATTACHMENTS": "2"})
    code, out, _ = run(capsys, "retry", str(row_id))  # today's config allows 100
    assert code == 0 and "opened TD-1" in out
    with database.reading() as session:
        stored = session.scalars(select(Message)).one()
        assert stored.message_id == "scans@example.org"


def test_retry_that_fails_again_keeps_the_row_with_the_new_reason(
        database: Database, url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    raw = with_attachments(3)
    row_id = set_aside(database, raw, "OperationalError: database is locked")
    monkeypatch.setenv("TIERDESK_MAIL_MAX_ATTACHMENTS", "1")
    code, out, _ = run(capsys, "retry", str(row_id))
    assert code == 1
    assert out.strip() == (f"quarantine #{row_id} failed again and stays quarantined: mail has "
                           "3 attachments, over the limit of 1 (settings: mail.max_attachments)")
    code, out, _ = run(capsys, "--json")
    [item] = json.loads(out)
    assert (item["id"], item["retried_at"]) == (row_id, None)
    assert item["reason"].startswith("mail has 3 attachments")
    assert (count(database, Quarantine), count(database, Ticket), count(database, Message)) \
        == (1, 0, 0)
    with database.reading() as session:
        assert session.get(Quarantine, row_id).raw == raw  # type: ignore[union-attr]


@SQLITE_ONLY
def test_retry_of_a_mail_processed_meanwhile_is_a_duplicate(
        database: Database, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    row_id = set_aside(database, GOOD, "OperationalError: database is locked")
    inbox = Inbox.build(Runtime.build(load_config(ROOT, {})))
    with database.transaction() as session:  # the same mail arrived again and went through
        assert process_mail(session, GOOD, inbox, T0).action == "opened"
    code, out, _ = run(capsys, "retry", str(row_id))
    assert code == 0 and f"quarantine #{row_id} processed: duplicate" in out
    assert count(database, Ticket) == 1
    code, out, _ = run(capsys, "--json")
    assert json.loads(out) == []
