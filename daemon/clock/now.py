"""The one real clock, for the loops' defaults; everything else takes `now` as a parameter."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)
