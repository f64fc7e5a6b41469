"""Through real ingest: the front line's new-ticket notice and the handoff name the reports
of the last hours that look alike and the past fix of a resolved look-alike."""

from __future__ import annotations

from datetime import timedelta

import pytest

from daemon.inbound.ingest import Inbox, process_batch
from daemon.site.config import load_config
from daemon.store.database import Database
from tests.inbound.commands.desk import (
    ROOT,
    SAM,
    SECRET,
    T0,
    TRUSTED,
    build_inbox,
    config,
    feed,
    later,
    mail,
    outbox,
    tech,
)

PAST_FIX = "imported the intermediate certificate again"


@pytest.fixture(scope="module")
def inbox() -> Inbox:
    return build_inbox(config())


def resolved_last_month(database: Database, inbox: Inbox) -> None:
    """TD-1, a month ago: the VPN certificate problem, fixed by Sam."""
    feed(database, inbox, mail("ann@example.org", "VPN client cannot connect: certificate",
                               "The VPN client says the certificate is not trusted."),
         T0 - timedelta(days=30))
    outcome = feed(database, inbox, tech(SAM, f"#resolve {PAST_FIX}", "TD-1"),
                   T0 - timedelta(days=30) + timedelta(hours=1))
    assert "1 done" in outcome.detail


def test_new_ticket_notice_names_lookalikes_and_a_past_fix(database: Database,
                                                           inbox: Inbox) -> None:
    resolved_last_month(database, inbox)
    # Three reports in one batch (the fast path), then a fourth 20 minutes after the first.
    batch = [(n, mail(f"user{n}@example.org", "VPN client cannot connect",
                      f"Since this morning my VPN client cannot connect ({n})."))
             for n in (1, 2, 3)]
    with database.transaction() as session:
        outcomes = process_batch(session, batch, inbox, T0, folder="INBOX")
    assert [o.ref for o in outcomes] == ["TD-2", "TD-3", "TD-4"]
    feed(database, inbox, mail("zoe@example.org", "vpn won't connect",
                               "My VPN client will not connect, the certificate is rejected."),
         later(20))
    notices = [s for s in outbox(database) if s.template == "new_ticket"
               and "[TD-5]" in s.subject]
    assert notices, "the front line is told of TD-5"
    text = notices[0].text
    assert ("3 other reports in the last 20 min look alike: TD-2, TD-3, TD-4 "
            "(reply `#link TD-2`)") in text
    assert f"TD-1, 31 Jan, fixed by Sam Rivera: {PAST_FIX}" in text
    assert "TD-2" in notices[0].html and PAST_FIX in notices[0].html
    # The earlier notices of the batch name the others, not themselves.
    first = next(s for s in outbox(database) if s.template == "new_ticket"
                 and "[TD-2]" in s.subject)
    assert "look alike: TD-3, TD-4" in first.text
    # The requester's acknowledgement tells nothing of other people's tickets.
    assert not any(PAST_FIX in s.everything for s in outbox(database)
                   if s.template == "acknowledgement")


def test_handoff_names_them_too(database: Database, inbox: Inbox) -> None:
    resolved_last_month(database, inbox)
    feed(database, inbox, mail("bo@example.org", "VPN client cannot connect",
                               "The VPN client cannot connect since 8:00."), later(1))
    # "down" routes it straight to tier 2 (the outage rule): a handoff, no notice.
    feed(database, inbox, mail("cy@example.org", "VPN down, client cannot connect",
                               "My VPN client cannot connect."), later(5))
    handoffs = [s for s in outbox(database) if s.template == "escalation_handoff"
                and "[TD-3]" in s.subject]
    assert handoffs
    assert "1 other report in the last 4 min looks alike: TD-2" in handoffs[0].text
    assert PAST_FIX in handoffs[0].text


def test_no_lookalikes_when_the_check_is_off(database: Database) -> None:
    quiet = build_inbox(load_config(ROOT, {**TRUSTED, "TIERDESK_AUTH_SECRET": SECRET,
                                           "TIERDESK_DUPLICATES_MAX": "0",
                                           "TIERDESK_DUPLICATES_PAST_FIXES": "0"}))
    for n in (1, 2):
        feed(database, quiet, mail(f"u{n}@example.org", "VPN client cannot connect",
                                   "The VPN client cannot connect."), later(n))
    notice = [s for s in outbox(database) if s.template == "new_ticket"][-1]
    assert "look alike" not in notice.text and "Fixed before" not in notice.text

