"""Vendors: `#vendor` hands off and moves to the vendor state; the vendor's replies thread
onto the ticket and go to the owning team only, never to the requester; their tags are text."""

from __future__ import annotations

from daemon.inbound.ingest import Inbox
from daemon.store.database import Database
from tests.inbound.commands.desk import (
    REQUESTER,
    ROBIN,
    VENDOR,
    events,
    feed,
    last_id,
    later,
    mail,
    open_in,
    outbox,
    tech,
    ticket,
)


def to_vendor(database: Database, inbox: Inbox) -> None:
    open_in(database, inbox, "tier3")
    feed(database, inbox, tech(ROBIN, "#vendor vpnco Is release 5.1 affected?"), later(1))
    assert ticket(database).state == "vendor"


def test_vendor_reply_goes_to_the_team_only(database: Database, inbox: Inbox) -> None:
    to_vendor(database, inbox)
    since = last_id(database)
    [handoff] = [s for s in outbox(database) if s.template == "vendor_handoff"]
    assert handoff.to == VENDOR and handoff.reply_to == "IT Support <support+TD-1@example.com>"
    raw = mail(f"VPNCo Support <{VENDOR}>", f"RE: {handoff.subject}",
               "Yes, patch 5.1.2 fixes it.\n#resolve patched")
    outcome = feed(database, inbox, raw, later(30))
    assert (outcome.action, outcome.ref) == ("updated", "TD-1")
    assert outcome.detail == "vendor vpnco replied; forwarded to tier3, vendor -> tier3"
    sent = outbox(database, since)
    assert [(s.template, s.to, s.role) for s in sent] == [("vendor_reply", ROBIN, "member")]
    assert "patch 5.1.2 fixes it" in sent[0].text and "VPNCo Support replied" in sent[0].subject
    assert all(s.to != REQUESTER for s in sent)
    # Back with tier 3 on its own clock; the vendor's #resolve is only text.
    assert ticket(database).state == "tier3"
    [reply] = events(database, "vendor_reply")
    assert reply.actor == VENDOR and reply.data["vendor"] == "vpnco"


def test_vendor_reply_threads_by_the_handoffs_message_id(database: Database,
                                                         inbox: Inbox) -> None:
    to_vendor(database, inbox)
    with database.reading() as session:
        from sqlalchemy import select

        from daemon.store.models import Outbox
        message_id = session.scalars(select(Outbox.message_id).where(
            Outbox.template == "vendor_handoff")).one()
    raw = mail(VENDOR, "Your request", "Looking into it.", in_reply_to=f"<{message_id}>")
    assert feed(database, inbox, raw, later(30)).ref == "TD-1"


def test_back_from_the_vendor(database: Database, inbox: Inbox) -> None:
    to_vendor(database, inbox)
    feed(database, inbox, mail(VENDOR, "Re: [TD-1] x", "Fixed in 5.1.2"), later(30))
    assert ticket(database).state == "tier3"  # the answer hands it back by itself
