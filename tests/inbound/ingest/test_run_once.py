"""`tierdesk run --once` end to end: the embedded IMAP server, a real aiosmtpd SMTP server and
a SQLite file, with the daemon configured the way an operator would (a config folder plus
TIERDESK_* variables). A mail arrives, a ticket opens, its acknowledgement is delivered."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from sqlalchemy import select, update

from daemon.cli.main import main
from daemon.store import repository
from daemon.store.database import Database, open_database
from daemon.store.models import Outbox
from tests.inbound.imap.servers import Account, EmbeddedServer, append, free_port
from tests.inbound.ingest.mails import mail
from tests.outbound.smtp_server import (  # noqa: F401  (smtp_server: the fixture)
    Received,
    SmtpServer,
    smtp_server,
)
from tests.sites import make_site

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Site:
    root: Path
    imap: EmbeddedServer
    account: Account
    smtp: SmtpServer
    database_url: str

    def run(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        code = main([*args, "--config", str(self.root)])
        out, err = capsys.readouterr()
        return code, out, err

    def outbox(self) -> list[Outbox]:
        database = open_database(self.database_url)
        try:
            with database.reading() as session:
                return list(session.scalars(select(Outbox).order_by(Outbox.id)))
        finally:
            database.close()

    def store(self) -> Database:
        return open_database(self.database_url)


@pytest.fixture
def site(tmp_path: Path, embedded_imap: EmbeddedServer, smtp_server: SmtpServer,  # noqa: F811
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """A copy of the shipped config; servers and database from TIERDESK_* variables."""
    root, account, url = make_site(tmp_path, embedded_imap, smtp_server, monkeypatch)
    yield Site(root, embedded_imap, account, smtp_server, url)


def to(received: list[Received], address: str) -> Received:
    """The one mail received for `address`."""
    [found] = [r for r in received if address in r.rcpt_tos]
    return found


def lines_starting(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def no_traceback(out: str, err: str) -> None:
    assert "Traceback" not in out + err


def test_run_once_delivers_the_acknowledgement(site: Site,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    append(site.imap, site.account, mail(message_id="<printer@example.org>"))
    code, out, err = site.run(capsys, "run", "--once")
    assert code == 0, out + err
    # The acknowledgement, and the front line's notice (no triage rule routes a printer jam).
    assert "imap: 1 mail: 1 opened" in out and "smtp: 2 sent, 0 to retry, 0 parked" in out
    received = to(site.smtp.wait_for(2), "ann@example.org")
    ack = received.message
    assert received.rcpt_tos == ("ann@example.org",)
    assert "[TD-1]" in str(ack["Subject"])
    assert str(ack["Auto-Submitted"]).startswith("auto-")
    [row] = [r for r in site.outbox() if r.template == "acknowledgement"]
    assert row.status == "sent" and str(ack["Message-ID"]) == f"<{row.message_id}>"
    assert "printer@example.org" in str(ack["In-Reply-To"])
    assert ack.get_content_type() == "multipart/alternative"
    parts = {part.get_content_type(): part for part in ack.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}
    body = parts["text/plain"]
    assert isinstance(body, EmailMessage) and "TD-1" in body.get_content()
    no_traceback(out, err)


@pytest.mark.parametrize("requester_id", ["CAJ+Xy9ZqWm=AbC@mail.gmail.com",
                                          "q1 mailer.example@mailer.example"])
def test_the_acknowledgement_repeats_the_requesters_message_id_exactly(
        site: Site, capsys: pytest.CaptureFixture[str], requester_id: str) -> None:
    # Written into the bytes: the stdlib's EmailMessage mangles an id with a space.
    raw = mail(message_id="<slot@x>").replace(b"<slot@x>", f"<{requester_id}>".encode())
    append(site.imap, site.account, raw)
    code, out, err = site.run(capsys, "run", "--once")
    assert code == 0, out + err
    received = to(site.smtp.wait_for(2), "ann@example.org")
    headers = received.data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert f"\r\nIn-Reply-To: <{requester_id}>\r\n" in headers
    assert f" <{requester_id}>" in headers.split("\r\nReferences: ", 1)[1]


def test_a_second_run_does_nothing_new(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    append(site.imap, site.account, mail())
    assert site.run(capsys, "run", "--once")[0] == 0
    site.smtp.wait_for(2)
    code, out, _ = site.run(capsys, "run", "--once")
    assert code == 0
    assert "imap: no new mail" in out and "smtp: 0 sent, 0 to retry, 0 parked" in out
    assert len(site.smtp.received) == 2 and len(site.outbox()) == 2
    assert site.run(capsys, "tickets", "--json")[1].count('"ref"') == 1


def test_smtp_down_keeps_the_mail_queued_with_one_line(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    append(site.imap, site.account, mail())
    site.smtp.stop()
    code, out, err = site.run(capsys, "run", "--once")
    assert code == 1
    assert "imap: 1 mail: 1 opened" in out  # ingest is not held up by SMTP
    [line] = lines_starting(out, "smtp:")
    assert "mail stays queued" in line
    no_traceback(out, err)
    rows = site.outbox()
    assert [r.template for r in rows] == ["acknowledgement", "new_ticket"]
    assert all(r.status == "pending" and r.next_attempt_at > datetime.now(UTC) for r in rows)
    site.smtp.start()
    database = site.store()
    try:  # the backoff has run out
        with database.transaction() as session:
            session.execute(update(Outbox).values(next_attempt_at=datetime.now(UTC)))
    finally:
        database.close()
    code, out, _ = site.run(capsys, "run", "--once")
    assert code == 0 and "smtp: 2 sent" in out
    assert [r.status for r in site.outbox()] == ["sent", "sent"]
    assert len(site.smtp.wait_for(2)) == 2


@pytest.mark.parametrize("problem", ["refused", "password"])
def test_imap_unreachable_is_one_imap_line(site: Site, problem: str,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    if problem == "refused":
        monkeypatch.setenv("TIERDESK_IMAP_PORT", str(free_port()))
    else:
        monkeypatch.setenv("TIERDESK_IMAP_PASSWORD", "wrong")
    append(site.imap, site.account, mail())
    code, out, err = site.run(capsys, "run", "--once")
    assert code == 1
    [line] = lines_starting(out, "imap:")
    assert ("cannot connect" if problem == "refused" else "login refused") in line
    assert "mail stays in the mailbox" in line
    assert "clock: 0 timers fired" in out and "smtp: 0 sent" in out  # the rest still ran
    no_traceback(out, err)
    assert site.outbox() == []


SECRET = "run-once-test-secret-0123456789abcdefgh"  # TIERDESK_AUTH_SECRET: signed reply addresses
HELPDESK = ("sam.rivera@example.com", "priya.natarajan@example.com")  # config/teams.yaml
PRINTER = ("Hi,\n\nsince this morning I cannot print to the 3rd-floor printer.\n"
           "The queue says 'offline'; I restarted my laptop twice.\n\nPat")


def test_a_new_ticket_left_in_triage_tells_each_helpdesk_member_who_can_route_it(
        site: Site, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERDESK_AUTH_SECRET", SECRET)
    append(site.imap, site.account, mail(subject="Cannot print to the 3rd-floor printer",
                                         body=PRINTER, sender="Pat Doe <pat@example.org>"))
    code, out, err = site.run(capsys, "run", "--once")
    assert code == 0 and "smtp: 3 sent" in out, out + err
    received = site.smtp.wait_for(3)
    notices = [to(received, member) for member in HELPDESK]  # one mail each, not the team's
    reply_tos = [str(n.message["Reply-To"]) for n in notices]
    assert all(re.search(r"support\+TD-1\.[a-z0-9]+@example\.com", r) for r in reply_tos)
    assert len(set(reply_tos)) == 2  # each signed for its own member
    notice = notices[0].message
    assert str(notice["Subject"]) == "[TD-1] New ticket, P3: Cannot print to the 3rd-floor printer"
    body = notice.get_body(("plain",))
    assert isinstance(body, EmailMessage)
    text = body.get_content()
    for line in ["Requester:   pat@example.org", "Priority:    P3",
                 "Triage:      no triage rule matched", "Sort it by:",
                 "    since this morning I cannot print to the 3rd-floor printer.",
                 "#take", "#route tier1", "#priority P2", "#resolve <what fixed it>"]:
        assert line in text, f"{line!r} not in:\n{text}"
    # Sam answers his own notice: the signed address authenticates his #route.
    append(site.imap, site.account, reply(notices[0], "sam.rivera@example.com", "#route tier1"))
    code, out, err = site.run(capsys, "run", "--once")
    assert code == 0, out + err
    later = site.smtp.wait_for(3 + 3)[3:]  # tier 1's two handoffs and Sam's receipt
    handoffs = {r.rcpt_tos[0]: str(r.message["Subject"]) for r in later}
    assert handoffs["alex.chen@example.com"].startswith("[TD-1] P3 handed to Tier 1 Support")
    assert handoffs["jordan.blake@example.com"].startswith("[TD-1] P3 handed to Tier 1")
    assert handoffs["sam.rivera@example.com"].startswith("[TD-1] Done: #route")
    database = site.store()
    try:
        with database.reading() as session:
            ticket = repository.get_ticket(session, "TD-1")
            assert ticket is not None and (ticket.state, ticket.team) == ("tier1", "tier1")
    finally:
        database.close()
    no_traceback(out, err)


def test_a_new_ticket_a_triage_rule_routes_gets_the_handoff_and_no_notice(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    append(site.imap, site.account, mail(subject="Email outage for the whole office"))
    code, out, err = site.run(capsys, "run", "--once")
    assert code == 0, out + err
    assert [(r.template, r.recipients) for r in site.outbox()] == [
        ("acknowledgement", "ann@example.org"), ("escalation_handoff", "tier2@example.com")]


def reply(original: Received, sender: str, text: str) -> bytes:
    """A member's answer to a mail they received, to its Reply-To, as a client writes it."""
    msg = original.message
    answer = EmailMessage()
    answer["From"], answer["To"] = sender, str(msg["Reply-To"])
    answer["Subject"] = f"Re: {msg['Subject']}"
    answer["Message-ID"] = make_msgid(domain="example.com")
    answer["In-Reply-To"] = answer["References"] = str(msg["Message-ID"])
    answer.set_content(f"{text}\n\nOn a day, Tierdesk wrote:\n> ...\n")
    return answer.as_bytes()
