"""The adapter against real servers: a private Dovecot and the embedded server, same tests."""

from __future__ import annotations

import base64
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from daemon.inbound.imap import Mailbox, resume_point
from daemon.inbound.imap_session import (
    ImapAuthError,
    ImapConnectError,
    ImapConnectionLost,
    ImapError,
)
from daemon.outbound.backoff import Backoff
from tests.inbound.imap.servers import Account, ImapTestServer, append, client, free_port, settings


def mail(n: int, body: bytes = b"") -> bytes:
    return (f"From: user{n}@example.com\r\nTo: support@example.com\r\n"
            f"Subject: Ticket {n}\r\nMessage-ID: <{n}@example.com>\r\n\r\n").encode() + (
        body or f"Body {n}\r\n".encode())


@pytest.fixture
def open_mailbox(imap_server: ImapTestServer, imap_account: Account) -> Iterator[Any]:
    """open_mailbox(**settings) -> a connected Mailbox with the folder selected."""
    opened: list[Mailbox] = []

    def make(mailbox_options: dict[str, Any] | None = None, **overrides: Any) -> Mailbox:
        box = Mailbox(settings(imap_server, imap_account, **overrides), **(mailbox_options or {}))
        opened.append(box)
        box.connect()
        box.select()
        return box

    yield make
    for box in opened:
        box.close()


def flags_of(server: ImapTestServer, account: Account,
             folder: str = "INBOX") -> list[tuple[bytes, ...]]:
    with client(server, account) as imap:
        imap.select_folder(folder, readonly=True)
        found = imap.fetch(imap.search("ALL"), ["FLAGS"])
    return [tuple(sorted(f for f in data[b"FLAGS"] if f != b"\\Recent"))
            for _, data in sorted(found.items())]


# ---------------------------------------------------------------- connecting

def test_connect_select_returns_uidvalidity(imap_server: ImapTestServer,
                                            imap_account: Account) -> None:
    with client(imap_server, imap_account) as imap:
        expected = imap.select_folder("INBOX")[b"UIDVALIDITY"]
    with Mailbox(settings(imap_server, imap_account)) as box:
        assert box.select() == expected
        assert box.uidvalidity == expected
        assert box.supports_idle


def test_bad_password_is_a_clear_auth_error(imap_server: ImapTestServer,
                                            imap_account: Account) -> None:
    box = Mailbox(settings(imap_server, imap_account, password="wrong"))
    with pytest.raises(ImapAuthError, match=r"login refused.*Authentication failed") as info:
        box.connect()
    assert "\n" not in str(info.value)
    assert "b'" not in str(info.value)  # the server's text, not a bytes literal
    assert not box.connected


def test_connection_refused_is_a_connect_error(imap_server: ImapTestServer,
                                               imap_account: Account) -> None:
    box = Mailbox(settings(imap_server, imap_account, port=free_port()))
    with pytest.raises(ImapConnectError, match="cannot connect"):
        box.connect()


def test_a_missing_folder_is_an_error(open_mailbox: Any) -> None:
    with pytest.raises(ImapError, match="SELECT Nowhere") as info:
        open_mailbox(folder="Nowhere")
    assert not isinstance(info.value, ImapConnectionLost)


def test_commands_need_a_connection(imap_server: ImapTestServer, imap_account: Account) -> None:
    with pytest.raises(ImapConnectionLost, match="not connected"):
        Mailbox(settings(imap_server, imap_account)).uids_after(0)


# ---------------------------------------------------------------- reading

def test_appended_mail_round_trips_byte_exact(imap_server: ImapTestServer, imap_account: Account,
                                              open_mailbox: Any) -> None:
    eight_bit = mail(2, "Grüße, naïve café ✓\r\n".encode() + b"latin-1: \xe9\xe8\r\n")
    sent = [mail(1), eight_bit, mail(3)]
    for raw in sent:
        append(imap_server, imap_account, raw)
    box = open_mailbox()
    uids = box.uids_after(0)
    assert len(uids) == 3
    fetched = [m for batch in box.fetch(uids) for m in batch]
    assert [m.raw for m in fetched] == sent
    assert [m.uid for m in fetched] == uids
    assert box.uids_after(uids[1]) == [uids[2]]
    assert box.uids_after(uids[2]) == []  # "n:*" past the end must not return the last UID
    assert box.count_waiting(uids[0]) == 2


def expunge(server: ImapTestServer, account: Account, uids: list[int]) -> None:
    with client(server, account) as imap:
        imap.select_folder("INBOX")
        imap.add_flags(uids, [b"\\Deleted"])
        imap.expunge()


def test_uids_are_listed_a_range_at_a_time(imap_server: ImapTestServer, imap_account: Account,
                                           open_mailbox: Any) -> None:
    """Never the whole folder's UIDs at once, and a run of expunged UIDs costs few searches."""
    for n in range(60):
        append(imap_server, imap_account, mail(n))
    box = open_mailbox({"batch_size": 2, "batch_bytes": None})  # 2 UIDs a range, at most 32
    everything = box.uids_after(0)
    expunge(imap_server, imap_account, everything[4:44])
    kept = everything[:4] + everything[44:]
    box.select()
    searches: list[str] = []
    search = box._search
    box._search = lambda criteria, *bounds: searches.append(criteria) or search(
        criteria, *bounds)
    windows = list(box.windows_after(0))
    assert [uid for window in windows for uid in window] == kept
    # 2, 2, then ranges of 2, 4, 8 and 16 find nothing, and one of 32 (at most 2 x
    # WINDOW_GROWTH) the last 16.
    assert [len(window) for window in windows] == [2, 2, 16]
    assert len(searches) <= len(kept) // 2 + 8  # the 40 gone UIDs: a handful of searches
    assert [uid for window in box.windows_after(kept[9]) for uid in window] == kept[10:]
    assert list(box.windows_after(kept[-1])) == []


@pytest.mark.parametrize("uidnext", ["stale", "missing"])
def test_mail_beyond_selects_uidnext_is_taken_in(imap_server: ImapTestServer,
                                                 imap_account: Account, open_mailbox: Any,
                                                 uidnext: str) -> None:
    """Mail the session heard of after SELECT, or a server whose UIDNEXT lags or is missing:
    the closing `n:*` search finds the rest."""
    for n in range(3):
        append(imap_server, imap_account, mail(n))
    box = open_mailbox({"batch_size": 1, "batch_bytes": None})
    uids = box.uids_after(0)
    box.uidnext = uids[0] + 1 if uidnext == "stale" else None
    assert [uid for window in box.windows_after(0) for uid in window] == uids
    assert [m.raw for batch in box.fetch_after(uids[0]) for m in batch] == [mail(1), mail(2)]


def test_commands_are_not_held_back_by_nagle(imap_server: ImapTestServer,
                                             imap_account: Account, open_mailbox: Any) -> None:
    """imapclient writes UID SEARCH in pieces: with Nagle's algorithm on, the embedded server
    (which acknowledges a partial line late) answered each after 40 ms."""
    append(imap_server, imap_account, mail(1))
    box = open_mailbox()
    assert box._client.socket().getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    started = time.perf_counter()
    for _ in range(10):
        assert len(box.uids_after(0)) == 1
    assert time.perf_counter() - started < 0.3  # 0.44 s and more with Nagle


def test_fetch_does_not_set_seen(imap_server: ImapTestServer, imap_account: Account,
                                 open_mailbox: Any) -> None:
    append(imap_server, imap_account, mail(1))
    box = open_mailbox()
    assert [m.raw for batch in box.fetch(box.uids_after(0)) for m in batch] == [mail(1)]
    assert flags_of(imap_server, imap_account) == [()]


def test_imaplib_traces_only_when_its_logger_shows_debug(
        imap_server: ImapTestServer, imap_account: Account, open_mailbox: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    """imapclient turns imaplib's trace on, which formats every mail body with repr()."""
    append(imap_server, imap_account, mail(1))
    quiet = open_mailbox()
    traced: list[str] = []
    quiet._client._imap._mesg = traced.append
    assert [m.raw for batch in quiet.fetch(quiet.uids_after(0)) for m in batch] == [mail(1)]
    assert traced == []
    caplog.set_level(logging.DEBUG, logger="imapclient.imaplib")
    loud = open_mailbox()
    list(loud.fetch(loud.uids_after(0)))
    assert any("Body 1" in record.getMessage() for record in caplog.records
               if record.name == "imapclient.imaplib")


def test_batches_never_exceed_the_batch_size(imap_server: ImapTestServer, imap_account: Account,
                                             open_mailbox: Any) -> None:
    for n in range(10):
        append(imap_server, imap_account, mail(n))
    box = open_mailbox({"batch_size": 3})
    batches = list(box.fetch(box.uids_after(0)))
    assert [len(batch) for batch in batches] == [3, 3, 3, 1]
    assert [m.raw for batch in batches for m in batch] == [mail(n) for n in range(10)]


def test_batches_stop_at_the_byte_limit(imap_server: ImapTestServer, imap_account: Account,
                                        open_mailbox: Any) -> None:
    sizes = [len(mail(n, b"x" * 1000 + b"\r\n")) for n in range(5)]
    for n in range(5):
        append(imap_server, imap_account, mail(n, b"x" * 1000 + b"\r\n"))
    box = open_mailbox({"batch_bytes": sizes[0] * 2 + 10})
    assert [len(batch) for batch in box.fetch(box.uids_after(0))] == [2, 2, 1]


def test_only_big_mails_are_sized_and_batches_stay_under_the_limit(
        imap_server: ImapTestServer, imap_account: Account, open_mailbox: Any) -> None:
    bodies = [b"s" * 500, b"s" * 500, b"B" * 5000, b"s" * 500, b"s" * 500, b"s" * 500]
    for n, body in enumerate(bodies):
        append(imap_server, imap_account, mail(n, body + b"\r\n"))
    box = open_mailbox({"batch_size": 4, "batch_bytes": 8000})  # small: up to 2000 bytes
    batches = list(box.fetch(box.uids_after(0)))
    assert all(len(batch) <= 4 and sum(len(m.raw) for m in batch) <= 8000 for batch in batches)
    assert [m.raw for batch in batches for m in batch] == [
        mail(n, body + b"\r\n") for n, body in enumerate(bodies)]
    assert [len(batch) for batch in batches] == [2, 2, 2]


def test_a_30_mb_attachment(imap_server: ImapTestServer, imap_account: Account,
                            open_mailbox: Any) -> None:
    payload = base64.encodebytes(bytes(range(256)) * (22 * 1024 * 1024 // 256))
    raw = (b"From: a@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
           b"Content-Type: text/plain\r\n\r\nsee attachment\r\n--b\r\n"
           b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + payload.replace(b"\n", b"\r\n") + b"--b--\r\n")
    assert len(raw) > 30 * 1000 * 1000
    append(imap_server, imap_account, raw)
    append(imap_server, imap_account, mail(2))
    box = open_mailbox({"batch_bytes": 16 << 20})  # the big one travels alone
    batches = [[m.raw for m in batch] for batch in box.fetch(box.uids_after(0))]
    assert batches == [[raw], [mail(2)]]


# ---------------------------------------------------------------- after commit

def test_mark_processed_sets_seen_and_moves(imap_server: ImapTestServer, imap_account: Account,
                                            open_mailbox: Any) -> None:
    for n in range(3):
        append(imap_server, imap_account, mail(n))
    box = open_mailbox(processed_folder="Processed")
    uids = box.uids_after(0)
    box.mark_processed(uids[:2])
    assert box.uids_after(0) == [uids[2]]
    assert flags_of(imap_server, imap_account) == [()]
    assert flags_of(imap_server, imap_account, "Processed") == [(b"\\Seen",), (b"\\Seen",)]
    box.mark_processed(uids[2:])  # the folder exists now
    assert box.uids_after(0) == []
    assert len(flags_of(imap_server, imap_account, "Processed")) == 3


def test_mark_processed_without_a_folder_only_sets_seen(
        imap_server: ImapTestServer, imap_account: Account, open_mailbox: Any) -> None:
    append(imap_server, imap_account, mail(1))
    box = open_mailbox()
    box.mark_processed(box.uids_after(0))
    box.mark_processed([])
    assert flags_of(imap_server, imap_account) == [(b"\\Seen",)]


# ---------------------------------------------------------------- waiting

def _append_later(server: ImapTestServer, account: Account, delay: float,
                  done: list[float]) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        append(server, account, mail(99))
        done.append(time.monotonic())
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_idle_wakes_up_on_append_from_another_connection(
        imap_server: ImapTestServer, imap_account: Account, open_mailbox: Any) -> None:
    box = open_mailbox()
    assert box.uids_after(0) == []
    appended: list[float] = []
    thread = _append_later(imap_server, imap_account, 0.3, appended)
    assert box.wait(10) is True
    woke = time.monotonic()
    thread.join()
    latency = woke - appended[0]
    assert latency < 2.0, f"IDLE woke {latency:.3f} s after the APPEND"
    assert len(box.uids_after(0)) == 1  # and the connection is usable after IDLE


def test_idle_times_out_and_renews(imap_server: ImapTestServer, imap_account: Account,
                                   open_mailbox: Any) -> None:
    box = open_mailbox({"idle_renew_s": 0.2})
    started = time.monotonic()
    assert box.wait(0.9) is False
    assert 0.85 < time.monotonic() - started < 3
    appended: list[float] = []
    thread = _append_later(imap_server, imap_account, 0.5, appended)
    assert box.wait(10) is True  # a notice arriving after a renewal is still seen
    thread.join()
    assert len(box.uids_after(0)) == 1


def test_wake_interrupts_idle(open_mailbox: Any) -> None:
    box = open_mailbox()
    timer = threading.Timer(0.2, box.wake)
    timer.start()
    started = time.monotonic()
    assert box.wait(10) is False
    assert time.monotonic() - started < 2
    timer.join()
    assert box.uids_after(0) == []


def test_wait_without_idle_polls(open_mailbox: Any) -> None:
    box = open_mailbox({"use_idle": False}, poll_interval=timedelta(seconds=0.3))
    assert not box.supports_idle
    assert box.wait(0.05) is False  # not due yet
    started = time.monotonic()
    assert box.wait(10) is True
    assert 0.15 < time.monotonic() - started < 1.0
    box.wake()
    assert box.wait(10) is False


# ---------------------------------------------------------------- failures

def test_restart_mid_session_then_reconnect_continues(
        imap_server: ImapTestServer, imap_account: Account, open_mailbox: Any) -> None:
    for n in range(4):
        append(imap_server, imap_account, mail(n))
    box = open_mailbox({"batch_size": 2})
    validity = box.uidvalidity
    batches = box.fetch(box.uids_after(0))
    first = next(batches)
    imap_server.restart()
    with pytest.raises(ImapConnectionLost):
        next(batches)
    assert not box.connected
    _reconnect(box)
    start = resume_point((validity, first[-1].uid), box.select())
    assert not start.reset
    rest = [m.raw for batch in box.fetch(box.uids_after(start.last_uid)) for m in batch]
    assert rest == [mail(2), mail(3)]


def test_restart_during_idle_raises(imap_server: ImapTestServer, open_mailbox: Any) -> None:
    box = open_mailbox()
    timer = threading.Timer(0.3, imap_server.restart)
    timer.start()
    try:
        with pytest.raises(ImapConnectionLost):
            box.wait(10)
    finally:
        timer.join()
    _reconnect(box)
    box.select()


def _reconnect(box: Mailbox) -> None:
    backoff = Backoff(base=0.05, cap=0.5)
    for _ in range(40):
        try:
            box.connect()
            backoff.reset()
            return
        except ImapConnectError:
            time.sleep(backoff.next_delay())
    raise AssertionError("could not reconnect")


def test_uidvalidity_change_is_reported(imap_server: ImapTestServer, imap_account: Account,
                                        open_mailbox: Any) -> None:
    for n in range(2):
        append(imap_server, imap_account, mail(n))
    box = open_mailbox()
    old = box.uidvalidity
    last = box.uids_after(0)[-1]
    box.close()
    imap_server.change_uidvalidity(imap_account)
    box.connect()
    new = box.select()
    assert new != old
    start = resume_point((old, last), new)
    assert start.reset and start.last_uid == 0
    assert [m.raw for batch in box.fetch(box.uids_after(0)) for m in batch] == [mail(0), mail(1)]
