"""IMAP session: the connection to one IMAP server and its one folder, through imapclient.

Connect (TCP, TLS or STARTTLS, never downgrading), log in, SELECT or EXAMINE the folder,
with the configured timeouts; every failure surfaces as an `ImapError` subclass with a
one-line message (`translate`). Waiting for mail is daemon/inbound/imap_idle.py, reading and
marking mail is the `Mailbox` of daemon/inbound/imap.py, built on both.
"""

from __future__ import annotations

import ast
import contextlib
import imaplib
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Self

from imapclient import IMAPClient, SocketTimeout
from imapclient import exceptions as imapclient_errors

from daemon.config.settings import ImapSettings

# ---------------------------------------------------------------- errors

class ImapError(Exception):
    """An IMAP failure, with a one-line message naming the server and what was being done."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class ImapConnectError(ImapError):
    """The server could not be reached: refused, unknown host, no greeting in time."""


class ImapTlsError(ImapError):
    """TLS failed: handshake, certificate, or STARTTLS required but not offered or refused."""


class ImapAuthError(ImapError):
    """The server refused the username or password."""


class ImapConnectionLost(ImapError):
    """An established connection dropped, timed out or was closed by the server (BYE)."""


# A Python bytes literal inside a message: imapclient's LoginError is str() of imaplib's
# error, whose argument is the server's bytes, and imaplib writes b'...' lists into its own.
_BYTES = r"""(?<!\w)b(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
_BYTES_LIST = re.compile(rf"\[({_BYTES}(?:, {_BYTES})*)\]")
_BYTES_ONE = re.compile(_BYTES)


def _decoded(literal: str) -> str:
    try:
        value = ast.literal_eval(literal)
    except (ValueError, SyntaxError):
        return literal
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else literal


def server_text(text: str) -> str:
    """The server's words as text: "b'[AUTHENTICATIONFAILED] ...'" -> "[AUTHENTICATIONFAILED]
    ...", "BAD [b'Unknown command']" -> "BAD Unknown command"."""
    text = _BYTES_LIST.sub(
        lambda m: " ".join(_decoded(x) for x in _BYTES_ONE.findall(m[1])), text)
    return _BYTES_ONE.sub(lambda m: _decoded(m[0]), text)


def _detail(exc: BaseException) -> str:
    text = exc.args[0] if len(exc.args) == 1 else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return server_text(str(text)) or type(exc).__name__


def translate(exc: BaseException, where: str, connecting: bool) -> ImapError | None:
    """The ImapError for a library or socket exception, None for anything else."""
    detail = f"{where}: {_detail(exc)}"
    if isinstance(exc, ImapError):
        return exc
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return ImapTlsError(f"{where}: TLS failed: {_detail(exc)}")
    if isinstance(exc, imapclient_errors.LoginError):
        return ImapAuthError(f"{where}: login refused: {_detail(exc)}")
    if isinstance(exc, TimeoutError):
        if connecting:
            return ImapConnectError(f"{where}: no answer in time (is the port and "
                                    "security mode right? a TLS port needs security: tls)")
        return ImapConnectionLost(f"{where}: timed out waiting for the server")
    if isinstance(exc, socket.gaierror | ConnectionRefusedError):
        return ImapConnectError(f"{where}: cannot connect: {_detail(exc)}")
    if isinstance(exc, OSError | imaplib.IMAP4.abort):
        cls = ImapConnectError if connecting else ImapConnectionLost
        return cls(f"{where}: connection lost: {_detail(exc)}")
    if isinstance(exc, imaplib.IMAP4.error):
        return ImapError(detail)
    return None

# ---------------------------------------------------------------- the session

class ImapSession:
    """One folder (settings.folder) on one IMAP server: the connection. Not thread-safe."""

    def __init__(self, settings: ImapSettings, ssl_context: ssl.SSLContext | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.ssl_context = ssl_context
        self._clock = clock
        self._client: IMAPClient | None = None
        self._capabilities: frozenset[bytes] = frozenset()
        self._folders: set[str] = set()
        self.uidvalidity: int | None = None
        self.uidnext: int | None = None  # as the last SELECT reported it

    # ------------------------------------------------------------ connection

    @property
    def name(self) -> str:
        return f"imap {self.settings.host}:{self.settings.port}"

    @property
    def connected(self) -> bool:
        return self._client is not None

    def connect(self) -> None:
        """Open, secure as configured (never downgrading), and log in."""
        self.close()
        client = self._open()
        try:
            client.normalise_times = False  # aware datetimes, as the server sent them
            if self.settings.security == "starttls":
                self._starttls(client)
            with self._errors("login", connecting=True):
                client.login(self.settings.username, self.settings.password.get_secret_value())
                capabilities = frozenset(client.capabilities())
        except BaseException:
            _shutdown(client)
            raise
        self._client, self._capabilities = client, capabilities
        self._folders.clear()

    def _open(self) -> IMAPClient:
        seconds = self.settings.timeout.total_seconds()
        with self._errors("connect", connecting=True):
            client = IMAPClient(
                self.settings.host, self.settings.port,
                ssl=self.settings.security == "tls", ssl_context=self.ssl_context,
                timeout=SocketTimeout(connect=seconds, read=seconds),
            )
        quiet_imaplib(client)
        no_delay(client)
        return client

    def _starttls(self, client: IMAPClient) -> None:
        """Upgrade or fail: whatever goes wrong here is a TLS error, never a plain login."""
        try:
            with self._errors("STARTTLS", connecting=True):
                if not client.has_capability("STARTTLS"):
                    raise ImapTlsError(f"{self.name} STARTTLS: the server does not offer "
                                       "STARTTLS; refusing to log in unencrypted")
                client.starttls(self.ssl_context)
        except ImapTlsError:
            raise
        except ImapError as exc:
            raise ImapTlsError(f"{exc}; refusing to log in unencrypted") from exc

    def close(self) -> None:
        """Log out if possible; always release the socket. Safe to call twice."""
        client, self._client = self._client, None
        self.uidvalidity = None
        if client is not None:
            try:
                client.logout()
            except Exception:  # the connection may already be gone; we only want it closed
                _shutdown(client)

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @contextlib.contextmanager
    def _errors(self, action: str, connecting: bool = False) -> Iterator[None]:
        """Turn library and socket exceptions into ImapError; drop a lost connection."""
        try:
            yield
        except Exception as exc:
            error = translate(exc, f"{self.name} {action}", connecting)
            if error is None:
                raise
            if isinstance(error, ImapConnectionLost) and self._client is not None:
                _shutdown(self._client)
                self._client = None
            if error is exc:
                raise
            raise error from exc

    def _session(self) -> IMAPClient:
        if self._client is None:
            raise ImapConnectionLost(f"{self.name}: not connected; call connect()")
        return self._client

    @property
    def capabilities(self) -> frozenset[bytes]:
        return self._capabilities

    # ------------------------------------------------------------ the folder

    def select(self) -> int:
        """Select the configured folder read-write; returns its UIDVALIDITY."""
        client = self._session()
        with self._errors(f"SELECT {self.settings.folder}"):
            response = client.select_folder(self.settings.folder)
        forget_notices(client)  # the folder's size as selected is no news (see wait())
        self.uidvalidity = int(response[b"UIDVALIDITY"])
        uidnext = response.get(b"UIDNEXT")
        self.uidnext = int(uidnext) if uidnext is not None else None
        return self.uidvalidity

    def examine(self) -> int:
        """Select the configured folder read-only (EXAMINE), for a look that changes nothing:
        no flags, and no \\Recent taken from the daemon's own session. Returns UIDVALIDITY."""
        client = self._session()
        with self._errors(f"EXAMINE {self.settings.folder}"):
            response = client.select_folder(self.settings.folder, readonly=True)
        self.uidvalidity = int(response[b"UIDVALIDITY"])
        return self.uidvalidity


def forget_notices(client: IMAPClient) -> None:
    """imaplib keeps every untagged EXISTS/EXPUNGE/FETCH notice until asked for it; a daemon
    that never asks would grow without bound, so drop them (nothing here reads them)."""
    responses = client._imap.untagged_responses
    for name in ("EXISTS", "RECENT", "EXPUNGE", "FETCH"):
        responses.pop(name, None)


def _shutdown(client: IMAPClient) -> None:
    with contextlib.suppress(Exception):
        client.shutdown()


def no_delay(client: IMAPClient) -> None:
    """Send each command at once (TCP_NODELAY, kept by the TLS layers over the socket).

    imapclient writes some commands (UID SEARCH among them) in more than one piece. With
    Nagle's algorithm the last piece waits for the server to acknowledge the first, and a
    server that delays its ACK until it has a whole line (the embedded server, like many)
    holds every such command 40 ms: against it, 130 of the 137 ms a one-mail drain took."""
    with contextlib.suppress(OSError, AttributeError):  # not TCP (a Unix socket, a test double)
        client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def quiet_imaplib(client: IMAPClient) -> None:
    """Turn off imaplib's trace unless someone reads it.

    imapclient sets imaplib's debug level to 5 and sends its trace to the
    `imapclient.imaplib` logger, so every response, mail bodies included, is formatted with
    repr() before the logger throws it away: an eighth of the CPU of a fetched batch, and a
    transient copy several times the size of a large attachment. Debug logging of that
    logger keeps the trace."""
    if not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
        client._imap.debug = 0
