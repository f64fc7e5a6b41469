"""#note never reaches the requester or a vendor: a whole story with notes at every step,
then every rendered mail to the requester or the vendor is searched for them."""

from __future__ import annotations

from daemon.inbound.ingest import Inbox
from daemon.store.database import Database
from tests.inbound.commands.desk import (
    MORGAN,
    REQUESTER,
    ROBIN,
    VENDOR,
    feed,
    later,
    mail,
    outbox,
    tech,
    ticket,
)

STORY = [
    (MORGAN, "#take\n#note SECRET-1 the CFO is upset\n#priority P1\nHi Ann, we are on it."),
    (MORGAN, "#wait Which VPN client version do you run?\n#note SECRET-2 old client?"),
    (REQUESTER, "Version 5.1"),
    (MORGAN, "#note SECRET-3 escalating because of the CFO\n#escalate needs the VPN team"),
    (ROBIN, "#note SECRET-4 vendor bug suspected\n#vendor vpnco Is 5.1 affected by the drops?"),
    (VENDOR, "Yes, patch 5.1.2 fixes it.\n#note not a command from a vendor"),
    (ROBIN, "#deescalate\n#note SECRET-5 patch pushed"),
    (MORGAN, "#note SECRET-6 done\n#resolve installed patch 5.1.2\nAnn, please reboot once."),
]


def test_notes_never_reach_the_requester_or_the_vendor(database: Database,
                                                       inbox: Inbox) -> None:
    feed(database, inbox, mail(REQUESTER, "VPN down for the whole sales team", "Help"))
    for minute, (sender, body) in enumerate(STORY, start=1):
        raw = tech(sender, body) if sender not in (REQUESTER, VENDOR) else \
            mail(sender, "Re: [TD-1] VPN down for the whole sales team", body)
        assert feed(database, inbox, raw, later(minute)).action == "updated"
    assert ticket(database).state == "resolved"
    sent = outbox(database)
    outside = [s for s in sent if s.role in ("requester", "vendor")]
    assert {s.template for s in outside} >= {"acknowledgement", "status_update",
                                             "vendor_handoff", "resolution_notice"}
    assert {s.to for s in outside} == {REQUESTER, VENDOR}
    for s in outside:
        assert "SECRET" not in s.everything, (s.template, s.to)
        assert "CFO" not in s.everything and "vendor bug" not in s.everything
    # Not vacuous: the notes are there, for the teams.
    assert any("SECRET-1" in s.everything for s in sent if s.role == "member")
    assert [s.template for s in outside if s.template == "technician_update"] == []


def test_the_wait_question_and_resolve_summary_do_reach_the_requester(
        database: Database, inbox: Inbox) -> None:
    """What a technician writes after a tag meant for the requester is sent; only notes and
    the text of a mail holding #note are held back."""
    feed(database, inbox, mail(REQUESTER, "VPN down for the whole sales team", "Help"))
    feed(database, inbox, tech(MORGAN, "#wait Which VPN client?\n#note SECRET"), later(1))
    feed(database, inbox, mail(REQUESTER, "Re: [TD-1] VPN", "5.1"), later(2))
    feed(database, inbox, tech(MORGAN, "#resolve installed patch 5.1.2"), later(3))
    to_ann = [s for s in outbox(database) if s.to == REQUESTER]
    assert any("Which VPN client?" in s.text for s in to_ann)
    assert any("installed patch 5.1.2" in s.text for s in to_ann)
    assert all("SECRET" not in s.everything for s in to_ann)
