"""Real clients' replies from tests/mails/, sent by an authenticated technician: tags planted
in the quoted history are never run (Gmail, Outlook, Apple Mail, Thunderbird); a tag in an
HTML-only reply is."""

from __future__ import annotations

import pytest

from daemon.inbound.ingest import Inbox
from daemon.store.database import Database
from tests.inbound.commands.desk import (
    ALEX,
    DMARC,
    MAILS,
    MORGAN,
    REQUESTER,
    events,
    feed,
    last_id,
    later,
    open_in,
    outbox,
    receipts,
    rewrite,
    ticket,
    with_auth,
)

SUBJECT = "Re: [TD-1] Printer on floor 3 jams"
# mail -> (start state, technician, the commands its new text holds, state afterwards)
QUOTED = {
    "gmail_reply.eml": ("tier2", MORGAN, [], "tier2"),
    "outlook_desktop_reply.eml": ("tier1", ALEX, ["#escalate to tier2 needs a network engineer"],
                                  "tier2"),
    "apple_mail_reply.eml": ("tier2", MORGAN, [], "tier2"),
    "thunderbird_reply.eml": ("tier2", MORGAN, [], "tier2"),
}


def as_technician(name: str, sender: str) -> bytes:
    raw = rewrite((MAILS / name).read_bytes(), From=sender, Subject=SUBJECT)
    return with_auth(raw, DMARC)


@pytest.mark.parametrize("name", sorted(QUOTED))
def test_tags_in_quoted_history_are_not_run(database: Database, inbox: Inbox,
                                            name: str) -> None:
    state, sender, commands, expected = QUOTED[name]
    open_in(database, inbox, state)
    since = last_id(database)
    outcome = feed(database, inbox, as_technician(name, sender), later(5))
    assert outcome.action == "updated" and outcome.ref == "TD-1"
    assert ticket(database).state == expected
    found = [r["command"] for s in receipts(outbox(database, since))
             for r in s.context["results"]]
    assert found == commands
    assert events(database, "refused", "security") == []


def test_html_only_reply_with_resolve_runs(database: Database, inbox: Inbox) -> None:
    open_in(database, inbox, "tier1")
    since = last_id(database)
    outcome = feed(database, inbox, as_technician("html_only_resolve.eml", ALEX), later(5))
    assert "1 done, 0 refused" in outcome.detail
    assert ticket(database).state == "resolved"  # the #reopen in the quote did not run
    sent = outbox(database, since)
    [notice] = [s for s in sent if s.template == "resolution_notice"]
    assert "replaced the docking station, both monitors work" in notice.text
    [update] = [s for s in sent if s.template == "technician_update"]
    assert update.to == REQUESTER and "Closing this one." in update.text
    assert "#resolve" not in update.everything and "planted" not in update.everything
