"""Loop heartbeats: each loop of a running daemon says it is alive and how its last pass went.

Rows are keyed by (loop, daemon) and each daemon writes only its own, so no two writers race;
callers own the transaction, as in repository.py.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from daemon.store.models import LoopHeartbeat

LOOPS = ("ingest", "clock", "sender")


def daemon_name(burst: bool = False) -> str:
    """This process as status shows it: host:pid; `run --once` bursts are host:once, so
    cron-style runs share their rows instead of adding three every run."""
    return f"{socket.gethostname()}:{'once' if burst else os.getpid()}"


def beat(session: Session, loop: str, daemon: str, now: datetime, *, ok: bool,
         error: str | None = None, detail: Mapping[str, Any] | None = None) -> None:
    """Record one pass of `loop`: ok=True clears the last error; ok=False keeps the last
    success time and records `error`. `detail` replaces the loop's detail when given."""
    row = session.get(LoopHeartbeat, (loop, daemon))
    if row is None:
        row = LoopHeartbeat(loop=loop, daemon=daemon, started_at=now, beat_at=now,
                            detail={})
        session.add(row)
    row.beat_at = now
    row.stopped_at = None
    if ok:
        row.ok_at, row.error, row.error_at = now, None, None
    else:
        row.error, row.error_at = error or "unknown problem", now
    if detail is not None:
        row.detail = dict(detail)


def stopped(session: Session, daemon: str, now: datetime) -> None:
    """A graceful stop: status then tells a stopped daemon from a dead one."""
    session.execute(update(LoopHeartbeat).where(LoopHeartbeat.daemon == daemon)
                    .values(stopped_at=now))


def heartbeats(session: Session) -> list[LoopHeartbeat]:
    """Every loop of every daemon that ever ran on this store, newest beat first."""
    return list(session.scalars(select(LoopHeartbeat).order_by(
        LoopHeartbeat.beat_at.desc(), LoopHeartbeat.loop)))
