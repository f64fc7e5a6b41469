"""Business time on a calendar: when working time runs out, and how much lies between two instants.

Pure functions over a `Calendar` (daemon.config.settings), whose holidays come from an iCalendar
file (daemon/config/holidays.py, read once at config load).

How local hours become instants. A span such as mon "09:00-17:00" is wall-clock time in the
calendar's zone. It opens at the first instant the local clock shows its start and closes at
the first instant the clock shows its end:
- spring forward: a time inside the gap (02:30 on 2026-03-29 in Berlin) is reached when the
  clock jumps to 03:00; so 00:00-24:00 that day is 23 real hours, and 02:30-05:00 is 2.
- fall back: a time in the repeated hour means its first occurrence; 00:00-24:00 that day is
  25 real hours, 02:30-10:00 opens at the first 02:30 and runs through the repeat (8.5 hours),
  00:00-02:30 closes at the first 02:30 (2.5 hours; the repeated 02:00-02:30 is not counted).
"The first instant the clock shows X" only grows with X, so spans that are ordered and apart on
the wall clock are ordered and apart in real time, each one a single UTC interval.

A holiday closes its whole local date. An overnight shift belongs to the date it starts on: one
starting on a holiday does not run; one starting the evening before runs into the holiday.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from daemon.clock.sla import TimeBetween
    from daemon.config.calendars import Calendar
    from daemon.workflow.timers import AddTime

ZERO = timedelta(0)
ONE_DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
# A calendar whose holidays close every day would make the search run forever; stop after this
# many closed days in a row.
MAX_CLOSED_DAYS = 3 * 366

Opening = tuple[datetime, datetime]  # working time as a UTC interval [open, close)


# ------------------------------------------------------------------ the two questions

def add_business_time(start: datetime, duration: timedelta, calendar: Calendar) -> datetime:
    """The instant (aware, UTC) when `duration` of working time counted from `start` is used up.

    Outside hours the count begins at the next opening. Work that ends exactly at a closing
    time ends at that closing instant, not at the next opening. A zero duration gives `start`
    inside hours, else the next opening."""
    begin = _utc(start, "start")
    if duration < ZERO:
        raise ValueError(f"duration {duration} is negative; business time only runs forward")
    remaining = duration
    for opened, closed in _openings_from(calendar, begin):
        if remaining <= closed - opened:
            return opened + remaining
        remaining -= closed - opened
    raise AssertionError("unreachable: the openings never end")


def business_time_between(a: datetime, b: datetime, calendar: Calendar) -> timedelta:
    """Working time in [a, b). Zero when b <= a: never negative, so "time left" on a deadline
    already passed reads as none, and callers compare instants when they need the order."""
    begin, end = _utc(a, "a"), _utc(b, "b")
    total = ZERO
    if end <= begin:
        return total
    for opened, closed in _openings_from(calendar, begin):
        if opened >= end:
            break
        total += min(closed, end) - opened
    return total


def calendar_clock(calendars: Mapping[str, Calendar]) -> AddTime:
    """The engine's AddTime over named calendars: "wall" counts every real second, "business"
    counts working time on the named calendar. Memoised: a batch asks the same few questions
    (one `now`, a handful of durations) thousands of times, and the answer is pure. Small:
    the next batch has another `now`, so older answers are never asked again; 1,024 of them
    kept a daemon's RSS rising for its first ~1,000 batches."""
    @lru_cache(maxsize=128)
    def add_time(start: datetime, duration: timedelta, clock: str, calendar: str) -> datetime:
        if clock == "wall":
            # In UTC, so a day is 24 real hours (on a local zone, + would move the wall clock).
            return _utc(start, "start") + duration
        if clock != "business":
            raise ValueError(f"unknown clock {clock!r}; use 'business' or 'wall'")
        return add_business_time(start, duration, _named(calendars, calendar))
    return add_time


def calendar_span(calendars: Mapping[str, Calendar]) -> TimeBetween:
    """The measuring twin of calendar_clock: how much time a clock counted from a to b."""
    def between(a: datetime, b: datetime, clock: str, calendar: str) -> timedelta:
        if clock == "wall":
            return max(ZERO, _utc(b, "b") - _utc(a, "a"))
        return business_time_between(a, b, _named(calendars, calendar))
    return between


def _named(calendars: Mapping[str, Calendar], name: str) -> Calendar:
    try:
        return calendars[name]
    except KeyError:
        known = ", ".join(sorted(calendars))
        raise ValueError(f"no calendar named {name!r}; known calendars: {known}") from None


def _utc(value: datetime, name: str) -> datetime:
    # astimezone honours `fold`, so an ambiguous local input means what its fold says.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} {value.isoformat()} has no time zone; pass an aware datetime, "
                         "e.g. datetime(2026, 3, 2, 9, 0, tzinfo=UTC)")
    return value.astimezone(UTC)


# ------------------------------------------------------------------ openings, day by day

def _openings_from(calendar: Calendar, t: datetime) -> Iterator[Opening]:
    """Working intervals that end after `t`, in order, the first clipped to begin at `t`.
    Endless; raises ValueError after MAX_CLOSED_DAYS closed days in a row."""
    zone: ZoneInfo = calendar.timezone
    # Yesterday's overnight shift may still be running at `t`.
    day = t.astimezone(zone).date() - ONE_DAY
    closed_days = 0
    while True:
        openings = [(max(a, t), b) for a, b in _openings(calendar, day) if b > t]
        closed_days = 0 if openings else closed_days + 1
        if closed_days > MAX_CLOSED_DAYS:
            raise ValueError(f"calendar has no working time in the {MAX_CLOSED_DAYS} days "
                             f"before {day}; check its hours and holidays")
        yield from openings
        day += ONE_DAY


class _ByIdentity:
    """A cache key for a calendar: Calendar holds a dict so it cannot be hashed, and holding the
    calendar here keeps it alive while cached, so its id cannot pass to a new calendar."""

    __slots__ = ("calendar",)

    def __init__(self, calendar: Calendar) -> None:
        self.calendar = calendar

    def __hash__(self) -> int:
        return id(self.calendar)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ByIdentity) and other.calendar is self.calendar


def _openings(calendar: Calendar, day: date) -> tuple[Opening, ...]:
    return _day_openings(_ByIdentity(calendar), day)


@lru_cache(maxsize=8192)
def _day_openings(key: _ByIdentity, day: date) -> tuple[Opening, ...]:
    """The UTC intervals of the spans that start on local date `day`."""
    calendar = key.calendar
    if calendar.is_holiday(day):
        return ()
    midnight = datetime.combine(day, time())
    zone = calendar.timezone
    openings = ((_first_instant(zone, midnight + span.start),
                 _first_instant(zone, midnight + span.end))
                for span in calendar.spans(day.weekday()))
    return tuple((a, b) for a, b in openings if a < b)  # a span inside a DST gap is empty


def _first_instant(zone: ZoneInfo, wall: datetime) -> datetime:
    """The first instant (UTC) at which the local clock in `zone` shows `wall` or later."""
    early, late = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
    if early.utcoffset() == late.utcoffset():
        return early.astimezone(UTC)  # the usual case: `wall` happens exactly once
    first, second = early.astimezone(UTC), late.astimezone(UTC)
    if first < second:
        return first  # fall back: `wall` happens twice; the first time counts
    # Spring forward: `wall` never happens. fold=1 reads it with the later offset (an instant
    # before the jump), fold=0 with the earlier (after it); the jump lies between.
    return _jump(zone, second, first)


def _jump(zone: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """The first instant in (before, after] whose offset differs from `before`'s, to the second
    (zone offsets change on whole seconds)."""
    offset = before.astimezone(zone).utcoffset()
    while after - before > SECOND:
        middle = before + timedelta(seconds=int((after - before).total_seconds()) // 2)
        if middle.astimezone(zone).utcoffset() == offset:
            before = middle
        else:
            after = middle
    return after
