"""`run.py simulate`: the forecast of a new ticket's timers, on the real calendars."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def simulate(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert main(["simulate", "--config", str(ROOT), *args]) == 0
    return capsys.readouterr().out.splitlines()


def test_christmas_eve_waits_for_the_next_working_day(capsys: pytest.CaptureFixture[str]) -> None:
    lines = simulate(capsys, "--priority", "P2", "--at", "2026-12-24 16:30")
    # 24-26 Dec are holidays and 27 Dec a Sunday: the 15 business minutes run Mon 08:00-08:15.
    assert any(line.startswith("Mon 2026-12-28 08:11 CET  triage") and "SLA warning" in line
               for line in lines), lines
    assert ("Mon 2026-12-28 08:15 CET  triage               deadline: escalate, moves to tier1 "
            "(not triaged within 15 business minutes)") in lines, lines


def test_outage_goes_straight_to_tier2_and_tier3_uses_office_hours(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = simulate(capsys, "--at", "2026-11-27 10:00",
                     "--subject", "VPN down for the whole sales team")
    assert "opened as P1, triage rule outage matched; now in tier2" in lines[1]
    expected = [
        "Fri 2026-11-27 10:45 CET  tier2",  # warning at 75% of 1 business hour
        "Fri 2026-11-27 11:00 CET  tier2",  # escalate to tier3
        # tier3 counts on office-hours (lunch 12:30-13:30): 1.5h before lunch, 1.7h after
        "Fri 2026-11-27 15:12 CET  tier3",
        "Fri 2026-11-27 16:00 CET  tier3",  # Friday closes at 16:00: 4 business hours used up
    ]
    states = [line for line in lines[2:] if "SLA target" not in line]
    assert [line[:31] for line in states[:4]] == expected
    assert "until someone acts" in lines[-1]
    # The whole ticket's P1 targets: first response in 15m, resolution in 4h (default calendar).
    assert "Fri 2026-11-27 10:15 CET  tier2                first response due" in out_of(lines)
    assert "Fri 2026-11-27 14:00 CET  tier2                resolution due" in out_of(lines)


def out_of(lines: list[str]) -> str:
    return "\n".join(lines)


def test_bad_input_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--config", str(ROOT), "--at", "tomorrow"]) == 1
    assert main(["simulate", "--config", str(ROOT), "--priority", "P9"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "Traceback" not in "".join(err)
