"""The SMTP adapter: a pool of reused aiosmtplib connections, and SMTP outcomes sorted into
three kinds the sender acts on.

- ConnectionTrouble: the server cannot be used right now (refused, timed out, TLS or login
  failed, dropped the line, 421). Not the mail's fault: it stays queued.
- TemporaryFailure: a 4xx answer to this mail; retried with backoff.
- PermanentFailure: a 5xx answer, or a mail that can never be sent as it is; parked.

Security is what the settings say: `tls` connects with implicit TLS, `starttls` upgrades
and fails when the server cannot (never a silent downgrade: aiosmtplib's default would try
STARTTLS only "if supported"), `none` never upgrades.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType

import aiosmtplib
from aiosmtplib import (
    SMTPAuthenticationError,
    SMTPConnectResponseError,
    SMTPException,
    SMTPHeloError,
    SMTPNotSupported,
    SMTPRecipientsRefused,
    SMTPResponseException,
)

from daemon.config.settings import SmtpSettings

CLOSE_TIMEOUT = 5.0  # seconds for a polite QUIT when the pool closes


class SmtpError(Exception):
    """An SMTP outcome other than success; str() is one line for logs and last_error."""


class ConnectionTrouble(SmtpError):
    pass


class TemporaryFailure(SmtpError):
    pass


class PermanentFailure(SmtpError):
    pass


@dataclass(frozen=True)
class Accepted:
    """The server took the mail; `refused` lists recipients it declined (with the reply)."""

    response: str
    refused: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Connection:
    """A connection held from the pool (SmtpPool.connection); reconnects when it must."""

    pool: SmtpPool
    client: aiosmtplib.SMTP

    async def send(self, sender: str, recipients: Sequence[str], data: bytes) -> Accepted:
        return await self.pool._send(self.client, sender, recipients, data)


def describe(settings: SmtpSettings) -> str:
    return f"{settings.host}:{settings.port} ({settings.security})"


class SmtpPool:
    """Up to `size` connections, opened on first use and reused; `send` waits for a free one."""

    def __init__(self, settings: SmtpSettings, *, size: int = 4,
                 local_hostname: str = "localhost",
                 tls_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self.size = size
        self._local_hostname = local_hostname
        self._tls_context = tls_context
        self._idle: asyncio.LifoQueue[aiosmtplib.SMTP] | None = None

    async def __aenter__(self) -> SmtpPool:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def send(self, sender: str, recipients: Sequence[str], data: bytes) -> Accepted:
        async with self.connection() as connection:
            return await connection.send(sender, recipients, data)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """One connection of the pool, nobody else's until the block ends: the sender
        records each mail the server took before the next one goes out on it."""
        idle = self._clients()
        client = await idle.get()
        try:
            yield Connection(self, client)
        finally:
            idle.put_nowait(client)

    async def close(self) -> None:
        """QUIT every open connection (or drop it), so no transport outlives the pool."""
        if self._idle is None:
            return
        clients = [self._idle.get_nowait() for _ in range(self._idle.qsize())]
        await asyncio.gather(*(_quit(client) for client in clients))
        for client in clients:
            self._idle.put_nowait(client)

    # ------------------------------------------------------------ inside

    def _clients(self) -> asyncio.LifoQueue[aiosmtplib.SMTP]:
        # Created on first use, inside the running loop that will use it.
        if self._idle is None:
            self._idle = asyncio.LifoQueue()
            for _ in range(self.size):
                self._idle.put_nowait(self._new_client())
        return self._idle

    def _new_client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.host, port=s.port, timeout=s.timeout.total_seconds(),
            use_tls=s.security == "tls", start_tls=s.security == "starttls",
            local_hostname=self._local_hostname, tls_context=self._tls_context,
            username=s.username or None,
            password=s.password.get_secret_value() if s.username else None,
        )

    async def _send(self, client: aiosmtplib.SMTP, sender: str, recipients: Sequence[str],
                    data: bytes) -> Accepted:
        reused = client.is_connected
        if not reused:
            await self._connect(client)
        try:
            return await _sendmail(client, sender, recipients, data)
        except ConnectionTrouble:
            client.close()
            if not reused:
                raise
        # The server had dropped the idle connection: once more on a fresh one.
        await self._connect(client)
        try:
            return await _sendmail(client, sender, recipients, data)
        except ConnectionTrouble:
            client.close()
            raise

    async def _connect(self, client: aiosmtplib.SMTP) -> None:
        try:
            await client.connect()
        except (SMTPException, OSError, TimeoutError) as exc:
            client.close()
            raise ConnectionTrouble(f"cannot use SMTP server {describe(self.settings)}: "
                                    f"{_reason(exc)}") from None


async def _sendmail(client: aiosmtplib.SMTP, sender: str, recipients: Sequence[str],
                    data: bytes) -> Accepted:
    try:
        refused, response = await client.sendmail(sender, list(recipients), data)
    except (SMTPException, OSError, TimeoutError, ValueError) as exc:
        raise classify(exc) from None
    return Accepted(response, {rcpt: f"{r.code} {r.message}" for rcpt, r in refused.items()})


def classify(exc: BaseException) -> SmtpError:
    """Which of the three kinds an aiosmtplib (or socket) error is."""
    if isinstance(exc, SMTPRecipientsRefused):
        return _refused(exc)
    if isinstance(exc, SMTPAuthenticationError | SMTPHeloError | SMTPConnectResponseError):
        return ConnectionTrouble(_reason(exc))
    if isinstance(exc, SMTPResponseException):
        return _by_code(exc.code, _reason(exc))
    if isinstance(exc, SMTPNotSupported | ValueError):
        return PermanentFailure(_reason(exc))
    if isinstance(exc, OSError | TimeoutError | ConnectionError):
        return ConnectionTrouble(_reason(exc))
    return TemporaryFailure(_reason(exc))


def _refused(exc: SMTPRecipientsRefused) -> SmtpError:
    """Every recipient refused: temporary if any refusal was (the mail may still get there)."""
    codes = [refusal.code for refusal in exc.recipients]
    reason = "; ".join(f"{r.recipient}: {r.code} {_one_line(r.message)}" for r in exc.recipients)
    return TemporaryFailure(reason) if any(400 <= c < 500 for c in codes) else \
        PermanentFailure(reason)


def _by_code(code: int, reason: str) -> SmtpError:
    if code == 421:  # the server is closing the connection: about the server, not the mail
        return ConnectionTrouble(reason)
    if 400 <= code < 500:
        return TemporaryFailure(reason)
    if 500 <= code < 600:
        return PermanentFailure(reason)
    return TemporaryFailure(reason)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, SMTPResponseException):
        return f"{exc.code} {_one_line(exc.message)}"
    text = _one_line(str(exc)) or type(exc).__name__
    return text if isinstance(exc, SMTPException) else f"{type(exc).__name__}: {text}"


def _one_line(text: str) -> str:
    return " ".join(text.split()).rstrip(".")


async def _quit(client: aiosmtplib.SMTP) -> None:
    if not client.is_connected:
        return
    try:
        await asyncio.wait_for(client.quit(), CLOSE_TIMEOUT)
    except (SMTPException, OSError, TimeoutError):
        pass
    finally:
        client.close()
