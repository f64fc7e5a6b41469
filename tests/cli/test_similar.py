"""`tierdesk similar REF`: look-alikes and past fixes of one stored ticket, text and JSON."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from daemon.cli.main import main
from daemon.store.database import migrate, open_database
from tests.inbound.commands.desk import ROOT, SAM, T0, build_inbox, config, feed, mail, tech

NOW = T0 + timedelta(minutes=30)  # the command's "now": never the real clock
FIX = "imported the intermediate certificate again"


def cli(*argv: str) -> int:
    return main([*argv, "--config", str(ROOT)], clock=lambda: NOW)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'similar.db'}"
    database = open_database(url)
    inbox = build_inbox(config())
    try:
        migrate(database)
        feed(database, inbox, mail("ann@example.org", "VPN client cannot connect: certificate",
                                   "The VPN client says the certificate is not trusted."),
             T0 - timedelta(days=30))
        feed(database, inbox, tech(SAM, f"#resolve {FIX}", "TD-1"), T0 - timedelta(days=29))
        feed(database, inbox, mail("bo@example.org", "VPN client cannot connect",
                                   "My VPN client cannot connect."), T0)
        feed(database, inbox, mail("cy@example.org", "VPN client won't connect",
                                   "The VPN client will not connect."), T0 + timedelta(minutes=10))
    finally:
        database.close()
    monkeypatch.setenv("TIERDESK_DATABASE_URL", url)


def test_text_lists_lookalikes_and_past_fixes(store: None,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("similar", "td-3") == 0
    out = capsys.readouterr().out
    assert out.startswith("TD-3: VPN client won't connect\n")
    assert "reply `#link REF` to link" in out and "TD-2  30 min ago  triage" in out
    assert f"TD-1, 1 Feb, fixed by Sam Rivera: {FIX}" in out


def test_json_has_both_lists(store: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("similar", "3", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ref"] == "TD-3"
    assert [item["ref"] for item in data["lookalikes"]] == ["TD-2"]
    [fix] = data["past_fixes"]
    assert (fix["ref"], fix["resolution"], fix["resolved_by"], fix["fixed_by"]) == (
        "TD-1", FIX, SAM, "Sam Rivera")
    assert fix["line"] == f"TD-1, 1 Feb, fixed by Sam Rivera: {FIX}"


def test_limit_and_unknown_ticket(store: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("similar", "TD-99") == 1
    assert "no ticket TD-99" in capsys.readouterr().err
    assert cli("similar", "TD-3", "--limit", "0") == 2
    assert "is not a number from 1 to 50" in capsys.readouterr().err
    assert cli("similar", "TD-1", "--limit", "1") == 0
    out = capsys.readouterr().out
    assert "Fixed before: no resolved ticket looks like it" in out  # not itself


def test_help_names_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["similar", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("REF", "--json", "--limit", "--config"):
        assert option in out
