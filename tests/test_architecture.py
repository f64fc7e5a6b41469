"""The rooms of daemon/ and their one-way imports (ARCHITECTURE.md), checked from the source:
a wrong arrow fails with the file and line that drew it.

- every module lives in a room (a package under daemon/), none loose beside them;
- a room imports only the rooms below it (ALLOWED), so no two rooms import each other;
- no import circle between modules anywhere, counting imports inside functions and under
  TYPE_CHECKING too: a circle there is still two modules that cannot be read apart;
- the pure rooms and the pure modules of the others import no protocol, network or
  database library;
- no module is over 600 lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

DAEMON = Path(__file__).resolve().parent.parent / "daemon"

# Each room and the rooms it may import, lowest first (its own modules always).
ALLOWED: dict[str, frozenset[str]] = {}
for room, below in [
    ("config", ()),
    ("workflow", ("config",)),
    ("mail", ("config",)),
    ("clock", ("config", "workflow")),
    ("store", ("config", "workflow", "mail", "clock")),
    ("auth", ("config", "workflow", "mail", "clock", "store")),
    ("outbound", ("config", "workflow", "mail", "clock", "store", "auth")),
    ("site", ("config", "workflow", "mail", "clock", "auth", "outbound")),
    ("tickets", ("config", "workflow", "mail", "clock", "store", "auth", "outbound", "site")),
    ("inbound", ("config", "workflow", "mail", "clock", "store", "auth", "outbound", "site",
                 "tickets")),
    ("service", ("config", "workflow", "mail", "clock", "store", "auth", "outbound", "site",
                 "tickets", "inbound")),
    ("demo", ("config", "workflow", "mail", "clock", "store", "auth", "outbound", "site",
              "tickets", "inbound", "service")),
    ("cli", ("config", "workflow", "mail", "clock", "store", "auth", "outbound", "site",
             "tickets", "inbound", "service", "demo")),
]:
    ALLOWED[room] = frozenset(below)

PURE_ROOMS = ("config", "workflow", "mail", "clock")
# Modules of the other rooms that hold pure logic, kept so.
PURE_MODULES = ("auth/sender_auth.py", "auth/alignment.py", "outbound/render.py",
                "outbound/backoff.py", "service/health.py", "inbound/held_senders.py")
# Libraries that talk to the network, a server or a database.
FORBIDDEN = ("sqlalchemy", "alembic", "imapclient", "aiosmtplib", "aiosmtpd", "psycopg",
             "dkim", "dns", "socket", "ssl", "asyncio")


def module_name(path: Path) -> str:
    parts = path.relative_to(DAEMON.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(DAEMON.rglob("*.py"))
            if "migrations" not in p.parts}


def resolve(name: str) -> str | None:
    """The daemon module an import names (`from daemon.x import y` may name a module y)."""
    modules = all_modules()
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


@cache
def arrows(path: Path) -> tuple[tuple[int, str], ...]:
    """(line, daemon module) of every import in the file, wherever it stands."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return tuple(found)


def daemon_arrows(path: Path) -> Iterator[tuple[int, str]]:
    me = module_name(path)
    for line, name in arrows(path):
        target = resolve(name) if name.startswith("daemon.") else None
        if target is not None and target != me:
            yield line, target


def room_of(module: str) -> str:
    return module.split(".")[1]


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(DAEMON.parent)}:{line}"


# ------------------------------------------------------------------ the rules

def test_every_module_is_in_a_room() -> None:
    loose = sorted(p.name for p in DAEMON.glob("*.py") if p.name != "__init__.py")
    assert loose == [], "put these in the room they belong to (ARCHITECTURE.md)"
    rooms = sorted(p.name for p in DAEMON.iterdir() if (p / "__init__.py").is_file())
    assert rooms == sorted(ALLOWED), "a new room needs its place in ALLOWED and ARCHITECTURE.md"


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_a_room_imports_only_the_rooms_below_it(room: str) -> None:
    wrong = [f"{where(path, line)}: {module_name(path)} imports {target}"
             for name, path in all_modules().items() if name.count(".") >= 1
             and room_of(name) == room
             for line, target in daemon_arrows(path)
             if target.count(".") >= 1 and room_of(target) not in ALLOWED[room] | {room}]
    assert wrong == [], f"{room}/ may import only {sorted(ALLOWED[room])}"


def test_no_import_circle_between_modules() -> None:
    graph = {name: {t for _, t in daemon_arrows(path)} for name, path in all_modules().items()}
    circles = [c for c in _strongly_connected(graph) if len(c) > 1]
    assert circles == [], "modules that import each other, directly or round about"


@pytest.mark.parametrize("path", [p for r in PURE_ROOMS for p in sorted((DAEMON / r).rglob("*.py"))]
                         + [DAEMON / m for m in PURE_MODULES],
                         ids=lambda p: str(p.relative_to(DAEMON)))
def test_pure_code_does_no_io(path: Path) -> None:
    """It imports no such library, and of the daemon only other pure code."""
    pure = {module_name(DAEMON / m) for m in PURE_MODULES}
    bad = [f"{where(path, line)}: {name}" for line, name in arrows(path)
           if name.startswith(FORBIDDEN)]
    bad += [f"{where(path, line)}: {target}" for line, target in daemon_arrows(path)
            if target.count(".") and room_of(target) not in PURE_ROOMS and target not in pure]
    assert bad == [], "keep protocols, sockets and the store out of the pure code"


MAX_LINES = 600


def test_no_module_is_over_600_lines() -> None:
    """Past that a module is two things: split it along its seam (issue 17)."""
    long = {str(p.relative_to(DAEMON)): n for p in all_modules().values()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_the_lists_are_real() -> None:
    """Guards the tests above: every room and pure module named exists."""
    assert all((DAEMON / m).is_file() for m in PURE_MODULES)
    assert all((DAEMON / r / "__init__.py").is_file() for r in PURE_ROOMS)


def test_imports_in_functions_and_under_type_checking_count(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from daemon.store import models\ndef f():\n"
                      "    import daemon.inbound.imap\n")
    found = arrows(source)
    assert {(3, "daemon.store.models"), (5, "daemon.inbound.imap")} <= set(found)


def test_circles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert [c for c in _strongly_connected(graph) if len(c) > 1] == [["a", "b", "c"]]


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(sorted(component))
    return found


# ------------------------------------------------------------------ bench

def test_no_bench_script_shadows_an_importable_module() -> None:
    """`python bench/x.py` puts bench/ first on sys.path: a bench/dkim.py made the daemon
    import it instead of dkimpy."""
    import importlib.machinery
    import sys
    bench = DAEMON.parent / "bench"
    stdlib = sys.stdlib_module_names
    path = [p for p in sys.path if Path(p or ".").resolve() != bench]  # tests may add bench/
    clashes = [p.name for p in bench.glob("*.py") if p.stem in stdlib
               or importlib.machinery.PathFinder.find_spec(p.stem, path) is not None]
    assert clashes == []
