"""`run.py demo`: the scripted story through real IMAP and SMTP servers, offline and fast."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from daemon.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_demo_tells_the_story_through_real_mail(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    assert main(["demo", "--config", str(ROOT)]) == 0
    assert time.monotonic() - started < 30
    out = capsys.readouterr().out
    for expected in [
        "TD-1 transition  triage → tier2",  # the triage rule made it P1 for tier 2
        "Tierdesk → dana.sales@example.org: [TD-1] VPN down",  # acknowledgement delivered
        "Tierdesk → tier2@example.com: [TD-1] P1 handed to Tier 2",  # handoff delivered
        "TD-1 warning",  # the clock warned tier 2
        "tier2 → tier3    clock: no response in tier 2 within 1 business hour",
        "Tierdesk → tier3@example.com: [TD-1] P1 handed to Tier 3",
        "mail from dana.sales@example.org (human): Re: [TD-1]",  # the reply threaded
    ]:
        assert expected in out, f"missing {expected!r} in:\n{out}"
    assert "Traceback" not in out and "\033[" not in out  # no colour when not a terminal
