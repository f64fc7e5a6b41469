"""`run.py check`: each class of mistake, planted in a copy of the shipped files, is reported
with the right file and line, and the shipped files pass."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from daemon.cli.main import main
from daemon.config.problems import ConfigError, Problem
from daemon.site.config import load_config

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = "workflows/it-support.yaml"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for folder in ("config", "workflows", "mail_templates"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path


def plant(tree: Path, rel: str, old: str, new: str) -> int:
    """Replace `old` (which must occur once) by `new`; return the line where `new` starts."""
    path = tree / rel
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {rel}"
    before = text[: text.index(old)]
    path.write_text(text.replace(old, new))
    return before.count("\n") + 1 + new[: len(new) - len(new.lstrip("\n"))].count("\n")


def problems(tree: Path) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_config(tree, {})
    return caught.value.problems


def assert_reported(tree: Path, rel: str, line: int, *words: str) -> None:
    found = problems(tree)
    for p in found:
        if p.file.endswith(rel) and p.line == line and all(w in str(p) for w in words):
            return
    listing = "\n".join(str(p) for p in found)
    pytest.fail(f"no problem at {rel}:{line} mentioning {words}; got:\n{listing}")


def test_shipped_config_passes() -> None:
    config = load_config(ROOT, {})
    assert "it-support" in config.workflows


def test_check_command_exit_codes(tree: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERDESK_AUTH_SECRET", "check-test-secret-0123456789abcdefgh")
    assert main(["check", "--config", str(tree)]) == 0
    plant(tree, WORKFLOW, "initial: triage", "initial: triagee")
    assert main(["check", "--config", str(tree)]) == 1
    err = capsys.readouterr()
    assert "it-support.yaml:" in err.out + err.err
    assert "Traceback" not in err.out + err.err


CASES = [
    # (what, old text, new text, words expected in the problem)
    ("unknown key in a state", "    team: tier1\n    tier: 1\n",
     "    team: tier1\n    colour: red\n    tier: 1\n", ("unknown key 'colour'", "allowed here")),
    ("unknown top-level key", "default_priority: P3\n",
     "default_priority: P3\nowner: it\n", ("unknown key 'owner'",)),
    ("misspelt key gets a suggestion", "      warn_at: 0.75\n      then: escalate\n"
     "      reason: \"no response in tier 1",
     "      warn_at: 0.75\n      thne: escalate\n      reason: \"no response in tier 1",
     ("unknown key 'thne'", "did you mean 'then'")),
    ("unknown source state", "{trigger: deescalate, source: tier2, dest: tier1}",
     "{trigger: deescalate, source: tier22, dest: tier1}", ("unknown source state 'tier22'",)),
    ("unknown destination state", "{trigger: escalate, source: tier2, dest: tier3}",
     "{trigger: escalate, source: tier2, dest: tier4}",
     ("unknown destination state 'tier4'", "did you mean")),
    ("unreachable state", "  closed:\n    final: true\n",
     "  island:\n    team: tier1\n    final: true\n  closed:\n    final: true\n",
     ("'island' cannot be reached",)),
    ("non-final state with no way out", "  closed:\n    final: true\n",
     "  limbo:\n    team: tier1\n  closed:\n    final: true\n", ("'limbo' has no way out",)),
    ("timeout fires a trigger the state lacks", "      then: close\n",
     "      then: escalate\n", ("fires 'escalate'", "use one of")),
    ("unknown team on a state", "    team: tier2\n    tier: 2\n", "    team: tierII\n    tier: 2\n",
     ("team 'tierII' is not in config/teams.yaml",)),
    ("unknown team on a command", "deescalate: {trigger: deescalate, teams: [tier2, tier3, "
     "helpdesk]}", "deescalate: {trigger: deescalate, teams: [tier2, tier3, servicedesk]}",
     ("team 'servicedesk'",)),
    ("working state without an owner", "  waiting_on_customer:\n    team: tier1\n",
     "  waiting_on_customer:\n", ("has no owning team",)),
    ("unknown template", "    - {template: bounce_alert, to: escalation_manager}",
     "    - {template: bounce_alarm, to: escalation_manager}",
     ("template 'bounce_alarm' does not exist",)),
    ("duration that does not parse", "      after: 8h\n", "      after: 8 hours\n",
     ("'8 hours' is not a duration", "4h")),
    ("days on a business clock", "      per_priority: {P1: 1h, P2: 4h, P4: 24h}\n",
     "      per_priority: {P1: 1h, P2: 4h, P4: 3d}\n", ("'3d' on a business clock",)),
    ("days in an SLA target on a business clock", "resolution: {P1: 4h, P2: 16h,",
     "resolution: {P1: 4h, P2: 2d,", ("'2d' on a business clock",)),
    ("unknown priority in an SLA target", "first_response: {P1: 15m,",
     "first_response: {P0: 15m,", ("unknown priority 'P0'",)),
    ("unknown calendar", "      calendar: office-hours\n", "      calendar: office\n",
     ("calendar 'office' is not in config/settings.yaml",)),
    ("unknown condition", "dest: resolved, condition: has_summary}",
     "dest: resolved, condition: has_sumary}", ("unknown condition 'has_sumary'",)),
    ("unknown trigger on a command", "escalate: {trigger: escalate, teams: all}",
     "escalate: {trigger: escalat, teams: all}", ("unknown trigger 'escalat'",)),
    ("triage route with no route transition", "      priority: P1\n      route: tier3\n",
     "      priority: P1\n      route: vendor\n", ("cannot route to 'vendor'",)),
    ("unknown priority", "      per_priority: {P1: 10m, P2: 15m}\n",
     "      per_priority: {P1: 10m, P5: 15m}\n", ("unknown priority 'P5'",)),
    ("transition out of a final state", "  - {trigger: close, source: resolved, dest: closed}\n",
     "  - {trigger: close, source: resolved, dest: closed}\n"
     "  - {trigger: reopen, source: closed, dest: tier1}\n", ("out of final state 'closed'",)),
    ("duplicate key", "  tier1:\n    team: tier1\n", "  tier1:\n    team: tier1\n    team: tier2\n",
     ("duplicate key 'team'",)),
    ("reserved trigger name", "{trigger: close, source: resolved, dest: closed}",
     "{trigger: state, source: resolved, dest: closed}", ("trigger name 'state' is reserved",)),
    ("unknown notify event", "  close: []\n", "  closing: []\n", ("unknown event 'closing'",)),
    ("unknown state in a mail's only_in", "{template: new_ticket, to: team, only_in: triage}",
     "{template: new_ticket, to: team, only_in: triag}",
     ("unknown state 'triag'", "did you mean 'triage'")),
]


@pytest.mark.parametrize(("what", "old", "new", "words"), CASES, ids=[c[0] for c in CASES])
def test_workflow_mistake_reported_at_its_line(
    tree: Path, what: str, old: str, new: str, words: tuple[str, ...]
) -> None:
    line = plant(tree, WORKFLOW, old, new)
    # The planted text may span lines; the problem points at one of them.
    span = range(line, line + new.count("\n") + 1)
    found = problems(tree)
    hits = [p for p in found if p.file.endswith(WORKFLOW) and all(w in str(p) for w in words)]
    assert hits, f"{what}: nothing mentions {words}; got:\n" + "\n".join(map(str, found))
    assert any(p.line in span for p in hits), f"{what}: wrong line: {hits}, expected {list(span)}"


def test_yaml_syntax_error_names_the_line(tree: Path) -> None:
    line = plant(tree, WORKFLOW, "  - {trigger: close, source: resolved, dest: closed}\n",
                 "  - {trigger: close, source: resolved, dest: closed\n")
    found = problems(tree)
    assert any("YAML syntax error" in str(p) and (abs(p.line - line) <= 2
               or f"starts on line {line}" in str(p)) for p in found), found


def test_missing_template_part(tree: Path) -> None:
    (tree / "mail_templates" / "reminder.html.j2").unlink()
    found = problems(tree)
    assert any("'reminder' is missing" in str(p) and "reminder.html.j2" in str(p)
               for p in found), found


def test_all_problems_reported_at_once(tree: Path) -> None:
    plant(tree, WORKFLOW, "    team: tier2\n    tier: 2\n", "    team: tierII\n    tier: 2\n")
    plant(tree, WORKFLOW, "      then: close\n", "      then: escalate\n")
    assert len([p for p in problems(tree) if p.file.endswith(WORKFLOW)]) >= 2


def test_problem_format_is_file_line_message_fix(tree: Path) -> None:
    line = plant(tree, WORKFLOW, "initial: triage", "initial: triagee")
    assert_reported(tree, WORKFLOW, line, f"it-support.yaml:{line}: initial state 'triagee'",
                    "(did you mean 'triage'?)")


# One mistake per line, in every file of the site; each is independent of the others.
BREAKS = [
    ("config/settings.yaml", "  port: 993\n", "  port: nine\n"),
    ("config/settings.yaml", "for tier 3 to read.\n    timezone: Europe/Berlin\n",
     "for tier 3 to read.\n    timezone: Mars/Olympus\n"),  # the 24x7 calendar's
    ("config/settings.yaml", "  default:\n", "  standard:\n"),
    ("config/teams.yaml", "    address: tier3@example.com\n", "    address: tier3\n"),
    ("config/teams.yaml", "addresses: [robin.okafor@example.com]",
     "addresses: [alex.chen@example.com]"),
    ("config/teams.yaml", "commands: [take,", "commands: [takee,"),
    ("config/teams.yaml", "    calendar: 24x7\n", "    calendar: 24x8\n"),
    (WORKFLOW, "  tier3:\n    team: tier3\n", "  tier3:\n    team: tier33\n"),
    (WORKFLOW, "calendar: office-hours", "calendar: office-hourz"),
    (WORKFLOW, "{template: acknowledgement, to: requester}",
     "{template: acknowledgment, to: requester}"),
    ("mail_templates/reminder.txt.j2", "{% block body %}", "{% block body %}{% if x %}"),
]


def found_in(tree: Path) -> set[str]:
    """Each problem as text, with the tree's own folder cut off."""
    return {str(p).replace(f"{tree}/", "") for p in problems(tree)}


def test_a_site_broken_in_every_file_shows_every_problem_in_one_round(
        tree: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """All mistakes at once give exactly the problems each gives alone: no mistake in one
    file (settings, teams) hides one in another (a workflow's names, members' commands)."""
    alone: set[str] = set()
    for rel, old, new in BREAKS:
        single = tmp_path_factory.mktemp("single")
        for folder in ("config", "workflows", "mail_templates"):
            shutil.copytree(ROOT / folder, single / folder)
        plant(single, rel, old, new)
        found = found_in(single)
        assert found, f"{new!r} in {rel} is no problem"
        alone |= found
    for rel, old, new in BREAKS:
        plant(tree, rel, old, new)
    together = found_in(tree)
    assert together == alone, "\n".join(sorted(together ^ alone))
    assert {p.split(":")[0] for p in together} == {rel for rel, _, _ in BREAKS}
