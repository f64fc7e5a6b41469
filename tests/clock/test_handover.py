"""The demo's clock: the story on simulated time, placed to end by now, then the real clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from daemon.clock.handover import ClockRanBackwards, HandoverClock, story_start

BERLIN = ZoneInfo("Europe/Berlin")
TEMPLATE = datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN)  # a Monday morning
SPAN = timedelta(days=7)


@pytest.mark.parametrize("now", [
    datetime.now(UTC),  # whatever today is
    TEMPLATE.astimezone(UTC) - timedelta(days=400),  # long before the template
    TEMPLATE.astimezone(UTC) + timedelta(days=2000),  # years after it
    datetime(2027, 3, 29, 12, 0, tzinfo=UTC),  # a week over the spring DST change
    datetime(2027, 11, 1, 7, 30, tzinfo=UTC),  # and over the autumn one
])
def test_the_story_starts_on_the_templates_weekday_and_hour_and_ends_by_now(
        now: datetime) -> None:
    start = story_start(TEMPLATE, now, SPAN)
    local = start.astimezone(BERLIN)
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)
    assert start + SPAN <= now  # ended by now
    assert start + timedelta(weeks=1) + SPAN > now  # and the latest such start


def test_the_clock_is_the_storys_until_the_handover_then_real() -> None:
    real = [datetime(2030, 1, 10, 12, 0, tzinfo=UTC)]
    clock = HandoverClock(datetime(2030, 1, 1, 9, 0, tzinfo=UTC), real=lambda: real[0])
    assert clock() == clock.start and not clock.live
    clock.jump(datetime(2030, 1, 6, 8, 10, tzinfo=UTC))
    assert clock() == datetime(2030, 1, 6, 8, 10, tzinfo=UTC)
    assert clock.hand_over() == datetime(2030, 1, 6, 8, 10, tzinfo=UTC)  # the story's end
    assert clock.live and clock() == real[0]
    real[0] += timedelta(seconds=5)
    assert clock() == real[0]  # follows the real clock from then on
    with pytest.raises(ValueError, match="real now"):
        clock.jump(real[0] + timedelta(days=1))


def test_the_clock_never_runs_backwards() -> None:
    clock = HandoverClock(datetime(2030, 1, 1, 9, 0, tzinfo=UTC),
                          real=lambda: datetime(2030, 1, 3, tzinfo=UTC))
    with pytest.raises(ClockRanBackwards):
        clock.jump(datetime(2029, 12, 31, tzinfo=UTC))
    clock.jump(datetime(2030, 1, 4, tzinfo=UTC))  # the story ran past real now
    with pytest.raises(ClockRanBackwards, match="after the real time"):
        clock.hand_over()
    assert not clock.live
