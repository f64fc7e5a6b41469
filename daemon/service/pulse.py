"""Writing loop heartbeats from the loops: one short transaction each, and a failure to write
one never fails the loop (the database being down is reported by the loop's own work)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from daemon.store import heartbeats
from daemon.store.database import Database

log = logging.getLogger("tierdesk.service")


def beat(database: Database, loop: str, daemon: str, now: datetime, *, ok: bool,
         error: str | None = None, detail: Mapping[str, Any] | None = None) -> bool:
    """Record one pass of `loop`; False when the database would not take it."""
    try:
        with database.transaction() as session:
            heartbeats.beat(session, loop, daemon, now, ok=ok, error=error, detail=detail)
    except SQLAlchemyError as exc:
        log.debug("heartbeat of %s not written: %s", loop, exc)
        return False
    return True


def stopped(database: Database, daemon: str, now: datetime) -> bool:
    """Mark every loop of `daemon` stopped (a graceful stop)."""
    try:
        with database.transaction() as session:
            heartbeats.stopped(session, daemon, now)
    except SQLAlchemyError as exc:
        log.warning("could not mark the loops stopped: %s", exc)
        return False
    return True
