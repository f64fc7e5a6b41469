"""deploy/ stays honest: the env example holds only real settings with valid values, and the
systemd unit's command lines parse with the real CLI parser and agree with its paths."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from daemon.cli.main import build_parser
from daemon.config.settings import env_variables, load_settings

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "tierdesk.service"
ENV = ROOT / "deploy" / "tierdesk.env.example"


def unit() -> dict[str, str]:
    """key=value of the unit (each key used once in ours), comments and sections skipped."""
    found: dict[str, str] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            assert key.strip() not in found, f"{key} twice"
            found[key.strip()] = value.strip()
    return found


def env_file() -> dict[str, str]:
    """The assignments systemd's EnvironmentFile would read."""
    pairs = [line.partition("=") for line in ENV.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    return {key: value for key, _, value in pairs}


def test_every_tierdesk_variable_named_in_deploy_is_a_setting() -> None:
    known = env_variables()
    for path in (ENV, UNIT, ROOT / "README.md"):
        named = set(re.findall(r"\bTIERDESK_[A-Z_]*[A-Z]\b", path.read_text(encoding="utf-8")))
        named -= {"TIERDESK_TEST_PG_URL"}
        assert named - known.keys() == set(), path.name


def test_the_env_example_is_valid_settings_as_written(tmp_path: Path) -> None:
    values = env_file()
    assert all(re.fullmatch(r"TIERDESK_[A-Z_]+", key) for key in values), values
    # Plain values read the same through systemd and through the README's sh wrapper.
    assert all(not re.search(r"[\"'$\\`]", v) for v in values.values()), values
    settings = load_settings(ROOT / "config", values)  # raises ConfigError with the problem
    assert settings.database.url == values["TIERDESK_DATABASE_URL"]
    assert settings.auth.signing  # the placeholder secret is long enough to be accepted


def test_exec_start_is_a_real_run_command_on_the_config_folder() -> None:
    fields = unit()
    argv = shlex.split(fields["ExecStart"])
    assert argv[0] == "/opt/tierdesk/venv/bin/tierdesk"  # the installed package's command
    args = build_parser().parse_args(argv[1:])
    assert args.command == "run" and not args.once
    assert str(args.config) == str(Path(fields["EnvironmentFile"]).parent) == "/etc/tierdesk"


def test_the_database_lives_where_the_service_may_write() -> None:
    fields = unit()
    state = f"/var/lib/{fields['StateDirectory']}"
    assert fields["WorkingDirectory"] == state
    assert fields["ProtectSystem"] == "strict" and fields["NoNewPrivileges"] == "yes"
    assert env_file()["TIERDESK_DATABASE_URL"] == f"sqlite:///{state}/tierdesk.db"


@pytest.mark.parametrize("key", ["User", "Group"])
def test_a_dedicated_user_and_reload_by_sighup(key: str) -> None:
    fields = unit()
    assert fields[key] == "tierdesk"
    assert fields["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert fields["Restart"] == "on-failure"
