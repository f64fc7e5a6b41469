"""A clock that plays a story on simulated time and then hands over to the real clock.

`tierdesk demo` runs the daemon through days in seconds: the story jumps this clock from one
moment to the next. With `--keep` the same daemon goes on working, and from then on its time
must be the real time: mail opened after the story is dated now, and `status` sees fresh
heartbeats. So the story is placed in the past, ending no later than the moment of the
handover (`story_start`), and the clock never runs backwards.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from daemon.clock.now import utc_now

WEEK = timedelta(weeks=1)


def story_start(template: datetime, now: datetime, span: timedelta) -> datetime:
    """`template` moved by whole weeks to the latest start from which a story lasting at most
    `span` has ended by `now`. Whole weeks of wall-clock time keep the weekday and the local
    hours (also across a DST change), so business hours treat the story alike every week."""
    latest = now - span
    # Aware datetime arithmetic is wall-clock arithmetic in the template's zone.
    weeks = (latest - template) // WEEK
    start = template + weeks * WEEK
    while start + span > now:  # a DST change may put the wall-clock week an hour over
        start -= WEEK
    while start + WEEK + span <= now:
        start += WEEK
    return start


class ClockRanBackwards(ValueError):
    """The story ran past the real time it was to end by."""


class HandoverClock:
    """Call it for the time: the story's moment until `hand_over`, the real time after."""

    def __init__(self, start: datetime, real: Callable[[], datetime] = utc_now) -> None:
        self.start = start
        self._at = start
        self._real = real
        self._live = False

    def __call__(self) -> datetime:
        return self._real() if self._live else self._at

    @property
    def live(self) -> bool:
        return self._live

    def jump(self, at: datetime) -> None:
        """Move the story's clock to `at`; only forwards, and only before the handover."""
        if self._live:
            raise ValueError("the clock is real now: the story cannot move it")
        if at < self._at:
            raise ClockRanBackwards(f"the story cannot go back from {self._at} to {at}")
        self._at = at

    def hand_over(self) -> datetime:
        """From now on the real clock; returns the story's last moment. A story that ended
        after real now would make the clock run backwards, so that is refused."""
        end, now = self._at, self._real()
        if end > now:
            raise ClockRanBackwards(f"the story ends at {end}, after the real time {now}")
        self._live = True
        return end
