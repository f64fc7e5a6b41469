"""Opening, configuring and migrating real databases."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from daemon.store.database import (
    Database,
    StoreError,
    current_revision,
    migrate,
    migrations_config,
    open_database,
)
from daemon.store.models import Base, compared

HEAD = ScriptDirectory.from_config(migrations_config()).get_current_head()
TABLES = {"tickets", "messages", "events", "timers", "outbox", "mailbox_cursors", "quarantine"}


def schema_diff(database: Database) -> list[object]:
    with database.engine.connect() as connection:
        # The search index is no model (FTS5 tables, a tsvector column): left out.
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": compared})
        return list(compare_metadata(context, Base.metadata))


def test_migrate_creates_everything_and_is_idempotent(empty_database: Database) -> None:
    assert current_revision(empty_database) is None
    migrate(empty_database)
    migrate(empty_database)
    assert current_revision(empty_database) == HEAD
    assert TABLES <= set(inspect(empty_database.engine).get_table_names())


def alembic_upgrade(database: Database) -> None:
    """The migrations themselves (migrate() builds a new database from the models)."""
    config = migrations_config()
    with database.engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()


def test_models_and_migrations_agree(empty_database: Database) -> None:
    alembic_upgrade(empty_database)
    assert schema_diff(empty_database) == []


def test_a_new_database_built_from_the_models_is_stamped_and_upgrades_later(
        empty_database: Database) -> None:
    migrate(empty_database)
    assert current_revision(empty_database) == HEAD
    assert schema_diff(empty_database) == []
    config = migrations_config()  # Alembic sees it at head: nothing to do, nothing fails
    with empty_database.engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()
    assert current_revision(empty_database) == HEAD


def test_a_schema_newer_than_this_release_is_one_readable_line(
        empty_database: Database) -> None:
    migrate(empty_database)
    with empty_database.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StoreError, match=r"schema revision 9999, newer than this Tierdesk"):
        migrate(empty_database)


def test_schema_comparison_notices_drift(empty_database: Database) -> None:
    """Guards the test above: a missing index must show up as a difference."""
    alembic_upgrade(empty_database)
    with empty_database.engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_timers_due_at"))
    assert schema_diff(empty_database) != []


def test_downgrade_then_upgrade_again(empty_database: Database) -> None:
    alembic_upgrade(empty_database)
    config = migrations_config()
    with empty_database.engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
        connection.commit()
    assert not TABLES & set(inspect(empty_database.engine).get_table_names())
    migrate(empty_database)
    assert schema_diff(empty_database) == []


def test_due_and_lookup_indexes_exist(database: Database) -> None:
    inspector = inspect(database.engine)
    timer_indexes = {tuple(ix["column_names"]) for ix in inspector.get_indexes("timers")}
    outbox_indexes = {tuple(ix["column_names"]) for ix in inspector.get_indexes("outbox")}
    ticket_indexes = {tuple(ix["column_names"]) for ix in inspector.get_indexes("tickets")}
    event_indexes = {tuple(ix["column_names"]) for ix in inspector.get_indexes("events")}
    assert ("due_at", "id") in timer_indexes
    assert ("status", "next_attempt_at") in outbox_indexes
    assert ("state",) in ticket_indexes
    assert ("requester", "created_at") in ticket_indexes
    assert ("ticket_id", "id") in event_indexes


def test_migrate_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    database = open_database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        migrate(database)
        assert current_revision(database) == HEAD
    finally:
        database.close()


def test_concurrent_migrations_are_safe(empty_database: Database) -> None:
    """Two daemons starting together: one migrates, the other waits (advisory lock on
    PostgreSQL, BEGIN IMMEDIATE on SQLite) and then finds nothing left to do."""
    url = empty_database.url.render_as_string(hide_password=False)
    databases = [empty_database, open_database(url)]
    barrier = threading.Barrier(2)

    def start(database: Database) -> str | None:
        barrier.wait()
        migrate(database)
        return current_revision(database)

    try:
        with ThreadPoolExecutor(2) as pool:
            assert list(pool.map(start, databases)) == [HEAD, HEAD]
    finally:
        databases[1].close()
    assert schema_diff(empty_database) == []


def test_sqlite_file_uses_wal_foreign_keys_busy_timeout_and_a_small_cache(
        tmp_path: Path) -> None:
    database = open_database(f"sqlite:///{tmp_path / 'wal.db'}")
    try:
        with database.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one() > 0
            assert connection.exec_driver_sql("PRAGMA cache_size").scalar() == -512
    finally:
        database.close()


@pytest.mark.postgres
def test_postgresql_connections_notice_a_silent_server(pg_migrated_url: str) -> None:
    """Keepalives and a timeout on unacknowledged data, unless the URL says otherwise."""
    for url, idle in ((pg_migrated_url, "30"), (pg_migrated_url + "&keepalives_idle=7", "7")):
        database = open_database(url)
        try:
            with database.engine.connect() as connection:
                info = connection.connection.dbapi_connection.info  # type: ignore[union-attr]
                given = info.get_parameters()
            assert (given["keepalives"], given["keepalives_idle"], given["keepalives_count"],
                    given["tcp_user_timeout"]) == ("1", idle, "3", "60000")
        finally:
            database.close()


def test_sqlite_never_reuses_ticket_ids(tmp_path: Path) -> None:
    database = open_database(f"sqlite:///{tmp_path / 'ids.db'}")
    try:
        migrate(database)
        with database.engine.connect() as connection:
            sql = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'tickets'"
            ).scalar_one()
        assert "AUTOINCREMENT" in sql
    finally:
        database.close()


def test_sqlite_in_memory_keeps_one_database() -> None:
    database = open_database("sqlite:///:memory:")
    try:
        migrate(database)
        with database.transaction() as session:
            session.execute(text("INSERT INTO mailbox_cursors VALUES ('INBOX', 1, 2)"))
        with database.transaction() as session:
            assert session.execute(text("SELECT last_uid FROM mailbox_cursors")).scalar() == 2
    finally:
        database.close()


def test_plain_postgresql_scheme_uses_psycopg() -> None:
    with pytest.raises(StoreError) as caught:
        open_database("postgresql://someone:pw@127.0.0.1:1/nothing")
    assert "postgresql+psycopg://someone:***@127.0.0.1:1/nothing" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://alice:s3cr3t@127.0.0.1:1/tierdesk", "cannot reach database"),
        ("not a url at all", "'not a url at all' is not a database URL; use sqlite:///"),
        ("oracle://alice:s3cr3t@host/db", "'oracle://alice:***@host/db' names database "
         "'oracle', which Tierdesk cannot use; use sqlite:///"),
        ("mysql+nosuchdriver://alice:s3cr3t@host/db", "names database 'mysql'"),
        ("postgresql+asyncpg://alice:s3cr3t@host/db", "names driver 'asyncpg'"),
        ("sqlite:////nonexistent/dir/s3cr3t.db", "cannot reach database"),
    ],
)
def test_bad_or_unreachable_database_is_one_readable_line(url: str, expected: str) -> None:
    with pytest.raises(StoreError) as caught:
        open_database(url)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message
    if "alice" in url:
        assert "s3cr3t" not in message
        assert "alice:***@" in message
    assert caught.value.__cause__ is None  # raised `from None`: no chained traceback


def test_password_inside_unparseable_url_is_hidden() -> None:
    with pytest.raises(StoreError) as caught:
        open_database("postgresql+psycopg://alice:s3cr3t@host:notaport/db")
    assert "s3cr3t" not in str(caught.value)


def test_sqlite_reader_is_not_blocked_by_a_writer(tmp_path: Path) -> None:
    database = open_database(f"sqlite:///{tmp_path / 'rw.db'}")
    try:
        migrate(database)
        with database.transaction() as writer:
            writer.execute(text("INSERT INTO mailbox_cursors VALUES ('INBOX', 1, 2)"))
            writer.flush()
            # The writer holds the write lock; a reader sees the last commit without waiting.
            with database.reading() as reader:
                assert reader.execute(text("SELECT count(*) FROM mailbox_cursors")).scalar() == 0
        with database.reading() as reader:
            assert reader.execute(text("SELECT count(*) FROM mailbox_cursors")).scalar() == 1
    finally:
        database.close()


def test_shipped_head_is_alembics_head() -> None:
    from daemon.store.database import shipped_head

    assert shipped_head() == HEAD


def test_new_and_migrated_databases_start_without_importing_alembic(tmp_path: Path) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'at_head.db'}"
    code = ("import sys; from daemon.store.database import open_database, migrate; "
            f"d = open_database({url!r}); migrate(d); d.close(); "
            "print('alembic' in sys.modules)")
    for _ in ("a new database", "one at head"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, cwd=Path(__file__).resolve().parents[2]).stdout
        assert out.strip() == "False"


def test_new_rows_are_numbered_in_the_order_they_were_added(database: Database) -> None:
    """SQLite: ids come from _number_new_rows (so the ORM can executemany); PostgreSQL: from
    its sequences. Either way the timeline's order (by id) is the order of add(), also when
    rows are inserted behind the ORM's back between two flushes."""
    from datetime import UTC, datetime

    from sqlalchemy import insert, select

    from daemon.store.models import Event, Ticket

    now = datetime(2026, 11, 30, 9, tzinfo=UTC)
    with database.transaction() as session:
        ticket = Ticket(ref="new-x", state="triage", priority="P3", requester="a@example.org",
                        subject="s", created_at=now, updated_at=now, state_entered_at=now,
                        tiers_visited=[], bounces=0, flagged=False, workflow_name="w",
                        workflow_version=1)
        session.add(ticket)
        session.flush()

        def event(reason: str) -> Event:
            return Event(ticket_id=ticket.id, at=now, kind="note", actor="t", reason=reason,
                         data={})

        session.add_all([event("first"), event("second")])
        session.flush()
        session.execute(insert(Event).values(ticket_id=ticket.id, at=now, kind="note",
                                             actor="t", reason="core", data={}))
        session.add_all([event("third"), event("fourth")])
    with database.reading() as session:
        reasons = session.scalars(select(Event.reason).order_by(Event.id)).all()
    assert reasons == ["first", "second", "core", "third", "fourth"]
