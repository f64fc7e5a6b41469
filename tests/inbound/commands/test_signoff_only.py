"""A technician's reply that holds commands and, besides them, only a greeting or a sign-off
passes nothing on: the requester never gets a mail whose whole content is "Regards, Jordan"
(issue 18), and the commands still run."""

from __future__ import annotations

import pytest

from daemon.inbound.ingest import Inbox
from daemon.store.database import Database
from tests.inbound.commands.desk import (
    JORDAN,
    REQUESTER,
    events,
    feed,
    last_id,
    later,
    open_in,
    outbox,
    receipts,
    tech,
    ticket,
)

# As Outlook writes a reply: new text on top, then the header block and the quoted mail.
OUTLOOK_HISTORY = ("\nFrom: IT Support <support@example.com>\n"
                   "Sent: Monday, March 2, 2026 10:02 AM\n"
                   "To: Jordan Blake <jordan.blake@example.com>\n"
                   "Subject: [TD-1] Printer on floor 3 jams\n\n"
                   "A new ticket was assigned to tier 1.\n")

SIGN_OFFS = ["Regards, Jordan", "Thanks,", "Best,\nJordan", "Hi all,",
             "Cheers\n\nSent from my iPhone", "Viele Grüße\nJordan Blake",
             "Cordialement,\nJordan", "Saludos,\nJordan"]


@pytest.mark.parametrize("sign_off", SIGN_OFFS)
def test_escalate_with_only_a_sign_off_mails_the_requester_nothing_of_it(
        database: Database, inbox: Inbox, sign_off: str) -> None:
    open_in(database, inbox, "tier1")
    since = last_id(database)
    body = f"#escalate the printer needs a technician on site\n\n{sign_off}\n{OUTLOOK_HISTORY}"
    outcome = feed(database, inbox, tech(JORDAN, body), later(5))
    assert "1 done, 0 refused" in outcome.detail and "text sent" not in outcome.detail
    assert ticket(database).state == "tier2"  # the command worked
    sent = outbox(database, since)
    assert [s.template for s in sent if s.template == "technician_update"] == []
    # The requester hears of the escalation (the workflow's status_update), not the sign-off.
    to_ann = [s for s in sent if s.to == REQUESTER]
    assert [s.template for s in to_ann] == ["status_update"]
    assert all(sign_off.split("\n")[0] not in s.everything for s in to_ann)
    assert events(database, "public_update") == []
    [receipt] = receipts(sent)
    assert "not sent to the requester: it was only a greeting or a sign-off" in receipt.text


def test_take_with_a_greeting_and_a_sign_off_sends_the_requester_no_mail(
        database: Database, inbox: Inbox) -> None:
    open_in(database, inbox, "tier1")
    since = last_id(database)
    feed(database, inbox, tech(JORDAN, f"Hi all,\n\n#take\n\nRegards, Jordan\n{OUTLOOK_HISTORY}"),
         later(5))
    assert ticket(database).assignee == JORDAN
    sent = outbox(database, since)
    assert [s for s in sent if s.to == REQUESTER] == []
    assert [s.template for s in receipts(sent)] == ["command_receipt"]


def test_real_words_next_to_the_sign_off_are_still_passed_on(database: Database,
                                                             inbox: Inbox) -> None:
    open_in(database, inbox, "tier1")
    since = last_id(database)
    feed(database, inbox, tech(JORDAN, "#take\n\nPlease restart the printer once.\n\n"
                                       f"Regards, Jordan\n{OUTLOOK_HISTORY}"), later(5))
    [update] = [s for s in outbox(database, since) if s.template == "technician_update"]
    assert update.to == REQUESTER and "Please restart the printer once." in update.text
    assert "A new ticket was assigned" not in update.text
