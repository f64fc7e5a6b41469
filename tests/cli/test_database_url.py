"""`check` and `run` judge a database URL the same way (daemon/config/database_url.py): what
`check` passes the store can open, what it rejects `run` refuses with the same words, naming
the setting or variable and what is accepted."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from daemon.cli.main import main
from daemon.store.database import StoreError, open_database

ROOT = Path(__file__).resolve().parents[2]
HINT = "use sqlite:///PATH such as sqlite:///tierdesk.db, or postgresql+psycopg://"

REJECTED = [
    ("mysql://alice:s3cr3t@db.example.com/tierdesk", "names database 'mysql'"),
    ("mysql+pymysql://alice:s3cr3t@db.example.com/tierdesk", "names database 'mysql'"),
    ("postgresql+asyncpg://alice:s3cr3t@127.0.0.1/tierdesk", "names driver 'asyncpg'"),
    ("postgresql+psycopg2://alice@127.0.0.1/tierdesk", "names driver 'psycopg2'"),
    ("sqlite+aiosqlite:///tierdesk.db", "names driver 'aiosqlite'"),
    ("postgresql://alice:s3cr3t@127.0.0.1:five/tierdesk", "has port 'five'"),
    ("tierdesk.db", "is not a database URL"),
]
# Accepted by check, and opened by the store (the PostgreSQL ones then fail only to connect).
ACCEPTED = ["sqlite:///tierdesk.db", "sqlite+pysqlite:///tierdesk.db",
            "postgresql://alice:s3cr3t@127.0.0.1:1/tierdesk",
            "postgresql+psycopg://alice@127.0.0.1:1/tierdesk", "postgres://alice@127.0.0.1:1/x"]


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("TIERDESK_") and not name.startswith("TIERDESK_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TIERDESK_AUTH_SECRET", "database-url-secret-0123456789abcdefgh")
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "site"
    for folder in ("config", "workflows", "mail_templates"):
        shutil.copytree(ROOT / folder, root / folder)
    return root


@pytest.mark.parametrize(("url", "words"), REJECTED)
def test_check_and_run_reject_the_same_url_with_the_same_words(
        site: Path, url: str, words: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TIERDESK_DATABASE_URL", url)
    assert main(["check", "--config", str(site)]) == 1
    [problem, summary] = capsys.readouterr().out.strip().splitlines()
    assert problem.startswith("TIERDESK_DATABASE_URL: ") and words in problem and HINT in problem
    assert "s3cr3t" not in problem
    assert summary == "1 problem in 1 file"
    assert main(["run", "--once", "--config", str(site)]) == 1
    assert problem in capsys.readouterr().err
    with pytest.raises(StoreError) as caught:  # the store's own verdict, for other callers
        open_database(url)
    assert words in str(caught.value) and HINT in str(caught.value)


def test_a_url_in_the_file_is_named_by_file_line_and_key(
        site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = site / "config" / "settings.yaml"
    lines = settings.read_text().splitlines()
    line = lines.index("  url: sqlite:///tierdesk.db") + 1
    lines[line - 1] = "  url: mysql://it@db.example.com/tierdesk"
    settings.write_text("\n".join(lines) + "\n")
    assert main(["check", "--config", str(site)]) == 1
    out = capsys.readouterr().out
    assert f"settings.yaml:{line}: database.url: 'mysql://it@db.example.com/tierdesk' names " \
           "database 'mysql', which Tierdesk cannot use; use sqlite:///" in out


@pytest.mark.parametrize("url", ACCEPTED)
def test_what_check_accepts_the_store_can_open(
        site: Path, url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TIERDESK_DATABASE_URL", url)
    assert main(["check", "--config", str(site)]) == 0, capsys.readouterr().out
    try:
        open_database(url).close()
    except StoreError as exc:  # nothing listens on port 1: the URL itself was fine
        assert str(exc).startswith("cannot reach database"), exc
