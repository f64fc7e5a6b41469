"""What a reload reports and refuses, what an outage logs, and the JSON log form: the pieces
of the daemon that need no servers."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.service.logs import HumanFormatter, JsonFormatter
from daemon.service.outage import Outage
from daemon.service.reload import changed_files, changes, snapshot, stranded
from daemon.site.config import Config, load_config
from daemon.store import repository
from daemon.store.database import Database

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(ROOT, {})


def without_state(config: Config, state: str, version: int) -> Config:
    workflow = config.workflows["it-support"]
    states = {k: v for k, v in workflow.states.items() if k != state}
    changed = workflow.model_copy(update={"states": states, "version": version})
    return replace(config, workflows={"it-support": changed})


def test_changes_name_the_workflow_versions_and_the_settings_sections(config: Config) -> None:
    workflow = config.workflows["it-support"]
    bumped = replace(config, workflows={"it-support": workflow.model_copy(
        update={"version": workflow.version + 1})})
    imap = config.settings.imap.model_copy(update={"host": "imap.example.net"})
    moved = replace(bumped, settings=config.settings.model_copy(update={"imap": imap}))
    found = changes(config, moved, ("workflows/it-support.yaml",))
    assert found.workflows == (f"it-support v{workflow.version} -> v{workflow.version + 1}",)
    assert found.sections == ("imap",) and found.touches("imap") and not found.touches("smtp")
    assert found.describe() == (f"workflow it-support v{workflow.version} -> "
                                f"v{workflow.version + 1}; settings: imap; "
                                "files: workflows/it-support.yaml")
    assert changes(config, config).describe() == "no change"


def test_a_change_without_a_version_bump_is_pointed_out(config: Config) -> None:
    changed = without_state(config, "closed", config.workflows["it-support"].version)
    [line] = changes(config, changed).workflows
    assert line.endswith("(changed, same version: bump `version`)")


def test_removing_a_state_that_open_tickets_are_in_is_refused(config: Config,
                                                             database: Database) -> None:
    workflow = config.workflows["it-support"]
    working = next(name for name, s in workflow.states.items()
                   if not s.final and name != workflow.initial)
    with database.transaction() as session:
        ticket = repository.create_ticket(
            session, requester="ann@example.org", subject="x", workflow_name="it-support",
            workflow_version=workflow.version, initial_state=working, priority="P3",
            team=None, now=NOW)
        ticket.state = working
    assert stranded(database, config, config) == []
    [problem] = stranded(database, config, without_state(config, working, 99))
    assert problem.startswith(f"it-support: state {working!r}")
    final = next(name for name, s in workflow.states.items() if s.final)
    assert stranded(database, config, without_state(config, final, 99)) == []


def test_the_snapshot_sees_an_edit_an_addition_and_a_removal(tmp_path: Path) -> None:
    for folder in ("config", "workflows", "mail_templates"):
        (tmp_path / folder).mkdir()
    (tmp_path / "workflows" / "a.yaml").write_text("name: a\n")
    (tmp_path / "config" / "settings.yaml").write_text("site: {}\n")
    first = snapshot(tmp_path)
    assert snapshot(tmp_path) == first
    (tmp_path / "workflows" / "a.yaml").write_text("name: a\nversion: 2\n")
    (tmp_path / "mail_templates" / "x.txt.j2").write_text("hi")
    (tmp_path / "config" / "settings.yaml").unlink()
    second = snapshot(tmp_path)
    assert changed_files(tmp_path, first, second) == (
        "config/settings.yaml", "mail_templates/x.txt.j2", "workflows/a.yaml")


def test_an_outage_is_one_line_when_it_starts_and_one_when_it_ends(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    outage = Outage("smtp", clock=lambda: now[0])
    caplog.set_level(logging.INFO, "tierdesk.service")
    delays = [outage.failed("connection refused", "sender") for _ in range(5)]
    assert delays == sorted(delays) and delays[0] <= 1.0 and delays[-1] > 4.0  # backing off
    now[0] += 12.5
    outage.ok("sender")
    outage.ok("sender")
    assert [r.getMessage() for r in caplog.records] == [
        "smtp unavailable: connection refused; retrying with backoff",
        "smtp available again after 12.5 s"]
    assert all(r.exc_info is None for r in caplog.records)
    assert outage.failed("again", "sender") <= 1.0  # the backoff starts over


def test_json_lines_carry_the_structured_fields() -> None:
    record = logging.LogRecord("tierdesk.service", logging.INFO, __file__, 1,
                               "opened %s: %s", ("TD-7", "new ticket"), None)
    record.ref, record.loop = "TD-7", "ingest"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "opened TD-7: new ticket" and entry["level"] == "info"
    assert (entry["ref"], entry["loop"], entry["logger"]) == ("TD-7", "ingest",
                                                              "tierdesk.service")
    assert datetime.fromisoformat(entry["ts"]) - datetime.now(UTC) < timedelta(minutes=1)
    human = HumanFormatter().format(record)
    assert human.endswith("Z INFO    opened TD-7: new ticket")
