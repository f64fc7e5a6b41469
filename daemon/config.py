"""All configuration, loaded once into one frozen object: settings, directory, workflows.

Minimal version; the workflow lint (daemon.workflow.validate) is wired in here later.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from daemon.directory import Directory, load_directory
from daemon.problems import ConfigError, Problem
from daemon.settings import Settings, load_settings
from daemon.validation import pydantic_problems
from daemon.workflow.model import Workflow
from daemon.yamlsource import load_yaml

T = TypeVar("T")


@dataclass(frozen=True)
class Config:
    settings: Settings
    directory: Directory
    workflows: dict[str, Workflow]
    root: Path


def load_config(root: Path, environ: Mapping[str, str]) -> Config:
    """Load root/config/*.yaml and root/workflows/*.yaml; one ConfigError with every problem."""
    problems: list[Problem] = []
    settings = _collect(problems, lambda: load_settings(root / "config", environ))
    directory = _collect(problems, lambda: load_directory(root / "config" / "teams.yaml"))
    workflows: dict[str, Workflow] = {}
    for path in sorted((root / "workflows").glob("*.yaml")):
        workflow = _collect(problems, lambda path=path: _load_workflow(path))
        if workflow is not None:
            workflows[workflow.name] = workflow
    if not workflows and not problems:
        problems.append(Problem(str(root / "workflows"), 0, "no workflow found",
                                "add a workflows/NAME.yaml file"))
    if problems:
        raise ConfigError(problems)
    assert settings is not None and directory is not None
    return Config(settings, directory, workflows, root)


def _collect(problems: list[Problem], load: Callable[[], T]) -> T | None:
    """Run one loader; its problems join the list so every file is checked in one go."""
    try:
        return load()
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None


def _load_workflow(path: Path) -> Workflow:
    source = load_yaml(path)
    try:
        return Workflow.model_validate(source.data)
    except ValidationError as exc:
        raise ConfigError(pydantic_problems(exc, source, Workflow)) from None
