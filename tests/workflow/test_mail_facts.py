"""What the engine tells mail about the workflow: the calendar that governs the ticket's state
(mail shows times in its zone) and whom a paused clock waits on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon.config.yamlsource import load_yaml
from daemon.workflow.engine import Engine, VendorClock
from daemon.workflow.facts import CommandIssued, TicketFacts, TimerFired
from daemon.workflow.model import Workflow

ROOT = Path(__file__).resolve().parents[2]
WF = Workflow.model_validate(load_yaml(ROOT / "workflows/it-support.yaml").data)
ENGINE = Engine(WF, vendors={"vpnco": VendorClock(timedelta(days=1), "24x7")})
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def ticket(state: str, **changes: Any) -> TicketFacts:
    return TicketFacts(**{"ref": "TD-9", "state": state, "priority": "P3",
                          "team": WF.states[state].team, "requester": "pat@example.com",
                          "subject": "VPN", "created_at": T0, "state_entered_at": T0,
                          **changes})


@pytest.mark.parametrize("state, vendor, calendar, waiting_on", [
    ("tier1", None, "default", None),
    ("tier3", None, "office-hours", None),  # its timeout names the calendar
    ("vendor", "vpnco", "24x7", "vendor"),  # the vendor's clock, on the vendor's calendar
    ("vendor", None, "default", "vendor"),  # no vendor named: the workflow's own timeout
    ("waiting_on_customer", None, "default", "requester"),
    ("closed", None, "default", None),  # no timeout: the default calendar
])
def test_mail_facts(state: str, vendor: str | None, calendar: str,
                    waiting_on: str | None) -> None:
    facts = ENGINE.mail_facts(ticket(state, vendor=vendor))
    assert facts == {"calendar": calendar, "waiting_on": waiting_on, "state_entered_at": T0}


def test_a_reminder_in_the_vendor_state_carries_them() -> None:
    [mail] = ENGINE.handle(ticket("vendor", vendor="vpnco"), TimerFired("remind", "vendor", 1),
                           T0 + timedelta(hours=8)).mails
    assert (mail.template, mail.context["calendar"], mail.context["waiting_on"]) == (
        "reminder", "24x7", "vendor")


def test_a_move_carries_the_new_states_facts() -> None:
    # As technician.py hands #vendor to the engine: the ticket already names its vendor.
    decision = ENGINE.handle(ticket("tier3", vendor="vpnco"),
                             CommandIssued("vendor", "robin@example.com", "tier3", "patched?"), T0)
    assert decision.mails and all(
        (m.context["calendar"], m.context["waiting_on"]) == ("24x7", "vendor")
        for m in decision.mails)


def test_a_warnings_mail_reason_leaves_the_utc_deadline_to_the_log() -> None:
    decision = ENGINE.handle(ticket("tier1"), TimerFired("warn", "tier1"), T0)
    assert decision.events[0].reason.endswith(" UTC")  # the timeline keeps UTC
    [mail] = decision.mails
    assert mail.context["reason"] == "warning for tier1"  # the mail shows deadline_text
