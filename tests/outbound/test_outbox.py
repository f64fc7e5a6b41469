"""Filling outbox rows in the caller's transaction, on SQLite and PostgreSQL: headers and MIME
structure of every template, threading, handoff contents, loop protection, skips and parks."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from daemon.outbound.attachments import complete
from daemon.outbound.loop_guard import record_auto_sender
from daemon.outbound.outbox_queue import claim
from daemon.outbound.writer import MailWriter, materialize
from daemon.store import messages, repository
from daemon.store.database import Database
from daemon.store.liveness import is_gone, this_process
from daemon.store.models import Message, Outbox, Ticket
from daemon.tickets.runtime import Runtime
from daemon.workflow.facts import EventRecord
from tests.outbound.helpers import (
    all_defects,
    events,
    header_id,
    new_ticket,
    parse,
    queue,
    rows,
    text_of,
)

# Each template with the role the workflow sends it to (command mails go to the actor).
TEMPLATE_ROLES = [
    ("acknowledgement", "requester"), ("status_update", "requester"),
    ("escalation_handoff", "team"), ("vendor_handoff", "vendor"), ("reminder", "team"),
    ("sla_warning", "escalation_manager"), ("resolution_notice", "requester"),
    ("bounce_alert", "escalation_manager"), ("command_receipt", "actor"),
    ("command_error", "actor"),
]
ADDRESSES = {"requester": "ann@example.org", "team": "tier1@example.com",
             "vendor": "support@vpnco.example", "escalation_manager": "dana.whitfield@example.com",
             "actor": "alex.chen@example.com"}


def inbound(session: Session, ticket: Ticket, now: datetime, *, sender: str = "ann@example.org",
            text: str = "It drops.", attachment: bytes | None = None,
            message_id: str | None = None) -> str:
    """Store a mail from `sender` on the ticket, the way ingest will."""
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = sender, "support@example.com", "VPN"
    mail["Message-ID"] = message_id or make_msgid(domain="example.org")
    mail.set_content(text)
    if attachment is not None:
        mail.add_attachment(attachment, maintype="image", subtype="png", filename="shot.png")
    messages.add_message(session, direction="in", message_id=str(mail["Message-ID"]), at=now,
                         raw=mail.as_bytes(), ticket=ticket, sender=sender, subject="VPN",
                         kind="human")
    return str(mail["Message-ID"])


@pytest.mark.parametrize(("template", "role"), TEMPLATE_ROLES)
def test_each_template_is_multipart_alternative_and_threaded(
        database: Database, writer: MailWriter, now: datetime, template: str, role: str) -> None:
    with database.transaction() as session:
        ticket = new_ticket(session, now, vendor="vpnco", assignee="morgan.lee@example.com")
        row = queue(session, ticket, template, role, now, writer)
        ref = ticket.ref
    [stored] = rows(database)
    assert stored.status == "pending" and stored.body is not None
    assert stored.recipients == ADDRESSES[role]
    message = parse(stored.body)
    assert all_defects(message) == []
    assert message.get_content_type() == "multipart/alternative"
    plain, page = message.iter_parts()
    assert (plain.get_content_type(), page.get_content_type()) == ("text/plain", "text/html")
    assert ref in text_of(plain) and ref in text_of(page)
    assert row.message_id == stored.message_id
    assert message["Message-ID"] == header_id(stored.message_id)
    assert message["Subject"].startswith(f"[{ref}] ") and message["Subject"] == stored.subject
    assert message["To"].addresses[0].addr_spec == ADDRESSES[role]
    assert str(message["From"]) == "IT Support <support@example.com>"
    assert message["Reply-To"].addresses[0].addr_spec == f"support+{ref}@example.com"
    root = f"<{ref.lower()}.ticket@example.com>"
    assert message["In-Reply-To"] == root and message["References"].split() == [root]
    expected = "auto-replied" if role == "requester" else "auto-generated"
    assert message["Auto-Submitted"] == expected
    assert message["Date"].datetime == now


def test_a_mail_to_the_requester_answers_their_latest_mail(
        database: Database, writer: MailWriter, now: datetime) -> None:
    with database.transaction() as session:
        ticket = new_ticket(session, now)
        first = inbound(session, ticket, now)
        last = inbound(session, ticket, now + timedelta(minutes=5))
        queue(session, ticket, "status_update", "requester", now, writer)
        handoff = queue(session, ticket, "reminder", "team", now, writer)
        ref = ticket.ref
    message = parse(rows(database)[0].body or b"")
    assert message["In-Reply-To"] == last
    assert message["References"].split() == [f"<{ref.lower()}.ticket@example.com>", first, last]
    # Teams never saw the requester's mail: their mails reference the ticket's root only.
    assert parse(handoff.body or b"")["References"] == f"<{ref.lower()}.ticket@example.com>"


def test_the_handoff_carries_the_whole_timeline_and_the_attachments(
        database: Database, writer: MailWriter, now: datetime) -> None:
    picture = b"\x89PNG\r\n" + bytes(range(256))
    with database.transaction() as session:
        ticket = new_ticket(session, now)
        inbound(session, ticket, now, text="VPN drops every 5 minutes since the update.",
                attachment=picture)
        note = EventRecord("note", "alex.chen@example.com", "tier1", "tier1",
                           "reinstalled the client, no change", {"internal": True})
        repository.add_events(session, ticket, [note], now + timedelta(minutes=10))
        inbound(session, ticket, now + timedelta(minutes=20),
                text="Still broken at home too.\n\nOn Mon, 2 Mar 2026, Ann wrote:\n"
                     "> VPN drops every 5 minutes since the update.\n")
        team = queue(session, ticket, "escalation_handoff", "team", now, writer)
        vendor = queue(session, ticket, "vendor_handoff", "vendor", now, writer,
                       vendor="vpnco", argument="Client 5.2 drops the tunnel every 300s.")
        # The row refers to the stored file; the sender puts it back (outbound/attachments.py).
        assert [f["filename"] for f in team.attachments] == ["shot.png"]
        assert picture not in (team.body or b"")
        whole = complete(session, team.body or b"", team.attachments)
    handoff = parse(whole)
    assert handoff.get_content_type() == "multipart/mixed"
    text = text_of(handoff.get_body(("plain",)))
    for expected in ("VPN drops every 5 minutes since the update.", "Still broken at home too.",
                     "reinstalled the client, no change", "alex.chen@example.com",
                     "(internal)", "shot.png", "Requester:   ann@example.org", "Respond by:"):
        assert expected in text, expected
    # A reply shows its new text only, not the history it quotes.
    assert text.count("VPN drops every 5 minutes since the update.") == 1
    [attached] = list(handoff.iter_attachments())
    assert attached.get_filename() == "shot.png" and attached.get_content() == picture
    external = text_of(parse(vendor.body or b"").get_body(("plain",)))
    assert "Client 5.2 drops the tunnel" in external
    for secret in ("reinstalled the client", "Still broken", "ann@example.org", "shot.png"):
        assert secret not in external, secret


def test_runtime_hook_renders_in_the_same_transaction(database: Database, runtime: Runtime,
                                                      now: datetime) -> None:
    with database.transaction() as session:
        runtime.open_ticket(session, requester="ann@example.org", subject="VPN down for all users",
                            body="nobody can connect", now=now)
    rendered = rows(database)
    assert [(r.template, r.recipients) for r in rendered] == [
        ("acknowledgement", "ann@example.org"), ("escalation_handoff", "tier2@example.com")]
    assert all(r.body is not None and r.status == "pending" for r in rendered)


def test_materialize_leaves_rendered_rows_alone(database: Database, writer: MailWriter,
                                              now: datetime) -> None:
    with database.transaction() as session:
        row = queue(session, new_ticket(session, now), "reminder", "team", now, writer)
        body = row.body
        assert materialize(session, [row], writer, now + timedelta(hours=1)) == []
        assert row.body == body


# ------------------------------------------------------------------ skipping and parking

def skipped(database: Database) -> list[tuple[str, str]]:
    return [(r.status, r.last_error or "") for r in rows(database)]


def test_nobody_to_send_to_is_skipped_and_noted(database: Database, writer: MailWriter,
                                                now: datetime) -> None:
    with database.transaction() as session:
        queue(session, new_ticket(session, now), "vendor_handoff", "vendor", now, writer)
    assert skipped(database) == [("skipped", "the ticket has no vendor")]
    [event] = events(database, "mail_skipped")
    assert event.reason == "the ticket has no vendor" and event.actor == "outbox"
    assert event.data["template"] == "vendor_handoff"


def test_a_template_that_fails_parks_the_row_with_the_reason(
        database: Database, writer: MailWriter, now: datetime) -> None:
    with database.transaction() as session:
        queue(session, new_ticket(session, now), "no_such_template", "team", now, writer)
    [(status, reason)] = skipped(database)
    assert status == "parked" and "no_such_template.txt.j2" in reason
    assert len(events(database, "mail_parked")) == 1


@pytest.mark.parametrize("address", ["support@example.com", "Support+TD-9@example.com",
                                     "support+anything@EXAMPLE.com"])
def test_no_mail_to_our_own_address(database: Database, writer: MailWriter, now: datetime,
                                    address: str) -> None:
    with database.transaction() as session:
        queue(session, new_ticket(session, now, requester=address), "acknowledgement",
              "requester", now, writer)
    [(status, reason)] = skipped(database)
    assert status == "skipped" and "our own address" in reason


def test_no_mail_to_an_address_that_sent_automatic_mail(
        database: Database, writer: MailWriter, now: datetime) -> None:
    with database.transaction() as session:
        ticket = new_ticket(session, now, requester="Ann@Example.org")
        record_auto_sender(session, "ann@example.org", now - timedelta(hours=2), "auto-reply")
        queue(session, ticket, "acknowledgement", "requester", now, writer)
        # A day later the requester is a person again.
        queue(session, ticket, "status_update", "requester", now + timedelta(days=1, hours=1),
              writer)
    assert [r.status for r in rows(database)] == ["skipped", "pending"]
    assert "sent automatic mail" in (rows(database)[0].last_error or "")


def test_at_most_the_hourly_limit_to_one_outside_address(
        database: Database, writer: MailWriter, now: datetime) -> None:
    limit = writer.mail.max_auto_replies_per_hour
    with database.transaction() as session:
        ticket = new_ticket(session, now)
        for n in range(limit + 2):
            queue(session, ticket, "status_update", "requester", now + timedelta(minutes=n),
                  writer)
            queue(session, ticket, "reminder", "team", now + timedelta(minutes=n), writer)
        queue(session, ticket, "status_update", "requester", now + timedelta(minutes=70), writer)
    statuses = [(r.to_role, r.status) for r in rows(database)]
    requester = [s for role, s in statuses if role == "requester"]
    assert requester == ["pending"] * limit + ["skipped"] * 2 + ["pending"]
    assert all(s == "pending" for role, s in statuses if role == "team")  # ours: no limit
    reasons = [e.reason for e in events(database, "mail_skipped")]
    assert len(reasons) == 2 and f"already got {limit} automatic mails" in reasons[0]


def test_header_injection_in_ticket_facts_never_reaches_a_header(
        database: Database, writer: MailWriter, now: datetime) -> None:
    with database.transaction() as session:
        ticket = new_ticket(session, now, subject="Help\r\nBcc: victim@example.org")
        queue(session, ticket, "acknowledgement", "requester", now, writer)
        bad = new_ticket(session, now, requester="ann@example.org\nBcc: victim@example.org")
        queue(session, bad, "acknowledgement", "requester", now, writer)
    good, refused = rows(database)
    message = parse(good.body or b"")
    assert message["Bcc"] is None and "victim" not in str(message["To"])
    assert message["Subject"] == f"[{ticket.ref}] Help Bcc: victim@example.org"
    assert refused.status == "skipped" and "line break" in (refused.last_error or "")


def test_rows_from_the_store_are_rendered_once_per_call(database: Database, writer: MailWriter,
                                                       now: datetime) -> None:
    with database.transaction() as session:
        ticket = new_ticket(session, now)
        first = queue(session, ticket, "reminder", "team", now)
        second = queue(session, ticket, "reminder", "team", now)
        assert materialize(session, [first, second], writer, now) == [first, second]
    with database.reading() as session:
        assert session.scalar(select(Outbox.body).where(Outbox.id == first.id)) is not None


def test_claims_of_a_process_that_is_gone_are_taken_again_at_once(
        database: Database, writer: MailWriter, now: datetime) -> None:
    """A sender killed mid-send: its rows go again when the daemon runs again, not after
    the 15-minute lease; the claims of live or unknowable processes wait for their lease."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    here, _, namespace = this_process().rsplit(":", 2)
    claimers = {"gone": f"{here}:{gone.pid}:{namespace}",
                "alive": f"{here}:{os.getppid()}:{namespace}",
                "other host": f"elsewhere.example:{gone.pid}:{namespace}",
                "other namespace": f"{here}:{gone.pid}:{namespace.split('.')[0]}.1",
                "other boot": f"{here}:{gone.pid}:0.{namespace.split('.')[1]}", "unknown": None}
    with database.transaction() as session:
        ticket = new_ticket(session, now)
        for _ in claimers:
            queue(session, ticket, "reminder", "team", now, writer)
    lease = now + timedelta(minutes=15)
    for claimer, row in zip(claimers.values(), rows(database), strict=True):
        with database.transaction() as session:
            session.execute(update(Outbox).where(Outbox.id == row.id).values(
                status="sending", next_attempt_at=lease, claimed_by=claimer))
    later = now + timedelta(minutes=1)
    with database.transaction() as session:
        retaken = claim(session, later, 10, later + timedelta(minutes=15))
    by_id = {row.id: name for name, row in zip(claimers, rows(database), strict=True)}
    assert [by_id[c.id] for c in retaken] == ["gone"]
    assert {r.claimed_by for r in rows(database) if r.id == retaken[0].id} == {this_process()}
    assert is_gone(claimers["gone"]) and not any(
        is_gone(c) for c in (claimers["alive"], claimers["other host"],
                             claimers["other namespace"], claimers["other boot"],
                             this_process(), "x", f"{here}:0:{namespace}"))


def test_a_claim_loads_no_more_than_its_byte_budget(database: Database, writer: MailWriter,
                                                   now: datetime) -> None:
    with database.transaction() as session:
        ticket = new_ticket(session, now)
        for _ in range(5):
            queue(session, ticket, "reminder", "team", now, writer)
    size = len(rows(database)[0].body or b"")
    lease = now + timedelta(minutes=15)
    with database.transaction() as session:
        assert len(claim(session, now, 10, lease, max_bytes=size * 2 + 1)) == 2
        assert len(claim(session, now, 10, lease, max_bytes=1)) == 1  # one always goes
        assert len(claim(session, now, 10, lease)) == 2
    assert [r.status for r in rows(database)] == ["sending"] * 5


def test_claim_puts_the_files_back_or_says_why_it_cannot(
        database: Database, writer: MailWriter, now: datetime) -> None:
    picture = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    with database.transaction() as session:
        ticket = new_ticket(session, now)
        inbound(session, ticket, now, attachment=picture)
        queue(session, ticket, "escalation_handoff", "team", now, writer)
        queue(session, ticket, "escalation_handoff", "team", now, writer)
    lease = now + timedelta(minutes=15)
    with database.transaction() as session:
        [first] = claim(session, now, 1, lease)
    [attached] = list(parse(first.body).iter_attachments())
    assert attached.get_content() == picture and first.problem is None
    with database.transaction() as session:  # the stored mail is gone (deleted by hand)
        session.execute(update(Message).values(raw=None))
        [second] = claim(session, now, 1, lease)
    assert second.problem is not None and "gone" in second.problem
