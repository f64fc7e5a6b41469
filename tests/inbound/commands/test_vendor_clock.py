"""The vendor state runs on the vendor's own clock: respond_within from config/teams.yaml on
the vendor's calendar replaces the workflow's `after` while the ticket has a vendor."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.clock.business_hours import calendar_clock
from daemon.site.config import load_config
from daemon.tickets.runtime import Runtime
from daemon.workflow.engine import Engine, VendorClock
from daemon.workflow.facts import CommandIssued, TicketFacts, TimerFired

ROOT = Path(__file__).resolve().parents[3]
CONFIG = load_config(ROOT, {})
WF = CONFIG.workflows["it-support"]
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def tier3(vendor: str | None = None) -> TicketFacts:
    return TicketFacts(ref="TD-9", state="tier3", priority="P3", team="tier3",
                       requester="pat@example.org", subject="VPN", created_at=MONDAY,
                       state_entered_at=MONDAY, vendor=vendor)


def to_vendor(engine: Engine, vendor: str | None) -> dict[str, datetime]:
    decision = engine.handle(tier3(vendor), CommandIssued("vendor", "robin.okafor@example.com",
                                                          "tier3", "is it patched?"), MONDAY)
    assert decision.refusal is None and decision.ticket.state == "vendor"
    return {t.kind: t.due_at for t in decision.timers}


def test_the_vendor_clock_replaces_after() -> None:
    engine = Engine(WF, vendors={"acme": VendorClock(timedelta(hours=6), "default")})
    assert to_vendor(engine, "acme")["expire"] == MONDAY + timedelta(hours=6)


def test_without_a_vendor_the_workflow_after_counts() -> None:
    engine = Engine(WF, vendors={"acme": VendorClock(timedelta(hours=6), "default")})
    assert to_vendor(engine, None)["expire"] == MONDAY + timedelta(hours=24)
    assert to_vendor(engine, "unknown")["expire"] == MONDAY + timedelta(hours=24)


def test_counted_on_the_vendors_calendar() -> None:
    """The shipped vpnco answers within 1d on its 24x7 calendar: a weekend counts."""
    runtime = Runtime.build(CONFIG)
    friday = MONDAY + timedelta(days=4, hours=6)  # Friday 15:00 UTC
    decision = runtime.engines["it-support"].handle(
        replace(tier3("vpnco"), state_entered_at=friday),
        CommandIssued("vendor", "robin.okafor@example.com", "tier3"), friday)
    expire = next(t.due_at for t in decision.timers if t.kind == "expire")
    assert expire == friday + timedelta(days=1)
    office = calendar_clock(CONFIG.settings.calendars)(friday, timedelta(hours=24), "business",
                                                       "default")
    assert office > expire  # the workflow's own 24h on office hours would be much later


def test_the_overdue_reason_spells_the_vendors_limit() -> None:
    engine = Engine(WF, vendors={"acme": VendorClock(timedelta(hours=6), "default")})
    entered = replace(tier3("acme"), state="vendor")
    decision = engine.handle(entered, TimerFired("expire", "vendor"), MONDAY + timedelta(hours=6))
    assert decision.ticket.state == "tier3"
    assert decision.events[-1].reason == "vendor has not answered within 6 business hours"
