"""The shape of daemon/ (issue 17): modules loose in daemon/, rooms, the longest chain of
module-level imports, import circles, and the largest modules.

    python bench/imports.py [ROOT]

ROOT is a checkout (default: this one), so an older commit can be measured from a
`git worktree`. Module-level imports only for the depth (not inside functions or under
TYPE_CHECKING); circles count every import, as tests/test_architecture.py does.
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
    files = {_name(p, root): p for p in sorted((root / "daemon").rglob("*.py"))
             if "migrations" not in p.parts}
    top = [m for m, p in files.items() if m.count(".") == 1 and p.name != "__init__.py"]
    rooms = sorted({m.split(".")[1] for m, p in files.items() if p.name == "__init__.py"
                    and m.count(".") == 1})
    every = {m: set(_targets(p, files, module_level=False)) - {m} for m, p in files.items()}
    level = {m: set(_targets(p, files, module_level=True)) - {m} for m, p in files.items()}

    @cache
    def depth(module: str, stack: frozenset[str] = frozenset()) -> int:
        return 1 + max((depth(t, stack | {module}) for t in level[module] if t not in stack),
                       default=0)

    deepest = max(files, key=depth)
    lines = sorted(((len(p.read_text().splitlines()), m) for m, p in files.items()),
                   reverse=True)
    print(f"modules {len(files)}, lines {sum(n for n, _ in lines)}")
    print(f"directly in daemon/: {len(top)}; rooms: {len(rooms)} ({', '.join(rooms)})")
    print(f"import depth (module level): {depth(deepest)}, from {deepest}")
    print(f"circles: {_circles(every) or 'none'}")
    print("largest: " + ", ".join(f"{m} {n}" for n, m in lines[:5]))


def _name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(path: Path, files: dict[str, Path], module_level: bool) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level else list(ast.walk(tree))
    found = []
    for node in nodes:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            while name.startswith("daemon") and name not in files:
                name = name.rpartition(".")[0]
            if name in files:
                found.append(name)
    return found


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that reach each other (strongly connected, more than one)."""
    reach = {m: _reachable(graph, m) for m in graph}
    groups = {frozenset(n for n in reach[m] if m in reach[n]) | {m} for m in graph}
    return sorted(sorted(g) for g in groups if len(g) > 1)


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


if __name__ == "__main__":
    main()
