"""store/bulk.py writes exactly what SQLAlchemy's own insert writes, on SQLite and PostgreSQL;
and UTCDateTime's SQLite shortcut formats as SQLAlchemy's DATETIME does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Table, delete, insert, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from daemon.store import repository as repo
from daemon.store.bulk import insert_rows
from daemon.store.models import Event, UTCDateTime

MOMENTS = [
    datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
    datetime(2026, 3, 2, 9, 0, 0, 5, tzinfo=UTC),
    datetime(999, 1, 1, tzinfo=UTC),
    datetime(2026, 11, 27, 23, 30, tzinfo=ZoneInfo("Europe/Berlin")),
    datetime(2026, 3, 29, 1, 30, 7, 123456, tzinfo=timezone(timedelta(hours=-5))),
]


def _events(ticket_id: int) -> list[dict[str, Any]]:
    return [{"ticket_id": ticket_id, "at": at, "kind": "note", "actor": f"ann{n}@example.org",
             "from_state": None if n % 2 else "tier1", "to_state": "tier2",
             "reason": f"reason {n} ✓", "data": {"n": n, "tags": ["a", "ü"], "none": None}}
            for n, at in enumerate(MOMENTS)]


def _stored(session: Session, table: Table) -> list[tuple[Any, ...]]:
    columns = [c for c in table.columns if c.key != "id"]
    return [tuple(row) for row in session.execute(select(*columns).order_by(table.c.id))]


def test_rows_are_stored_as_sqlalchemy_stores_them(session: Session, now: datetime) -> None:
    ticket = repo.create_ticket(
        session, requester="ann@example.org", subject="s", workflow_name="it-support",
        workflow_version=1, initial_state="triage", priority="P3", team="helpdesk", now=now)
    session.flush()
    table = Event.__table__
    assert isinstance(table, Table)
    connection = session.connection()
    connection.execute(insert(table), _events(ticket.id))
    theirs = _stored(session, table)
    session.execute(delete(table))
    insert_rows(connection, table, _events(ticket.id))
    ours = _stored(session, table)
    assert ours == theirs
    assert len(ours) == len(MOMENTS) and ours[0][1] == MOMENTS[0]  # read back aware UTC
    assert {row[1] for row in ours} == {m.astimezone(UTC) for m in MOMENTS}


def test_a_column_left_to_its_python_default_is_refused(session: Session) -> None:
    """Such a default would need SQLAlchemy's per-row prefetch: loud, not silently NULL."""
    table = Event.__table__
    assert isinstance(table, Table)
    row = {k: v for k, v in _events(1)[0].items() if k != "reason"}
    with pytest.raises(ValueError, match="cannot bulk-insert events"):
        insert_rows(session.connection(), table, [row])


def test_nothing_to_insert_is_no_statement(session: Session) -> None:
    table = Event.__table__
    assert isinstance(table, Table)
    insert_rows(session.connection(), table, [])


@pytest.mark.parametrize("moment", [*MOMENTS, None])
def test_sqlite_datetime_text_is_sqlalchemys(moment: datetime | None) -> None:
    dialect = sqlite.dialect()
    impl = UTCDateTime().dialect_impl(dialect)
    ours = impl.bind_processor(dialect)
    theirs = TypeDecorator.bind_processor(impl, dialect)  # convert, then DATETIME's format
    assert ours is not None and theirs is not None
    assert ours(moment) == theirs(moment)


def test_sqlite_refuses_naive_datetimes() -> None:
    dialect = sqlite.dialect()
    process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    with pytest.raises(ValueError, match="naive datetime"):
        process(datetime(2026, 3, 2, 9, 0))
