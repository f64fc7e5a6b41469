"""The parser itself: --version, --config on either side of the command, and help text for
every option of every command (with its default where it has one)."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

import daemon
from daemon.cli.main import build_parser, main, version
from tests.processes import pythonpath

ROOT = Path(__file__).resolve().parents[2]
SECRET = "options-test-secret-0123456789abcdefgh"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped files, in a working directory that is not the site."""
    for name in list(os.environ):
        if name.startswith("TIERDESK_") and not name.startswith("TIERDESK_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TIERDESK_AUTH_SECRET", SECRET)
    root = tmp_path / "site"
    for folder in ("config", "workflows", "mail_templates"):
        shutil.copytree(ROOT / folder, root / folder)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return root


# ------------------------------------------------------------------ --version

def test_version_is_the_packages_and_matches_pyproject() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert daemon.__version__ == declared  # the fallback of a checkout that is not installed
    assert version() == declared


@pytest.mark.parametrize("flags", [[], ["-S"]], ids=["installed", "bare checkout"])
def test_version_option_in_a_real_process(tmp_path: Path, flags: list[str]) -> None:
    # -S: no site-packages, so no package metadata: the version comes from daemon/__init__.py.
    done = subprocess.run([sys.executable, *flags, str(ROOT / "run.py"), "--version"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": pythonpath(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"tierdesk {daemon.__version__}"


# ------------------------------------------------------------------ --config

@pytest.mark.parametrize("before", [True, False])
def test_config_goes_before_or_after_the_command(site: Path, before: bool,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--config", str(site), "check"] if before else ["check", "--config", str(site)]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("ok: ")


def test_config_after_the_command_wins_over_one_before(site: Path, tmp_path: Path) -> None:
    args = build_parser().parse_args(["--config", str(tmp_path), "check", "--config", str(site)])
    assert args.config == site


def test_config_before_the_command_reaches_a_store_command(
        site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The default SQLite file does not exist in the scratch working directory: the error
    # proves `tickets` read the settings of the site named before the command.
    (site / "config" / "settings.yaml").write_text(
        (site / "config" / "settings.yaml").read_text()
        .replace("url: sqlite:///tierdesk.db", "url: sqlite:///elsewhere.db"))
    assert main(["--config", str(site), "tickets"]) == 1
    assert "elsewhere.db does not exist" in capsys.readouterr().err


# ------------------------------------------------------------------ help text

def subparsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield parser.prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from subparsers(sub)


def options() -> Iterator[tuple[str, argparse.Action, argparse.ArgumentParser]]:
    for prog, parser in subparsers(build_parser()):
        for action in parser._actions:
            if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                yield f"{prog} {action.option_strings or action.dest}", action, parser


def test_every_command_is_walked() -> None:
    progs = {prog for prog, _ in subparsers(build_parser())}
    assert {"tierdesk check", "tierdesk run", "tierdesk simulate", "tierdesk tickets"} <= progs


def test_every_option_has_help_text() -> None:
    missing = [name for name, action, _ in options()
               if not action.help or action.help == argparse.SUPPRESS]
    assert missing == []


def test_every_option_with_a_default_shows_it() -> None:
    def shown(action: argparse.Action, parser: argparse.ArgumentParser) -> str:
        return parser._get_formatter()._expand_help(action)

    # store_true flags default to off, which "--json" says by itself.
    silent = [name for name, action, parser in options()
              if action.default not in (None, False, argparse.SUPPRESS)
              and not isinstance(action, argparse._VersionAction)
              and not re.search(r"\bdefault\b", shown(action, parser))]
    assert silent == []


def test_help_of_every_command_prints(capsys: pytest.CaptureFixture[str]) -> None:
    for prog, _ in subparsers(build_parser()):
        argv = prog.split()[1:] + ["--help"]
        assert main(argv) == 0, prog
        assert "usage:" in capsys.readouterr().out
