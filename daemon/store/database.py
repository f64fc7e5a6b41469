"""Opening the database (SQLite or PostgreSQL) and migrating it to the current schema."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, func, inspect, select, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from daemon.config.database_url import database_url_problem
from daemon.store.models import SEARCH_TEMP, Base

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from alembic.config import Config

DEFAULT_URL = "sqlite:///tierdesk.db"
SQLITE_BUSY_TIMEOUT_MS = 15_000
# Each connection's own page cache (SQLite's default is 2 MB). The OS caches the file too;
# 512 KiB kept the ingest bench's peak RSS 3.5 MB lower at the same rate.
SQLITE_CACHE_KIB = 512
SQLITE_STATEMENTS = 32
PG_CONNECT_TIMEOUT_S = 10
# A server that vanishes without a word (a cable, a firewall's forgotten state, a VM paused)
# leaves a query waiting on a silent socket: TCP keepalives and a timeout on unacknowledged
# data end that wait in about a minute, and the loop reports the outage and backs off,
# instead of hanging until the kernel gives up after a quarter of an hour.
PG_CONNECT_ARGS: dict[str, int] = {
    "connect_timeout": PG_CONNECT_TIMEOUT_S, "keepalives": 1, "keepalives_idle": 30,
    "keepalives_interval": 10, "keepalives_count": 3, "tcp_user_timeout": 60_000,
}
# pg_advisory_lock key held while migrating: ASCII "tdmigr", any constant shared by all daemons.
MIGRATE_LOCK_KEY = 0x7464_6D69_6772

READ_ONLY = "tierdesk_read_only"  # execution option marking Database.reading() transactions

_PASSWORD_IN_URL = re.compile(r"(://[^:/@]*:)[^@/]*@")


class StoreError(Exception):
    """A database problem worth one readable line to the operator (never the password)."""


@dataclass(frozen=True)
class Database:
    """An Engine plus its session factory; close() when done."""

    url: URL
    engine: Engine
    sessions: sessionmaker[Session]
    readers: sessionmaker[Session]

    @property
    def safe_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    @property
    def is_postgres(self) -> bool:
        return self.url.get_backend_name() == "postgresql"

    @property
    def sqlite_file(self) -> str | None:
        """The SQLite database's file, or None (PostgreSQL, or SQLite in memory)."""
        if self.url.get_backend_name() != "sqlite" or _in_memory(self.url):
            return None
        return self.url.database

    def transaction(self) -> AbstractContextManager[Session]:
        """`with db.transaction() as session:` commits on success and rolls back on error."""
        return self.sessions.begin()

    def reading(self) -> AbstractContextManager[Session]:
        """A transaction that only reads: on SQLite it neither waits for nor blocks a writer."""
        return self.readers.begin()

    def close(self) -> None:
        self.engine.dispose()


def redact(url: str | URL) -> str:
    """The URL as text with its password hidden, even when the text is no valid URL."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return _PASSWORD_IN_URL.sub(r"\1***@", url)


def open_database(url: str = DEFAULT_URL) -> Database:
    """Create the engine and check the database answers; raise StoreError if not."""
    parsed = _parse_url(url)
    try:
        engine = _create_engine(parsed)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"unsupported database URL {redact(parsed)}: {_one_line(exc)}") from None
    database = Database(
        parsed,
        engine,
        sessionmaker(engine, expire_on_commit=False),
        sessionmaker(_read_only(engine), expire_on_commit=False),
    )
    if parsed.get_backend_name() == "sqlite":
        event.listen(database.sessions, "before_flush", _number_new_rows)
    _check_reachable(database)
    return database


# Tables whose new rows get their ids from us on SQLite (see _number_new_rows). Not tickets:
# their ids come from repository.ticket_ids or an immediate flush, and never repeat.
_NUMBERED = frozenset({"messages", "events", "timers", "outbox", "quarantine"})


def _number_new_rows(session: Session, _context: Any, _instances: Any) -> None:
    """Give new rows their integer ids before the flush writes them.

    SQLite cannot say which RETURNING row belongs to which of many inserted rows, so without
    ids the ORM inserts one row per statement; with them it sends each table's rows in one
    executemany, several times faster. SQLite would pick max(id) + 1 itself (these tables
    have no AUTOINCREMENT), and our transactions hold its write lock from the start
    (BEGIN IMMEDIATE), so nobody else can take those ids meanwhile."""
    new: dict[Any, list[Any]] = {}
    for obj in session.new:
        table = getattr(obj, "__table__", None)
        if table is not None and table.name in _NUMBERED and obj.id is None:
            new.setdefault(type(obj), []).append(obj)
    connection = session.connection()
    for model, rows in new.items():
        last = connection.execute(select(func.max(model.id))).scalar() or 0
        rows.sort(key=lambda obj: inspect(obj).insert_order)  # ids in the order of add()
        for number, obj in enumerate(rows, start=last + 1):
            obj.id = number


def _read_only(engine: Engine) -> Engine:
    """The same engine and pool, its transactions marked as read-only (see _sqlite_on_begin)."""
    return engine.execution_options(**{READ_ONLY: True})


def _parse_url(url: str) -> URL:
    # The same verdict as the settings' validation, so `check` passes only what opens here.
    problem = database_url_problem(url)
    if problem is not None:
        raise StoreError(problem)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise StoreError(
            f"invalid database URL {redact(url)!r}: expected e.g. {DEFAULT_URL} "
            "or postgresql+psycopg://user@host/dbname"
        ) from None
    # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _create_engine(url: URL) -> Engine:
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url)
    if backend == "postgresql":
        # What the URL's query sets (libpq parameters) wins over these defaults.
        connect_args = {k: v for k, v in PG_CONNECT_ARGS.items() if k not in url.query}
        return create_engine(url, connect_args=connect_args, pool_pre_ping=True)
    raise ArgumentError(f"backend {backend!r} is not supported (use sqlite or postgresql)")


def _in_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


def _sqlite_engine(url: URL) -> Engine:
    if _in_memory(url):
        # One shared connection, or every checkout would see a new, empty database.
        engine = create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        # 32 prepared statements a connection (the driver keeps 128): every length of an
        # IN (...) list is a statement of its own, so the cache filled slowly for tens of
        # thousands of mails and held a daemon's RSS ~6 MB higher (bench/latency.py);
        # the ingest rate is the same.
        engine = create_engine(url, connect_args={"cached_statements": SQLITE_STATEMENTS})
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # We emit BEGIN ourselves (see _sqlite_on_begin): pysqlite's own is late and skips reads.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first: switching to WAL needs a lock another connection may hold.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        for statement in SEARCH_TEMP:  # what past-fix searches weigh terms by (search.py)
            try:
                cursor.execute(statement)
            except sqlite3.OperationalError:  # an SQLite built without FTS3/FTS5
                log.warning("full-text term counts unavailable: %s", statement)
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    # IMMEDIATE takes the write lock up front: a read-then-write transaction (claim a timer,
    # update a ticket) can then never fail half-way on a lock upgrade, and two processes on
    # one file serialise instead of both claiming the same row. Pure readers need no lock.
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _check_reachable(database: Database) -> None:
    try:
        with _read_only(database.engine).connect() as connection:
            connection.execute(select(1))
    except SQLAlchemyError as exc:
        database.close()
        raise StoreError(f"cannot reach database {database.safe_url}: {_reason(exc)}") from None


def _reason(exc: SQLAlchemyError) -> str:
    """The driver's own message, first line only: SQLAlchemy's adds SQL and a docs link."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return _one_line(cause)


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return redact(lines[0]) if lines else type(exc).__name__


MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def migrations_config() -> Config:
    """An Alembic Config for the migrations shipped inside the package (any cwd works)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def shipped_head() -> str:
    """The newest migration shipped, by our file naming (NNNN_what.py is revision NNNN);
    a test holds this to Alembic's own idea of the head."""
    return max(shipped_revisions())


def open_and_migrate(url: str) -> Database:
    """Open the database and bring its schema up to date (the daemon's start-up)."""
    database = open_database(url)
    try:
        migrate(database)
    except BaseException:
        database.close()
        raise
    return database


def migrate(database: Database, revision: str = "head") -> None:
    """Upgrade the schema to `revision`; safe when several daemons start at once.

    Alembic is imported only when there is something to upgrade: a database already at the
    shipped head is left alone, and an empty one gets the whole schema from the models
    (tests/store/test_database.py holds them equal to the migrations) and the head stamp.
    Importing Alembic costs a daemon about 11 MB of memory for the rest of its life."""
    stamped = _stamped(database)
    if revision == "head":
        if stamped == shipped_head():
            return
        if stamped is not None and stamped not in shipped_revisions():
            raise StoreError(
                f"database {database.safe_url} has schema revision {stamped}, newer than this "
                f"Tierdesk knows (up to {shipped_head()}); run the Tierdesk version that "
                "created it, or a newer one")
    try:
        with database.engine.connect() as connection, _migration_lock(database, connection):
            # One transaction around all of it: Alembic runs DDL on SQLite outside any
            # transaction otherwise, and two daemons would race to create the same tables.
            with connection.begin():
                if revision == "head" and _is_empty(connection):
                    _create_at_head(connection)
                    return
                from alembic import command

                config = migrations_config()
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot migrate database {database.safe_url}: {_reason(exc)}") from None


def shipped_revisions() -> set[str]:
    return {path.name.split("_", 1)[0] for path in (MIGRATIONS_DIR / "versions").glob(
        "[0-9][0-9][0-9][0-9]_*.py")}


def _is_empty(connection: Connection) -> bool:
    """No table of ours and no stamp: a new database (checked under the migration lock)."""
    names = set(inspect(connection).get_table_names())
    return not names & ({"alembic_version"} | set(Base.metadata.tables))


def _create_at_head(connection: Connection) -> None:
    Base.metadata.create_all(connection)
    connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                            "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"))
    connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:head)"),
                       {"head": shipped_head()})


@contextmanager
def _migration_lock(database: Database, connection: Connection) -> Iterator[None]:
    """A session-level advisory lock on PostgreSQL, where concurrent CREATE TABLEs would
    otherwise collide; on SQLite the transaction's BEGIN IMMEDIATE already serialises."""
    if not database.is_postgres:
        yield
        return
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATE_LOCK_KEY})
    connection.commit()
    try:
        yield
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATE_LOCK_KEY})
        connection.commit()


def current_revision(database: Database) -> str | None:
    """The schema revision stamped in the database, or None before the first migration."""
    from alembic.migration import MigrationContext

    with _read_only(database.engine).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _stamped(database: Database) -> str | None:
    """alembic_version read with plain SQL (None when there is no such table yet)."""
    try:
        with _read_only(database.engine).connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        return None
