"""Waiting for new mail on an IMAP session: IDLE (RFC 2177) when the server has it, else
polling every poll_interval; `wake()` ends a wait from any thread.

`WaitingSession` adds this to the `ImapSession` (daemon/inbound/imap_session.py); the
`Mailbox` of daemon/inbound/imap.py reads the mail the wait announced.
"""

from __future__ import annotations

import contextlib
import imaplib
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable

from imapclient import IMAPClient

from daemon.config.settings import ImapSettings
from daemon.inbound.imap_session import ImapConnectionLost, ImapSession, forget_notices

# RFC 2177: re-issue IDLE at least every 29 minutes; we stay well inside that.
IDLE_RENEW_S = 25 * 60


def idle_event(line: bytes) -> str | None:
    """What an untagged line seen during IDLE means: "mail" (EXISTS/RECENT), "bye", or None."""
    words = line.split(None, 3)
    if len(words) < 2 or words[0] != b"*":
        return None
    if words[1].upper() == b"BYE":
        return "bye"
    if len(words) >= 3 and words[1].isdigit() and words[2].upper() in (b"EXISTS", b"RECENT"):
        return "mail"
    return None


class WaitingSession(ImapSession):
    """An `ImapSession` that can wait for new mail. Not thread-safe, except `wake()`."""

    def __init__(self, settings: ImapSettings, ssl_context: ssl.SSLContext | None = None, *,
                 use_idle: bool = True,
                 idle_renew_s: float | None = None,  # default: settings.idle_renew
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(settings, ssl_context, clock=clock)
        self.use_idle = use_idle
        self.idle_renew_s = min(settings.idle_renew.total_seconds() if idle_renew_s is None
                                else idle_renew_s, IDLE_RENEW_S)
        self._woken = threading.Event()
        self._wake_pair: tuple[socket.socket, socket.socket] | None = None
        self._last_poll = clock()

    @property
    def supports_idle(self) -> bool:
        return self.use_idle and b"IDLE" in self._capabilities

    def connect(self) -> None:
        """The session's connect, plus the socket pair `wake()` writes to."""
        super().connect()
        self._wake_pair = socket.socketpair()

    def close(self) -> None:
        if self._wake_pair is not None:
            for end in self._wake_pair:
                end.close()
            self._wake_pair = None
        super().close()

    def select(self) -> int:
        """The session's select; the poll interval runs from here."""
        uidvalidity = super().select()
        self._last_poll = self._clock()
        return uidvalidity

    # ------------------------------------------------------------ waiting

    def wake(self) -> None:
        """Make a running or the next `wait()` return False at once (from any thread)."""
        self._woken.set()
        pair = self._wake_pair
        if pair is not None:
            with contextlib.suppress(OSError):
                pair[1].send(b"!")

    def wait(self, timeout_s: float) -> bool:
        """Block until new mail may be there (True) or timeout_s passed or wake() (False).

        With IDLE: True as soon as the server announces EXISTS or RECENT; IDLE is re-issued
        every idle_renew_s. Without: True once poll_interval has passed since the last poll.
        Dovecot holds IDLE notices back for 0.5 s (NOTIFY_DELAY_MSECS in mailbox-watch.c);
        ending IDLE makes it report at once, so an idle_renew_s of 0.1-0.2 s brings its
        wake-up latency down to about 50 ms, at the price of that many DONE/IDLE round trips.
        """
        if self._woken.is_set():
            self._woken.clear()
            return False
        if self._client is not None and _heard_of_mail(self._client):
            # Announced with the answer to an earlier command (after the last search): the
            # server will not say it again in IDLE, so waiting would miss it.
            forget_notices(self._client)
            return True
        if self.supports_idle:
            return self._idle_wait(timeout_s)
        return self._poll_wait(timeout_s)

    def _poll_wait(self, timeout_s: float) -> bool:
        due = self._last_poll + self.settings.poll_interval.total_seconds()
        remaining = due - self._clock()
        if remaining > timeout_s:
            self._woken.wait(timeout_s)
            self._woken.clear()
            return False
        if self._woken.wait(max(remaining, 0.0)):
            self._woken.clear()
            return False
        self._last_poll = self._clock()
        return True

    def _idle_wait(self, timeout_s: float) -> bool:
        deadline = self._clock() + timeout_s
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0 or self._woken.is_set():
                self._woken.clear()
                return False
            if self._idle_once(min(remaining, self.idle_renew_s)):
                return True

    def _idle_once(self, span: float) -> bool:
        client = self._session()
        with self._errors("IDLE"):
            client.idle()
            arrived = self._watch(client, span)
            _, responses = client.idle_done()
        return arrived or any(_announces_mail(response) for response in responses)

    def _watch(self, client: IMAPClient, span: float) -> bool:
        """Read IDLE notices for up to span seconds; True on new mail."""
        end = self._clock() + span
        # "+ idling" may have come in one packet with a notice now sitting in imaplib's buffer,
        # invisible to select(): read what is there before waiting on the socket.
        events = self._drain(client)
        with selectors.DefaultSelector() as selector:
            selector.register(client.socket(), selectors.EVENT_READ, "imap")
            assert self._wake_pair is not None
            selector.register(self._wake_pair[0], selectors.EVENT_READ, "wake")
            while True:
                if "bye" in events:
                    raise ImapConnectionLost(f"{self.name} IDLE: the server said BYE")
                if "mail" in events:
                    return True
                ready = {key.data for key, _ in selector.select(max(end - self._clock(), 0))}
                if "wake" in ready:
                    self._wake_pair[0].recv(64)
                    return False
                if not ready:
                    return False
                events = self._drain(client)

    def _drain(self, client: IMAPClient) -> list[str]:
        events, eof = _drain(client)
        if eof:
            raise ImapConnectionLost(f"{self.name} IDLE: the server closed the connection")
        return events


def _announces_mail(response: tuple[object, ...]) -> bool:
    return len(response) >= 2 and response[1] in (b"EXISTS", b"RECENT")


def _drain(client: IMAPClient) -> tuple[list[str], bool]:
    """Read every complete line already available without blocking: one event per line
    ("other" for lines that do not matter), and whether the server closed the connection.

    imapclient's idle_check() polls the socket before reading, which misses lines already in
    imaplib's read buffer; so this reads imaplib's lines directly (its `_get_line`)."""
    sock = client.socket()
    sock.setblocking(False)
    events: list[str] = []
    try:
        while True:
            try:
                line = client._imap._get_line()
            except ssl.SSLWantReadError:
                return events, False
            except (BlockingIOError, InterruptedError):
                return events, False
            except (OSError, imaplib.IMAP4.abort):
                # imaplib reports "would block" on a plain socket as EOF too: look again.
                return events, _at_eof(sock)
            events.append(idle_event(line) or "other")
    finally:
        sock.setblocking(True)
        client._set_read_timeout()


def _at_eof(sock: socket.socket) -> bool:
    if isinstance(sock, ssl.SSLSocket):
        return True  # a TLS socket with nothing to read raises SSLWantReadError instead
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


def _heard_of_mail(client: IMAPClient) -> bool:
    responses = client._imap.untagged_responses
    return bool(responses.get("EXISTS") or responses.get("RECENT"))

