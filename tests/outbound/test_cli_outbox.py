"""`tierdesk outbox [--json]` and `tierdesk outbox retry ID`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from daemon.cli.main import main
from daemon.outbound.writer import MailWriter
from daemon.store.database import Database
from daemon.store.models import Outbox
from tests.outbound.helpers import events, new_ticket, queue, rows

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def filled(database: Database, writer: MailWriter, monkeypatch: pytest.MonkeyPatch) -> Database:
    """One pending, one parked and one sent mail; the CLI reads this database."""
    now = datetime.now(UTC)
    with database.transaction() as session:
        ticket = new_ticket(session, now)
        ids = [queue(session, ticket, "reminder", "team", now, writer).id for _ in range(3)]
        session.execute(update(Outbox).where(Outbox.id == ids[1]).values(
            status="parked", attempts=1, last_error="refused: 550 5.1.1 No such mailbox"))
        session.execute(update(Outbox).where(Outbox.id == ids[2]).values(
            status="sent", attempts=1, sent_at=now - timedelta(minutes=5)))
    monkeypatch.setenv("TIERDESK_DATABASE_URL",
                       database.url.render_as_string(hide_password=False))
    return database


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args, "--config", str(ROOT)])
    out, err = capsys.readouterr()
    return code, out, err


def test_outbox_lists_pending_parked_and_sent(filled: Database,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "outbox")
    assert code == 0
    assert "Pending: 1" in out and "Parked (`outbox retry ID` requeues one): 1" in out
    assert "Sent in the last 24h, newest first: 1" in out
    assert "refused: 550 5.1.1 No such mailbox" in out and "TD-1" in out


def test_outbox_json(filled: Database, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "outbox", "--json")
    data = json.loads(out)
    assert code == 0 and [len(data[k]) for k in ("pending", "parked", "sent")] == [1, 1, 1]
    parked = data["parked"][0]
    assert parked["status"] == "parked" and parked["ticket"] == "TD-1"
    assert parked["recipients"] == "tier1@example.com"
    assert parked["message_id"].lstrip("<").startswith("td-")


def test_retry_requeues_a_parked_mail(filled: Database,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    parked = next(r for r in rows(filled) if r.status == "parked")
    code, out, _ = run(capsys, "outbox", "retry", str(parked.id))
    assert code == 0 and f"outbox row {parked.id}" in out and "pending again" in out
    again = next(r for r in rows(filled) if r.id == parked.id)
    assert (again.status, again.attempts) == ("pending", 0)
    assert again.next_attempt_at <= datetime.now(UTC)
    [event] = events(filled, "mail_requeued")
    assert "550 5.1.1" in event.reason


@pytest.mark.parametrize(("args", "words"), [
    (("outbox", "retry", "1"), "is pending, not parked"),
    (("outbox", "retry", "99"), "no outbox row 99"),
    (("outbox", "retry"), "needs the ID of a parked mail"),
])
def test_retry_mistakes_are_one_line(filled: Database, capsys: pytest.CaptureFixture[str],
                                     args: tuple[str, ...], words: str) -> None:
    code, out, err = run(capsys, *args)
    assert code == 1 and out == "" and words in err and len(err.strip().splitlines()) == 1
