"""process_mail on real databases: threading, classification, reopen, dedup, quarantine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from daemon.inbound.ingest import Inbox, Outcome, process_mail
from daemon.site.config import load_config
from daemon.store import intake, repository
from daemon.store.database import Database
from daemon.store.models import Message, Outbox, Ticket
from daemon.tickets.runtime import Runtime
from daemon.workflow.engine import wall_clock
from tests.inbound.ingest.mails import bounce, mail

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def inbox() -> Inbox:
    return Inbox.build(Runtime.build(load_config(ROOT, {}), add_time=wall_clock))


def feed(database: Database, inbox: Inbox, raw: bytes, at: datetime = T0) -> Outcome:
    with database.transaction() as session:
        return process_mail(session, raw, inbox, at, folder="INBOX", uid=1)


def ticket(database: Database, ref: str) -> Ticket:
    with database.reading() as session:
        found = repository.get_ticket(session, ref)
        assert found is not None
        session.expunge(found)
        return found


def first_outbox_id(database: Database, ref: str) -> str:
    with database.reading() as session:
        row = session.scalars(select(Outbox).join(Ticket).where(Ticket.ref == ref)
                              .order_by(Outbox.id)).first()
        assert row is not None
        return row.message_id


def test_new_mail_opens_a_ticket_and_acknowledges(database: Database, inbox: Inbox) -> None:
    outcome = feed(database, inbox, mail())
    assert outcome.action == "opened" and outcome.ref == "TD-1"
    opened = ticket(database, "TD-1")
    assert (opened.requester, opened.subject, opened.state) == (
        "ann@example.org", "Printer on floor 3 jams", "triage")
    with database.reading() as session:
        templates = session.scalars(select(Outbox.template)).all()
        kinds = [e.kind for e in repository.timeline(session, opened)]
    assert "acknowledgement" in templates
    assert kinds[:2] == ["mail_in", "created"]


def test_triage_rule_routes_an_outage(database: Database, inbox: Inbox) -> None:
    feed(database, inbox, mail(subject="VPN down for the whole sales team"))
    routed = ticket(database, "TD-1")
    assert (routed.priority, routed.state, routed.team) == ("P1", "tier2", "tier2")


@pytest.mark.parametrize("how", ["in-reply-to", "references", "subject", "plus"])
def test_reply_threads_each_way(database: Database, inbox: Inbox, how: str) -> None:
    feed(database, inbox, mail(message_id="<first@example.org>"))
    ours = f"<{first_outbox_id(database, 'TD-1')}>"
    reply = {
        "in-reply-to": mail(subject="Re: jams", in_reply_to=ours, references=ours),
        "references": mail(subject="Antwort", references=f"<first@example.org> {ours}"),
        "subject": mail(subject="AW: [TD-1] Printer on floor 3 jams"),
        "plus": mail(subject="more", to="support+TD-1@example.com"),
    }[how]
    outcome = feed(database, inbox, reply, T0 + timedelta(minutes=5))
    assert (outcome.action, outcome.ref) == ("updated", "TD-1")
    with database.reading() as session:
        assert session.scalar(select(Ticket.id).where(Ticket.ref == "TD-2")) is None


def test_requester_reply_reopens_a_resolved_ticket(database: Database, inbox: Inbox) -> None:
    feed(database, inbox, mail(subject="VPN down for the whole sales team"))
    with database.transaction() as session:
        row = repository.get_ticket(session, "TD-1")
        assert row is not None
        row.state, row.return_state = "resolved", "tier2"
    later = T0 + timedelta(hours=1)
    outcome = feed(database, inbox, mail(subject="Re: [TD-1] still broken"), later)
    assert outcome.detail == "requester replied, resolved -> tier2"
    assert ticket(database, "TD-1").state == "tier2"


def test_reply_to_a_closed_ticket_opens_a_linked_one(database: Database, inbox: Inbox) -> None:
    feed(database, inbox, mail())
    with database.transaction() as session:
        row = repository.get_ticket(session, "TD-1")
        assert row is not None
        row.state = "closed"
    outcome = feed(database, inbox, mail(subject="Re: [TD-1] it is back"))
    assert (outcome.action, outcome.ref) == ("opened", "TD-2")
    assert ticket(database, "TD-2").linked_ref == "TD-1"


def test_same_mail_twice_has_one_effect(database: Database, inbox: Inbox) -> None:
    raw = mail(message_id="<once@example.org>")
    assert feed(database, inbox, raw).action == "opened"
    assert feed(database, inbox, raw).action == "duplicate"
    # Another path adds trace lines and rewrites line ends: still the same mail.
    relayed = (b"Received: from relay.example.org\r\nDelivered-To: support@example.com\r\n"
               + raw.replace(b"\r\n", b"\n"))
    outcome = feed(database, inbox, relayed)
    assert outcome.action == "duplicate" and "same Message-ID and content" in outcome.detail
    with database.reading() as session:
        assert len(session.scalars(select(Ticket)).all()) == 1


# Each pair: two mails whose ids the old parser took for one (lower-cased, cut to a token).
@pytest.mark.parametrize(("first", "second"), [
    ("<q1 mailer.example@mailer.example>", "<q2 mailer.example@mailer.example>"),
    ("<a'; DROP x;--@customer.example>", "<b'; DROP y;--@customer.example>"),
    ("<CAJ+Xy9ZqWm=AbC@mail.gmail.com>", "<caj+xy9zqwm=abc@mail.gmail.com>"),
])
def test_message_ids_are_kept_exactly(database: Database, inbox: Inbox, first: str,
                                      second: str) -> None:
    # Written into the bytes: the stdlib's EmailMessage itself mangles such ids.
    outcomes = [feed(database, inbox, mail(message_id="<slot@x>").replace(
        b"<slot@x>", mid.encode())) for mid in (first, second)]
    assert [o.action for o in outcomes] == ["opened", "opened"]
    with database.reading() as session:
        stored = session.scalars(select(Message.message_id).order_by(Message.id)).all()
    assert stored == [first.strip("<>"), second.strip("<>")]


def test_a_reused_message_id_with_other_content_is_a_mail_of_its_own(
        database: Database, inbox: Inbox) -> None:
    assert feed(database, inbox, mail(subject="Printer jams", message_id="<x@script>")
                ).action == "opened"
    second = feed(database, inbox, mail(subject="Disk full on build server", body="Again.",
                                        message_id="<x@script>"))
    assert (second.action, second.ref) == ("opened", "TD-2")
    # Its redelivery is a duplicate, not a third mail.
    assert feed(database, inbox, mail(subject="Disk full on build server", body="Again.",
                                      message_id="<x@script>")).action == "duplicate"
    with database.reading() as session:
        rows = session.execute(select(Message.message_id, Message.digest)).all()
        (event,) = [e for e in repository.timeline(session, ticket(database, "TD-2"))
                    if e.kind == "mail_in"]
    assert [mid for mid, _ in rows] == ["x@script", "x@script"]
    assert len({digest for _, digest in rows}) == 2
    assert "Message-ID was used before by another mail" in event.reason
    assert event.data["reused_message_id"] is True


def test_mail_without_message_id_deduplicates_by_content(database: Database,
                                                        inbox: Inbox) -> None:
    raw = mail().replace(b"Message-ID:", b"X-Old-Message-ID:")
    assert feed(database, inbox, raw).action == "opened"
    assert feed(database, inbox, raw).action == "duplicate"


@pytest.mark.parametrize(("headers", "kind"), [
    ({"Auto-Submitted": "auto-replied"}, "auto_reply"),
    ({"X-Autoreply": "yes"}, "auto_reply"),
    ({"List-Id": "<it.lists.example.org>"}, "list"),
    ({"Precedence": "bulk"}, "auto_reply"),
])
def test_automatic_mail_is_recorded_never_answered(database: Database, inbox: Inbox,
                                                   headers: dict[str, str], kind: str) -> None:
    outcome = feed(database, inbox, mail(headers=headers))
    assert outcome.action == "recorded" and outcome.ref is None
    with database.reading() as session:
        assert session.scalars(select(Ticket)).all() == []
        assert session.scalars(select(Outbox)).all() == []
        stored = session.scalars(select(Message)).one()
        assert stored.kind == kind and stored.reason


def test_auto_reply_on_a_ticket_moves_nothing(database: Database, inbox: Inbox) -> None:
    feed(database, inbox, mail())
    before = ticket(database, "TD-1")
    outcome = feed(database, inbox, mail(subject="Automatic reply: [TD-1] We got it",
                                         headers={"Auto-Submitted": "auto-replied"}))
    assert (outcome.action, outcome.ref) == ("recorded", "TD-1")
    after = ticket(database, "TD-1")
    assert (after.state, after.updated_at) != (None, None)
    assert after.state == before.state


def test_bounce_marks_our_outbox_row(database: Database, inbox: Inbox) -> None:
    feed(database, inbox, mail())
    ours = first_outbox_id(database, "TD-1")
    outcome = feed(database, inbox, bounce(ours))
    assert (outcome.action, outcome.ref) == ("recorded", "TD-1")  # on the ticket's timeline
    with database.reading() as session:
        row = session.scalars(select(Outbox).order_by(Outbox.id)).first()
        assert row is not None and row.status == "bounced"


def test_mail_from_our_own_address_opens_nothing(database: Database, inbox: Inbox) -> None:
    outcome = feed(database, inbox, mail(sender="IT Support <support@example.com>"))
    assert outcome.action == "recorded"


VIA_GROUP = "\"'Hannah Lee' via Support\" <support@example.com>"


def through_group(person: str, **kwargs: object) -> bytes:
    """Mail our own Google Group passed on under its From (the person's domain has a strict
    DMARC policy)."""
    return mail(sender=VIA_GROUP, headers={  # type: ignore[arg-type]
        "List-Id": "Support <support.example.com>", "List-Post": "<mailto:support@example.com>",
        "X-Original-Sender": person, "Reply-To": person}, **kwargs)


def test_a_request_our_group_passed_on_is_the_persons(database: Database,
                                                      inbox: Inbox) -> None:
    opened = feed(database, inbox, through_group("hannah.lee@example.edu"))
    assert opened.action == "opened"
    assert ticket(database, "TD-1").requester == "hannah.lee@example.edu"
    with database.reading() as session:
        acks = session.scalars(select(Outbox.to_role)
                               .where(Outbox.template == "acknowledgement")).all()
        [sender] = session.scalars(select(Message.sender)).all()
    # The acknowledgement goes to the ticket's requester: Hannah, not the group.
    assert acks == ["requester"] and sender == "hannah.lee@example.edu"
    subject = "Re: [TD-1] Printer on floor 3 jams"
    reply = feed(database, inbox, through_group("hannah.lee@example.edu", subject=subject),
                 T0 + timedelta(hours=1))
    assert (reply.action, reply.ref) == ("updated", "TD-1")
    assert reply.detail.startswith("requester replied"), reply.detail
    # A member's mail through the group proves nothing of who wrote it: no command runs.
    member = feed(database, inbox, through_group("morgan.lee@example.com", subject=subject,
                                                 body="#resolve replaced the fuser"),
                  T0 + timedelta(hours=2))
    assert member.detail == "reply from morgan.lee@example.com recorded"
    assert ticket(database, "TD-1").state != "resolved"


@pytest.mark.parametrize("raw", [
    b"From: a@example.org\r\nSubject: =?x-unknown?Q?caf=E9?=\r\nContent-Type: text/plain; "
    b"charset=x-unknown\r\n\r\ncaf\xe9 au lait\r\n",
    b"From: a@example.org\r\nSubject: broken\r\nContent-Type: multipart/mixed; boundary=zz\r\n"
    b"\r\n--zz\r\nContent-Type: text/plain\r\n\r\nno closing boundary\r\n",
    b"\x00\x01garbage without any header",
], ids=["unknown-charset", "malformed-mime", "garbage"])
def test_odd_mail_is_processed_or_quarantined_never_lost(database: Database, inbox: Inbox,
                                                         raw: bytes) -> None:
    outcome = feed(database, inbox, raw)
    assert outcome.action in ("opened", "quarantined")
    with database.reading() as session:
        kept = session.scalars(select(Message.raw)).all() + [
            q.raw for q in intake.list_quarantine(session)]
    assert raw in kept


def test_oversized_mail_is_quarantined_with_its_reason(database: Database, inbox: Inbox) -> None:
    raw = mail(attachment=b"\0" * (41 * 1024 * 1024))
    outcome = feed(database, inbox, raw)
    assert outcome.action == "quarantined"
    with database.reading() as session:
        (row,) = intake.list_quarantine(session)
        assert "limit" in row.reason and row.raw == raw
        assert row.subject == "Printer on floor 3 jams"


def test_thirty_megabyte_attachment_is_accepted(database: Database, inbox: Inbox) -> None:
    outcome = feed(database, inbox, mail(attachment=b"\1" * (30 * 1024 * 1024)))
    assert outcome.action == "opened"


def test_two_auto_replies_from_one_address_in_one_batch_stay_on_the_fast_path(
    database: Database, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    from daemon.inbound.ingest import process_batch

    auto = {"Auto-Submitted": "auto-replied"}
    mails = [(1, mail(subject="Out of office", headers=auto)),
             (2, mail(subject="Out of office again", headers=auto))]
    with caplog.at_level("INFO", logger="daemon.inbound.ingest"), database.transaction() as session:
        outcomes = process_batch(session, mails, inbox, T0)
    assert [o.action for o in outcomes] == ["recorded", "recorded"]
    assert "falls back" not in caplog.text


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_a_database_error_is_no_reason_to_quarantine_a_mail(database: Database,
                                                           inbox: Inbox) -> None:
    """A lock another daemon holds too long (or a deadlock, or a lost connection) fails the
    batch, to be redone; the mail is fine and must not be shelved in quarantine."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from daemon.store.models import Quarantine

    assert feed(database, inbox, mail(subject="VPN down")).action == "opened"
    with database.transaction() as other:  # another daemon working on TD-1
        other.execute(text("SELECT id FROM tickets WHERE ref = 'TD-1' FOR UPDATE"))
        with pytest.raises(OperationalError), database.transaction() as session:
            session.execute(text("SET LOCAL lock_timeout = '200ms'"))
            process_mail(session, mail(subject="Re: [TD-1] VPN down", body="Still down."),
                         inbox, T0, folder="INBOX", uid=2)
    with database.reading() as session:
        assert session.scalars(select(Quarantine)).all() == []
    assert feed(database, inbox, mail(subject="Re: [TD-1] VPN down", body="Still down.")
                ).action == "updated"  # redone once the lock is gone
