"""All configuration, loaded once into one frozen object: settings, directory, workflows."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from daemon.auth.directory import Directory, load_directory
from daemon.config.problems import ConfigError, Problem
from daemon.config.settings import Settings, load_settings
from daemon.config.yamlsource import load_yaml
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
    if settings is not None and directory is not None:
        problems.extend(_cross_check(settings, directory, root))
    templates = scan_templates(root / "mail_templates")
    problems.extend(template_problems(root / "mail_templates"))
    context = _context(settings, directory, templates, root / "mail_templates")
    workflows = _load_workflows(root / "workflows", context, problems)
    if directory is not None and workflows:
        problems.extend(_member_commands(directory, workflows, root))
    if problems:
        raise ConfigError(problems)
    assert settings is not None and directory is not None
    return Config(settings, directory, workflows, root, tuple(sorted(templates)))


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


def _context(settings: Settings | None, directory: Directory | None,
             templates: dict[str, tuple[str, ...]], folder: Path) -> WorkflowContext:
    # A file that failed to load is reported on its own; do not also flag every name in it.
    return WorkflowContext(
        teams=frozenset(directory.teams) if directory else None,
        calendars=frozenset(settings.calendars) if settings else None,
        templates=templates,
        has_escalation_manager=directory is None or directory.escalation_manager is not None,
        templates_dir=folder.name,
    )


def _load_workflows(folder: Path, context: WorkflowContext,
                    problems: list[Problem]) -> dict[str, Workflow]:
    workflows: dict[str, Workflow] = {}
    paths = sorted(folder.glob("*.yaml"))
    if not paths:
        problems.append(Problem(str(folder), 0, "no workflow found",
                                "add a workflows/NAME.yaml file"))
    for path in paths:
        source = _collect(problems, lambda path=path: load_yaml(path))
        if source is None:
            continue
        workflow, found = validate_workflow(source, context)
        problems.extend(found)
        if workflow is not None and workflow.name in workflows:
            problems.append(source.problem(("name",), f"workflow name {workflow.name!r} is "
                                           "used by another file too", "give each a unique name"))
        elif workflow is not None:
            workflows[workflow.name] = workflow
    return workflows


def _cross_check(settings: Settings, directory: Directory, root: Path) -> Iterator[Problem]:
    """What teams.yaml names in settings.yaml."""
    teams_file = str(root / "config" / "teams.yaml")
    for key, vendor in directory.vendors.items():
        if vendor.calendar not in settings.calendars:
            line = load_yaml(root / "config" / "teams.yaml").line(("vendors", key, "calendar"))
            yield Problem(teams_file, line, f"vendor {key!r} uses calendar "
                          f"{vendor.calendar!r}, which is not in config/settings.yaml",
                          suggest(vendor.calendar, settings.calendars, "calendars"))


def _member_commands(directory: Directory, workflows: Mapping[str, Workflow],
                     root: Path) -> Iterator[Problem]:
    """A member's `commands:` must name tags some workflow has (a typo would silently
    forbid the tag)."""
    known = {name for wf in workflows.values() for name in wf.commands}
    source = None
    for key, team in directory.teams.items():
        for i, member in enumerate(team.members):
            for j, name in enumerate(member.commands or ()):
                if name not in known:
                    source = source or load_yaml(root / "config" / "teams.yaml")
                    yield source.problem(("teams", key, "members", i, "commands", j),
                                         f"member {member.name!r} lists command {name!r}, "
                                         "which no workflow has", suggest(name, known, "commands"))
