"""No mail bomb by proxy (issue 16): fifty forged mails in a member's name leave fifty
security events, one on each mail's ticket, but the member gets one notice at once and then
at most one per window (auth.refusal_notices_every, 10 minutes), which counts the rest."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from daemon.inbound.ingest import Inbox, process_batch
from daemon.store.database import Database
from daemon.store.models import Outbox
from tests.inbound.commands.desk import (
    MORGAN,
    REQUESTER,
    ROBIN,
    T0,
    events,
    feed,
    later,
    mail,
    open_in,
    outbox,
    tech,
)

FORGED = "#resolve nothing to see\nAnn, please stop writing."


def forged(n: int) -> bytes:
    return tech(MORGAN, f"{FORGED} ({n})", auth=None)


def notices(database: Database) -> list[Outbox]:
    with database.reading() as session:
        rows = list(session.scalars(select(Outbox).where(Outbox.template == "command_refused")
                                    .order_by(Outbox.id)))
        session.expunge_all()
        return rows


def test_fifty_forgeries_in_one_batch_make_one_notice_now_and_one_summary_later(
        database: Database, inbox: Inbox) -> None:
    open_in(database, inbox, "tier2")
    with database.transaction() as session:
        outcomes = process_batch(session, [(n, forged(n)) for n in range(1, 51)], inbox,
                                 later(5), folder="INBOX")
    assert [o.action for o in outcomes] == ["updated"] * 50
    assert len(events(database, "security")) == 50  # every mail recorded on its ticket
    rows = notices(database)
    live = [r for r in rows if r.status == "pending"]
    assert len(live) == 2 and all(r.recipients == MORGAN for r in rows)
    first, summary = live
    # Within the window: one notice. The second waits a window and stands for the other 49.
    assert first.next_attempt_at == later(5)
    assert summary.next_attempt_at == later(15)
    assert first.context["refused_count"] == 1 and summary.context["refused_count"] == 49
    assert {r.status for r in rows} == {"pending", "skipped"} and len(rows) == 50
    assert all("merged into a later refusal notice" in (r.last_error or "")
               for r in rows if r.status == "skipped")
    [text] = [s for s in outbox(database) if s.id == summary.id]
    assert text.subject == ("[TD-1] Refused: 49 mails in your name, the latest on TD-1: "
                            "Printer on floor 3 jams")
    # 09:05 UTC, shown in the zone of the default calendar (Europe/Berlin)
    assert "stands for 49 mails in your name refused since Mon 2 Mar 10:05 CET" in text.text
    assert "please stop writing" not in text.everything


@pytest.mark.parametrize("minutes", [[1, 2, 3, 30], [0, 9, 10, 21]])
def test_one_by_one_across_windows(database: Database, inbox: Inbox,
                                   minutes: list[int]) -> None:
    """Mail by mail (each its own transaction), across tickets; a window after the last
    notice, the next one goes at once again."""
    open_in(database, inbox, "tier2")
    feed(database, inbox, mail(REQUESTER, "Second problem", "The scanner too."), later(0))
    for n, minute in enumerate(minutes):
        ref = "TD-2" if n % 2 else "TD-1"
        feed(database, inbox, tech(MORGAN, FORGED, ref, auth=None), later(5 + minute))
    live = [(r.next_attempt_at, r.context["refused_count"], r.context["refused_refs"])
            for r in notices(database) if r.status == "pending"]
    at = [later(5 + m) for m in minutes]
    if minutes == [1, 2, 3, 30]:
        assert live == [(at[0], 1, ["TD-1"]), (at[0] + timedelta(minutes=10), 2,
                                               ["TD-2", "TD-1"]), (at[3], 1, ["TD-2"])]
    else:
        assert live == [(at[0], 1, ["TD-1"]), (at[0] + timedelta(minutes=10), 1, ["TD-2"]),
                        (at[0] + timedelta(minutes=20), 1, ["TD-1"]),
                        (at[0] + timedelta(minutes=30), 1, ["TD-2"])]


def test_each_member_has_their_own_window(database: Database, inbox: Inbox) -> None:
    open_in(database, inbox, "tier2")
    feed(database, inbox, forged(1), later(5))
    feed(database, inbox, tech(ROBIN, FORGED, auth=None), later(6))
    assert [(r.recipients, r.next_attempt_at) for r in notices(database)] == [
        (MORGAN, later(5)), (ROBIN, later(6))]
    assert T0 < later(5)
