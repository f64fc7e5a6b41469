"""Real databases for tests: a SQLite file per test, and PostgreSQL in a throwaway schema.

A pytest plugin (registered in tests/conftest.py) so every test folder can use `database`.

PostgreSQL comes from TIERDESK_TEST_PG_URL (default below). Each test session creates its own
schemas named td_test_<random>, reaches them through search_path, and drops them at the end,
so runs never see each other's rows. With no server the PostgreSQL tests skip, unless CI=true:
then they fail, so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from daemon.store.database import Database, StoreError, migrate, open_database
from daemon.store.models import Base

PG_DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _pg_unavailable(reason: str) -> None:
    message = f"PostgreSQL unavailable ({reason}); set TIERDESK_TEST_PG_URL"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}. CI=true, so PostgreSQL tests may not be skipped", pytrace=False)
    pytest.skip(message)


class PgSchemas:
    """Creates throwaway schemas on one PostgreSQL database and drops them all at the end."""

    def __init__(self, admin: Database) -> None:
        self.admin = admin
        self.names: list[str] = []

    def create(self) -> str:
        """A fresh empty schema; returns a URL whose connections use it as search_path."""
        name = f"td_test_{secrets.token_hex(6)}"
        with self.admin.engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{name}"'))
        self.names.append(name)
        url = self.admin.url.update_query_dict({"options": f"-csearch_path={name}"})
        return url.render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.engine.begin() as connection:
            for name in self.names:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


@pytest.fixture(scope="session")
def pg_schemas() -> Iterator[PgSchemas]:
    url = os.environ.get("TIERDESK_TEST_PG_URL", PG_DEFAULT_URL)
    try:
        admin = open_database(url)
    except StoreError as exc:
        _pg_unavailable(str(exc))
    schemas = PgSchemas(admin)
    try:
        yield schemas
    finally:
        schemas.drop_all()
        admin.close()


@pytest.fixture(scope="session")
def pg_migrated_url(pg_schemas: PgSchemas) -> str:
    """One migrated schema for the whole session; tests empty it before they start."""
    url = pg_schemas.create()
    database = open_database(url)
    try:
        migrate(database)
    finally:
        database.close()
    return url


def truncate_all(database: Database) -> None:
    """PostgreSQL: empty every table and restart its id sequences."""
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with database.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def _sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tierdesk.db'}"


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database: a new SQLite file, or the session's PostgreSQL schema."""
    if request.param == "sqlite":
        db = open_database(_sqlite_url(tmp_path))
        migrate(db)
    else:
        db = open_database(request.getfixturevalue("pg_migrated_url"))
        truncate_all(db)
    try:
        yield db
    finally:
        db.close()


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database with no tables at all: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        url = _sqlite_url(tmp_path)
    else:
        url = request.getfixturevalue("pg_schemas").create()
    db = open_database(url)
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    with database.sessions() as session:
        yield session


@pytest.fixture
def now() -> datetime:
    return NOW

