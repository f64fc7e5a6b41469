"""The outbox gives templates people's time: every time in the zone of the calendar that
governs the ticket's state, as an aware datetime and as text; the stored context stays UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from daemon.outbound.writer import MailWriter, enrich
from daemon.store.database import Database
from tests.outbound.helpers import new_ticket, parse, queue, text_of

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
DEADLINE = datetime(2026, 11, 30, 13, 10, tzinfo=UTC)


@pytest.mark.parametrize("calendar, zone, text", [
    ("office-hours", "Europe/Berlin", "Mon 30 Nov 14:10 CET"),
    ("24x7", "Europe/Berlin", "Mon 30 Nov 14:10 CET"),
    (None, "Europe/Berlin", "Mon 30 Nov 14:10 CET"),  # none named: the default calendar
    ("gone", "Europe/Berlin", "Mon 30 Nov 14:10 CET"),  # removed since: the default
])
def test_enrich_writes_times_in_the_governing_calendars_zone(
        writer: MailWriter, calendar: str | None, zone: str, text: str) -> None:
    facts = {"ref": "TD-7", "calendar": calendar, "deadline": DEADLINE.isoformat(),
             "state_entered_at": NOW.isoformat(), "waiting_on": "vendor"}
    found = enrich(facts, writer, NOW)
    assert found["zone"] == zone and found["deadline_text"] == text
    assert found["deadline"] == DEADLINE and str(found["deadline"].tzinfo) == zone
    assert str(found["now"].tzinfo) == zone and found["now"] == NOW
    assert found["since"] == NOW and found["since_text"].startswith("Mon 30 Nov 0")
    assert found["waiting_on"] == "vendor"


def test_the_year_shows_only_when_it_is_not_this_one(writer: MailWriter) -> None:
    facts = {"deadline": (NOW + timedelta(days=40)).isoformat()}
    assert enrich(facts, writer, NOW)["deadline_text"] == "Sat 9 Jan 2027 09:00 CET"


def test_a_rendered_mail_shows_local_time_and_the_row_keeps_utc(
        database: Database, writer: MailWriter) -> None:
    with database.transaction() as session:
        ticket = new_ticket(session, NOW)
        row = queue(session, ticket, "escalation_handoff", "team", NOW, writer,
                    deadline=DEADLINE, calendar="office-hours")
    text = text_of(parse(row.body or b"").get_body(("plain",)))
    assert "Respond by:  Mon 30 Nov 14:10 CET (5h 10m left)" in text
    assert "UTC" not in text
    assert row.context["deadline"] == "2026-11-30T13:10:00+00:00"
