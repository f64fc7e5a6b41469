"""The config models on pydantic (config/frozen.py, config/validation.py), through the real
files: environment strings coerce, what lax mode would wrongly take is refused, and errors
read as an admin needs them (one per mistake, the member of a union that fitted)."""

from __future__ import annotations

import shutil
import typing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from daemon.auth.directory import Directory
from daemon.config.frozen import Int
from daemon.config.problems import ConfigError
from daemon.config.settings import Settings, load_settings
from daemon.site.config import load_config
from daemon.workflow.model import Workflow

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = "workflows/it-support.yaml"


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("TIERDESK_IMAP_PORT", "993", 993), ("TIERDESK_IMAP_PORT", " 1993 ", 1993),
    ("TIERDESK_AUTH_DKIM", "yes", True), ("TIERDESK_AUTH_DKIM", "true", True),
    ("TIERDESK_AUTH_DKIM", "off", False), ("TIERDESK_AUTH_DKIM", "0", False),
    ("TIERDESK_IMAP_TIMEOUT", "10m", timedelta(minutes=10)),
    ("TIERDESK_MAIL_MAX_SIZE", "30MB", 30_000_000),
    ("TIERDESK_AUTH_DNS_SERVERS", "192.0.2.53, [::1]:53", ("192.0.2.53", "[::1]:53")),
    ("TIERDESK_AUTH_TRUSTED_AUTHSERV_IDS", "MX.example.com", ("mx.example.com",)),
])
def test_environment_strings_coerce(variable: str, value: str, expected: Any) -> None:
    settings = load_settings(ROOT / "config", {variable: value})
    section, key = variable.removeprefix("TIERDESK_").lower().split("_", 1)
    assert getattr(getattr(settings, section), key) == expected


NO_BOOL = typing.get_args(Int)[1]  # the BeforeValidator that makes an int an Int


def bare_ints(tp: Any, where: str, seen: set[type], metadata: tuple[Any, ...] = ()
              ) -> typing.Iterator[str]:
    """Where in type `tp` (and the models inside it) an int is not an Int."""
    if typing.get_origin(tp) is typing.Annotated:
        tp, *more = typing.get_args(tp)
        metadata = (*metadata, *more)
    if tp is int and NO_BOOL not in metadata:
        yield where
    elif isinstance(tp, type) and issubclass(tp, BaseModel) and tp not in seen:
        seen.add(tp)
        for name, field in tp.model_fields.items():
            yield from bare_ints(field.annotation, f"{tp.__name__}.{name}", seen,
                                 tuple(field.metadata))
    for arg in typing.get_args(tp):
        yield from bare_ints(arg, where, seen)


def test_every_integer_field_refuses_booleans() -> None:
    """pydantic's lax mode takes `true` as 1; daemon.config.frozen.Int does not."""
    bare = [where for model in (Settings, Directory, Workflow)
            for where in bare_ints(model, model.__name__, set())]
    assert bare == [], f"declare these as daemon.config.frozen.Int: {bare}"
    assert list(bare_ints(dict[str, tuple[int, ...]], "probe", set())) == ["probe"]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for folder in ("config", "workflows", "mail_templates"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path


def reported(tree: Path, rel: str, old: str, new: str) -> list[str]:
    path = tree / rel
    text = path.read_text()
    assert text.count(old) == 1
    path.write_text(text.replace(old, new))
    with pytest.raises(ConfigError) as caught:
        load_config(tree, {})
    return [str(p).removeprefix(str(tree) + "/") for p in caught.value.problems]


@pytest.mark.parametrize(("old", "new", "expected"), [
    # The list fitted the tuple member: its item's error only, not "should be 'all'".
    ("escalate: {trigger: escalate, teams: all}",
     "escalate: {trigger: escalate, teams: ['bad team']}",
     f"{WORKFLOW}:165: commands.escalate.teams.0: String should match pattern "
     "'^[A-Za-z0-9_][A-Za-z0-9_.-]*$', not 'bad team' (fix the value)"),
    # Fitting neither: both members say what they take.
    ("escalate: {trigger: escalate, teams: all}", "escalate: {trigger: escalate, teams: 5}",
     f"{WORKFLOW}:165: commands.escalate.teams: Input should be 'all', not 5 or Input should "
     "be a valid tuple, not 5 (fix the value)"),
    # A bad item is not also a list "with at least 1 item, not 0".
    ("priorities: [P1, P2, P3, P4]", "priorities: [P 1]",
     f"{WORKFLOW}:12: priorities.0: String should match pattern "
     "'^[A-Za-z0-9_][A-Za-z0-9_.-]*$', not 'P 1' (fix the value)"),
    ("{trigger: route, source: triage, dest: [tier1, tier2, tier3]}",
     "{trigger: route, source: [], dest: [tier1]}",
     f"{WORKFLOW}:130: transitions.0.source: Tuple should have at least 1 item after "
     "validation, not 0 (fix the value)"),
    ("\nversion: 5\n", "\nversion: true\n",
     f"{WORKFLOW}:9: version: Input should be a valid integer, not True (fix the value)"),
])
def test_workflow_errors_read_as_one_mistake(tree: Path, old: str, new: str,
                                             expected: str) -> None:
    assert reported(tree, WORKFLOW, old, new) == [expected]


@pytest.mark.parametrize(("holidays", "expected"), [
    ("[xmas]", "calendars.default.holidays.0: Input should be a valid date (YYYY-MM-DD), "
               "not 'xmas' (fix the value)"),
    # Lax pydantic would read a number as seconds since 1970.
    ("[1767225600]", "calendars.default.holidays.0: Input should be a valid date "
                     "(YYYY-MM-DD), not 1767225600 (fix the value)"),
])
def test_a_holiday_must_be_a_date(tree: Path, holidays: str, expected: str) -> None:
    [problem] = reported(tree, "config/settings.yaml",
                         "holidays: [2026-12-24, 2026-12-25, 2026-12-26, 2026-12-31, 2027-01-01]"
                         "\n  office-hours", f"holidays: {holidays}\n  office-hours")
    assert problem.endswith(expected)


def test_a_secret_is_never_echoed(tree: Path) -> None:
    [problem] = reported(tree, "config/settings.yaml", '  password: ""\n  folder',
                         "  password: 31415926\n  folder")
    assert problem.endswith("imap.password: Input should be a valid string, not a number "
                            "(fix the value)")
    assert "31415926" not in problem
