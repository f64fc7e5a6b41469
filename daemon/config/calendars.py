"""Business calendars (config/settings.yaml `calendars:`): working hours per weekday as
spans in the calendar's time zone, and holidays. Their own module: settings.py holds the
sections, and the SLA clock reads only these."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BeforeValidator,
    InstanceOf,
    ValidationInfo,
    field_validator,
)

from daemon.config.frozen import Day, Frozen
from daemon.config.holidays import Holidays, read_ics_holidays

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

DAY = timedelta(days=1)


class Span(Frozen):
    """Working time that starts on one day, as offsets from that day's local midnight.

    `end` is after `start`; past 24:00 it runs into the next day (an overnight shift:
    mon "22:00-06:00" is Span(22h, 30h), Monday 22:00 to Tuesday 06:00)."""

    start: timedelta
    end: timedelta

    @property
    def overnight(self) -> bool:
        return self.end > DAY

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end - DAY if self.overnight else self.end)}"

    def __repr__(self) -> str:
        return f"Span({str(self)!r})"


def _hhmm(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


_HOURS_HELP = ('write "HH:MM-HH:MM", several spans separated by commas, '
               'e.g. "09:00-12:30, 13:30-17:00" (an end before the start runs overnight)')
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


def _clock(text: str, is_end: bool) -> timedelta:
    match = _CLOCK.match(text.strip())
    if not match:
        raise ValueError(f"{text.strip()!r} is not a time of day; {_HOURS_HELP}")
    hours, minutes = int(match[1]), int(match[2])
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not is_end)):
        raise ValueError(f"{text.strip()!r} is not a time of day; "
                         "use 00:00 to 23:59, and 24:00 only as an end")
    return timedelta(hours=hours, minutes=minutes)


def _span(part: str) -> Span:
    """One "HH:MM-HH:MM"; an end before the start is on the next day."""
    start, sep, end = part.partition("-")
    if not sep:
        raise ValueError(f"{part.strip()!r} is not a span of hours; {_HOURS_HELP}")
    begin, finish = _clock(start, False), _clock(end, True)
    if begin == finish:
        raise ValueError(f"{part.strip()!r} is empty; give a span two different times "
                         "(a whole day is 00:00-24:00)")
    return Span(start=begin, end=finish if finish > begin else finish + DAY)


def parse_hours(value: object) -> object:
    """Parse "HH:MM-HH:MM[, HH:MM-HH:MM]" into ordered, non-overlapping spans; only the last
    may run overnight."""
    if not isinstance(value, str):
        return value  # already parsed spans, or a wrong type the tuple check reports
    spans: list[Span] = []
    for part in value.split(","):
        span = _span(part)
        if spans and span.start < spans[-1].end:
            raise ValueError(f"{span} overlaps or precedes {spans[-1]}; list spans in order, "
                             "apart, with an overnight one last")
        spans.append(span)
    return tuple(spans)


def _zone(value: object) -> ZoneInfo:
    if isinstance(value, ZoneInfo):
        return value
    if isinstance(value, str):
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin, "
                     "America/New_York or UTC")


def _holidays_file(value: object, info: ValidationInfo) -> object:
    """Read the iCalendar file at config load; a relative path is relative to the config
    folder (validation context "config_dir"; without one, to the working directory)."""
    if value is None or isinstance(value, Holidays):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} is not a file path; write e.g. holidays_file: holidays.ics")
    path = Path(value)
    config_dir = (info.context or {}).get("config_dir")
    if config_dir is not None and not path.is_absolute():
        path = Path(config_dir) / path
    return read_ics_holidays(path)


def _overnight_clash(hours: Mapping[Weekday, tuple[Span, ...]], day: Weekday,
                     after: Weekday) -> None:
    """An overnight span must end before the next day's first span begins."""
    spans, following = hours.get(day, ()), hours.get(after, ())
    if not spans or not following or spans[-1].end - DAY <= following[0].start:
        return
    shift, next_span = spans[-1], following[0]
    raise ValueError(f"{day} {shift} runs into {after} {next_span}; end the {day} shift by "
                     f"{_hhmm(next_span.start)} or start {after} at "
                     f"{_hhmm(shift.end - DAY)} or later")


Hours = Annotated[tuple[Span, ...], BeforeValidator(parse_hours)]


class Calendar(Frozen):
    """Business hours in one time zone; days not listed and holidays are closed.

    A holiday closes its whole local date; an overnight shift belongs to the day it starts on
    (see daemon.clock.business_hours for how local hours meet daylight-saving changes)."""

    timezone: Annotated[InstanceOf[ZoneInfo], BeforeValidator(_zone)]
    hours: dict[Weekday, Hours]
    holidays: tuple[Day, ...] = ()
    # An iCalendar file of all-day events (and fixed-date yearly ones), read at load.
    holidays_file: Annotated[InstanceOf[Holidays] | None, BeforeValidator(_holidays_file)] = None

    @field_validator("hours")
    @classmethod
    def _check_week(cls, hours: dict[Weekday, Hours]) -> dict[Weekday, Hours]:
        if not any(hours.values()):
            raise ValueError("a calendar needs working hours on at least one day; "
                             'add e.g. mon: "09:00-17:00"')
        for i, day in enumerate(WEEKDAYS):
            _overnight_clash(hours, day, WEEKDAYS[(i + 1) % 7])
        return hours

    def spans(self, weekday: int) -> tuple[Span, ...]:
        """Working spans starting on `weekday` (0 = Monday), empty when closed."""
        return self.hours.get(WEEKDAYS[weekday], ())

    def is_holiday(self, day: date) -> bool:
        """Closed all day: listed under `holidays` or in the holidays file."""
        in_file = self.holidays_file is not None and self.holidays_file.covers(day)
        return day in self.holidays or in_file


def default_calendars() -> dict[str, Calendar]:
    weekdays = {day: "09:00-17:00" for day in WEEKDAYS[:5]}
    return {"default": Calendar.model_validate({"timezone": "UTC", "hours": weekdays})}

