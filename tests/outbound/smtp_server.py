"""A real SMTP server for tests: aiosmtpd on a free port, recording every mail it accepts.

Reusable from any test folder:

    from tests.outbound.smtp_server import SmtpServer, smtp_server  # the class, the fixture

- `server.received` / `server.wait_for(n)`: the envelopes accepted so far (raw bytes kept).
- `server.fail_next(n, code)`: answer the next n mails with e.g. 451 or 550 instead of 250.
- `server.handler.delay`: seconds each mail takes before its answer (a slower server).
- `server.handler.before_accept`: called with (session, Received) before a mail is taken.
- `server.stop()` then `server.start()`: down and back up on the same port (a new aiosmtpd
  Controller each time: a stopped one has closed its loop).
- `tls_contexts(tmp_path)`: a throwaway CA-less self-signed pair for TLS and STARTTLS tests.

Stopping closes every open server-side transport first, so a client still connected does not
leave an unclosed transport behind (tests run with filterwarnings=error).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


class RecordingHandler:
    """Accepts and records mail, unless told to answer the next ones with an error."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._received: list[Received] = []
        self._answers: deque[str] = deque()
        self.greetings = 0  # EHLOs seen: one per connection (two with STARTTLS)
        self._hold: tuple[threading.Event, threading.Event] | None = None
        self.delay = 0.0
        self.before_accept: Callable[[Session, Received], None] | None = None

    def hold_next(self) -> tuple[threading.Event, threading.Event]:
        """The next DATA waits, before it is accepted, until the second event is set; the
        first is set once it waits (a mail the sender has handed over, not yet confirmed)."""
        with self._changed:
            self._hold = (threading.Event(), threading.Event())
            return self._hold

    def fail_next(self, count: int, code: int = 451, text: str = "4.3.0 Try again later") -> None:
        with self._changed:
            self._answers.extend([f"{code} {text}"] * count)

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname  # what aiosmtpd does itself when there is no hook
        with self._changed:
            self.greetings += 1
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._changed:
            hold, self._hold = self._hold, None
        if hold is not None:
            hold[0].set()
            await asyncio.to_thread(hold[1].wait, 30)
        if self.delay:
            await asyncio.sleep(self.delay)
        content = envelope.original_content or envelope.content or b""
        data = content if isinstance(content, bytes) else content.encode()
        received = Received(envelope.mail_from or "", tuple(envelope.rcpt_tos), data)
        with self._changed:
            if self._answers:
                return self._answers.popleft()
        if self.before_accept is not None:
            self.before_accept(session, received)
        with self._changed:
            self._received.append(received)
            self._changed.notify_all()
        return "250 2.0.0 OK: queued"

    @property
    def received(self) -> list[Received]:
        with self._changed:
            return list(self._received)

    def wait_for(self, count: int, timeout: float) -> list[Received]:
        with self._changed:
            self._changed.wait_for(lambda: len(self._received) >= count, timeout)
            return list(self._received)


class _Controller(Controller):
    """A Controller that remembers its sessions, to close their transports on stop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: list[SMTP] = []

    def factory(self) -> SMTP:
        smtp: SMTP = super().factory()  # type: ignore[no-untyped-call]
        self.sessions.append(smtp)
        return smtp

    def close_sessions(self) -> None:
        done = threading.Event()

        def close() -> None:
            # Stop listening first: a client that connects between closing the sessions
            # and stopping the loop would leave a transport nobody closes.
            if self.server is not None:
                self.server.close()
            for smtp in self.sessions:
                if smtp.transport is not None:
                    smtp.transport.abort()  # at once: close() would wait for unsent replies
            # abort() closes each socket in a callback it schedules: done once those ran, or
            # stopping the loop first leaves sockets to be closed (and warned of) by the GC.
            self.loop.call_soon(done.set)

        self.loop.call_soon_threadsafe(close)
        done.wait(5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class SmtpServer:
    """One aiosmtpd server; `start`/`stop` may be called again and again on the same port."""

    def __init__(self, port: int | None = None, *, ssl_context: ssl.SSLContext | None = None,
                 starttls_context: ssl.SSLContext | None = None,
                 credentials: tuple[str, str] | None = None) -> None:
        self.host = HOST
        self.port = port or free_port()
        self.handler = RecordingHandler()
        self._ssl_context = ssl_context
        self._starttls_context = starttls_context
        self._credentials = credentials
        self._controller: _Controller | None = None

    def _kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"server_hostname": "localhost", "ready_timeout": 10}
        if self._starttls_context is not None:
            kwargs.update(tls_context=self._starttls_context, require_starttls=True)
        if self._credentials is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True,
                          auth_require_tls=self._starttls_context is not None)
        return kwargs

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, data: Any) -> AuthResult:
        assert self._credentials is not None
        user, password = self._credentials
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            user.encode(), password.encode())
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 235 or 535

    def start(self) -> SmtpServer:
        assert self._controller is None, "already running"
        self._controller = _Controller(self.handler, hostname=self.host, port=self.port,
                                       ssl_context=self._ssl_context, **self._kwargs())
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is None:
            return
        self._controller.close_sessions()
        self._controller.stop()
        self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    # ------------------------------------------------------------ what tests look at

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        return self.handler.wait_for(count, timeout)

    def fail_next(self, count: int, code: int = 451, text: str = "4.3.0 Try again later") -> None:
        self.handler.fail_next(count, code, text)

    @property
    def greetings(self) -> int:
        return self.handler.greetings

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain (no TLS) SMTP server on a free port, stopped after the test."""
    with SmtpServer() as server:
        yield server


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    """Poll `predicate` until it is true; fail the test after `timeout` seconds."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.02)


# ------------------------------------------------------------------ TLS material

@dataclass(frozen=True)
class TlsContexts:
    server: ssl.SSLContext
    client: ssl.SSLContext


def tls_contexts(folder: Path) -> TlsContexts:
    """A self-signed certificate for localhost/127.0.0.1; the client trusts exactly it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    alt = x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                       x509.IPAddress(ipaddress.ip_address(HOST))])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            # Decades either side: OpenSSL checks against the real time, which the tests'
            # own clock may be years from (the date-shifted runs, tests/timeshift).
            .not_valid_before(now - dt.timedelta(days=365 * 30))
            .not_valid_after(now + dt.timedelta(days=365 * 30))
            .add_extension(alt, critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return TlsContexts(server, client)
