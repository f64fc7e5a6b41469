"""What every `tierdesk` command module shares: the program's name, the one-line user
error, loading the site or only its settings, and the one line a user-caused error prints.
Here, not in main.py, so that the command modules and main import it and not each other."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from daemon.config.settings import Settings
    from daemon.site.config import Config

PROG = "tierdesk"


class UserError(Exception):
    """A mistake the user can fix; printed as one line."""


def load_root(root: Path) -> Config:
    """The one call site that loads configuration for every command."""
    from daemon.site.config import load_config  # lazy: `--help` needs none of it

    require_site(root)
    return load_config(root, os.environ)


def require_site(root: Path) -> None:
    """A folder with no site at all gets one line pointing to `init`, not a problem per
    missing file."""
    from daemon.site.shipped import FOLDERS

    if not root.is_dir():
        raise UserError(f"config folder {root} does not exist (--config names the folder "
                        "that holds config/, workflows/ and mail_templates/)")
    if not any((root / folder).exists() for folder in FOLDERS):
        where = "the current folder" if root == Path(".") else str(root)
        raise UserError(f"no Tierdesk site in {where} (no config/, workflows/ or "
                        f"mail_templates/): create one with `{PROG} init {root}` and edit it, "
                        "or point --config at yours")


def load_settings_only(root: Path) -> Settings:
    """Only settings: listing tickets should not fail because a template has a typo."""
    from daemon.config.settings import load_settings

    require_site(root)
    return load_settings(root / "config", os.environ)


def declared_states(root: Path) -> list[str]:
    """Every state named in workflows/*.yaml, read without validating the site: `tickets
    --state` judges its argument by them, and must not fail on a typo in a template."""
    from daemon.config.problems import ConfigError
    from daemon.config.yamlsource import load_yaml

    states: set[str] = set()
    for path in sorted((root / "workflows").glob("*.yaml")):
        try:
            data = load_yaml(path).data
        except ConfigError:  # `check` reports it; this file names no state we can trust
            continue
        if isinstance(data, dict) and isinstance(data.get("states"), dict):
            states.update(str(name) for name in data["states"])
    return sorted(states)


def user_message(exc: Exception) -> str | None:
    """One line for errors a user can cause; None for bugs, which should show a traceback."""
    from daemon.workflow.graph import GraphError

    if isinstance(exc, UserError | GraphError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    try:
        from sqlalchemy.exc import SQLAlchemyError

        from daemon.store.database import StoreError, redact
    except ImportError:  # pragma: no cover - the store is part of the package
        return None
    if isinstance(exc, StoreError):
        return str(exc)
    if isinstance(exc, SQLAlchemyError):
        first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["?"])[0]
        return f"database error: {redact(first)}"
    return None
