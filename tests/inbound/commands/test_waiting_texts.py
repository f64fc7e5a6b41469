"""Mail shows people's time and fits the state (issue 18): times in the zone of the calendar
that governs the ticket's state, with its abbreviation; a reminder in a paused state says who
waits on whom since when. Through the real ingest path and the real clock loop."""

from __future__ import annotations

from datetime import timedelta

from daemon.inbound.ingest import Inbox
from daemon.store.database import Database
from daemon.tickets.timers import tick
from tests.inbound.commands.desk import (
    JORDAN,
    REQUESTER,
    ROBIN,
    VENDOR,
    feed,
    last_id,
    later,
    open_in,
    outbox,
    tech,
)


def test_a_reminder_while_the_vendor_has_it_says_tier3_waits_on_the_vendor(
        database: Database, inbox: Inbox) -> None:
    open_in(database, inbox, "tier3")
    since = last_id(database)
    feed(database, inbox, tech(ROBIN, "#vendor vpnco is the gateway patched?"), later(5))
    [handoff] = [s for s in outbox(database, since) if s.template == "vendor_handoff"]
    # vpnco's calendar is 24x7 (in Berlin time): its answer is due a day later.
    assert handoff.to == VENDOR and "Respond by: Tue 3 Mar 10:05 CET" in handoff.text
    since = last_id(database)
    tick(database, inbox.runtime, later(5) + timedelta(hours=8))  # the first reminder
    [reminder] = [s for s in outbox(database, since) if s.template == "reminder"]
    assert reminder.subject.startswith("[TD-1] Reminder: P3 waiting on VPNCo Support: ")
    text = " ".join(reminder.text.split())
    assert ("Tier 3 Engineering is waiting on VPNCo Support since Mon 2 Mar 10:05 CET; "
            "they have not answered.") in text
    assert "nobody has taken it" not in text and "is still waiting in vendor" not in text
    assert reminder.context["state_entered_at"].startswith("2026-03-02T09:05:00")  # UTC kept


def test_a_reminder_while_waiting_on_the_requester_says_so_in_office_time(
        database: Database, inbox: Inbox) -> None:
    open_in(database, inbox, "tier1")
    feed(database, inbox, tech(JORDAN, "#wait Which printer model is it?"), later(5))
    since = last_id(database)
    tick(database, inbox.runtime, later(5) + timedelta(hours=24))  # the one reminder
    # One mail to each member of tier 1; they read the same.
    reminder, *others = [s for s in outbox(database, since) if s.template == "reminder"]
    assert all(other.text == reminder.text for other in others)
    text = " ".join(reminder.text.split())
    # The default calendar is Europe/Berlin: 09:05 UTC is 10:05 CET.
    assert (f"Tier 1 Support is waiting on the requester ({REQUESTER}) since Mon 2 Mar "
            "10:05 CET; they have not answered.") in text
    assert "If nothing arrives by Wed 4 Mar 02:05 CET" in text  # 40h on the wall clock
    assert "UTC" not in reminder.everything


def test_the_acknowledgement_promises_an_answer_in_office_time(database: Database,
                                                               inbox: Inbox) -> None:
    open_in(database, inbox, "triage")
    [ack] = [s for s in outbox(database) if s.template == "acknowledgement"]
    # Triage's P3 timeout is 30m from 09:00 UTC, on the Berlin calendar.
    assert "You will hear from us by Mon 2 Mar 10:30 CET at the latest." in ack.text
    assert ack.context["deadline"] == "2026-03-02T09:30:00+00:00"  # the store keeps UTC
