"""Loops that open tickets are stopped (issue 16): an autoresponder that starts a new
conversation for every mail it gets opens mail.max_new_tickets_per_hour (5) tickets in an
hour; later new mail from it is recorded on its latest ticket, unanswered."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from daemon.inbound import ingest
from daemon.inbound.ingest import Inbox, Outcome, process_batch, process_mail
from daemon.inbound.ticket_limit import HELD, ordinal, release
from daemon.service.app import Parts
from daemon.store.database import Database
from daemon.store.models import Event, Message, Outbox, Ticket
from tests.inbound.ingest.mails import mail

T0 = datetime.fromisoformat("2026-03-02T09:00:00+00:00")
LOOPER = "noreply@tickets.vendor.example"
MEMBER = "morgan.lee@example.com"  # tier2 in config/teams.yaml


@pytest.fixture
def inbox(parts: Parts) -> Inbox:
    return parts.inbox


def conversation(n: int, sender: str = LOOPER) -> bytes:
    """A new conversation each time: no Auto-Submitted, no Precedence, no threading."""
    return mail(subject=f"Your request #{4000 + n} was received", sender=sender,
                body=f"We received your mail and opened request #{4000 + n}.")


def batch(database: Database, inbox: Inbox, mails: list[bytes],
          at: datetime = T0) -> list[Outcome]:
    with database.transaction() as session:
        return process_batch(session, list(enumerate(mails, start=1)), inbox, at,
                             folder="INBOX")


def one(database: Database, inbox: Inbox, raw: bytes, at: datetime = T0) -> Outcome:
    with database.transaction() as session:
        return process_mail(session, raw, inbox, at, folder="INBOX")


def tickets(database: Database, requester: str = LOOPER) -> list[str]:
    with database.reading() as session:
        return list(session.scalars(select(Ticket.ref).where(Ticket.requester == requester)
                                    .order_by(Ticket.id)))


def mails_to(database: Database, address: str = LOOPER) -> int:
    with database.reading() as session:
        return int(session.scalar(select(func.count()).select_from(Outbox)
                                  .where(Outbox.recipients == address)) or 0)


def held_events(database: Database, ref: str) -> list[Event]:
    with database.reading() as session:
        found = list(session.scalars(select(Event).join(Ticket).where(
            Ticket.ref == ref, Event.kind == HELD).order_by(Event.id)))
        session.expunge_all()
        return found


def check_twelve(database: Database, outcomes: list[Outcome]) -> None:
    """Five tickets with an acknowledgement each; the other seven on the fifth ticket."""
    assert [o.action for o in outcomes] == ["opened"] * 5 + ["recorded"] * 7
    assert tickets(database) == ["TD-1", "TD-2", "TD-3", "TD-4", "TD-5"]
    assert {o.ref for o in outcomes[5:]} == {"TD-5"}
    assert mails_to(database) == 5
    held = held_events(database, "TD-5")
    assert [e.data["conversation"] for e in held] == list(range(6, 13))
    assert held[0].reason == (
        f"6th new conversation from {LOOPER} within an hour (mail.max_new_tickets_per_hour "
        "is 5): recorded here, no new ticket, no acknowledgement")
    assert held[0].data["release"] == f"tierdesk release {LOOPER}"
    assert outcomes[5].detail.startswith(held[0].reason)
    assert outcomes[5].detail.endswith(f"`tierdesk release {LOOPER}` lifts the hold")
    with database.reading() as session:  # every mail kept, the held ones on TD-5
        on_tickets = session.scalars(select(Ticket.ref).join(Message.ticket)
                                     .where(Message.direction == "in")).all()
    assert sorted(on_tickets) == ["TD-1", "TD-2", "TD-3", "TD-4"] + ["TD-5"] * 8


def test_twelve_new_conversations_in_one_batch_open_five_tickets(
        database: Database, inbox: Inbox, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="daemon.inbound.ingest"):
        outcomes = batch(database, inbox, [conversation(n) for n in range(12)])
    assert "falls back" not in caplog.text  # the fast path counted the batch's own tickets
    check_twelve(database, outcomes)


def test_the_careful_path_counts_the_same(database: Database, inbox: Inbox,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_prefetch(*args: object, **kwargs: object) -> None:
        raise RuntimeError("force the careful path")

    monkeypatch.setattr(ingest._Pending, "prefetch", broken_prefetch)
    check_twelve(database, batch(database, inbox, [conversation(n) for n in range(12)]))


def test_twelve_new_conversations_one_by_one_open_five_tickets(database: Database,
                                                              inbox: Inbox) -> None:
    outcomes = [one(database, inbox, conversation(n), T0 + timedelta(seconds=n))
                for n in range(12)]
    check_twelve(database, outcomes)


def test_batches_across_the_hour_count_what_came_before(database: Database,
                                                        inbox: Inbox) -> None:
    batch(database, inbox, [conversation(n) for n in range(3)])
    later = batch(database, inbox, [conversation(n) for n in range(3, 7)],
                  T0 + timedelta(minutes=20))
    assert [o.action for o in later] == ["opened", "opened", "recorded", "recorded"]
    assert [e.data["conversation"] for e in held_events(database, "TD-5")] == [6, 7]


def test_after_an_hour_the_address_opens_tickets_again(database: Database,
                                                       inbox: Inbox) -> None:
    batch(database, inbox, [conversation(n) for n in range(6)])
    assert one(database, inbox, conversation(6), T0 + timedelta(minutes=59)).action == "recorded"
    again = one(database, inbox, conversation(7), T0 + timedelta(hours=1))
    assert (again.action, again.ref) == ("opened", "TD-6")
    assert mails_to(database) == 6


def test_replies_on_a_ticket_are_not_limited(database: Database, inbox: Inbox) -> None:
    outcomes = batch(database, inbox, [conversation(n) for n in range(6)])
    assert outcomes[-1].action == "recorded"
    reply = one(database, inbox, mail(subject="Re: [TD-2] Your request", sender=LOOPER,
                                      body="One more thing."), T0 + timedelta(minutes=1))
    assert (reply.action, reply.ref) == ("updated", "TD-2")
    assert tickets(database) == ["TD-1", "TD-2", "TD-3", "TD-4", "TD-5"]


def test_directory_members_and_our_own_address_are_exempt(database: Database,
                                                          inbox: Inbox) -> None:
    outcomes = batch(database, inbox, [conversation(n, sender=MEMBER) for n in range(7)])
    assert [o.action for o in outcomes] == ["opened"] * 7
    assert len(tickets(database, MEMBER)) == 7
    own = batch(database, inbox, [conversation(n, sender="support@example.com")
                                  for n in range(7)])
    assert {o.action for o in own} == {"recorded"} and {o.ref for o in own} == {None}


def test_a_release_lets_the_next_mail_open_a_ticket(database: Database, inbox: Inbox) -> None:
    batch(database, inbox, [conversation(n) for n in range(6)])
    with database.transaction() as session:
        release(session, LOOPER.upper(), T0 + timedelta(minutes=5))
    opened = one(database, inbox, conversation(6), T0 + timedelta(minutes=6))
    assert (opened.action, opened.ref) == ("opened", "TD-6")
    # Counted again from the release: four more, then held again.
    more = batch(database, inbox, [conversation(n) for n in range(7, 12)],
                 T0 + timedelta(minutes=7))
    assert [o.action for o in more] == ["opened"] * 4 + ["recorded"]
    assert "6th new conversation" in more[-1].detail and more[-1].ref == "TD-10"


@pytest.mark.parametrize(("n", "text"), [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"),
                                         (11, "11th"), (12, "12th"), (13, "13th"),
                                         (21, "21st"), (102, "102nd"), (111, "111th")])
def test_ordinal(n: int, text: str) -> None:
    assert ordinal(n) == text
