"""Durations as admins write them: 30m, 4h, 2d, 1h30m, 1w, 45s, 250ms."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_MS = {**{unit: size * 1000 for unit, size in _UNITS.items()}, "ms": 1}
_PART = re.compile(r"(\d+)\s*(ms|[wdhms])")
_WHOLE = re.compile(r"^\s*(?:\d+\s*(?:ms|[wdhms])\s*)+$")

DURATION_HELP = "write a number and a unit, e.g. 30m, 4h, 2d, 1h30m (units: w d h m s ms)"


def parse_duration(text: str | int | timedelta) -> timedelta:
    """Parse `text` into a positive timedelta; raise ValueError saying how to write it."""
    if isinstance(text, timedelta):  # already parsed (a model dumped and validated again)
        if text <= timedelta(0):
            raise ValueError(f"{format_duration(text)} is not a positive duration")
        return text
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ValueError(f"{text!r} is not a duration; {DURATION_HELP}")
    if isinstance(text, int):
        raise ValueError(f"{text} has no unit; {DURATION_HELP}")
    lowered = text.lower()
    if not _WHOLE.match(lowered):
        raise ValueError(f"{text!r} is not a duration; {DURATION_HELP}")
    millis = sum(int(n) * _MS[u] for n, u in _PART.findall(lowered))
    if millis <= 0:
        raise ValueError(f"{text!r} is zero; a duration must be longer than that")
    return timedelta(milliseconds=millis)


def format_duration(delta: timedelta, hours_only: bool = False) -> str:
    """The shortest admin-style spelling of `delta` (inverse of parse_duration); `hours_only`
    never uses days, for working time where a day is not 24 hours."""
    if not delta:
        return "0m"
    seconds = int(delta.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    parts = []
    for unit, size in _UNITS.items():
        if unit == "w" or (hours_only and unit == "d"):
            continue
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n}{unit}")
    millis = abs(delta) // timedelta(milliseconds=1) % 1000
    if millis:
        parts.append(f"{millis}ms")
    return sign + "".join(parts)
