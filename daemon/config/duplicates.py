"""settings.duplicates: look-alike tickets and past fixes named in the front line's notice
and in handoffs (daemon/store/search.py: the window's tickets scored word by word, past
fixes by full-text search). A module of its own
beside settings.py, which holds it as `Settings.duplicates` (TIERDESK_DUPLICATES_*)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, Field

from daemon.config.durations import parse_duration
from daemon.config.frozen import Frozen, Int


def _duration(value: object) -> timedelta:
    return value if isinstance(value, timedelta) else parse_duration(value)  # type: ignore[arg-type]


class DuplicatesSettings(Frozen):
    # A new ticket is compared with the tickets opened this long before it.
    window: Annotated[timedelta, BeforeValidator(_duration)] = timedelta(hours=4)
    # At most this many look-alikes are named; 0 turns the check off.
    max: Int = Field(default=5, ge=0, le=50)
    # How alike two reports must be: the share of the shorter one's words the other has too
    # (and at least two words in common), from 0 to 1.
    similarity: float = Field(default=0.5, ge=0.0, le=1.0)
    # Resolved tickets most like this one, listed with their #resolve summary; 0: none.
    past_fixes: Int = Field(default=3, ge=0, le=20)
