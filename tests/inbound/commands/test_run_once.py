"""End to end through `run --once`: the embedded IMAP server, a real aiosmtpd SMTP server and
a SQLite file, configured by TIERDESK_* variables (the secret too). A member answers the
handoff they received, from their mail client, to its signed Reply-To; a forged mail in
their name is refused and they are told at their real address."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from daemon.auth.sender_auth import check_token
from daemon.cli.main import main
from daemon.store.database import open_database
from daemon.store.models import Ticket
from tests.inbound.commands.desk import MORGAN, REQUESTER, SECRET, mail
from tests.inbound.imap.servers import Account, EmbeddedServer, append
from tests.outbound.smtp_server import Received, SmtpServer, smtp_server  # noqa: F401
from tests.sites import make_site

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Site:
    root: Path
    imap: EmbeddedServer
    account: Account
    smtp: SmtpServer
    url: str

    def run_once(self, capsys: pytest.CaptureFixture[str]) -> str:
        code = main(["run", "--once", "--config", str(self.root)])
        out, err = capsys.readouterr()
        assert code == 0 and "Traceback" not in out + err, out + err
        return out

    def deliver(self, raw: bytes) -> None:
        append(self.imap, self.account, raw)

    def ticket(self) -> Ticket:
        database = open_database(self.url)
        try:
            with database.reading() as session:
                found = session.scalars(select(Ticket)).one()
                session.expunge(found)
                return found
        finally:
            database.close()


@pytest.fixture
def site(tmp_path: Path, embedded_imap: EmbeddedServer, smtp_server: SmtpServer,  # noqa: F811
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    root, account, url = make_site(tmp_path, embedded_imap, smtp_server, monkeypatch,
                                   TIERDESK_AUTH_SECRET=SECRET)
    yield Site(root, embedded_imap, account, smtp_server, url)


def text(received: Received) -> str:
    body = received.message.get_body(("plain",))
    assert isinstance(body, EmailMessage)
    return str(body.get_content())


def to(received: list[Received], address: str) -> list[Received]:
    return [r for r in received if r.rcpt_tos == (address,)]


def test_a_member_works_the_ticket_from_their_mail_client(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    site.deliver(mail(REQUESTER, "VPN down for the whole sales team", "Nobody can connect."))
    assert "1 opened" in site.run_once(capsys)
    first = site.smtp.wait_for(3)  # acknowledgement, a handoff to each tier2 member
    [handoff] = to(first, MORGAN)
    # Morgan's own signed address (its last day is the daemon's today + 90 days).
    [reply_to] = handoff.message["Reply-To"].addresses
    local, token = reply_to.username.split(".")
    assert (reply_to.display_name, local, reply_to.domain) == (
        "IT Support", "support+TD-1", "example.com")
    assert check_token(token, "TD-1", MORGAN, [SECRET], date.min).ok
    # Morgan's client answers the handoff: To is its Reply-To; no Authentication-Results.
    reply = mail(MORGAN, f"Re: {handoff.message['Subject']}",
                 "#take\n#resolve restarted the VPN gateway\nAnn, it works again.",
                 to=reply_to.addr_spec, in_reply_to=str(handoff.message["Message-ID"]))
    site.deliver(reply)
    site.run_once(capsys)
    assert site.ticket().state == "resolved"
    later = site.smtp.wait_for(len(first) + 3)[len(first):]
    [receipt] = to(later, MORGAN)
    assert "Done: #take, #resolve" in str(receipt.message["Subject"])
    assert sorted(str(r.message["Subject"]) for r in to(later, REQUESTER)) == [
        "[TD-1] VPN down for the whole sales team"] * 2
    to_ann = "\n".join(text(r) for r in to(later, REQUESTER))
    assert "restarted the VPN gateway" in to_ann and "Ann, it works again." in to_ann
    assert "#take" not in to_ann and "#resolve" not in to_ann


def test_a_forged_mail_is_refused_and_the_member_told(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    site.deliver(mail(REQUESTER, "VPN down for the whole sales team", "Nobody can connect."))
    site.run_once(capsys)
    first = site.smtp.wait_for(3)
    forged = mail(f"Morgan Lee <{MORGAN}>", "Re: [TD-1] VPN down for the whole sales team",
                  "#resolve nothing to do\nAnn, please stop writing.",
                  auth="mx.attacker.example; dmarc=pass header.from=example.com")
    site.deliver(forged)
    site.run_once(capsys)
    assert site.ticket().state == "tier2"
    later = site.smtp.wait_for(len(first) + 1)[len(first):]
    assert [r.rcpt_tos for r in later] == [(MORGAN,)]
    notice = later[0]
    assert "Refused: a mail in your name on TD-1" in str(notice.message["Subject"])
    assert "mx.attacker.example" in text(notice) and "stop writing" not in text(notice)
