"""Holidays from an iCalendar file, read once at config load: single all-day dates and
fixed-date yearly series (RRULE:FREQ=YEARLY). Settings hold the result in each calendar;
daemon/clock/business_hours.py asks it which local dates are closed. Every problem is an IcsError
naming file and line.
"""

from __future__ import annotations

import re
from calendar import isleap
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path


@dataclass(frozen=True)
class YearlyHoliday:
    """A fixed-date holiday repeated by RRULE:FREQ=YEARLY (e.g. 25 December, every year)."""

    first: date  # DTSTART of the series
    days: int = 1  # length of each occurrence (DTEND - DTSTART)
    interval: int = 1
    count: int | None = None
    until: date | None = None
    exceptions: frozenset[date] = frozenset()  # EXDATE: occurrences that do not happen

    def covers(self, day: date) -> bool:
        return any(self._starts_on(day - timedelta(days=k)) for k in range(self.days))

    def _starts_on(self, day: date) -> bool:
        years = day.year - self.first.year
        if (day.month, day.day) != (self.first.month, self.first.day):
            return False
        if years < 0 or years % self.interval or day in self.exceptions:
            return False
        if self.until is not None and day > self.until:
            return False
        return self.count is None or self._occurrences_before(day.year) < self.count

    def _occurrences_before(self, year: int) -> int:
        # 29 February only happens in leap years (RFC 5545 skips invalid dates in COUNT too).
        years = range(self.first.year, year, self.interval)
        if (self.first.month, self.first.day) != (2, 29):
            return len(years)
        return sum(1 for y in years if isleap(y))


@dataclass(frozen=True)
class Holidays:
    """The all-day events of an iCalendar file: single dates and fixed-date yearly series."""

    file: str
    dates: frozenset[date] = frozenset()
    yearly: tuple[YearlyHoliday, ...] = ()

    def covers(self, day: date) -> bool:
        return day in self.dates or any(rule.covers(day) for rule in self.yearly)


class IcsError(ValueError):
    """A holidays file that cannot be read or is not the iCalendar we understand."""

    def __init__(self, file: str, line: int, problem: str, fix: str) -> None:
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {problem}; {fix}")
        self.file, self.line = file, line


def read_ics_holidays(path: Path) -> Holidays:
    """Read and parse an iCalendar file; any problem is an IcsError naming the file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise IcsError(str(path), 0, f"cannot read the holidays file ({reason})",
                       "check the path; a relative one is relative to the config folder") from None
    return parse_ics_holidays(text, str(path))


@dataclass
class _Component:
    name: str
    line: int
    # Property name -> every (line, parameters, value) of it, for the few names we read.
    props: dict[str, list[tuple[int, dict[str, str], str]]] = field(default_factory=dict)


_EVENT_PROPS = {"DTSTART", "DTEND", "DURATION", "RRULE", "EXDATE", "RDATE", "STATUS"}
_REPEATABLE = {"EXDATE"}


def parse_ics_holidays(text: str, file: str) -> Holidays:
    """The all-day VEVENTs of an iCalendar text as holidays (a small, strict RFC 5545 reader)."""
    parser = _IcsParser(file)
    for number, line in _unfold(text):
        parser.feed(number, line)
    return parser.finish()


def _unfold(text: str) -> Iterator[tuple[int, str]]:
    """Logical lines with the number of the physical line each starts on (RFC 5545 3.1:
    a line starting with a space or tab continues the previous one)."""
    pending: tuple[int, str] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if line[:1] in (" ", "\t") and pending is not None:
            pending = (pending[0], pending[1] + line[1:])
            continue
        if pending is not None and pending[1].strip():
            yield pending
        pending = (number, line)
    if pending is not None and pending[1].strip():
        yield pending


class _IcsParser:
    """Walks the components; keeps the DTSTART, DTEND, RRULE ... directly inside each VEVENT."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.stack: list[_Component] = []
        self.seen_calendar = False
        self.dates: set[date] = set()
        self.yearly: list[YearlyHoliday] = []

    def error(self, line: int, problem: str, fix: str) -> IcsError:
        return IcsError(self.file, line, problem, fix)

    def feed(self, number: int, line: str) -> None:
        name, params, value = _property(line, number, self)
        if name == "BEGIN":
            self._begin(number, value.upper())
        elif name == "END":
            self._end(number, value.upper())
        elif not self.stack:
            raise self.error(number, f"{name} is outside BEGIN:VCALENDAR ... END:VCALENDAR",
                             "put every line between BEGIN:VCALENDAR and END:VCALENDAR")
        elif self.stack[-1].name == "VEVENT" and name in _EVENT_PROPS:
            self._keep(self.stack[-1], number, name, params, value)

    def finish(self) -> Holidays:
        if self.stack:
            open_ = self.stack[-1]
            raise self.error(open_.line, f"BEGIN:{open_.name} is never closed",
                             f"add END:{open_.name}")
        if not self.seen_calendar:
            raise self.error(0, "no BEGIN:VCALENDAR found; this is not an iCalendar file",
                             "export the holidays as .ics, or list them under `holidays:`")
        return Holidays(self.file, frozenset(self.dates), tuple(self.yearly))

    def _begin(self, number: int, name: str) -> None:
        if not self.stack and name != "VCALENDAR":
            raise self.error(number, f"BEGIN:{name} is outside a VCALENDAR",
                             "the file must start with BEGIN:VCALENDAR")
        self.seen_calendar = True
        self.stack.append(_Component(name, number))

    def _end(self, number: int, name: str) -> None:
        if not self.stack:
            raise self.error(number, f"END:{name} closes nothing", f"remove it, or add "
                             f"BEGIN:{name} before it")
        if self.stack[-1].name != name:
            open_ = self.stack[-1]
            raise self.error(number, f"END:{name} comes while BEGIN:{open_.name} from line "
                             f"{open_.line} is still open", f"add END:{open_.name} before it")
        component = self.stack.pop()
        if component.name == "VEVENT":
            self._add_event(component)

    def _keep(self, event: _Component, number: int, name: str, params: dict[str, str],
              value: str) -> None:
        if name in event.props and name not in _REPEATABLE:
            raise self.error(number, f"{name} appears twice in the event starting on line "
                             f"{event.line}", "keep one")
        event.props.setdefault(name, []).append((number, params, value))

    def _add_event(self, event: _Component) -> None:
        if _first_value(event, "STATUS").upper() == "CANCELLED":
            return
        if "RDATE" in event.props:
            raise self.error(event.props["RDATE"][0][0], "RDATE is not supported",
                             "list each extra date as an event of its own")
        if "DTSTART" not in event.props:
            raise self.error(event.line, "the event has no DTSTART",
                             "add DTSTART;VALUE=DATE:YYYYMMDD")
        start = self._date_of(event, "DTSTART")
        days = self._length(event, start)
        if "RRULE" in event.props:
            self.yearly.append(self._yearly(event, start, days))
        else:
            self.dates.update(start + timedelta(days=k) for k in range(days))

    def _date_of(self, event: _Component, name: str) -> date:
        number, _, value = event.props[name][0]
        return _ics_date(value.strip(), number, name, self)

    def _length(self, event: _Component, start: date) -> int:
        """Days in the event: DTEND is exclusive; no DTEND and no DURATION means one day."""
        if "DTEND" in event.props and "DURATION" in event.props:
            raise self.error(event.props["DURATION"][0][0], "the event has both DTEND and "
                             "DURATION", "keep one of them")
        if "DURATION" in event.props:
            number, _, value = event.props["DURATION"][0]
            return self._duration_days(number, value)
        if "DTEND" not in event.props:
            return 1
        end = self._date_of(event, "DTEND")
        if end <= start:
            raise self.error(event.props["DTEND"][0][0], f"DTEND {end:%Y%m%d} is not after "
                             f"DTSTART {start:%Y%m%d}", "DTEND is the day after the last "
                             "holiday, e.g. DTSTART 20261224 and DTEND 20261227 for three days")
        return (end - start).days

    def _duration_days(self, number: int, value: str) -> int:
        match = re.fullmatch(r"P(\d+)([DW])", value.strip().upper())
        if not match or int(match[1]) == 0:
            raise self.error(number, f"DURATION {value.strip()!r} is not a whole number of days",
                             "write e.g. DURATION:P1D or DURATION:P2W, or use DTEND")
        return int(match[1]) * (7 if match[2] == "W" else 1)

    def _yearly(self, event: _Component, start: date, days: int) -> YearlyHoliday:
        number, _, value = event.props["RRULE"][0]
        rule = _rrule_parts(value, number, self)
        _check_rrule(rule, start, number, self)
        until = rule.get("UNTIL")
        return YearlyHoliday(
            first=start, days=days, interval=_positive(rule, "INTERVAL", number, self) or 1,
            count=_positive(rule, "COUNT", number, self),
            until=_ics_date(until[:8], number, "UNTIL", self) if until else None,
            exceptions=self._exdates(event))

    def _exdates(self, event: _Component) -> frozenset[date]:
        return frozenset(_ics_date(item.strip()[:8], number, "EXDATE", self)
                         for number, _, value in event.props.get("EXDATE", [])
                         for item in value.split(","))


def _first_value(component: _Component, name: str) -> str:
    values = component.props.get(name)
    return values[0][2].strip() if values else ""


def _property(line: str, number: int, parser: _IcsParser) -> tuple[str, dict[str, str], str]:
    """NAME;PARAM=value;...:VALUE, with quoted parameter values allowed to hold ; and :."""
    colon = _outside_quotes(line, ":")
    if not colon:
        raise parser.error(number, f"{line[:40]!r} is not an iCalendar property",
                           "write NAME:value, e.g. DTSTART;VALUE=DATE:20261225")
    name, *params = _split_outside_quotes(line[:colon[0]], ";")
    parsed: dict[str, str] = {}
    for param in params:
        key, sep, value = param.partition("=")
        if not sep or not key:
            raise parser.error(number, f"parameter {param!r} has no value",
                               "write KEY=value, e.g. VALUE=DATE")
        parsed[key.strip().upper()] = value.strip('"')
    return name.strip().upper(), parsed, line[colon[0] + 1:]


def _outside_quotes(text: str, separator: str) -> list[int]:
    """Positions of `separator` not inside double quotes."""
    found, quoted = [], False
    for i, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            found.append(i)
    return found


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    bounds = [-1, *_outside_quotes(text, separator), len(text)]
    return [text[a + 1:b] for a, b in pairwise(bounds)]


_TIMED = re.compile(r"^\d{8}T\d{6}Z?$")


def _ics_date(value: str, number: int, what: str, parser: _IcsParser) -> date:
    if _TIMED.match(value):
        raise parser.error(number, f"{what} {value} has a time of day; only all-day events "
                           "can be holidays", f"write {what};VALUE=DATE:{value[:8]}, or "
                           "remove the event")
    try:
        if not re.fullmatch(r"\d{8}", value):
            raise ValueError
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise parser.error(number, f"{what} {value!r} is not a date",
                           "write the date as YYYYMMDD, e.g. 20261225") from None


_RRULE_KEYS = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYMONTH", "BYMONTHDAY", "WKST"}
_RRULE_FIX = "only fixed-date yearly rules are understood (RRULE:FREQ=YEARLY); list movable " \
             "holidays such as Easter as single dates"


def _rrule_parts(value: str, number: int, parser: _IcsParser) -> dict[str, str]:
    rule: dict[str, str] = {}
    for part in value.strip().upper().split(";"):
        key, sep, item = part.partition("=")
        if not sep or not item:
            raise parser.error(number, f"RRULE part {part!r} is not KEY=value",
                               "write e.g. RRULE:FREQ=YEARLY")
        if key not in _RRULE_KEYS:
            raise parser.error(number, f"RRULE {key} is not supported", _RRULE_FIX)
        rule[key] = item
    return rule


def _check_rrule(rule: dict[str, str], start: date, number: int, parser: _IcsParser) -> None:
    if rule.get("FREQ") != "YEARLY":
        raise parser.error(number, f"RRULE FREQ={rule.get('FREQ', '(none)')} is not supported",
                           _RRULE_FIX)
    # BYMONTH/BYMONTHDAY may only repeat what DTSTART says; anything else moves the date.
    for key, wanted in (("BYMONTH", start.month), ("BYMONTHDAY", start.day)):
        if key in rule and rule[key] != str(wanted):
            raise parser.error(number, f"RRULE {key}={rule[key]} differs from DTSTART "
                               f"{start:%Y%m%d}", _RRULE_FIX)
    if "COUNT" in rule and "UNTIL" in rule:
        raise parser.error(number, "RRULE has both COUNT and UNTIL", "keep one of them")


def _positive(rule: dict[str, str], key: str, number: int, parser: _IcsParser) -> int | None:
    if key not in rule:
        return None
    if not rule[key].isdigit() or int(rule[key]) == 0:
        raise parser.error(number, f"RRULE {key}={rule[key]} is not a positive number",
                           f"write e.g. {key}=1")
    return int(rule[key])
