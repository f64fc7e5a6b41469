"""An embedded IMAP4rev1 server for the demo and the tests: real sockets, mail in memory.

`Controller` runs it in a background thread, the way aiosmtpd's Controller does, and gives
Python-side helpers that are safe to call from any thread:

    with Controller({"support": "secret"}) as server:
        server.deliver(raw_mail)                  # like an MTA: the mail lands in INBOX
        ...connect any IMAP client to server.host, server.port...
        server.messages("INBOX")                  # what is there now, with flags
        server.set_uidvalidity(7)                 # renumber INBOX, as a rebuilt index would
        server.drop_connections()                 # every client sees its connection die

Capabilities: IMAP4rev1 LITERAL+ SASL-IR IDLE UIDPLUS MOVE UNSELECT AUTH=PLAIN (no STARTTLS);
pass `capabilities=` to leave some out (e.g. no IDLE, to test polling). Layers: wire syntax
(imap_server_proto), store, MIME, FETCH, SEARCH, session and command handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import daemon.demo.imap_server.commands  # noqa: F401 - registers the command handlers
from daemon.demo.imap_server.session import ServerConfig, Session
from daemon.demo.imap_server.store import Store, StoreError

__all__ = ["Controller", "ImapServer", "ServerMessage", "StoreError", "DEFAULT_CAPABILITIES"]

DEFAULT_CAPABILITIES = ("IMAP4rev1", "LITERAL+", "SASL-IR", "IDLE", "UIDPLUS", "MOVE",
                        "UNSELECT", "AUTH=PLAIN")
MAX_LINE = 1 << 20  # a command line, literals excluded
MAX_LITERAL = 100 << 20
T = TypeVar("T")


@dataclass(frozen=True)
class ServerMessage:
    uid: int
    raw: bytes
    flags: frozenset[str]
    internaldate: datetime


class ImapServer:
    """The asyncio side: a listening socket and its sessions, in the running event loop."""

    def __init__(self, store: Store, config: ServerConfig, host: str, port: int) -> None:
        self.store, self.config = store, config
        self.host, self.port = host, port
        self.sessions: dict[Session, asyncio.Task[None]] = {}
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port,
                                                  limit=MAX_LINE)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self.store, self.config, reader, writer)
        task = asyncio.current_task()
        assert task is not None
        self.sessions[session] = task
        try:
            await session.run()
        finally:
            self.sessions.pop(session, None)

    def drop(self, which: Callable[[Session], bool] = lambda session: True) -> None:
        for session in list(self.sessions):
            if which(session):
                session.abort()

    async def stop(self) -> None:
        """Stop listening, drop every connection and wait for the sessions to end."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.drop()
        tasks = list(self.sessions.values())
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        for task in tasks:
            task.cancel()


class Controller:
    """Runs an ImapServer in a thread with its own event loop; start() returns once the
    socket accepts connections. Users are {username: password}; each has its own folders."""

    def __init__(
        self,
        users: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        capabilities: Iterable[str] = DEFAULT_CAPABILITIES,
        max_literal: int = MAX_LITERAL,
    ) -> None:
        self.store = Store(dict(users or {}))
        config = ServerConfig(tuple(capabilities), max_literal)
        self.server = ImapServer(self.store, config, host, port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    # ------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 5.0) -> Controller:
        self._thread = threading.Thread(target=self._run, name="imap-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the embedded IMAP server did not start in time")
        if self._error is not None:
            self._thread.join()
            raise RuntimeError(f"the embedded IMAP server did not start: {self._error}")
        return self

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self.server.start())
        except BaseException as exc:  # reported by start(), in the caller's thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.server.stop())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop may already be closed
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop = self._thread = None

    def __enter__(self) -> Controller:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def restart(self) -> None:
        """What a server restart looks like to clients: every connection dies and the port
        refuses connections for a moment; the mail stays."""
        async def again() -> None:
            await self.server.stop()
            await self.server.start()
        self._run_async(again())

    def drop_connections(self) -> None:
        self._call(self.server.drop)

    # ------------------------------------------------------------ mail

    def add_user(self, name: str, password: str) -> None:
        self._call(lambda: self.store.add_user(name, password))

    def deliver(self, raw: bytes, folder: str = "INBOX", *, user: str | None = None,
                flags: Iterable[str] = (), internaldate: datetime | None = None) -> int:
        """Put a mail into a folder as an MTA would; returns its UID."""
        def append() -> int:
            owner = user or self.store.only_user()
            return self.store.append(owner, folder, raw, flags, internaldate).uid
        return self._call(append)

    def messages(self, folder: str = "INBOX", *, user: str | None = None) -> list[ServerMessage]:
        def snapshot() -> list[ServerMessage]:
            box = self.store.folder(user or self.store.only_user(), folder)
            return [ServerMessage(m.uid, m.raw, frozenset(m.flags), m.internaldate)
                    for m in box.messages.values()]
        return self._call(snapshot)

    def folders(self, *, user: str | None = None) -> list[str]:
        return self._call(lambda: sorted(self.store.folders[user or self.store.only_user()]))

    def uidvalidity(self, folder: str = "INBOX", *, user: str | None = None) -> int:
        return self._call(
            lambda: self.store.folder(user or self.store.only_user(), folder).uidvalidity)

    def set_uidvalidity(self, value: int, folder: str = "INBOX", *,
                        user: str | None = None) -> None:
        """Give the folder a new UIDVALIDITY and renumber its mail from UID 1; sessions that
        have it selected are dropped, as their UIDs no longer mean anything."""
        def change() -> None:
            owner = user or self.store.only_user()
            self.store.set_uidvalidity(owner, folder, value)
            self.server.drop(lambda s: s.user == owner and s.folder is not None
                             and s.folder.name == self.store.folder(owner, folder).name)
        self._call(change)

    # ------------------------------------------------------------ thread hand-over

    def _call(self, function: Callable[[], T]) -> T:
        async def run() -> T:
            return function()
        return self._run_async(run())

    def _run_async(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("the embedded IMAP server is not running; call start()")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)
