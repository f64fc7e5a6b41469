"""Loop heartbeats on SQLite and PostgreSQL: alive, last success, last error, graceful stop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from daemon.store.database import Database
from daemon.store.heartbeats import beat, heartbeats, stopped

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_a_success_clears_the_error_and_a_failure_keeps_the_last_success(
        database: Database) -> None:
    with database.transaction() as session:
        beat(session, "ingest", "host:1", T0, ok=True, detail={"waiting": 0})
    with database.transaction() as session:
        beat(session, "ingest", "host:1", T0 + timedelta(seconds=5), ok=False,
             error="imap: connection refused")
    with database.reading() as session:
        (row,) = heartbeats(session)
        assert (row.started_at, row.ok_at, row.beat_at) == (T0, T0, T0 + timedelta(seconds=5))
        assert (row.error, row.detail) == ("imap: connection refused", {"waiting": 0})
    with database.transaction() as session:
        beat(session, "ingest", "host:1", T0 + timedelta(seconds=9), ok=True)
    with database.reading() as session:
        (row,) = heartbeats(session)
        assert (row.ok_at, row.error, row.error_at) == (T0 + timedelta(seconds=9), None, None)


def test_each_daemon_keeps_its_own_rows_and_a_stop_marks_only_its_own(
        database: Database) -> None:
    with database.transaction() as session:
        for daemon in ("a:1", "b:2"):
            for loop in ("ingest", "clock"):
                beat(session, loop, daemon, T0, ok=True)
        stopped(session, "a:1", T0 + timedelta(minutes=1))
    with database.reading() as session:
        rows = {(r.daemon, r.loop): r.stopped_at for r in heartbeats(session)}
    assert rows == {("a:1", "ingest"): T0 + timedelta(minutes=1),
                    ("a:1", "clock"): T0 + timedelta(minutes=1),
                    ("b:2", "ingest"): None, ("b:2", "clock"): None}
