"""`check` on the directory side of commands: a member's narrower `commands:` list must name
tags the workflow has."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from daemon.config.problems import ConfigError
from daemon.site.config import load_config

ROOT = Path(__file__).resolve().parents[3]


def test_a_misspelt_member_command_is_reported(tmp_path: Path) -> None:
    for folder in ("config", "workflows", "mail_templates"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    teams = tmp_path / "config" / "teams.yaml"
    text = teams.read_text()
    teams.write_text(text.replace("commands: [take, note,", "commands: [take, ntoe,"))
    line = text[: text.index("commands: [take, note,")].count("\n") + 1
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, {})
    [problem] = caught.value.problems
    assert problem.file.endswith("teams.yaml") and problem.line == line
    assert "member 'Taylor Brooks' lists command 'ntoe', which no workflow has" in str(problem)
    assert "did you mean 'note'?" in str(problem)
