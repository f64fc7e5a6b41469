"""drain() against real IMAP servers (a private Dovecot and the embedded server) and real
databases: what arrives by APPEND ends up as tickets, acknowledgements and \\Seen flags, once.

Each test gets a fresh IMAP account and an empty database; most run on SQLite, the core test
on PostgreSQL too.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from daemon.cli.main import main
from daemon.inbound.imap import Fetched, Mailbox
from daemon.inbound.imap_session import ImapError
from daemon.inbound.ingest_loop import IngestReport, drain
from daemon.service.app import Parts
from daemon.site.config import load_config
from daemon.store import intake, repository
from daemon.store.database import Database
from daemon.store.models import Message, Outbox, Quarantine, Ticket
from tests.inbound.imap.servers import (
    Account,
    DovecotServer,
    ImapTestServer,
    append,
    client,
    settings,
)
from tests.inbound.ingest.conftest import Connect
from tests.inbound.ingest.mails import bounce, mail

ROOT = Path(__file__).resolve().parents[3]
MAILS = ROOT / "tests" / "mails"
SQLITE_ONLY = pytest.mark.parametrize("database", ["sqlite"], indirect=True)
SEEN = b"\\Seen"


# ---------------------------------------------------------------- helpers (fixtures: conftest.py)

def append_all(server: ImapTestServer, account: Account, raws: Iterable[bytes],
               folder: str = "INBOX") -> None:
    """Many APPENDs over one connection (a connection per mail is slow on Dovecot)."""
    with client(server, account) as imap:
        for raw in raws:
            imap.append(folder, raw)


def flags(server: ImapTestServer, account: Account, folder: str = "INBOX") -> list[set[bytes]]:
    with client(server, account) as imap:
        imap.select_folder(folder, readonly=True)
        found = imap.fetch(imap.search("ALL"), ["FLAGS"])
    return [set(data[b"FLAGS"]) - {b"\\Recent"} for _, data in sorted(found.items())]


def uids(server: ImapTestServer, account: Account, folder: str = "INBOX") -> list[int]:
    with client(server, account) as imap:
        imap.select_folder(folder, readonly=True)
        return sorted(imap.search("ALL"))


def count(database: Database, model: type, *where: Any) -> int:
    with database.reading() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def subjects(database: Database) -> list[str]:
    with database.reading() as session:
        return list(session.scalars(select(Ticket.subject).order_by(Ticket.id)))


def cursor(database: Database) -> tuple[int, int] | None:
    with database.reading() as session:
        found = intake.get_cursor(session, "INBOX")
        return (found.uidvalidity, found.last_uid) if found else None


def numbered(n: int, **kwargs: Any) -> bytes:
    """A new report; each from its own person unless `sender` says (one address opens at
    most mail.max_new_tickets_per_hour tickets)."""
    kwargs.setdefault("sender", f"User {n} <user{n}@example.org>")
    return mail(subject=f"Problem number {n}", message_id=f"<problem-{n}@example.org>", **kwargs)


# Outbox rows per new ticket: the acknowledgement and the front line's new-ticket notice (to
# the helpdesk's address: no secret here, so no per-member split); no triage rule routes
# these mails.
PER_TICKET = 2


def ack_message_id(database: Database, ref: str) -> str:
    with database.reading() as session:
        row = session.scalars(select(Outbox).join(Ticket).where(
            Ticket.ref == ref, Outbox.template == "acknowledgement")).one()
        return row.message_id


def lf(raw: bytes) -> bytes:
    """Dovecot stores LF and serves CRLF: compare mails line-ending-blind."""
    return raw.replace(b"\r\n", b"\n")


# ---------------------------------------------------------------- new mail

def test_new_mail_opens_a_ticket_acknowledges_and_marks_seen(
        imap_server: ImapTestServer, imap_account: Account, database: Database, parts: Parts,
        connect: Connect) -> None:
    raw = mail(message_id="<new-1@example.org>")
    append(imap_server, imap_account, raw)
    box = connect()
    report = drain(box, database, parts.inbox)
    assert report.counts == {"opened": 1} and not report.uidvalidity_reset
    with database.reading() as session:
        ticket = repository.get_ticket(session, "TD-1")
        assert ticket is not None and ticket.requester == "ann@example.org"
        [stored] = session.scalars(select(Message)).all()
        [ack, notice] = session.scalars(select(Outbox).order_by(Outbox.id)).all()
    assert (stored.message_id, stored.ticket_id, lf(stored.raw or b"")) == (
        "new-1@example.org", ticket.id, lf(raw))
    assert (ack.template, ack.status, ack.recipients) == (
        "acknowledgement", "pending", "ann@example.org")
    assert (notice.template, notice.recipients) == ("new_ticket", "helpdesk@example.com")
    assert ack.subject is not None and "[TD-1]" in ack.subject
    assert flags(imap_server, imap_account) == [{SEEN}]
    assert cursor(database) == (box.uidvalidity, uids(imap_server, imap_account)[-1])
    assert drain(box, database, parts.inbox).total == 0  # nothing new, nothing again


@SQLITE_ONLY
def test_committed_but_unflagged_mail_is_flagged_not_processed_again(
        imap_server: ImapTestServer, imap_account: Account, database: Database, parts: Parts,
        connect: Connect) -> None:
    append_all(imap_server, imap_account, [mail(), mail(subject="Second")])
    box = connect()
    assert drain(box, database, parts.inbox).counts == {"opened": 2}
    with client(imap_server, imap_account) as imap:  # as if a crash came before the flags
        imap.select_folder("INBOX")
        imap.remove_flags(imap.search("ALL"), [SEEN])
    assert flags(imap_server, imap_account) == [set(), set()]
    assert drain(box, database, parts.inbox).total == 0
    assert flags(imap_server, imap_account) == [{SEEN}, {SEEN}]
    assert count(database, Ticket) == 2


@SQLITE_ONLY
def test_processed_mail_moves_to_the_processed_folder(
        imap_server: ImapTestServer, imap_account: Account, database: Database, parts: Parts,
        connect: Connect) -> None:
    append_all(imap_server, imap_account, [numbered(1), numbered(2)])
    box = connect(processed_folder="Processed")
    assert drain(box, database, parts.inbox).counts == {"opened": 2}
    assert uids(imap_server, imap_account) == []
    assert flags(imap_server, imap_account, "Processed") == [{SEEN}, {SEEN}]
    append(imap_server, imap_account, numbered(3))
    assert drain(box, database, parts.inbox).counts == {"opened": 1}
    assert len(uids(imap_server, imap_account, "Processed")) == 3
    assert subjects(database) == [f"Problem number {n}" for n in (1, 2, 3)]


@SQLITE_ONLY
def test_one_bad_mail_is_quarantined_and_the_batch_goes_on(
        imap_server: ImapTestServer, imap_account: Account, database: Database,
        connect: Connect) -> None:
    strict = Parts.build(load_config(ROOT, {"TIERDESK_MAIL_MAX_ATTACHMENTS": "0"}), database)
    append_all(imap_server, imap_account,
               [numbered(1), numbered(2, attachment=b"log"), numbered(3)])
    bad_uid = uids(imap_server, imap_account)[1]
    report = drain(connect(), database, strict.inbox)
    assert report.counts == {"opened": 2, "quarantined": 1}
    assert "over the limit of 0" in report.outcomes[0].detail
    with database.reading() as session:
        [row] = intake.list_quarantine(session)
    assert (row.folder, row.uid, row.subject) == ("INBOX", bad_uid, "Problem number 2")
    assert flags(imap_server, imap_account) == [{SEEN}] * 3  # set aside is processed too


# ---------------------------------------------------------------- threading

@SQLITE_ONLY
def test_replies_thread_each_way_and_count_as_messages_in(
        imap_server: ImapTestServer, imap_account: Account, database: Database, parts: Parts,
        connect: Connect, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    append(imap_server, imap_account, mail(message_id="<first@example.org>"))
    box = connect()
    drain(box, database, parts.inbox)
    ours = f"<{ack_message_id(database, 'TD-1')}>"
    append_all(imap_server, imap_account, [
        mail(subject="Re: We received your request", in_reply_to=ours, references=ours),
        mail(subject="Antwort", references=f"<first@example.org> {ours}"),
        mail(subject="AW: [TD-1] Printer on floor 3 jams"),
        mail(subject="one more thing", to="support+TD-1@example.com"),
        # A new mail and a reply to it in the same batch: the reply finds the fresh ticket.
        mail(subject="Monitor flickers", message_id="<monitor@example.org>",
             sender="bob@example.org"),
        mail(subject="Re: Monitor flickers", in_reply_to="<monitor@example.org>",
             sender="bob@example.org"),
    ])
    report = drain(box, database, parts.inbox)
    assert report.counts == {"updated": 5, "opened": 1}
    assert subjects(database) == ["Printer on floor 3 jams", "Monitor flickers"]
    monkeypatch.setenv("TIERDESK_DATABASE_URL",
                       database.url.render_as_string(hide_password=False))
    assert main(["tickets", "--json", "--config", str(ROOT)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {t["ref"]: t["messages_in"] for t in listed} == {"TD-1": 5, "TD-2": 2}


# ---------------------------------------------------------------- waiting for mail

@SQLITE_ONLY
@pytest.mark.parametrize("use_idle", [True, False], ids=["idle", "poll"])
def test_wait_wakes_up_for_new_mail_and_drain_takes_it(
        imap_server: ImapTestServer, imap_account: Account, database: Database, parts: Parts,
        connect: Connect, use_idle: bool) -> None:
    """The daemon's loop: wait, drain, repeat. With IDLE one wait is enough: it returns when
    the mail is announced; polling returns every poll_interval, mail or not."""
    box = connect(options={"use_idle": use_idle})
    assert drain(box, database, parts.inbox).total == 0
    arrived: list[float] = []

    def deliver() -> None:
        append(imap_server, imap_account, numbered(1))
        arrived.append(time.monotonic())

    sender = threading.Timer(0.3, deliver)
    sender.start()
    waits = 0
    try:
        while count(database, Ticket) == 0 and waits < 100:
            waits += box.wait(timeout_s=10)
            drain(box, database, parts.inbox)
    finally:
        sender.join()
    committed = time.monotonic() - arrived[0]
    assert count(database, Ticket) == 1 and committed < 5
    if use_idle:
        assert waits == 1
    print(f"\n{imap_server.kind} {'IDLE' if use_idle else 'poll 0.2s'}: "
          f"APPEND -> ticket committed in {committed * 1000:.0f} ms")


# ---------------------------------------------------------------- server restart

class RestartingMailbox(Mailbox):
    """Restarts `server` once: right after the first batch was marked processed, or (with
    `after_fetch`) right after that many batches were fetched, before the last one commits."""

    server: ImapTestServer | None = None
    after_fetch: int | None = None

    def mark_processed(self, uids: Iterable[int]) -> None:
        super().mark_processed(uids)
        if self.after_fetch is None:
            self._restart()

    def fetch_batch(self, uids: list[int]) -> list[Fetched]:
        fetched = super().fetch_batch(uids)
        if self.after_fetch is not None:
            self.after_fetch -= 1
            if self.after_fetch == 0:
                self._restart()
        return fetched

    def _restart(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.restart()


@SQLITE_ONLY
@pytest.mark.parametrize("when", ["between_batches", "before_commit"])
def test_server_restart_mid_drain_loses_and_doubles_nothing(
        imap_server: ImapTestServer, imap_account: Account, database: Database, parts: Parts,
        connect: Connect, when: str) -> None:
    """Batches of 3 of 7 mails. Between batches: batch 1 committed and marked, the fetch of
    batch 2 fails. Before commit: batch 2 fetched, the server restarts, batch 2 commits, its
    marking fails. Either way the next drain after reconnecting goes on from the cursor."""
    append_all(imap_server, imap_account, [numbered(n) for n in range(1, 8)])
    box = connect(RestartingMailbox, {"batch_size": 3})
    assert isinstance(box, RestartingMailbox)
    box.server = imap_server
    if when == "before_commit":
        box.after_fetch = 2
    with pytest.raises(ImapError):
        drain(box, database, parts.inbox)
    committed = count(database, Ticket)
    assert committed == (3 if when == "between_batches" else 6)
    again = connect()  # what the daemon's reconnect does
    report = drain(again, database, parts.inbox)
    assert report.counts == {"opened": 7 - committed}
    assert subjects(database) == [f"Problem number {n}" for n in range(1, 8)]
    assert count(database, Message) == 7 and count(database, Outbox) == 7 * PER_TICKET
    assert cursor(database) == (again.uidvalidity, uids(imap_server, imap_account)[-1])


# ---------------------------------------------------------------- UIDVALIDITY

@SQLITE_ONLY
def test_uidvalidity_change_rereads_the_folder_and_recreates_nothing(
        imap_server: ImapTestServer, imap_account: Account, database: Database, parts: Parts,
        connect: Connect) -> None:
    append_all(imap_server, imap_account, [numbered(n) for n in range(1, 4)])
    first = connect()
    assert drain(first, database, parts.inbox).counts == {"opened": 3}
    old_validity = first.uidvalidity
    first.close()
    imap_server.change_uidvalidity(imap_account)
    append(imap_server, imap_account, numbered(4))
    box = connect()
    report = drain(box, database, parts.inbox)
    assert report.uidvalidity_reset
    assert report.counts == {"duplicate": 3, "opened": 1}
    assert box.uidvalidity != old_validity
    assert cursor(database) == (box.uidvalidity, uids(imap_server, imap_account)[-1])
    assert count(database, Ticket) == 4 and count(database, Outbox) == 4 * PER_TICKET
    later = drain(box, database, parts.inbox)
    assert (later.total, later.uidvalidity_reset) == (0, False)


@SQLITE_ONLY
def test_uidvalidity_change_of_an_emptied_folder_is_noticed_once(
        imap_server: ImapTestServer, imap_account: Account, database: Database, parts: Parts,
        connect: Connect) -> None:
    append(imap_server, imap_account, numbered(1))
    drain(connect(processed_folder="Done"), database, parts.inbox)  # INBOX is empty again
    imap_server.change_uidvalidity(imap_account)
    box = connect(processed_folder="Done")
    assert drain(box, database, parts.inbox).uidvalidity_reset
    assert cursor(database) == (box.uidvalidity, 0)
    assert not drain(box, database, parts.inbox).uidvalidity_reset


# ---------------------------------------------------------------- duplicates

@SQLITE_ONLY
def test_a_redelivered_mail_has_one_effect_and_a_reused_id_loses_no_mail(
        imap_server: ImapTestServer, imap_account: Account, database: Database, parts: Parts,
        connect: Connect) -> None:
    original = mail(message_id="<same@example.org>")
    no_id = mail(subject="No id", body="one").replace(b"Message-ID:", b"X-Old-Id:")
    # The same mail along another path: a server added its trace lines.
    relayed = b"Received: from mx2.example.org by mx.example.org; 2 Mar 2026\r\n" + original
    append_all(imap_server, imap_account, [
        original,
        mail(subject="Another mail, same id", body="different", message_id="<same@example.org>"),
        mail(subject="Case differs", body="third", message_id="<SAME@example.org>"),
        original,  # delivered twice
        relayed,
        no_id, no_id,  # deduplicated by content
    ])
    box = connect()
    assert drain(box, database, parts.inbox).counts == {"opened": 4, "duplicate": 3}
    append(imap_server, imap_account, original)  # and once more, a drain later
    assert drain(box, database, parts.inbox).counts == {"duplicate": 1}
    assert subjects(database) == ["Printer on floor 3 jams", "Another mail, same id",
                                  "Case differs", "No id"]
    assert count(database, Message) == 4 and count(database, Outbox) == 4 * PER_TICKET
    assert flags(imap_server, imap_account) == [{SEEN}] * 8


def cpython_email_data() -> list[bytes]:
    """The 48 mails of CPython's own email tests: old, odd, and several under one id."""
    try:
        import test.test_email as suite
    except ImportError:  # a Python built without its test suite
        if os.environ.get("CI") == "true":
            pytest.fail("CPython's test.test_email data is missing from this Python")
        pytest.skip("CPython's test.test_email data is missing from this Python")
    return [path.read_bytes() for path in
            sorted((Path(suite.__file__).parent / "data").glob("msg_*.txt"))]


def test_every_mail_is_stored_or_quarantined_whatever_its_message_id(
        imap_server: ImapTestServer, imap_account: Account, database: Database, parts: Parts,
        connect: Connect) -> None:
    odd_ids = ["<q1 mailer.example@mailer.example>", "<q2 mailer.example@mailer.example>",
               "<a'; DROP x;--@customer.example>", "<b'; DROP y;--@customer.example>",
               "<Case@customer.example>", "<case@customer.example>"]
    raws = cpython_email_data() + [
        mail(message_id="<slot@x>").replace(b"<slot@x>", mid.encode()) for mid in odd_ids]
    append_all(imap_server, imap_account, raws)
    report = drain(connect(), database, parts.inbox)
    assert "duplicate" not in report.counts
    stored = count(database, Message, Message.direction == "in")
    assert stored + count(database, Quarantine) == len(raws) == 48 + len(odd_ids)
    with database.reading() as session:
        ids = set(session.scalars(select(Message.message_id)))
    assert {mid.strip("<>") for mid in odd_ids} <= ids


# ---------------------------------------------------------------- automatic mail

AUTOMATIC = ["exchange_oof.eml", "gmail_vacation.eml", "french_autoreply.eml",
             "read_receipt.eml", "postfix_bounce.eml", "exim_bounce.eml", "qmail_bounce.eml",
             "exchange_ndr.eml", "mailing_list.eml", "newsletter.eml", "own_mail.eml"]


@SQLITE_ONLY
def test_auto_replies_and_bounces_are_recorded_never_answered(
        imap_server: ImapTestServer, imap_account: Account, database: Database, parts: Parts,
        connect: Connect) -> None:
    append(imap_server, imap_account, mail())
    box = connect()
    drain(box, database, parts.inbox)
    ours = ack_message_id(database, "TD-1")
    with database.reading() as session:
        before = repository.get_ticket(session, "TD-1")
        assert before is not None
    automatic = [
        mail(subject="Automatic reply: [TD-1] We received your request",
             headers={"Auto-Submitted": "auto-replied"}),
        bounce(ours),
        *((MAILS / name).read_bytes() for name in AUTOMATIC),
    ]
    append_all(imap_server, imap_account, automatic)
    report = drain(box, database, parts.inbox)
    assert report.counts == {"recorded": len(automatic)}
    assert count(database, Ticket) == 1
    with database.reading() as session:
        ack, notice = session.scalars(select(Outbox).order_by(Outbox.id)).all()  # nothing new
        assert notice.template == "new_ticket"
        kinds = {kind: n for kind, n in session.execute(
            select(Message.kind, func.count()).group_by(Message.kind))}
        after = repository.get_ticket(session, "TD-1")
        assert after is not None
        on_ticket = set(session.scalars(select(Message.kind).where(
            Message.ticket_id == after.id)))
    assert ack.status == "bounced"
    assert kinds == {"human": 1, "auto_reply": 5, "bounce": 5, "list": 2, "own": 1}
    assert (after.state, after.priority) == (before.state, before.priority)
    assert {"human", "auto_reply"} <= on_ticket  # the [TD-1] auto-reply is on the ticket


# ---------------------------------------------------------------- odd mail

ODD_FILES = ["malformed_no_close_boundary.eml", "no_boundary.eml", "unknown_charset.eml",
             "bad_charset_alias.eml", "bad_base64.eml", "eight_bit_headers.eml"]
ODD_BYTES = [
    b"From: a@example.org\r\nSubject: =?x-unknown?Q?caf=E9?=\r\nContent-Type: text/plain; "
    b"charset=x-unknown\r\n\r\ncaf\xe9 au lait\r\n",
    b"From: b@example.org\r\nSubject: nested\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n"
    b"--a\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\n\r\nloop\r\n",
    b"Subject: no sender at all\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>hi</p>\r\n",
    b"garbage without any header line\r\n",
    b"From: c@example.org\r\nSubject: " + b"x" * 5000 + b"\r\n\r\nlong subject\r\n",
    b"From: d@example.org\r\nSubject: bad b64\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"!!!not base64 at all===\r\n",
]


@SQLITE_ONLY
def test_malformed_mime_and_unknown_charsets_are_never_lost(
        imap_server: ImapTestServer, imap_account: Account, database: Database, parts: Parts,
        connect: Connect) -> None:
    sent = [(MAILS / name).read_bytes() for name in ODD_FILES] + ODD_BYTES
    append_all(imap_server, imap_account, sent)
    report = drain(connect(), database, parts.inbox)
    assert report.total == len(sent)
    assert set(report.counts) <= {"opened", "recorded", "quarantined", "updated"}
    with database.reading() as session:
        kept = {lf(raw or b"") for raw in session.scalars(select(Message.raw))}
        kept |= {lf(raw) for raw in session.scalars(select(Quarantine.raw))}
    assert {lf(raw) for raw in sent} <= kept
    assert flags(imap_server, imap_account) == [{SEEN}] * len(sent)


# ---------------------------------------------------------------- big mail and many mails

@SQLITE_ONLY
def test_thirty_megabyte_attachment_through_dovecot(dovecot: DovecotServer, database: Database,
                                                     parts: Parts) -> None:
    account = dovecot.new_account()
    big = numbered(2, attachment=bytes(range(256)) * (30 * 1024 * 1024 // 256))
    append_all(dovecot, account, [numbered(1), big, numbered(3)])
    with Mailbox(settings(dovecot, account)) as box:
        report = drain(box, database, parts.inbox)
    assert report.counts == {"opened": 3}
    with database.reading() as session:
        stored = session.scalars(select(Message).where(
            Message.message_id == "problem-2@example.org")).one()
        events = repository.timeline(session, repository.get_ticket(session, "TD-2"))  # type: ignore[arg-type]
    assert lf(stored.raw or b"") == lf(big) and len(big) > 40_000_000
    assert events[0].data["attachments"] == 1
    assert flags(dovecot, account) == [{SEEN}] * 3


@SQLITE_ONLY
def test_a_few_hundred_mails_in_batches(imap_server: ImapTestServer, imap_account: Account,
                                        database: Database, parts: Parts,
                                        connect: Connect) -> None:
    n = 200
    append_all(imap_server, imap_account, [numbered(i) for i in range(n)])
    box = connect()
    start = time.perf_counter()
    report: IngestReport = drain(box, database, parts.inbox)
    seconds = time.perf_counter() - start
    assert report.counts == {"opened": n}
    assert count(database, Ticket) == n and count(database, Outbox) == n * PER_TICKET
    assert cursor(database) == (box.uidvalidity, uids(imap_server, imap_account)[-1])
    with client(imap_server, imap_account) as imap:
        imap.select_folder("INBOX", readonly=True)
        assert imap.search("UNSEEN") == []
    print(f"\n{imap_server.kind}: drained {n} mails in {seconds:.2f} s = {n / seconds:.0f} mails/s")
