"""Durations as admins write them, and back."""

from __future__ import annotations

from datetime import timedelta

import pytest

from daemon.config.durations import format_duration, parse_duration


@pytest.mark.parametrize(("text", "delta"), [
    ("30m", timedelta(minutes=30)), ("1h30m", timedelta(hours=1, minutes=30)),
    ("2d", timedelta(days=2)), ("1w", timedelta(weeks=1)), ("45s", timedelta(seconds=45)),
    ("250ms", timedelta(milliseconds=250)), ("1s500ms", timedelta(seconds=1.5)),
    ("1m 5s", timedelta(seconds=65)),
])
def test_parse_and_format_round_trip(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta
    assert parse_duration(format_duration(delta)) == delta


@pytest.mark.parametrize("text", ["", "5", "0s", "0ms", "1.5s", "ten minutes", "5 mins"])
def test_what_is_not_a_duration_says_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_format_is_the_shortest_spelling() -> None:
    assert format_duration(timedelta(milliseconds=250)) == "250ms"
    assert format_duration(timedelta(hours=26), hours_only=True) == "26h"
    assert format_duration(timedelta(0)) == "0m"
