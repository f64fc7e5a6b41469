"""A local SMTP server that keeps what it receives: the demo's mail server (aiosmtpd)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class Delivered:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes


class _Keep:
    def __init__(self, relay: Callable[[Delivered], None] | None) -> None:
        self.lock = threading.Lock()
        self.mails: list[Delivered] = []
        self.relay = relay

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        data = content if isinstance(content, bytes) else content.encode()
        mail = Delivered(envelope.mail_from or "", tuple(envelope.rcpt_tos), data)
        if self.relay is not None:  # before "queued": a mail we could not pass on is not ours
            self.relay(mail)
        with self.lock:
            self.mails.append(mail)
        return "250 2.0.0 OK: queued"


class SmtpSink:
    """Starts on a free port of 127.0.0.1 in a background thread; `take()` returns the mail
    received since the last call. `relay`, if given, is called with each mail as it arrives
    (the demo delivers it to IMAP mailboxes, as an MTA would)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 relay: Callable[[Delivered], None] | None = None) -> None:
        self._keep = _Keep(relay)
        self._controller = Controller(self._keep, hostname=host, port=port or _free_port(host))
        self._taken = 0

    @property
    def host(self) -> str:
        return str(self._controller.hostname)

    @property
    def port(self) -> int:
        return int(self._controller.port)

    @property
    def received(self) -> list[Delivered]:
        """Every mail received so far."""
        with self._keep.lock:
            return list(self._keep.mails)

    def take(self) -> list[Delivered]:
        with self._keep.lock:
            new = self._keep.mails[self._taken:]
            self._taken = len(self._keep.mails)
        return new

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._controller.stop()


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
