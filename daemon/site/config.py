"""All configuration, loaded once into one frozen object: settings, directory, workflows."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from daemon.auth.directory import Directory, load_directory, mapping_items
from daemon.config.problems import ConfigError, Problem
from daemon.config.settings import Settings, load_settings
from daemon.config.yamlsource import Source, load_yaml
from daemon.outbound.render import template_problems
from daemon.workflow.model import Workflow
from daemon.workflow.validate import WorkflowContext, suggest, validate_workflow

T = TypeVar("T")
# Every template has a plain-text and an HTML part (multipart/alternative).
TEMPLATE_PARTS = (".txt.j2", ".html.j2")


@dataclass(frozen=True)
class Config:
    settings: Settings
    directory: Directory
    workflows: dict[str, Workflow]
    root: Path
    templates: tuple[str, ...]

    @property
    def templates_dir(self) -> Path:
        return self.root / "mail_templates"


def load_config(root: Path, environ: Mapping[str, str]) -> Config:
    """Load config/, workflows/ and mail_templates/ under `root`; one ConfigError with every
    problem found, so an admin fixes them in one round."""
    problems: list[Problem] = []
    settings = _collect(problems, lambda: load_settings(root / "config", environ))
    directory = _collect(problems, lambda: load_directory(root / "config" / "teams.yaml"))
    # A file with a problem still declares its names: the other files are checked against
    # them, instead of waiting for the next round of `check`.
    teams_source = _source(root / "config" / "teams.yaml")
    calendars = (frozenset(settings.calendars) if settings is not None
                 else _declared_calendars(root / "config" / "settings.yaml"))
    teams = (frozenset(directory.teams) if directory is not None
             else _declared(teams_source, "teams"))
    if calendars is not None and teams_source is not None:
        problems.extend(_cross_check(teams_source, calendars))
    templates = scan_templates(root / "mail_templates")
    problems.extend(template_problems(root / "mail_templates"))
    context = WorkflowContext(
        teams=teams, calendars=calendars, templates=templates,
        has_escalation_manager=(directory.escalation_manager is not None if directory
                                else _has_escalation_manager(teams_source)),
        templates_dir="mail_templates")
    workflows, commands = _load_workflows(root / "workflows", context, problems)
    if teams_source is not None and commands:
        problems.extend(_member_commands(teams_source, commands))
    if problems:
        raise ConfigError(problems)
    assert settings is not None and directory is not None
    return Config(settings, directory, workflows, root, tuple(sorted(templates)))


def _source(path: Path) -> Source | None:
    """The YAML of a file, or None when it cannot be read (its loader reports why)."""
    try:
        source = load_yaml(path)
    except ConfigError:
        return None
    return source if isinstance(source.data, dict) else None


def _declared(source: Source | None, key: str) -> frozenset[str] | None:
    """The names under `key` of a file that failed to load; None: not known, not checked."""
    if source is None or not isinstance(source.data.get(key), dict):
        return None
    return frozenset(str(name) for name in source.data[key])


def _declared_calendars(path: Path) -> frozenset[str] | None:
    source = _source(path) if path.exists() else Source(str(path), {}, {})
    if source is not None and "calendars" not in source.data:
        return frozenset({"default"})  # the built-in default calendar
    return _declared(source, "calendars")


def _has_escalation_manager(source: Source | None) -> bool:
    # Unknown counts as present: do not flag a bounce guard for a file that did not load.
    return source is None or bool(source.data.get("escalation_manager"))


def _collect(problems: list[Problem], load: Callable[[], T]) -> T | None:
    """Run one loader; its problems join the list so every file is checked in one go."""
    try:
        return load()
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None


def scan_templates(folder: Path) -> dict[str, tuple[str, ...]]:
    """Template name -> the part files it lacks (empty when complete)."""
    names = {path.name[: -len(suffix)] for suffix in TEMPLATE_PARTS
             for path in folder.glob(f"*{suffix}")}
    return {name: tuple(f"{name}{suffix}" for suffix in TEMPLATE_PARTS
                        if not (folder / f"{name}{suffix}").is_file())
            for name in names}


def _load_workflows(folder: Path, context: WorkflowContext, problems: list[Problem]
                    ) -> tuple[dict[str, Workflow], frozenset[str] | None]:
    """The valid workflows, and every command the files declare (None when a file could not
    be read: then its commands are not known), valid or not."""
    workflows: dict[str, Workflow] = {}
    commands: set[str] | None = set()
    paths = sorted(folder.glob("*.yaml"))
    if not paths:
        problems.append(Problem(str(folder), 0, "no workflow found",
                                "add a workflows/NAME.yaml file"))
    for path in paths:
        source = _collect(problems, lambda path=path: load_yaml(path))
        declared = (None if source is None or not isinstance(source.data, dict)
                    else frozenset() if "commands" not in source.data  # none: that is fine
                    else _declared(source, "commands"))
        commands = None if commands is None or declared is None else commands | declared
        if source is None:
            continue
        workflow, found = validate_workflow(source, context)
        problems.extend(found)
        if workflow is not None and workflow.name in workflows:
            problems.append(source.problem(("name",), f"workflow name {workflow.name!r} is "
                                           "used by another file too", "give each a unique name"))
        elif workflow is not None:
            workflows[workflow.name] = workflow
    return workflows, None if commands is None else frozenset(commands)


def _cross_check(teams: Source, calendars: frozenset[str]) -> Iterator[Problem]:
    """What teams.yaml names in settings.yaml, read from the YAML as written."""
    for key, vendor in mapping_items(teams.data.get("vendors")):
        calendar = vendor.get("calendar", "default")
        if isinstance(calendar, str) and calendar not in calendars:
            yield teams.problem(("vendors", key, "calendar"), f"vendor {key!r} uses calendar "
                                f"{calendar!r}, which is not in config/settings.yaml",
                                suggest(calendar, calendars, "calendars"))


def _member_commands(teams: Source, known: frozenset[str]) -> Iterator[Problem]:
    """A member's `commands:` must name tags some workflow has (a typo would silently
    forbid the tag)."""
    for key, team in mapping_items(teams.data.get("teams")):
        members = team.get("members")
        for i, member in enumerate(members if isinstance(members, list) else []):
            names = member.get("commands") if isinstance(member, dict) else None
            for j, name in enumerate(names if isinstance(names, list) else []):
                if isinstance(name, str) and name not in known:
                    yield teams.problem(("teams", key, "members", i, "commands", j),
                                        f"member {member.get('name')!r} lists command "
                                        f"{name!r}, which no workflow has",
                                        suggest(name, known, "commands"))
