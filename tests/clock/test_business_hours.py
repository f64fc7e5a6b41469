"""Business time from tables: days, lunch, nights, weekends, holidays, overnight shifts, and the
DST days of Europe/Berlin and America/New_York. Every expectation is reasoned in UTC in its
comment: Berlin is UTC+1 (CET) until 2026-03-29 01:00 UTC and from 2026-10-25 01:00 UTC, UTC+2
(CEST) between; New York is UTC-5 (EST) until 2026-03-08 07:00 UTC and from 2026-11-01 06:00
UTC, UTC-4 (EDT) between."""

from __future__ import annotations

import random
import time as clock
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from daemon.clock.business_hours import add_business_time, business_time_between, calendar_clock
from daemon.config.calendars import WEEKDAYS, Calendar
from daemon.config.holidays import IcsError, parse_ics_holidays, read_ics_holidays
from daemon.config.settings import load_settings
from daemon.config.yamlsource import load_yaml
from daemon.workflow.engine import Engine
from daemon.workflow.model import Workflow
from daemon.workflow.timers import Timers

ROOT = Path(__file__).resolve().parents[2]
BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
H, M = timedelta(hours=1), timedelta(minutes=1)


def calendar(zone: str, hours: dict[str, str], holidays: tuple[str, ...] = ()) -> Calendar:
    return Calendar.model_validate({"timezone": zone, "hours": hours, "holidays": holidays})


def every_day(hours: str) -> dict[str, str]:
    return dict.fromkeys(WEEKDAYS, hours)


def weekdays(hours: str, friday: str | None = None) -> dict[str, str]:
    return {**dict.fromkeys(WEEKDAYS[:5], hours), "fri": friday or hours}


def be(y: int, mo: int, d: int, h: int = 0, mi: int = 0, *, fold: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=BERLIN, fold=fold)


def ny(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=NEW_YORK)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


# Monday 2026-03-02 starts a plain week; Good Friday 2026-04-03, Christmas Thu 24 / Fri 25.
OFFICE = calendar("Europe/Berlin", weekdays("09:00-12:30, 13:30-17:00"),
                  ("2026-04-03", "2026-12-24", "2026-12-25"))
# Night shifts Monday to Friday evening; Wednesday 2026-03-11 is a holiday.
NIGHT = calendar("Europe/Berlin", weekdays("22:00-06:00"), ("2026-03-11",))
UTC_24 = calendar("UTC", every_day("00:00-24:00"))
BERLIN_24 = calendar("Europe/Berlin", every_day("00:00-24:00"))
NY_24 = calendar("America/New_York", every_day("00:00-24:00"))
NY_OFFICE = calendar("America/New_York", weekdays("08:00-18:00"), ("2026-11-26",))
NY_SATURDAY_NIGHT = calendar("America/New_York", {"sat": "22:00-06:00"})
# Sunday spans with ends on the DST edge: 02:30 does not exist on 2026-03-29, and happens twice
# on 2026-10-25 (first at 00:30 UTC in CEST, again at 01:30 UTC in CET).
EDGE = calendar("Europe/Berlin", {"sun": "01:00-02:30, 02:30-05:00"})
IN_THE_GAP = calendar("Europe/Berlin", {"sun": "02:10-02:50"})
TO_THE_GAP = calendar("Europe/Berlin", {"sun": "00:00-02:30"})

ADD: list[Any] = [
    # --- office hours, Berlin in CET (UTC+1)
    pytest.param(OFFICE, be(2026, 3, 2, 10), 2 * H, utc(2026, 3, 2, 11), id="within-a-day"),
    # 12:00 + 30m to lunch, lunch 12:30-13:30, 30m more: 14:00 CET
    pytest.param(OFFICE, be(2026, 3, 2, 12), H, utc(2026, 3, 2, 13), id="across-lunch"),
    pytest.param(OFFICE, be(2026, 3, 2, 12, 45), 30 * M, utc(2026, 3, 2, 13), id="starts-at-lunch"),
    pytest.param(OFFICE, be(2026, 3, 2, 9), 3 * H + 30 * M, utc(2026, 3, 2, 11, 30),
                 id="ends-exactly-at-lunch"),
    # 16:00 + 1h to closing, Tuesday 09:00 + 1h: 10:00 CET
    pytest.param(OFFICE, be(2026, 3, 2, 16), 2 * H, utc(2026, 3, 3, 9), id="across-a-night"),
    # Friday 16:30 + 30m, Monday 09:00 + 30m: 09:30 CET
    pytest.param(OFFICE, be(2026, 3, 6, 16, 30), H, utc(2026, 3, 9, 8, 30),
                 id="across-a-weekend"),
    pytest.param(OFFICE, be(2026, 3, 2, 7), H, utc(2026, 3, 2, 9), id="before-opening"),
    pytest.param(OFFICE, be(2026, 3, 2, 18), H, utc(2026, 3, 3, 9), id="after-closing"),
    pytest.param(OFFICE, be(2026, 3, 7, 11), H, utc(2026, 3, 9, 9), id="on-a-weekend"),
    pytest.param(OFFICE, be(2026, 3, 2, 9), timedelta(0), utc(2026, 3, 2, 8),
                 id="zero-at-opening"),
    pytest.param(OFFICE, be(2026, 3, 2, 9), H, utc(2026, 3, 2, 9), id="exactly-at-opening"),
    # Work that ends at 17:00 ends then, not at the next opening.
    pytest.param(OFFICE, be(2026, 3, 2, 13, 30), 3 * H + 30 * M, utc(2026, 3, 2, 16),
                 id="ends-exactly-at-closing"),
    pytest.param(OFFICE, be(2026, 3, 2, 17), timedelta(0), utc(2026, 3, 3, 8),
                 id="zero-at-closing-is-next-opening"),
    pytest.param(OFFICE, be(2026, 3, 2, 17), H, utc(2026, 3, 3, 9), id="exactly-at-closing"),
    pytest.param(OFFICE, be(2026, 3, 2, 9), 35 * H, utc(2026, 3, 6, 16), id="a-whole-week"),
    # Good Friday, CEST (UTC+2): the count starts Monday 09:00 CEST, ends 10:00 CEST.
    pytest.param(OFFICE, be(2026, 4, 3, 10), H, utc(2026, 4, 6, 8), id="on-a-holiday"),
    pytest.param(OFFICE, be(2026, 4, 2, 16), 2 * H, utc(2026, 4, 6, 8), id="across-a-holiday"),
    # Wednesday 23rd 16:00 + 1h, Christmas Thu/Fri and the weekend, Monday 28th 10:00 CET
    pytest.param(OFFICE, be(2026, 12, 23, 16), 2 * H, utc(2026, 12, 28, 9),
                 id="across-christmas"),
    # --- overnight shifts 22:00-06:00, Berlin CET
    pytest.param(NIGHT, be(2026, 3, 3, 2), 2 * H, utc(2026, 3, 3, 3),
                 id="night-inside-yesterdays-shift"),
    pytest.param(NIGHT, be(2026, 3, 2, 23), 2 * H, utc(2026, 3, 3, 0), id="night-across-midnight"),
    # Tuesday 05:00 + 1h to 06:00, then the Tuesday shift 22:00 + 1h: 23:00 CET
    pytest.param(NIGHT, be(2026, 3, 3, 5), 2 * H, utc(2026, 3, 3, 22), id="night-shift-to-shift"),
    pytest.param(NIGHT, be(2026, 3, 6, 22), 8 * H, utc(2026, 3, 7, 5),
                 id="friday-night-into-saturday"),
    # Friday's shift ends Saturday 06:00; the weekend is closed; Monday 22:00 + 1h
    pytest.param(NIGHT, be(2026, 3, 6, 22), 9 * H, utc(2026, 3, 9, 22),
                 id="friday-night-then-the-weekend"),
    pytest.param(NIGHT, be(2026, 3, 8, 23), H, utc(2026, 3, 9, 22), id="sunday-night-is-closed"),
    # The shift starting on holiday Wednesday does not run; Thursday 22:00 + 1h
    pytest.param(NIGHT, be(2026, 3, 11, 12), H, utc(2026, 3, 12, 22),
                 id="holiday-closes-its-shift"),
    # Tuesday's shift runs into holiday Wednesday until 06:00
    pytest.param(NIGHT, be(2026, 3, 10, 23), 6 * H, utc(2026, 3, 11, 4),
                 id="eves-shift-runs-into-holiday"),
    pytest.param(NIGHT, be(2026, 3, 11, 3), 2 * H, utc(2026, 3, 11, 4),
                 id="holiday-morning-inside-eves-shift"),
    # --- every hour counts
    pytest.param(UTC_24, utc(2026, 3, 7, 10), 50 * H, utc(2026, 3, 9, 12), id="24x7-utc"),
    # --- the four DST days on 24x7 calendars: 24 business hours are 24 real hours
    # 12:00 CET = 11:00 UTC; +24h = 11:00 UTC on the 29th = 13:00 CEST
    pytest.param(BERLIN_24, be(2026, 3, 28, 12), 24 * H, utc(2026, 3, 29, 11),
                 id="berlin-spring-24x7"),
    # 12:00 CEST = 10:00 UTC; +24h = 10:00 UTC on the 25th = 11:00 CET
    pytest.param(BERLIN_24, be(2026, 10, 24, 12), 24 * H, utc(2026, 10, 25, 10),
                 id="berlin-autumn-24x7"),
    # 12:00 EST = 17:00 UTC; +24h = 17:00 UTC on the 8th = 13:00 EDT
    pytest.param(NY_24, ny(2026, 3, 7, 12), 24 * H, utc(2026, 3, 8, 17), id="ny-spring-24x7"),
    # 12:00 EDT = 16:00 UTC; +24h = 16:00 UTC on Nov 1st = 11:00 EST
    pytest.param(NY_24, ny(2026, 10, 31, 12), 24 * H, utc(2026, 11, 1, 16), id="ny-autumn-24x7"),
    # --- office hours are wall-clock hours on either side of a change
    # Friday 16:00 CET + 1h; Monday 30th 09:00 CEST (07:00 UTC) + 1h
    pytest.param(OFFICE, be(2026, 3, 27, 16), 2 * H, utc(2026, 3, 30, 8),
                 id="berlin-spring-office"),
    # Friday 16:00 CEST + 1h; Monday 26th 09:00 CET (08:00 UTC) + 1h
    pytest.param(OFFICE, be(2026, 10, 23, 16), 2 * H, utc(2026, 10, 26, 9),
                 id="berlin-autumn-office"),
    # Friday 17:00 EST + 1h; Monday 9th 08:00 EDT (12:00 UTC) + 1h
    pytest.param(NY_OFFICE, ny(2026, 3, 6, 17), 2 * H, utc(2026, 3, 9, 13), id="ny-spring-office"),
    # Friday 17:00 EDT + 1h; Monday Nov 2nd 08:00 EST (13:00 UTC) + 1h
    pytest.param(NY_OFFICE, ny(2026, 10, 30, 17), 2 * H, utc(2026, 11, 2, 14),
                 id="ny-autumn-office"),
    # --- an overnight shift across a change: Saturday 22:00 to Sunday 06:00 local
    # 22:00 EST = 03:00 UTC, 06:00 EDT = 10:00 UTC: a 7-hour night
    pytest.param(NY_SATURDAY_NIGHT, ny(2026, 3, 7, 22), 7 * H, utc(2026, 3, 8, 10),
                 id="ny-spring-night-is-7h"),
    # One more hour: next Saturday 22:00 EDT (02:00 UTC on the 15th) + 1h
    pytest.param(NY_SATURDAY_NIGHT, ny(2026, 3, 7, 22), 8 * H, utc(2026, 3, 15, 3),
                 id="ny-spring-night-then-next-week"),
    # 22:00 EDT = 02:00 UTC, 06:00 EST = 11:00 UTC: a 9-hour night
    pytest.param(NY_SATURDAY_NIGHT, ny(2026, 10, 31, 22), 9 * H, utc(2026, 11, 1, 11),
                 id="ny-autumn-night-is-9h"),
    # --- span ends inside the gap and the repeat (see EDGE)
    # 01:00 CET = 00:00 UTC; 02:30 is reached when the clock jumps at 01:00 UTC; 30m more
    pytest.param(EDGE, be(2026, 3, 29, 0), 90 * M, utc(2026, 3, 29, 1, 30),
                 id="berlin-spring-span-ends-in-gap"),
    # 01:00 CEST = 23:00 UTC; first 02:30 at 00:30 UTC; the next span runs on: 01:00 UTC
    pytest.param(EDGE, be(2026, 10, 25, 0), 2 * H, utc(2026, 10, 25, 1),
                 id="berlin-autumn-span-ends-in-repeat"),
    # --- inputs in the gap and the repeat are read as Python reads them (PEP 495 fold)
    # 02:30 fold=0 in the gap uses the earlier offset (+1): 01:30 UTC
    pytest.param(BERLIN_24, be(2026, 3, 29, 2, 30), H, utc(2026, 3, 29, 2, 30),
                 id="input-in-gap-fold0"),
    pytest.param(BERLIN_24, be(2026, 3, 29, 2, 30, fold=1), H, utc(2026, 3, 29, 1, 30),
                 id="input-in-gap-fold1"),
    # 02:30 fold=0 is the first (CEST) 02:30 = 00:30 UTC; fold=1 the second (CET) = 01:30 UTC
    pytest.param(BERLIN_24, be(2026, 10, 25, 2, 30), H, utc(2026, 10, 25, 1, 30),
                 id="input-in-repeat-fold0"),
    pytest.param(BERLIN_24, be(2026, 10, 25, 2, 30, fold=1), H, utc(2026, 10, 25, 2, 30),
                 id="input-in-repeat-fold1"),
]


@pytest.mark.parametrize(("cal", "start", "duration", "expected"), ADD)
def test_add_business_time(cal: Calendar, start: datetime, duration: timedelta,
                           expected: datetime) -> None:
    result = add_business_time(start, duration, cal)
    assert result == expected
    assert result.tzinfo is UTC


BETWEEN: list[Any] = [
    pytest.param(OFFICE, be(2026, 3, 2, 10), be(2026, 3, 2, 11), H, id="within-a-day"),
    pytest.param(OFFICE, be(2026, 3, 2, 12), be(2026, 3, 2, 14), H, id="across-lunch"),
    pytest.param(OFFICE, be(2026, 3, 2, 16), be(2026, 3, 3, 10), 2 * H, id="across-a-night"),
    pytest.param(OFFICE, be(2026, 3, 6, 16, 30), be(2026, 3, 9, 9, 30), H, id="across-a-weekend"),
    pytest.param(OFFICE, be(2026, 3, 2), be(2026, 3, 9), 35 * H, id="a-whole-week"),
    pytest.param(OFFICE, be(2026, 3, 2, 18), be(2026, 3, 3, 8), timedelta(0), id="closed-night"),
    pytest.param(OFFICE, be(2026, 3, 2, 11), be(2026, 3, 2, 10), timedelta(0), id="b-before-a"),
    pytest.param(OFFICE, be(2026, 3, 2, 11), be(2026, 3, 2, 11), timedelta(0), id="b-equals-a"),
    # Thursday 7h, Good Friday and the weekend closed, Monday 7h
    pytest.param(OFFICE, be(2026, 4, 2), be(2026, 4, 7), 14 * H, id="across-a-holiday"),
    # Friday 27th (CET) 7h, Monday 30th (CEST) 7h: wall-clock days on both sides
    pytest.param(OFFICE, be(2026, 3, 27), be(2026, 3, 31), 14 * H, id="berlin-spring-office"),
    pytest.param(OFFICE, be(2026, 10, 23), be(2026, 10, 27), 14 * H, id="berlin-autumn-office"),
    pytest.param(NY_OFFICE, ny(2026, 3, 6), ny(2026, 3, 10), 20 * H, id="ny-spring-office"),
    pytest.param(NY_OFFICE, ny(2026, 10, 30), ny(2026, 11, 3), 20 * H, id="ny-autumn-office"),
    pytest.param(NIGHT, be(2026, 3, 2, 20), be(2026, 3, 3, 8), 8 * H, id="one-night-shift"),
    pytest.param(NIGHT, be(2026, 3, 6, 12), be(2026, 3, 9, 12), 8 * H, id="night-and-weekend"),
    # Tuesday's shift runs 8h into holiday Wednesday; Wednesday's own shift does not run
    pytest.param(NIGHT, be(2026, 3, 10, 12), be(2026, 3, 12, 12), 8 * H, id="night-holiday"),
    # Local midnight to local midnight on the four DST days
    pytest.param(BERLIN_24, be(2026, 3, 29), be(2026, 3, 30), 23 * H, id="berlin-spring-24x7"),
    pytest.param(BERLIN_24, be(2026, 10, 25), be(2026, 10, 26), 25 * H, id="berlin-autumn-24x7"),
    pytest.param(NY_24, ny(2026, 3, 8), ny(2026, 3, 9), 23 * H, id="ny-spring-24x7"),
    pytest.param(NY_24, ny(2026, 11, 1), ny(2026, 11, 2), 25 * H, id="ny-autumn-24x7"),
    pytest.param(NY_SATURDAY_NIGHT, ny(2026, 3, 7, 12), ny(2026, 3, 8, 12), 7 * H,
                 id="ny-spring-night"),
    pytest.param(NY_SATURDAY_NIGHT, ny(2026, 10, 31, 12), ny(2026, 11, 1, 12), 9 * H,
                 id="ny-autumn-night"),
    # EDGE on a plain Sunday: 1.5h + 2.5h
    pytest.param(EDGE, be(2026, 3, 22), be(2026, 3, 23), 4 * H, id="edge-plain-sunday"),
    # [00:00, 01:00) UTC until the jump, then [01:00, 03:00) UTC (03:00-05:00 CEST)
    pytest.param(EDGE, be(2026, 3, 29), be(2026, 3, 30), 3 * H, id="edge-berlin-spring"),
    # [23:00, 00:30) UTC to the first 02:30, then [00:30, 04:00) UTC through the repeat
    pytest.param(EDGE, be(2026, 10, 25), be(2026, 10, 26), 5 * H, id="edge-berlin-autumn"),
    pytest.param(IN_THE_GAP, be(2026, 3, 29), be(2026, 3, 30), timedelta(0),
                 id="span-inside-the-gap-is-empty"),
    # Opens at the first 02:10 (00:10 UTC), closes at the first 02:50 (00:50 UTC)
    pytest.param(IN_THE_GAP, be(2026, 10, 25), be(2026, 10, 26), 40 * M,
                 id="span-inside-the-repeat-counts-once"),
    # 00:00 CET = 23:00 UTC, closes at the jump (01:00 UTC): 2h
    pytest.param(TO_THE_GAP, be(2026, 3, 29), be(2026, 3, 30), 2 * H, id="span-to-the-gap"),
    # 00:00 CEST = 22:00 UTC, closes at the first 02:30 (00:30 UTC): 2.5h
    pytest.param(TO_THE_GAP, be(2026, 10, 25), be(2026, 10, 26), 150 * M,
                 id="span-to-the-repeat"),
]


@pytest.mark.parametrize(("cal", "a", "b", "expected"), BETWEEN)
def test_business_time_between(cal: Calendar, a: datetime, b: datetime,
                               expected: timedelta) -> None:
    assert business_time_between(a, b, cal) == expected


# ------------------------------------------------------------------ the two are inverses

@pytest.mark.parametrize("cal", [OFFICE, NY_OFFICE, NIGHT, EDGE, NY_SATURDAY_NIGHT],
                         ids=["berlin-office", "ny-office", "berlin-night", "berlin-edge",
                              "ny-saturday-night"])
def test_between_is_the_inverse_of_add(cal: Calendar) -> None:
    rng = random.Random(20260329)
    year = utc(2026, 1, 1)
    for _ in range(300):
        start = year + timedelta(seconds=rng.randrange(365 * 86400))
        duration = timedelta(minutes=rng.randrange(0, 120 * 60))
        end = add_business_time(start, duration, cal)
        assert end >= start
        assert business_time_between(start, end, cal) == duration, (start, duration)
        # No working time is skipped: a minute less never ends later.
        if duration >= M:
            assert add_business_time(start, duration - M, cal) < end


def test_add_undoes_between() -> None:
    """From a, adding the working time up to b lands on b, or on the last closing before it."""
    rng = random.Random(7)
    for _ in range(300):
        a = utc(2026, 1, 1) + timedelta(seconds=rng.randrange(365 * 86400))
        b = a + timedelta(seconds=rng.randrange(20 * 86400))
        landed = add_business_time(a, business_time_between(a, b, OFFICE), OFFICE)
        assert landed <= b or business_time_between(a, b, OFFICE) == timedelta(0)
        assert business_time_between(min(landed, b), b, OFFICE) == timedelta(0)


# ------------------------------------------------------------------ inputs and wiring

@pytest.mark.parametrize("call", [
    pytest.param(lambda: add_business_time(datetime(2026, 3, 2, 9), H, OFFICE), id="add"),
    pytest.param(lambda: business_time_between(datetime(2026, 3, 2), utc(2026, 3, 3), OFFICE),
                 id="between-a"),
    pytest.param(lambda: business_time_between(utc(2026, 3, 2), datetime(2026, 3, 3), OFFICE),
                 id="between-b"),
    pytest.param(lambda: calendar_clock({"default": OFFICE})(datetime(2026, 3, 2), H, "wall",
                                                            "default"), id="clock-wall"),
])
def test_naive_datetimes_are_refused(call: Any) -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        call()


def test_negative_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        add_business_time(utc(2026, 3, 2), -H, OFFICE)


def test_a_calendar_closed_for_years_gives_up() -> None:
    closed = calendar("UTC", {"mon": "09:00-17:00"},
                      tuple(str(date(2026, 1, 5) + timedelta(weeks=w)) for w in range(200)))
    with pytest.raises(ValueError, match="no working time"):
        add_business_time(utc(2026, 1, 1), H, closed)


CLOCK = calendar_clock({"default": OFFICE, "24x7": UTC_24})


@pytest.mark.parametrize(("start", "duration", "kind", "name", "expected"), [
    # Wall time is real elapsed time: 24h after 12:00 CET on the 28th is 13:00 CEST.
    pytest.param(be(2026, 3, 28, 12), 24 * H, "wall", "default", utc(2026, 3, 29, 11),
                 id="wall-across-dst"),
    pytest.param(be(2026, 3, 7, 11), H, "business", "default", utc(2026, 3, 9, 9),
                 id="business-default"),
    pytest.param(utc(2026, 3, 7, 11), H, "business", "24x7", utc(2026, 3, 7, 12),
                 id="business-named"),
])
def test_calendar_clock(start: datetime, duration: timedelta, kind: str, name: str,
                        expected: datetime) -> None:
    assert CLOCK(start, duration, kind, name) == expected


@pytest.mark.parametrize(("kind", "name", "words"), [
    ("business", "office", "no calendar named 'office'; known calendars: 24x7, default"),
    ("sundial", "default", "unknown clock 'sundial'"),
])
def test_calendar_clock_refuses(kind: str, name: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        CLOCK(utc(2026, 3, 2), H, kind, name)


def test_calendar_clock_fits_the_engine() -> None:
    settings = load_settings(ROOT / "config", {})
    add_time = calendar_clock(settings.calendars)
    workflow = Workflow.model_validate(load_yaml(ROOT / "workflows/it-support.yaml").data)
    Engine(workflow, add_time=add_time)
    # tier1 P3: 4 business hours on `default` (Fri closes 17:00 Berlin): Friday 17:00 CET
    # is closing time, so Monday 08:00-12:00 CET = 11:00 UTC.
    deadline = Timers(workflow, add_time).deadline("tier1", "P3", be(2026, 3, 6, 17))
    assert deadline == utc(2026, 3, 9, 11)


def test_thirty_business_days_are_quick() -> None:
    """A guard against minute-by-minute loops, not a benchmark: a fresh calendar (cold
    cache) and 30 working days of 7 hours."""
    timings = []
    for _ in range(3):
        fresh = calendar("Europe/Berlin", weekdays("09:00-12:30, 13:30-17:00"))
        began = clock.perf_counter()
        end = add_business_time(be(2026, 3, 2, 9), 30 * 7 * H, fresh)
        timings.append(clock.perf_counter() - began)
    assert end == utc(2026, 4, 10, 15)  # Friday of the sixth week, 17:00 CEST
    assert min(timings) < 0.005, timings


# ------------------------------------------------------------------ iCalendar holidays

def ics(*events: str) -> str:
    body = "".join(f"BEGIN:VEVENT\r\n{e}END:VEVENT\r\n" for e in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{body}END:VCALENDAR\r\n"


def days(text: str, *candidates: str) -> set[str]:
    holidays = parse_ics_holidays(text, "h.ics")
    return {c for c in candidates if holidays.covers(date.fromisoformat(c))}


@pytest.mark.parametrize(("event", "candidates", "closed"), [
    pytest.param("DTSTART;VALUE=DATE:20261225\r\n", ("2026-12-24", "2026-12-25", "2026-12-26"),
                 {"2026-12-25"}, id="one-day-without-dtend"),
    pytest.param("DTSTART;VALUE=DATE:20261224\r\nDTEND;VALUE=DATE:20261227\r\n",
                 ("2026-12-23", "2026-12-24", "2026-12-26", "2026-12-27"),
                 {"2026-12-24", "2026-12-26"}, id="dtend-is-exclusive"),
    pytest.param("DTSTART:20261224\r\nDURATION:P2D\r\n", ("2026-12-24", "2026-12-25",
                 "2026-12-26"), {"2026-12-24", "2026-12-25"}, id="duration"),
    pytest.param("SUMMARY;LANGUAGE=de:Weihnachten\r\nDTSTART;VALUE=DATE:2026\r\n 1225\r\n",
                 ("2026-12-25",), {"2026-12-25"}, id="folded-line"),
    pytest.param('X-NOTE;X-P="a:b;c":note\r\nDTSTART;VALUE=DATE:20261225\r\n', ("2026-12-25",),
                 {"2026-12-25"}, id="quoted-parameter"),
    pytest.param("DTSTART;VALUE=DATE:20261225\r\nBEGIN:VALARM\r\nTRIGGER:-P1D\r\n"
                 "DTSTART:20261201\r\nEND:VALARM\r\n", ("2026-12-01", "2026-12-25"),
                 {"2026-12-25"}, id="nested-component-ignored"),
    pytest.param("DTSTART;VALUE=DATE:20261225\r\nSTATUS:CANCELLED\r\n", ("2026-12-25",),
                 set(), id="cancelled"),
    pytest.param("DTSTART;VALUE=DATE:20201225\r\nRRULE:FREQ=YEARLY\r\n",
                 ("2019-12-25", "2020-12-25", "2031-12-25", "2031-12-24"),
                 {"2020-12-25", "2031-12-25"}, id="yearly"),
    pytest.param("DTSTART;VALUE=DATE:20201224\r\nDTEND;VALUE=DATE:20201226\r\n"
                 "RRULE:FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24\r\n",
                 ("2027-12-24", "2027-12-25", "2027-12-26"), {"2027-12-24", "2027-12-25"},
                 id="yearly-two-days"),
    pytest.param("DTSTART;VALUE=DATE:20261003\r\nRRULE:FREQ=YEARLY;INTERVAL=2\r\n",
                 ("2026-10-03", "2027-10-03", "2028-10-03"), {"2026-10-03", "2028-10-03"},
                 id="yearly-interval"),
    pytest.param("DTSTART;VALUE=DATE:20260501\r\nRRULE:FREQ=YEARLY;COUNT=2\r\n",
                 ("2026-05-01", "2027-05-01", "2028-05-01"), {"2026-05-01", "2027-05-01"},
                 id="yearly-count"),
    pytest.param("DTSTART;VALUE=DATE:20260501\r\nRRULE:FREQ=YEARLY;UNTIL=20270501T000000Z\r\n",
                 ("2026-05-01", "2027-05-01", "2028-05-01"), {"2026-05-01", "2027-05-01"},
                 id="yearly-until"),
    pytest.param("DTSTART;VALUE=DATE:20260501\r\nRRULE:FREQ=YEARLY\r\n"
                 "EXDATE;VALUE=DATE:20270501,20280501\r\n",
                 ("2026-05-01", "2027-05-01", "2028-05-01", "2029-05-01"),
                 {"2026-05-01", "2029-05-01"}, id="yearly-exdate"),
    pytest.param("DTSTART;VALUE=DATE:20240229\r\nRRULE:FREQ=YEARLY;COUNT=2\r\n",
                 ("2024-02-29", "2025-02-28", "2025-03-01", "2028-02-29", "2032-02-29"),
                 {"2024-02-29", "2028-02-29"}, id="yearly-29-february"),
])
def test_ics_holidays(event: str, candidates: tuple[str, ...], closed: set[str]) -> None:
    assert days(ics(event), *candidates) == closed


def test_ics_ignores_timezones_and_bom(tmp_path: Path) -> None:
    text = ("BEGIN:VCALENDAR\nBEGIN:VTIMEZONE\nTZID:Europe/Berlin\nBEGIN:DAYLIGHT\n"
            "DTSTART:19700329T020000\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\nEND:DAYLIGHT\n"
            "END:VTIMEZONE\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20261003\nEND:VEVENT\n"
            "END:VCALENDAR\n\n")
    path = tmp_path / "h.ics"
    path.write_text(text, encoding="utf-8-sig")  # some exporters start with a BOM
    holidays = read_ics_holidays(path)
    assert holidays.covers(date(2026, 10, 3)) and not holidays.covers(date(1970, 3, 29))


def test_holiday_file_closes_days_on_a_calendar(tmp_path: Path) -> None:
    path = tmp_path / "holidays.ics"
    path.write_text(ics("DTSTART;VALUE=DATE:20260302\r\n"), encoding="utf-8")
    cal = Calendar.model_validate({"timezone": "Europe/Berlin",
                                   "hours": weekdays("09:00-17:00"),
                                   "holidays_file": str(path)})
    assert cal.is_holiday(date(2026, 3, 2)) and not cal.is_holiday(date(2026, 3, 3))
    # Monday is a holiday: Tuesday 09:00 CET + 1h
    assert add_business_time(be(2026, 3, 2, 9), H, cal) == utc(2026, 3, 3, 9)


BAD_ICS: list[Any] = [
    pytest.param("VERSION:2.0\r\n", 1, "outside BEGIN:VCALENDAR", id="no-vcalendar"),
    pytest.param("BEGIN:VEVENT\r\nEND:VEVENT\r\n", 1, "outside a VCALENDAR",
                 id="event-outside"),
    pytest.param("", 0, "not an iCalendar file", id="empty"),
    pytest.param(ics("DTSTART;VALUE=DATE:20261225\r\n").replace("END:VCALENDAR\r\n", ""), 1,
                 "BEGIN:VCALENDAR is never closed", id="never-closed"),
    pytest.param(ics("DTSTART;VALUE=DATE:20261225\r\n").replace("END:VEVENT\r\n", ""), 6,
                 "END:VCALENDAR comes while BEGIN:VEVENT from line 4 is still open",
                 id="end-too-early"),
    pytest.param(ics() + "END:VCALENDAR\r\n", 5, "END:VCALENDAR closes nothing",
                 id="end-of-nothing"),
    pytest.param(ics("SUMMARY:x\r\n"), 4, "no DTSTART", id="no-dtstart"),
    pytest.param(ics("DTSTART;TZID=Europe/Berlin:20261224T120000\r\n"), 5, "has a time of day",
                 id="timed-event"),
    pytest.param(ics("DTSTART;VALUE=DATE:20261332\r\n"), 5, "'20261332' is not a date",
                 id="bad-date"),
    pytest.param(ics("DTSTART;VALUE=DATE:20261225\r\nDTEND;VALUE=DATE:20261225\r\n"), 6,
                 "is not after DTSTART", id="dtend-not-after"),
    pytest.param(ics("DTSTART:20261225\r\nDTEND:20261226\r\nDURATION:P1D\r\n"), 7,
                 "both DTEND and DURATION", id="dtend-and-duration"),
    pytest.param(ics("DTSTART:20261225\r\nDURATION:PT12H\r\n"), 6, "not a whole number of days",
                 id="duration-in-hours"),
    pytest.param(ics("DTSTART:20261225\r\nDTSTART:20261226\r\n"), 6, "DTSTART appears twice",
                 id="twice"),
    pytest.param(ics("DTSTART:20261225\r\nRRULE:FREQ=WEEKLY\r\n"), 6, "FREQ=WEEKLY",
                 id="weekly"),
    pytest.param(ics("DTSTART:20261126\r\nRRULE:FREQ=YEARLY;BYDAY=4TH\r\n"), 6,
                 "RRULE BYDAY is not supported", id="movable-feast"),
    pytest.param(ics("DTSTART:20261225\r\nRRULE:FREQ=YEARLY;BYMONTH=11\r\n"), 6,
                 "BYMONTH=11 differs", id="bymonth-elsewhere"),
    pytest.param(ics("DTSTART:20261225\r\nRRULE:FREQ=YEARLY;COUNT=2;UNTIL=20301225\r\n"), 6,
                 "both COUNT and UNTIL", id="count-and-until"),
    pytest.param(ics("DTSTART:20261225\r\nRRULE:FREQ=YEARLY;COUNT=0\r\n"), 6,
                 "COUNT=0 is not a positive number", id="count-zero"),
    pytest.param(ics("DTSTART:20261225\r\nRRULE:FREQ\r\n"), 6, "not KEY=value",
                 id="rrule-part"),
    pytest.param(ics("DTSTART:20261225\r\nRDATE;VALUE=DATE:20261226\r\n"), 6,
                 "RDATE is not supported", id="rdate"),
    pytest.param(ics("just words\r\n"), 5, "is not an iCalendar property", id="no-colon"),
    pytest.param(ics("DTSTART;VALUE:20261225\r\n"), 5, "parameter 'VALUE' has no value",
                 id="parameter"),
]


@pytest.mark.parametrize(("text", "line", "words"), BAD_ICS)
def test_ics_errors(text: str, line: int, words: str) -> None:
    with pytest.raises(IcsError) as caught:
        parse_ics_holidays(text, "cfg/holidays.ics")
    assert caught.value.line == line
    assert words in str(caught.value)
    where = f"cfg/holidays.ics:{line}: " if line else "cfg/holidays.ics: "
    assert str(caught.value).startswith(where)


def test_missing_ics_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(IcsError, match="no-such.ics: cannot read the holidays file"):
        read_ics_holidays(tmp_path / "no-such.ics")
