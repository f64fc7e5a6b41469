"""The command line, run in-process through main() (and once through run.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jinja2
import pytest

from daemon.cli.main import main
from daemon.cli.store import age, normalise_ref
from daemon.config.yamlsource import load_yaml
from daemon.store import repository
from daemon.store.database import migrate, open_database
from daemon.workflow.facts import EventRecord
from daemon.workflow.model import Workflow

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "mail_templates"
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
AUTH_SECRET = "cli-test-secret-0123456789abcdefghij"


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No TIERDESK_ setting from the caller's shell, and a scratch working directory
    (the default SQLite file is relative to it)."""
    for name in list(os.environ):
        if name.startswith("TIERDESK_") and not name.startswith("TIERDESK_TEST_"):
            monkeypatch.delenv(name)
    # Without a secret `check` passes with a warning; these tests want its plain "ok" line.
    monkeypatch.setenv("TIERDESK_AUTH_SECRET", AUTH_SECRET)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the shipped config/, workflows/ and mail_templates/."""
    root = tmp_path / "site"
    for folder in ("config", "workflows", "mail_templates"):
        shutil.copytree(ROOT / folder, root / folder)
    return root


@pytest.fixture
def seeded(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite database with two tickets, written through the store's own API."""
    url = f"sqlite:///{clean_env / 'seeded.db'}"
    monkeypatch.setenv("TIERDESK_DATABASE_URL", url)
    database = open_database(url)
    try:
        migrate(database)
        with database.transaction() as session:
            first = _ticket(session, "VPN drops every hour", "alice@example.com", "tier1")
            repository.add_events(session, first, [
                EventRecord("created", "triage", None, "triage", "new mail"),
                EventRecord("transition", "clock", "triage", "tier1",
                            "not triaged within 30m"),
            ], T0 + timedelta(minutes=30))
            _ticket(session, "Printer jammed", "bob@example.com", "triage")
    finally:
        database.close()
    return url


def _ticket(session, subject: str, requester: str, state: str):  # type: ignore[no-untyped-def]
    return repository.create_ticket(
        session, requester=requester, subject=subject, workflow_name="it-support",
        workflow_version=1, initial_state=state, priority="P2", team="tier1", now=T0)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err


# ------------------------------------------------------------------ check

def test_check_passes_on_the_shipped_files(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--config", str(ROOT))
    assert code == 0
    assert out.strip() == "ok: 1 workflow, 4 teams, 17 templates"


def test_check_without_the_auth_secret_warns_and_passes(
    tree: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # What config/settings.yaml's comment on the secret says.
    monkeypatch.delenv("TIERDESK_AUTH_SECRET")
    code, out, _ = run(capsys, "check", "--config", str(tree))
    assert code == 0
    assert "warning:" in out and "TIERDESK_AUTH_SECRET is not set" in out
    assert out.strip().splitlines()[-1].endswith("(1 warning)")
    monkeypatch.setenv("TIERDESK_AUTH_SECRET", "too-short")
    code, out, _ = run(capsys, "check", "--config", str(tree))
    assert code == 1 and "TIERDESK_AUTH_SECRET: the secret has 9 characters" in out


def test_check_lists_every_problem_then_a_summary(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tree / "config" / "settings.yaml"
    settings.write_text(settings.read_text().replace("port: 993", "port: nine"))
    teams = tree / "config" / "teams.yaml"
    teams.write_text(teams.read_text().replace("[sam.rivera@example.com]", "[sam.rivera]"))
    (tree / "mail_templates" / "reminder.txt.j2").write_text("{% if x %}\nno end\n")
    code, out, _ = run(capsys, "check", "--config", str(tree))
    lines = out.strip().splitlines()
    assert code == 1
    port_line = settings.read_text().splitlines().index("  port: nine") + 1
    assert any(f"settings.yaml:{port_line}: imap.port" in line for line in lines), out
    assert any("teams.yaml:" in line and "sam.rivera" in line for line in lines), out
    assert any("reminder.txt.j2:" in line and "syntax" in line for line in lines), out
    assert lines[-1] == "3 problems in 3 files"


def test_check_reports_bad_environment_variables(capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERDESK_IMAP_PORT", "many")
    monkeypatch.setenv("TIERDESK_SMTP_HOTS", "x")
    code, out, _ = run(capsys, "check", "--config", str(ROOT))
    assert code == 1
    assert "TIERDESK_IMAP_PORT: " in out and "TIERDESK_SMTP_HOTS: " in out


def test_missing_config_folder_is_one_line(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "check", "--config", str(tmp_path / "nope"))
    assert_one_line_error(code, err, "does not exist")


def test_check_through_run_py() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERDESK_")}
    env["TIERDESK_AUTH_SECRET"] = AUTH_SECRET
    result = subprocess.run([sys.executable, "run.py", "check"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok: ")


# ------------------------------------------------------------------ arguments

@pytest.mark.parametrize("argv", [["bogus"], ["graph", "--format", "png"], ["show"], []])
def test_bad_arguments_are_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert_one_line_error(code, err, "--help")


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "check" in out and "tickets" in out


# ------------------------------------------------------------------ graph

def test_graph_mermaid_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "graph", "--config", str(ROOT))
    assert code == 0 and out.startswith("---\ntitle: it-support v5")


def test_graph_dot_to_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "wf.dot"
    code, _, err = run(capsys, "graph", "--config", str(ROOT), "--format", "dot",
                       "--workflow", "it-support", "-o", str(target))
    assert code == 0 and "wrote" in err
    assert target.read_text().startswith('digraph "it-support v5"')


def test_graph_unknown_workflow(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "graph", "--config", str(ROOT), "--workflow", "hr")
    assert_one_line_error(code, err, "no workflow named 'hr'", "it-support")


def test_graph_svg_without_graphviz(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    code, _, err = run(capsys, "graph", "--config", str(ROOT), "--format", "svg")
    assert_one_line_error(code, err, "Graphviz is not installed")


# ------------------------------------------------------------------ run

def test_run_once_migrates_and_names_the_database(
    clean_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No IMAP server listens there: the run says so in one line and exits 1, after start-up.
    monkeypatch.setenv("TIERDESK_IMAP_HOST", "127.0.0.1")
    monkeypatch.setenv("TIERDESK_IMAP_PORT", "1")
    monkeypatch.setenv("TIERDESK_IMAP_SECURITY", "none")
    code, out, err = run(capsys, "run", "--once", "--config", str(ROOT))
    assert code == 1 and "Traceback" not in out + err
    lines = out.splitlines()
    assert lines[0] == "tierdesk: database sqlite:///tierdesk.db, workflow it-support v5"
    assert lines[1].startswith("imap: ") and "127.0.0.1:1" in lines[1]
    assert (clean_env / "tierdesk.db").exists()
    code, out, _ = run(capsys, "tickets", "--config", str(ROOT))
    assert code == 0 and out.strip() == "no tickets"


def test_run_rejects_an_unknown_log_format_in_one_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    # The daemon itself runs in tests/service/ (a subprocess against real servers).
    code, _, err = run(capsys, "run", "--log-format", "xml", "--config", str(ROOT))
    assert code == 2
    assert_one_line_error(code, err, "--log-format", "human", "json")


def test_unreachable_database_hides_the_password(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIERDESK_DATABASE_URL",
                       "postgresql+psycopg://td:s3cret@127.0.0.1:1/tierdesk")
    code, _, err = run(capsys, "run", "--once", "--config", str(ROOT))
    assert_one_line_error(code, err, "td:***@")
    assert "s3cret" not in err


def test_bad_config_stops_run(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tree / "config" / "teams.yaml").write_text("teams: {}\n")
    code, _, err = run(capsys, "run", "--once", "--config", str(tree))
    assert code == 1 and "teams.yaml:1" in err and "Traceback" not in err


# ------------------------------------------------------------------ tickets, show

def test_tickets_without_a_database_is_one_line_and_creates_nothing(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "tickets", "--config", str(ROOT))
    assert_one_line_error(code, err, "does not exist", "run --once")
    assert not (clean_env / "tierdesk.db").exists()


def test_tickets_json_has_the_documented_keys(
    seeded: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "tickets", "--json", "--config", str(ROOT))
    assert code == 0
    tickets = json.loads(out)
    assert [t["subject"] for t in tickets] == ["VPN drops every hour", "Printer jammed"]
    for ticket in tickets:
        assert {"ref", "state", "priority", "team", "requester", "subject", "created_at",
                "updated_at"} <= set(ticket)
        assert ticket["ref"].startswith("TD-")
        datetime.fromisoformat(ticket["created_at"])


def test_tickets_state_filter_and_table(seeded: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tickets", "--state", "triage", "--config", str(ROOT))
    lines = out.strip().splitlines()
    assert code == 0
    assert lines[0].split() == ["REF", "STATE", "PRI", "TEAM", "ASSIGNEE", "LEFT", "REQUESTER",
                                "SUBJECT", "AGE"]
    assert len(lines) == 2 and "Printer jammed" in lines[1] and "bob@example.com" in lines[1]


def test_tickets_unknown_state_is_an_error_listing_the_states(
        seeded: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "tickets", "--state", "bogus", "--config", str(ROOT))
    assert_one_line_error(code, err, "'bogus'")
    states = load_yaml(ROOT / "workflows" / "it-support.yaml").data["states"]
    assert all(name in err for name in states), err
    assert out == ""


def test_tickets_state_without_tickets_or_from_an_older_workflow(
        seeded: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tickets", "--state", "resolved", "--config", str(ROOT))
    assert (code, out.strip()) == (0, "no tickets in state resolved")
    # A state the workflow has since dropped still lists the tickets left in it.
    database = open_database(seeded)
    try:
        with database.transaction() as session:
            _ticket(session, "Old fax", "carol@example.com", "fax-queue")
    finally:
        database.close()
    code, out, _ = run(capsys, "tickets", "--state", "fax-queue", "--config", str(ROOT))
    assert code == 0 and "Old fax" in out


def test_show_prints_header_and_timeline(seeded: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tickets", "--json", "--config", str(ROOT))
    ref = json.loads(out)[0]["ref"]
    code, out, _ = run(capsys, "show", ref.lower(), "--config", str(ROOT))
    assert code == 0
    assert out.startswith(f"{ref}  VPN drops every hour")
    assert "requester  alice@example.com" in out
    assert "Timeline (2 events, times in UTC)" in out
    assert "triage → tier1" in out and "not triaged within 30m" in out
    assert "2026-11-27 09:30:00" in out


def test_show_unknown_ref(seeded: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "show", "TD-999", "--config", str(ROOT))
    assert_one_line_error(code, err, "no ticket TD-999")


@pytest.mark.parametrize(("text", "ref"), [("TD-12", "TD-12"), ("td-12", "TD-12"),
                                           ("[TD-12]", "TD-12"), ("12", "TD-12")])
def test_normalise_ref(text: str, ref: str) -> None:
    assert normalise_ref(text) == ref


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (45, "45s"), (720, "12m"),
                                               (12000, "3h20m"), (187200, "2d4h"),
                                               (172800 + 60, "2d")])
def test_age(seconds: int, text: str) -> None:
    assert age(T0, T0 + timedelta(seconds=seconds)) == text


# ------------------------------------------------------------------ mail templates

def _notify_templates() -> set[str]:
    workflow = Workflow.model_validate(load_yaml(ROOT / "workflows" / "it-support.yaml").data)
    return {spec.template for specs in workflow.notify.values() for spec in specs}


EXPECTED_TEMPLATES = {"acknowledgement", "status_update", "escalation_handoff", "vendor_handoff",
                      "resolution_notice", "reminder", "sla_warning", "bounce_alert",
                      "command_receipt", "command_error", "requester_reply", "new_ticket",
                      "linked_notice", "unlinked_notice"}


def test_every_template_the_workflow_names_exists() -> None:
    assert _notify_templates() <= EXPECTED_TEMPLATES
    for name in EXPECTED_TEMPLATES:
        assert (TEMPLATES / f"{name}.txt.j2").is_file(), name
        assert (TEMPLATES / f"{name}.html.j2").is_file(), name


@pytest.mark.parametrize("path", sorted(TEMPLATES.glob("*.j2")), ids=lambda p: p.name)
def test_templates_parse(path: Path) -> None:
    jinja2.Environment().parse(path.read_text())
    if path.name.endswith(".txt.j2"):
        assert "{% block subject %}[{{ ref }}]" in path.read_text()


def test_tickets_and_show_mark_an_incident_and_its_reports(
        seeded: str, capsys: pytest.CaptureFixture[str]) -> None:
    database = open_database(seeded)
    try:
        with database.transaction() as session:
            incident = repository.get_ticket(session, "TD-1")
            report = repository.get_ticket(session, "TD-2")
            assert incident is not None and report is not None
            report.parent_id = incident.id  # what #link TD-1 on TD-2 writes
    finally:
        database.close()
    code, out, _ = run(capsys, "tickets", "--json", "--config", str(ROOT))
    links = {t["ref"]: (t["parent"], t["children"]) for t in json.loads(out)}
    assert links == {"TD-1": (None, ["TD-2"]), "TD-2": ("TD-1", [])}
    code, out, _ = run(capsys, "tickets", "--config", str(ROOT))
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "TD-1 (+1)" in rows["TD-1"] and "TD-2 ↳TD-1" in rows["TD-2"]
    code, out, _ = run(capsys, "show", "TD-1", "--config", str(ROOT))
    assert "reports    TD-2 (2 people affected" in out
    code, out, _ = run(capsys, "show", "TD-2", "--config", str(ROOT))
    assert "incident   a report of TD-1" in out
