"""The functional core stays pure: domain modules import no protocol or database library,
and nothing in the daemon imports the interface layer back."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DAEMON = Path(__file__).resolve().parent.parent / "daemon"
DOMAIN = ["workflow", "sla.py", "message.py", "classify.py", "correlate.py", "thread_keys.py",
          "tags.py", "business_hours.py", "reply.py", "html_text.py", "durations.py",
          "mime_tree.py", "header_fields.py", "simulate.py", "render.py", "mime.py", "problems.py",
          "yamlsource.py", "commands.py", "sender_auth.py", "backoff.py", "health.py", "frozen.py",
          "validation.py", "auth/alignment.py", "address_list.py"]
FORBIDDEN = ("sqlalchemy", "alembic", "imapclient", "aiosmtplib", "aiosmtpd", "psycopg",
             "daemon.store", "daemon.imap", "daemon.smtp", "daemon.cli", "daemon.app",
             "dkim", "dns", "daemon.auth.dkim_check", "daemon.auth.dns_cache")


def modules(entry: str) -> list[Path]:
    path = DAEMON / entry
    return sorted(path.glob("*.py")) if path.is_dir() else [path]


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", [p for e in DOMAIN for p in modules(e)],
                         ids=lambda p: str(p.relative_to(DAEMON)))
def test_domain_module_is_pure(path: Path) -> None:
    bad = sorted(name for name in imports(path) if name.startswith(FORBIDDEN))
    assert not bad, f"{path.name} imports {bad}: keep I/O in the shell"


def test_domain_list_is_real() -> None:
    """Guards the test above: every listed module exists."""
    assert all((DAEMON / entry).exists() for entry in DOMAIN)


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
