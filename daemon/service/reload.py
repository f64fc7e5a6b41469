"""Reloading the configuration of a running daemon: noticing a change (file mtimes), saying
what changed, and refusing a workflow change that would strand open tickets.

Loading and validating is `load_config`'s job; a config that fails it never gets here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from daemon.site.config import Config
from daemon.store.database import Database
from daemon.store.models import Ticket

WATCHED = ("config", "workflows", "mail_templates")
# (path, mtime_ns, size) of every file under the watched folders
Snapshot = frozenset[tuple[str, int, int]]


def snapshot(root: Path) -> Snapshot:
    """What the watched files look like now; two differ when any file was added, removed,
    rewritten or touched. A few stat calls: cheap every couple of seconds."""
    return frozenset(_files(root))


def _files(root: Path) -> Iterator[tuple[str, int, int]]:
    for folder in WATCHED:
        for dirpath, _dirs, names in os.walk(root / folder):
            for name in names:
                path = os.path.join(dirpath, name)
                try:
                    stat = os.stat(path)
                except OSError:  # removed between the listing and the stat
                    continue
                yield path, stat.st_mtime_ns, stat.st_size


@dataclass(frozen=True)
class Changes:
    workflows: tuple[str, ...]  # "it-support v3 -> v4", "new: x v1", "removed: y v2"
    sections: tuple[str, ...]  # settings sections that differ: "imap", "smtp", ...
    directory: bool
    files: tuple[str, ...]  # changed since the last load, relative to the config root

    def describe(self) -> str:
        parts = [f"workflow {change}" for change in self.workflows]
        if self.sections:
            parts.append("settings: " + ", ".join(self.sections))
        if self.directory:
            parts.append("teams.yaml")
        if self.files:
            shown = ", ".join(self.files[:5]) + (", ..." if len(self.files) > 5 else "")
            parts.append(f"files: {shown}")
        return "; ".join(parts) or "no change"

    def touches(self, section: str) -> bool:
        return section in self.sections


def changed_files(root: Path, before: Snapshot, after: Snapshot) -> tuple[str, ...]:
    paths = {path for path, *_ in before ^ after}
    return tuple(sorted(os.path.relpath(path, root) for path in paths))


def changes(old: Config, new: Config, files: tuple[str, ...] = ()) -> Changes:
    workflows = []
    for name in sorted(set(old.workflows) | set(new.workflows)):
        before, after = old.workflows.get(name), new.workflows.get(name)
        if before is None and after is not None:
            workflows.append(f"new: {name} v{after.version}")
        elif after is None and before is not None:
            workflows.append(f"removed: {name} v{before.version}")
        elif before != after and before is not None and after is not None:
            same = " (changed, same version: bump `version`)" \
                if before.version == after.version else ""
            workflows.append(f"{name} v{before.version} -> v{after.version}{same}")
    sections = tuple(name for name in type(old.settings).model_fields
                     if getattr(old.settings, name) != getattr(new.settings, name))
    return Changes(tuple(workflows), sections, old.directory != new.directory, files)


def stranded(database: Database, old: Config, new: Config) -> list[str]:
    """Open tickets whose state the new workflows no longer have ("it-support: tier4 (3
    tickets)"); a ticket of a removed workflow runs on the default one (Runtime.engine_for)."""
    default = new.workflows[sorted(new.workflows)[0]]
    with database.reading() as session:
        rows = session.execute(select(Ticket.workflow_name, Ticket.state).distinct())
        pairs = [(name, state) for name, state in rows]
    found = []
    for name, state in pairs:
        before = old.workflows.get(name)
        if before is not None and state in before.states and before.states[state].final:
            continue  # closed under the running workflow
        after = new.workflows.get(name, default)
        if state not in after.states:
            found.append(f"{name}: state {state!r} (now {after.name} v{after.version})")
    return found
