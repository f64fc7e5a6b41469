"""`tierdesk explain FILE [--json]`, run in-process through main() and once via run.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.cli.explain import explain_mail
from daemon.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
MAILS = Path(__file__).parents[1] / "mails"
SETTINGS = "site:\n  domain: example.com\nmail:\n  address: support@example.com\n"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TIERDESK_") and not name.startswith("TIERDESK_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "settings.yaml").write_text(SETTINGS)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_text_report(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "explain", str(MAILS / "gmail_wrapped_attribution.eml"),
                         "--config", str(site))
    assert (code, err) == (0, "")
    assert "kind:        human" in out
    assert "1. replied-to message ids: td-out-23-1.77ab12@example.com" in out
    assert "2. subject tags:           TD-23" in out
    assert "TD-23 (signed, token q4m8x2) via support+TD-23.q4m8x2@example.com" in out
    assert "line 1: #take" in out
    assert "  | I'll look at it this afternoon." in out
    assert "#escalate" not in out  # planted in the quote
    assert "new text (ended by attribution line 'On Wed, Jun 3, 2026" in out


def test_text_report_of_a_bounce(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", str(MAILS / "postfix_bounce.eml"), "--config", str(site))
    assert code == 0
    assert "kind:        bounce" in out
    assert "reason:      Content-Type: multipart/report; report-type=delivery-status" in out
    assert "also:        Auto-Submitted: auto-replied" in out
    assert "bounced:     td-out-41.9f8e7d@example.com" in out
    assert "part-3.txt  text/rfc822-headers" in out


def test_json_report(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", "--json", str(MAILS / "html_only_resolve.eml"),
                       "--config", str(site))
    data = json.loads(out)
    assert code == 0
    assert {"kind", "reason", "new_text", "thread_keys", "commands"} <= set(data)
    assert data["kind"] == "human"
    assert data["commands"] == [{"name": "resolve", "line_no": 1, "argument_text":
                                 "replaced the docking station, both monitors work"}]
    assert data["text_without_commands"] == "Closing this one."
    assert data["thread_keys"] == {"message_ids": ["td-out-31-2.313131@example.com"],
                                   "subject_refs": ["TD-31"], "plus_refs": []}
    assert data["from"] == {"address": "tom.becker@example.com", "name": "Tom Becker",
                            "problem": None}


def test_the_person_behind_our_groups_from(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mail = str(MAILS / "google_group_dmarc_rewrite.eml")
    _, out, _ = run(capsys, "explain", "--json", mail, "--config", str(site))
    assert (json.loads(out)["kind"], json.loads(out)["author"]) == ("human",
                                                                     "hannah.lee@example.edu")
    _, out, _ = run(capsys, "explain", mail, "--config", str(site))
    assert "written by:  hannah.lee@example.edu (our own group passed it on" in out
    _, out, _ = run(capsys, "explain", "--json", str(MAILS / "html_only_resolve.eml"),
                    "--config", str(site))
    assert json.loads(out)["author"] is None


def test_json_attachments_and_defects(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "explain", "--json", str(MAILS / "bad_base64.eml"),
                    "--config", str(site))
    data = json.loads(out)
    assert data["attachments"][0]["filename"] == "scan0001.pdf"
    assert "part 1: bad base64 (characters outside the alphabet)" in data["defects"]


def test_support_address_comes_from_settings(site: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERDESK_MAIL_ADDRESS", "helpdesk@example.com")
    _, out, _ = run(capsys, "explain", "--json", str(MAILS / "own_mail.eml"),
                    "--config", str(site))
    data = json.loads(out)
    assert data["kind"] == "auto_reply"  # support@ is no longer ours
    assert data["thread_keys"]["plus_refs"] == []


def test_missing_file_is_one_line(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "explain", str(site / "nope.eml"), "--config", str(site))
    assert (code, out) == (1, "")
    assert err == f"tierdesk: cannot read {site / 'nope.eml'}: No such file or directory\n"


def test_rejected_mail_is_one_line(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parts = "".join(f"--b\nContent-Type: application/octet-stream\n\n{i}\n" for i in range(101))
    mail = site / "many.eml"
    mail.write_text(f"Content-Type: multipart/mixed; boundary=b\n\n{parts}--b--\n")
    code, out, err = run(capsys, "explain", str(mail), "--config", str(site))
    assert (code, out) == (1, "")
    assert err == (f"tierdesk: {mail}: mail rejected: mail has 101 attachments, over the "
                   "limit of 100 (settings: mail.max_attachments)\n")


def test_broken_config_is_reported(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (site / "config" / "settings.yaml").write_text("mail:\n  address: not an address\n")
    code, out, err = run(capsys, "explain", str(MAILS / "gmail_reply.eml"),
                         "--config", str(site))
    assert (code, out) == (1, "")
    assert "settings.yaml" in err and "not a valid e-mail address" in err


def test_explain_mail_is_pure() -> None:
    result = explain_mail((MAILS / "exchange_oof.eml").read_bytes(),
                          support_address="support@example.com")
    assert result.classification.kind == "auto_reply"
    assert result.keys.subject_refs == ("TD-12",)
    assert result.tags.commands == ()


def test_through_run_py(site: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "run.py"), "explain", "--json",
                           str(MAILS / "mailing_list.eml"), "--config", str(site)],
                          capture_output=True, text=True, check=False, cwd=ROOT,
                          env={k: v for k, v in os.environ.items()
                               if not k.startswith("TIERDESK_")})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["kind"] == "list"


def test_store_says_redelivery_reused_id_or_new(site: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from daemon.inbound.ingest import process_mail
    from daemon.service.app import Parts
    from daemon.site.config import load_config
    from daemon.store.database import migrate, open_database
    from tests.inbound.ingest.mails import mail

    url = f"sqlite:///{tmp_path / 'explain.db'}"
    monkeypatch.setenv("TIERDESK_DATABASE_URL", url)
    first = mail(subject="Printer jams", message_id="<job@script.example>")
    reused = mail(subject="Disk full", message_id="<job@script.example>")
    database = open_database(url)
    try:
        migrate(database)
        with database.transaction() as session:
            process_mail(session, first, Parts.build(load_config(ROOT, {}), database).inbox,
                         datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    finally:
        database.close()
    verdicts = {}
    for name, raw in (("first", first), ("reused", reused), ("new", mail())):
        path = tmp_path / f"{name}.eml"
        path.write_bytes(raw)
        code, out, err = run(capsys, "explain", "--json", "--store", str(path),
                             "--config", str(site))
        assert (code, err) == (0, "")
        verdicts[name] = json.loads(out)["store"]
    assert verdicts["first"]["verdict"] == "duplicate" and verdicts["first"]["tickets"] == ["TD-1"]
    assert verdicts["reused"]["verdict"] == "reused_message_id"
    assert "processed as a mail of its own" in verdicts["reused"]["why"]
    assert verdicts["new"] == {"verdict": "new", "tickets": [],
                               "why": "not stored yet: processed as a new mail"}
    code, out, _ = run(capsys, "explain", "--store", str(tmp_path / "first.eml"),
                       "--config", str(site))
    assert code == 0
    assert "store:       this mail is stored already (on TD-1): same Message-ID and content" in out
    assert "\ndigest:      " in out


# ------------------------------------------------------------------ authentication

def member_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped directory, a secret, and a trusted authserv-id, as a site has them."""
    from tests.inbound.commands.desk import SECRET
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "settings.yaml").write_text(SETTINGS)
    (tmp_path / "config" / "teams.yaml").write_bytes((ROOT / "config" / "teams.yaml").read_bytes())
    monkeypatch.setenv("TIERDESK_AUTH_SECRET", SECRET)
    monkeypatch.setenv("TIERDESK_AUTH_TRUSTED_AUTHSERV_IDS", "mx.example.com")
    return tmp_path


def explain_auth(tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: bytes,
                 site: Path, *flags: str) -> tuple[int, str]:
    from tests.inbound.commands.desk import T0
    path = tmp_path / "mail.eml"
    path.write_bytes(raw)
    code = main(["explain", str(path), "--config", str(site), *flags], clock=lambda: T0)
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def test_a_signed_reply_address_counts_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from tests.inbound.commands.desk import ALEX, tech
    site = member_site(tmp_path, monkeypatch)
    raw = tech(ALEX, "#take", auth=None, to=signed_address(ALEX))
    code, out = explain_auth(tmp_path, capsys, raw, site)
    assert code == 0
    assert f"  sender:  {ALEX}: Alex Chen of team tier1" in out
    assert "  ticket:  TD-1 (from the reply address)" in out
    assert "  1. signed reply address: counts: " in out
    assert "  counted: signed reply address: " in out


def test_a_forged_header_is_shown_not_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from tests.inbound.commands.desk import ALEX, tech
    site = member_site(tmp_path, monkeypatch)
    # The sender wrote one header as mx.example.com, but our server's own one sits on top.
    raw = tech(ALEX, "#resolve done", auth=("mx.example.com; dmarc=fail header.from=example.com",
                                            "mx.example.com; dmarc=pass header.from=example.com"))
    code, out = explain_auth(tmp_path, capsys, raw, site, "--json")
    assert code == 0
    auth = json.loads(out)["authentication"]
    assert auth["counted"] is None
    methods = [a["method"] for a in auth["attempts"]]
    assert methods == ["signed reply address", "DKIM (verified here)", "Authentication-Results"]
    assert not any(a["ok"] for a in auth["attempts"])
    assert auth["attempts"][0]["why"] == "it was not sent to your signed reply address"
    assert "no DKIM signature" in auth["attempts"][1]["why"]
    assert "dmarc=fail" in auth["attempts"][2]["why"]


def test_a_trusted_header_counts_when_nothing_else_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from tests.inbound.commands.desk import DMARC, MORGAN, tech
    site = member_site(tmp_path, monkeypatch)
    code, out = explain_auth(tmp_path, capsys, tech(MORGAN, "#note hi", auth=DMARC), site)
    assert code == 0
    assert "  3. Authentication-Results: counts: " in out
    assert "  counted: Authentication-Results: " in out


def test_no_authentication_section_for_an_outsider(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from tests.inbound.commands.desk import tech
    site = member_site(tmp_path, monkeypatch)
    code, out = explain_auth(tmp_path, capsys, tech("mallory@example.net", "#resolve"), site)
    assert code == 0
    assert ("  sender:  mallory@example.net is not a directory member: its tags are never run "
            "as commands") in out
    assert "counted:" not in out


def signed_address(member: str) -> str:
    from tests.inbound.commands.desk import signed
    return signed(member)
