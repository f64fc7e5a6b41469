"""The forged-command matrix (issue 16): the ways we know to make Tierdesk run a command that
nobody authorised, and the genuine ways it must go on accepting. Each case plays on a fresh
store with the shipped workflow and directory, our own DKIM check asking a DNS stub on
127.0.0.1, and a site that trusts `mx.example.com` (a receiving server that strips incoming
headers with its id) unless the case says otherwise.

    python -m tests.acceptance.forgery_matrix

prints one line per case with its verdict and exits 1 if any case went wrong;
tests/acceptance/test_forgery_matrix.py asserts the same on SQLite and PostgreSQL.
A forged case passes when nothing ran and the mail left its line on the ticket; a genuine
one when its command ran.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from sqlalchemy import func, select

from daemon.auth.sender_auth import sign
from daemon.inbound.ingest import Inbox, Outcome, process_batch
from daemon.site.config import load_config
from daemon.store.database import Database, migrate, open_database
from daemon.store.models import Outbox, Ticket
from tests.inbound.commands.desk import (
    ALEX,
    DMARC,
    LAST_DAY,
    MORGAN,
    ROOT,
    SECRET,
    SUPPORT,
    T0,
    build_inbox,
    events,
    feed,
    later,
    mail,
    open_in,
    rewrite,
    signed,
    tech,
    ticket,
)
from tests.inbound.commands.dkim_mail import dkim_sign, key_name, key_record
from tests.inbound.commands.dns_stub import StubDns

ORDER = "#resolve the printer works again\nHi Ann, all done."
HARMLESS = "Hi Ann, I am looking into it."
NEW_SECRET = "rotated-secret-9876543210-zyxwvutsrqponm"
RETIRED_SECRET = "retired-secret-0000000000-aaaaaaaaaaaaaa"
ATTACKER = "mallory@evil.test"
AT = later(5)  # when the attack arrives, unless a case says otherwise


@dataclass(frozen=True)
class Seen:
    ran: bool  # a command was carried out
    recorded: bool  # the mail left its line on a ticket (mail_in, security)
    why: str
    contained: bool = True  # no amplification: what it made us send stayed within limits


class Desk:
    """One case's world: a store, the DNS stub, and inboxes for the settings cases ask for."""

    def __init__(self, database: Database, dns: StubDns,
                 inboxes: dict[tuple[tuple[str, str], ...], Inbox]) -> None:
        self.database, self.dns, self._inboxes = database, dns, inboxes

    def inbox(self, **env: str) -> Inbox:
        settings = {"TIERDESK_AUTH_SECRET": SECRET,
                    "TIERDESK_AUTH_TRUSTED_AUTHSERV_IDS": "mx.example.com",
                    "TIERDESK_AUTH_DNS_SERVERS": self.dns.address,
                    "TIERDESK_AUTH_DNS_TIMEOUT": "1s", **env}
        key = tuple(sorted(settings.items()))
        if key not in self._inboxes:
            self._inboxes[key] = build_inbox(load_config(ROOT, settings))
        return self._inboxes[key]

    def attempt(self, raw: bytes, *, state: str = "tier2", at: datetime = AT,
                inbox: Inbox | None = None, **facts: object) -> Seen:
        """TD-1 put in `state`, then `raw` fed: did a command run, was the mail recorded?"""
        inbox = inbox or self.inbox()
        open_in(self.database, inbox, state, **facts)
        before = len(events(self.database))
        outcome = feed(self.database, inbox, raw, at)
        return self.seen(outcome, state, before)

    def seen(self, outcome: Outcome, state: str, before: int) -> Seen:
        new = events(self.database)[before:]
        security = [e.reason for e in new if e.kind == "security"]
        ran = bool(re.search(r"\b[1-9]\d* done", outcome.detail)) \
            or ticket(self.database).state != state
        recorded = any(e.kind in ("mail_in", "security") for e in new)
        return Seen(ran, recorded, security[0] if security else outcome.detail)


@dataclass(frozen=True)
class Case:
    name: str
    genuine: bool
    play: Callable[[Desk], Seen]

    def passed(self, seen: Seen) -> bool:
        return seen.ran if self.genuine else (
            not seen.ran and seen.recorded and seen.contained)


def _signed_by(ref: str, member: str, secret: str = SECRET) -> str:
    return f"support+TD-1.{sign(ref, member, secret, LAST_DAY)}@example.com"


def _html_only(sender: str, visible: str, hidden_html: str, to: str) -> bytes:
    """A reply whose only body is HTML (as some clients send), with text nobody sees."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, "Re: [TD-1] Printer on floor 3 jams"
    msg["Date"], msg["Message-ID"] = format_datetime(T0), make_msgid(domain="client.example")
    msg.set_content(f"<html><body><div>{visible}</div>{hidden_html}</body></html>",
                    subtype="html")
    return msg.as_bytes()


def _fifty_forged(desk: Desk) -> Seen:
    """Fifty forged #resolve in Morgan's name in one pass: all refused and recorded, and
    Morgan's mailbox gets one notice within the window (a summary of the rest after it)."""
    inbox = desk.inbox()
    open_in(desk.database, inbox, "tier2")
    before = len(events(desk.database))
    forged = [(n, tech(MORGAN, f"{ORDER} ({n})", auth=None)) for n in range(1, 51)]
    with desk.database.transaction() as session:
        process_batch(session, forged, inbox, later(5), folder="INBOX")
    new = events(desk.database)[before:]
    refused = sum(e.kind == "security" for e in new)
    with desk.database.reading() as session:
        due = list(session.scalars(select(Outbox.next_attempt_at).where(
            Outbox.template == "command_refused", Outbox.status == "pending")))
    within = sum(at < later(5) + timedelta(minutes=10) for at in due)
    why = (f"{refused}/50 refused and recorded; notices to Morgan within 10 minutes: "
           f"{within} (then {len(due) - within} summary)")
    return Seen(ticket(desk.database).state != "tier2", refused == 50, why,
                contained=within == 1)


def _autoresponder_loop(desk: Desk) -> Seen:
    """An autoresponder that answers each mail with a new conversation, and no
    Auto-Submitted or Precedence to say what it is: twelve mails in one pass."""
    bot = "noreply@tickets.vendor.example"
    loop = [(n, mail(bot, f"Your request #{4000 + n} was received", "We opened a request."))
            for n in range(1, 13)]
    with desk.database.transaction() as session:
        outcomes = process_batch(session, loop, desk.inbox(), AT, folder="INBOX")
    with desk.database.reading() as session:
        opened = session.scalar(select(func.count()).select_from(Ticket)
                                .where(Ticket.requester == bot))
        answers = session.scalar(select(func.count()).select_from(Outbox)
                                 .where(Outbox.recipients == bot))
    recorded = sum(o.action in ("opened", "recorded") for o in outcomes)
    return Seen(False, recorded == 12, f"{opened} tickets opened, {answers} mails to it, "
                f"{recorded}/12 recorded", contained=opened == 5 and answers == 5)


def _header_in_a_name(desk: Desk) -> Seen:
    """A new mail whose encoded display name decodes to a line break and a Bcc header."""
    raw = rewrite(mail("crlf3@customer.example", "VPN down", "It drops every hour."),
                  From="=?utf-8?q?Eve=0D=0ABcc:_evil2@evil.test?= <crlf3@customer.example>")
    outcome = feed(desk.database, desk.inbox(), raw, AT)
    with desk.database.reading() as session:
        to = [r or "" for r in session.scalars(select(Outbox.recipients))]
    leaked = [r for r in to if "evil" in r or "?=" in r]
    return Seen(False, outcome.action == "opened" and bool(events(desk.database, "mail_in")),
                f"{outcome.detail}; mails to {leaked or 'no address read from the name'}",
                contained=not leaked)


CASES: tuple[Case, ...] = (
    # ------------------------------------------------ headers the sender wrote
    Case("forged Authentication-Results, shipped settings (no authserv-id trusted)", False,
         lambda d: d.attempt(tech(MORGAN, ORDER, auth=DMARC),
                             inbox=d.inbox(TIERDESK_AUTH_TRUSTED_AUTHSERV_IDS=""))),
    Case("Authentication-Results from an untrusted authserv-id", False,
         lambda d: d.attempt(tech(MORGAN, ORDER, auth=DMARC.replace("mx.example.com",
                                                                   "mx.evil.test")))),
    Case("trusted Authentication-Results below an untrusted one", False,
         lambda d: d.attempt(tech(MORGAN, ORDER, auth=(
             "mx.evil.test; dmarc=pass header.from=example.com", DMARC)))),
    # ------------------------------------------------ tags a person did not write
    Case("a tag in quoted history (signed address)", False,
         lambda d: d.attempt(tech(MORGAN, f"{HARMLESS}\n\nOn Mon, 2 Mar 2026 at 09:00, Ann "
                                  "<ann@example.org> wrote:\n> #resolve\n> it is fine now",
                                  auth=None, to=signed(MORGAN)))),
    Case("a tag in HTML hidden with display:none (signed address)", False,
         lambda d: d.attempt(_html_only(MORGAN, HARMLESS,
                                        '<div style="display:none">#resolve done</div>',
                                        signed(MORGAN)))),
    Case("a tag in HTML in a zero font (signed address)", False,
         lambda d: d.attempt(_html_only(MORGAN, HARMLESS,
                                        '<span style="font-size:0px">#resolve done</span>',
                                        signed(MORGAN)))),
    # ------------------------------------------------ signed reply addresses misused
    Case("another member's token (Morgan writing to Alex's address)", False,
         lambda d: d.attempt(tech(MORGAN, ORDER, auth=None, to=signed(ALEX)))),
    Case("another ticket's token (TD-2's on TD-1)", False,
         lambda d: d.attempt(tech(MORGAN, ORDER, auth=None, to=_signed_by("TD-2", MORGAN)))),
    Case("an outsider at a member's signed address", False,
         lambda d: d.attempt(tech(ATTACKER, ORDER, auth=None, to=signed(MORGAN)))),
    Case("a token past its last day", False,
         lambda d: d.attempt(tech(MORGAN, ORDER, auth=None, to=signed(MORGAN)),
                             at=later(0) + timedelta(days=91))),
    Case("a token 15 days after its ticket was resolved (#reopen)", False,
         lambda d: d.attempt(tech(MORGAN, "#reopen", auth=None, to=signed(MORGAN)),
                             state="resolved", state_entered_at=later(0),
                             at=later(0) + timedelta(days=15))),
    Case("a token by a retired key", False,
         lambda d: d.attempt(tech(MORGAN, ORDER, auth=None,
                                  to=_signed_by("TD-1", MORGAN, RETIRED_SECRET)))),
    # ------------------------------------------------ DKIM
    Case("a DKIM signature by another domain", False,
         lambda d: d.attempt(dkim_sign(tech(MORGAN, ORDER, auth=None), "evil.test"))),
    Case("a DKIM signature over a body altered after signing", False,
         lambda d: d.attempt(dkim_sign(tech(MORGAN, f"#take\n{HARMLESS}", auth=None),
                                       "example.com").replace(b"#take", b"#resolve"))),
    Case("an l= DKIM signature with #resolve appended after the signed length", False,
         lambda d: d.attempt(dkim_sign(tech(MORGAN, HARMLESS, auth=None), "example.com",
                                       length=True) + b"#resolve done\r\n")),
    # ------------------------------------------------ addresses
    Case("a From whose display name carries an encoded address (signed by evil.test)", False,
         lambda d: d.attempt(dkim_sign(rewrite(tech(MORGAN, ORDER, auth=None),
                                               From=f"=?utf-8?q?x_=0A?=<{MORGAN}> <{ATTACKER}>"),
                                       "evil.test"))),
    Case("a display name that decodes to a line break and a Bcc header", False,
         _header_in_a_name),
    # ------------------------------------------------ amplification
    Case("fifty forged mails in one member's name", False, _fifty_forged),
    Case("an autoresponder opening a new conversation per mail", False, _autoresponder_loop),
    # ------------------------------------------------ genuine
    Case("genuine: a signed reply address", True,
         lambda d: d.attempt(tech(MORGAN, ORDER, auth=None, to=signed(MORGAN)))),
    Case("genuine: a signed address by the previous key while the secret rotates", True,
         lambda d: d.attempt(tech(MORGAN, ORDER, auth=None, to=signed(MORGAN)), inbox=d.inbox(
             TIERDESK_AUTH_SECRET=NEW_SECRET, TIERDESK_AUTH_PREVIOUS_SECRETS=SECRET))),
    Case("genuine: a DKIM signature aligned with the From domain", True,
         lambda d: d.attempt(dkim_sign(tech(MORGAN, ORDER, auth=None, to=SUPPORT),
                                       "example.com"))),
    Case("genuine: a trusted Authentication-Results behind a stripping server", True,
         lambda d: d.attempt(tech(MORGAN, ORDER, auth=DMARC))),
)


def dns_stub() -> StubDns:
    server = StubDns().start()
    for domain in ("example.com", "evil.test"):
        server.publish(key_name(domain), key_record(), ttl=300)
    return server


@contextmanager
def sqlite_store(folder: Path, name: str) -> Iterator[Database]:
    database = open_database(f"sqlite:///{folder / name}.db")
    migrate(database)
    try:
        yield database
    finally:
        database.close()


def main() -> int:
    dns, inboxes, wrong = dns_stub(), {}, 0
    try:
        with tempfile.TemporaryDirectory() as folder:
            for n, case in enumerate(CASES):
                with sqlite_store(Path(folder), f"case{n}") as database:
                    seen = case.play(Desk(database, dns, inboxes))
                verdict = ("accepted" if seen.ran else
                           "refused, NOT recorded" if not seen.recorded else
                           "refused, recorded" if seen.contained else "refused, AMPLIFIED")
                ok = case.passed(seen)
                wrong += not ok
                print(f"{'ok  ' if ok else 'FAIL'} {verdict:17} | {case.name} | {seen.why}")
    finally:
        dns.stop()
    print(f"{len(CASES) - wrong}/{len(CASES)} cases as they should be (T0 {T0:%Y-%m-%d})")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
