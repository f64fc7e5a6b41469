"""The date-shifted runs of `.ci/run` really move the clock of the test processes: of pytest
and of every Python process the tests start, by one offset for all. Without TIMESHIFT_TO
there is nothing to check (the plain run)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

AT = os.environ.get("TIMESHIFT_TO")
pytestmark = pytest.mark.skipif(not AT, reason="only in the date-shifted runs (.ci/run)")


def _moment() -> datetime:
    assert AT is not None
    moment = datetime.fromisoformat(AT)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _shifted(now: datetime) -> bool:
    # The suite takes minutes, not a day: the clock must be just after the moment.
    return _moment() <= now < _moment() + timedelta(days=1)


def test_this_process_runs_at_the_shifted_date() -> None:
    assert _shifted(datetime.now(UTC))


def test_processes_the_tests_start_run_at_it_too_on_the_same_clock() -> None:
    before = datetime.now(UTC)
    out = subprocess.run(
        [sys.executable, "-c", "from datetime import datetime, UTC; "
                               "print(datetime.now(UTC).isoformat())"],
        capture_output=True, text=True, check=True).stdout
    child = datetime.fromisoformat(out.strip())
    assert _shifted(child)
    # Not each at the moment anew: a child started minutes into the suite is minutes on
    # (within a second: time-machine's tick and the offset are read microseconds apart).
    slack = timedelta(seconds=1)
    assert before - slack <= child <= datetime.now(UTC) + slack
