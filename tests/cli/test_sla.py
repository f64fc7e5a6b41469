"""`tickets` shows each ticket's time left; `show` its SLA history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.cli.main import main
from daemon.inbound.ingest import process_mail
from daemon.service.app import Parts
from daemon.site.config import load_config
from daemon.store.database import migrate, open_database
from daemon.tickets.timers import run_due
from tests.inbound.ingest.mails import mail

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # Monday 09:00 in Berlin
NOW = T0 + timedelta(minutes=70)  # what the commands take for "now": never the real clock


def cli(*argv: str) -> int:
    return main([*argv, "--config", str(ROOT)], clock=lambda: NOW)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    url = f"sqlite:///{tmp_path / 'sla.db'}"
    database = open_database(url)
    try:
        migrate(database)
        parts = Parts.build(load_config(ROOT, {}), database)
        with database.transaction() as session:
            process_mail(session, mail(subject="VPN down for the whole sales team"),
                         parts.inbox, T0)
        run_due(database, parts.runtime, NOW)
    finally:
        database.close()
    monkeypatch.setenv("TIERDESK_DATABASE_URL", url)
    return tmp_path


def test_tickets_json_has_the_deadline_and_time_left(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("tickets", "--json") == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["state"] == "tier3" and row["messages_in"] == 1
    deadline = datetime.fromisoformat(row["deadline"])
    assert deadline > T0 + timedelta(minutes=70)  # tier3's own clock, from its entry
    assert isinstance(row["time_left_s"], int)


def test_show_reports_the_breach_of_tier2(store: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("show", "TD-1") == 0
    out = capsys.readouterr().out
    assert "SLA (working time" in out
    tier2 = next(line for line in out.splitlines() if line.strip().startswith("tier2 "))
    assert "1h" in tier2 and "BREACHED" in tier2
    # At 70 minutes nobody has answered the P1 (15 min) either; tier3 still has time.
    assert "  breaches: first response, tier2\n" in out
    assert "sla_breach" in out  # recorded in the timeline when the deadline passed
