"""Technician mail inside ingest batches: the fast path (one savepoint, nothing flushed until
the batch ends) and the careful path (a savepoint and a write per mail) give the same
tickets, events and mail."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from daemon.inbound import ingest
from daemon.inbound.ingest import Inbox, process_batch
from daemon.store.database import Database
from daemon.store.models import STATE_TIMER_KINDS, Event, Outbox, Timer
from daemon.workflow.timers import TicketTargets
from tests.databases import truncate_all
from tests.inbound.commands.desk import MORGAN, REQUESTER, T0, mail, signed, tech, ticket

BATCH = [
    mail(REQUESTER, "VPN down for the whole sales team", "Nobody can connect."),
    tech(MORGAN, "#take\n#priority P2\nAnn, looking at it."),
    tech(MORGAN, "#note gateway logs show drops\n#escalate needs the network team"),
    tech(MORGAN, "#resolve forged", auth=None),
    mail(MORGAN, "x", "#status", to=signed(MORGAN)),
]


def run(database: Database, inbox: Inbox) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    with database.transaction() as session:
        outcomes = process_batch(session, list(enumerate(BATCH, start=1)), inbox, T0,
                                 folder="INBOX")
    with database.reading() as session:
        kinds = list(session.scalars(select(Event.kind).order_by(Event.id)))
        rows = [(r.template, r.recipients or "") for r in
                session.scalars(select(Outbox).order_by(Outbox.id))]
        assert all(r.body for r in session.scalars(select(Outbox)))
        timers = [(t.kind, t.state) for t in session.scalars(select(Timer))]
        targets = {t.kind: t.due_at for t in session.scalars(select(Timer))
                   if t.kind not in STATE_TIMER_KINDS}
    # The ticket moved twice within the batch: each move cancelled the timers of the state
    # it left, also those the batch itself set and had not written yet.
    assert {state for kind, state in timers if kind in STATE_TIMER_KINDS} == {"tier3"}
    # ... and #priority P2 moved the SLA targets the opening set in the same batch.
    p2 = TicketTargets(inbox.runtime.config.workflows["it-support"], inbox.runtime.add_time)
    assert targets == {order.kind: order.due_at for order in p2.schedule("P2", T0)}
    return [o.action for o in outcomes], kinds, rows


def broken_prefetch(*args: object, **kwargs: object) -> None:
    raise RuntimeError("force the careful path")


def check(database: Database, actions: list[str], kinds: list[str],
          rows: list[tuple[str, str]]) -> None:
    assert actions == ["opened", "updated", "updated", "updated", "updated"]
    after = ticket(database)
    assert (after.state, after.priority) == ("tier3", "P2")
    assert kinds.count("security") == 1 and kinds.count("status") == 1
    assert ("command_refused", MORGAN) in rows and ("technician_update", REQUESTER) in rows


def test_fast_path(database: Database, inbox: Inbox) -> None:
    check(database, *run(database, inbox))


def test_careful_path(database: Database, inbox: Inbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest._Pending, "prefetch", broken_prefetch)
    check(database, *run(database, inbox))


class _RolledBack(Exception):
    pass


def outbox_rows(database: Database, inbox: Inbox) -> list[tuple[object, ...]]:
    """Every outbox column a batch writes, read back in its transaction, then rolled back.
    Ids and Message-IDs are left out (random or handed out), so are the bodies that carry
    them; tickets are numbered in order of appearance."""
    try:
        with database.transaction() as session:
            process_batch(session, list(enumerate(BATCH, start=1)), inbox, T0, folder="INBOX")
            session.flush()
            rows = list(session.scalars(select(Outbox).order_by(Outbox.id)))
            order = list(dict.fromkeys(r.ticket_id for r in rows))
            found = [(order.index(r.ticket_id), r.template, r.to_role, r.recipients, r.subject,
                      r.status, r.attempts, r.next_attempt_at, r.created_at, r.sent_at,
                      r.last_error, r.context, sorted(r.headers), r.headers["To"],
                      r.headers["Auto-Submitted"], bool(r.body)) for r in rows]
            raise _RolledBack
    except _RolledBack:
        return found


def test_both_paths_write_the_same_outbox_rows(database: Database, inbox: Inbox,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    fast = outbox_rows(database, inbox)
    if database.engine.dialect.name == "postgresql":  # rollbacks keep ids; mails name TD-1
        truncate_all(database)
    monkeypatch.setattr(ingest._Pending, "prefetch", broken_prefetch)
    careful = outbox_rows(database, inbox)
    assert [row[1] for row in fast].count("acknowledgement") == 1
    assert all(row[-1] for row in fast)  # every body written
    assert fast == careful
