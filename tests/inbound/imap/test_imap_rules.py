"""The adapter's pure rules: resume point, UID sets, batch plans, IDLE lines, backoff, errors."""

from __future__ import annotations

import imaplib
import random
import socket
import ssl

import pytest
from imapclient import exceptions as imapclient_errors

from daemon.inbound.imap import Resume, plan_batches, resume_point
from daemon.inbound.imap_fetch import uid_set
from daemon.inbound.imap_idle import idle_event
from daemon.inbound.imap_session import (
    ImapAuthError,
    ImapConnectError,
    ImapConnectionLost,
    ImapError,
    ImapTlsError,
    server_text,
    translate,
)
from daemon.outbound.backoff import Backoff, backoff_delay


@pytest.mark.parametrize(("stored", "uidvalidity", "expected"), [
    (None, 7, Resume(7, 0, reset=False)),
    ((7, 42), 7, Resume(7, 42, reset=False)),
    ((7, 42), 8, Resume(8, 0, reset=True)),
    ((8, 0), 8, Resume(8, 0, reset=False)),
])
def test_resume_point(stored: tuple[int, int] | None, uidvalidity: int, expected: Resume) -> None:
    assert resume_point(stored, uidvalidity) == expected


@pytest.mark.parametrize(("uids", "expected"), [
    ([1], "1"),
    ([1, 2, 3], "1:3"),
    ([3, 1, 2, 7, 9, 10], "1:3,7,9:10"),
    ([5, 5, 6], "5:6"),
])
def test_uid_set(uids: list[int], expected: str) -> None:
    assert uid_set(uids) == expected


def test_uid_set_needs_a_uid() -> None:
    with pytest.raises(ValueError):
        uid_set([])


@pytest.mark.parametrize(("sizes", "count", "limit", "expected"), [
    ([(1, 10), (2, 10), (3, 10)], 2, None, [[1, 2], [3]]),
    ([(1, 10), (2, 10), (3, 10)], 100, 25, [[1, 2], [3]]),
    ([(1, 50), (2, 10), (3, 10)], 100, 25, [[1], [2, 3]]),  # too big: travels alone
    ([(1, 10), (2, 50), (3, 10)], 100, 25, [[1], [2], [3]]),
    ([], 100, 25, []),
])
def test_plan_batches(sizes: list[tuple[int, int]], count: int, limit: int | None,
                      expected: list[list[int]]) -> None:
    assert plan_batches(sizes, count, limit) == expected


@pytest.mark.parametrize(("line", "expected"), [
    (b"* 3 EXISTS", "mail"),
    (b"* 1 RECENT", "mail"),
    (b"* 3 exists", "mail"),
    (b"* 2 EXPUNGE", None),
    (b"* 2 FETCH (FLAGS (\\Seen))", None),
    (b"* OK Still here", None),
    (b"* BYE Server shutting down.", "bye"),
    (b"+ idling", None),
    (b"", None),
])
def test_idle_event(line: bytes, expected: str | None) -> None:
    assert idle_event(line) == expected


@pytest.mark.parametrize(("attempt", "u", "expected"), [
    (0, 0.0, 1.0),
    (1, 0.0, 2.0),
    (3, 0.0, 8.0),
    (3, 0.5, 6.0),  # jitter 0.5 takes off at most half
    (20, 0.0, 300.0),  # capped
    (10_000, 0.0, 300.0),  # no overflow after a long outage
])
def test_backoff_delay(attempt: int, u: float, expected: float) -> None:
    assert backoff_delay(attempt, 1.0, 300.0, 2.0, 0.5, u) == pytest.approx(expected)


def test_backoff_grows_and_resets() -> None:
    backoff = Backoff(base=1, cap=10, jitter=0.5, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(6)]
    ceilings = [1, 2, 4, 8, 10, 10]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    backoff.reset()
    assert backoff.next_delay() <= 1


@pytest.mark.parametrize(("exc", "connecting", "expected"), [
    (ConnectionRefusedError(111, "Connection refused"), True, ImapConnectError),
    (socket.gaierror(-2, "Name or service not known"), True, ImapConnectError),
    (TimeoutError("timed out"), True, ImapConnectError),
    (TimeoutError("timed out"), False, ImapConnectionLost),
    (ssl.SSLCertVerificationError(1, "certificate verify failed"), True, ImapTlsError),
    (imapclient_errors.LoginError("[AUTHENTICATIONFAILED] nope"), True, ImapAuthError),
    (imaplib.IMAP4.abort("socket error: EOF"), False, ImapConnectionLost),
    (ConnectionResetError(104, "reset"), False, ImapConnectionLost),
    (imaplib.IMAP4.error("SELECT command error: NO [x]"), False, ImapError),
])
def test_translate(exc: Exception, connecting: bool, expected: type[ImapError]) -> None:
    error = translate(exc, "imap host:1 act", connecting)
    assert type(error) is expected
    assert str(error).startswith("imap host:1 act")
    assert "\n" not in str(error)


@pytest.mark.parametrize(("text", "shown"), [
    ("b'[AUTHENTICATIONFAILED] Authentication failed.'",
     "[AUTHENTICATIONFAILED] Authentication failed."),
    ("SELECT command error: BAD [b'Unknown command']", "SELECT command error: BAD Unknown command"),
    ("x [b'one', b\"it's\"] y", "x one it's y"),
    ("b'caf\\xc3\\xa9'", "café"),
    ("Bob's b'", "Bob's b'"),  # no literal: left alone
    ("bob'[x]'", "bob'[x]'"),
])
def test_server_text_decodes_bytes_literals(text: str, shown: str) -> None:
    assert server_text(text) == shown


def test_a_login_error_shows_the_servers_words() -> None:
    # imapclient raises LoginError(str(imaplib's error)), whose argument is bytes.
    raw = imaplib.IMAP4.error(b"[AUTHENTICATIONFAILED] Authentication failed.")
    error = translate(imapclient_errors.LoginError(str(raw)), "imap h:1 login", True)
    assert str(error) == "imap h:1 login: login refused: [AUTHENTICATIONFAILED] " \
        "Authentication failed."


def test_translate_leaves_other_exceptions_alone() -> None:
    assert translate(KeyError("x"), "where", False) is None


def test_error_messages_are_one_line() -> None:
    assert str(ImapError("a\r\n  b\n")) == "a b"
