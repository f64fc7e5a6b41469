"""One client connection of the embedded IMAP server: read commands, keep the client's view
of the selected folder in step, answer. Command handlers live in imap_server_commands."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from daemon.demo.imap_server.fetch import flag_list
from daemon.demo.imap_server.proto import Command, ParseError, literal_request, parse_command
from daemon.demo.imap_server.store import Folder, Store, StoreError

logger = logging.getLogger(__name__)

# Commands during which an EXPUNGE response would renumber messages under the client's feet.
NO_EXPUNGE_NOTICES = frozenset({"FETCH", "STORE", "SEARCH"})


class No(Exception):  # noqa: N818 - named after the IMAP response it becomes
    """End the command with NO (and an optional response code)."""

    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.code = code


class Bad(Exception):  # noqa: N818 - named after the IMAP response it becomes
    """End the command with BAD."""


@dataclass(frozen=True)
class Reply:
    text: str = "done"
    code: str | None = None


@dataclass(frozen=True)
class ServerConfig:
    capabilities: tuple[str, ...]
    max_literal: int
    greeting: str = "Tierdesk embedded IMAP server ready"


Handler = Callable[["Session", Command], Awaitable[Reply]]
# name -> (states it is allowed in, handler); filled by imap_server_commands.
COMMANDS: dict[str, tuple[frozenset[str], Handler]] = {}


class Session:
    def __init__(self, store: Store, config: ServerConfig, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.store, self.config = store, config
        self.reader, self.writer = reader, writer
        self.state = "nonauth"
        self.user = ""
        self.folder: Folder | None = None
        self.readonly = False
        self.view: list[int] = []  # UIDs in the order (sequence numbers) the client knows
        self.told_flags: dict[int, frozenset[str]] = {}
        self.told_version = 0
        self.changed = asyncio.Event()

    # ------------------------------------------------------------ connection

    async def run(self) -> None:
        self.store.on_change.append(self.changed.set)
        try:
            self.untagged(f"OK [CAPABILITY {self.capability_text()}] {self.config.greeting}")
            await self.flush()
            while self.state != "logout":
                data = await self.read_command()
                if data is None:
                    break
                await self.handle(data)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away or sent garbage; either way this connection is done
        finally:
            self.store.on_change.remove(self.changed.set)
            await self.close()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()

    def abort(self) -> None:
        """Drop the connection at once, without BYE (a crash, as the client sees it)."""
        self.writer.transport.abort()

    async def read_command(self) -> bytes | None:
        """One whole command: its lines joined by CRLF, each literal's bytes after its marker.
        None when the client closed the connection or a literal was refused."""
        line = await self.reader.readuntil(b"\n")
        data = line.rstrip(b"\r\n")
        while (request := literal_request(data[-64:])) is not None:
            size, non_sync = request
            if size > self.config.max_literal:
                return await self._refuse_literal(data, non_sync)
            if not non_sync:
                self.write(b"+ Ready for literal data\r\n")
                await self.flush()
            literal = await self.reader.readexactly(size)
            self._ack_now()
            rest = await self.reader.readuntil(b"\n")
            data += b"\r\n" + literal + rest.rstrip(b"\r\n")
        return data

    def _ack_now(self) -> None:
        """ACK the literal at once. Clients send the CRLF after a literal as a write of its
        own, which Nagle holds until our ACK, which Linux delays by 40 ms: 40 ms per APPEND."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None and hasattr(socket, "TCP_QUICKACK"):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    async def _refuse_literal(self, data: bytes, non_sync: bool) -> bytes | None:
        tag = data.split(b" ", 1)[0].decode("ascii", "replace")
        if non_sync:  # its bytes are already on their way: nothing sane to resync on
            self.untagged("BYE literal too big")
            self.state = "logout"
        else:
            self.tagged(tag, "NO", f"[TOOBIG] literal larger than {self.config.max_literal}")
        await self.flush()
        return None if non_sync else b""

    # ------------------------------------------------------------ commands

    async def handle(self, data: bytes) -> None:
        if not data.strip():
            return
        try:
            command = parse_command(data)
        except ParseError as exc:
            self.tagged(exc.tag or "*", "BAD", str(exc))
            await self.flush()
            return
        if self.folder is not None:
            # Announce new mail first, so the command sees what the client was told of.
            self.sync(expunges=False)
        status, reply = await self._execute(command)
        if self.state in ("selected", "logout") and self.folder is not None:
            self.sync(expunges=command.uid or command.name not in NO_EXPUNGE_NOTICES)
        code = f"[{reply.code}] " if reply.code else ""
        self.tagged(command.tag, status, code + reply.text)
        await self.flush()

    async def _execute(self, command: Command) -> tuple[str, Reply]:
        entry = COMMANDS.get(command.name)
        if entry is None or (command.uid and command.name not in UID_COMMANDS):
            return "BAD", Reply(f"unknown command {'UID ' * command.uid}{command.name}")
        states, handler = entry
        if self.state not in states:
            return "BAD", Reply(f"{command.name} is not allowed {_why_not(self.state, states)}")
        try:
            return "OK", await handler(self, command)
        except No as exc:
            return "NO", Reply(str(exc), exc.code)
        except StoreError as exc:
            return "NO", Reply(str(exc), exc.code)
        except (Bad, ParseError) as exc:
            return "BAD", Reply(str(exc))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            raise
        except Exception as exc:  # a bug in one command must not take the server down
            logger.exception("IMAP command %s failed", command.name)
            return "NO", Reply(f"internal server error ({type(exc).__name__})", "SERVERBUG")

    # ------------------------------------------------------------ output

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    def untagged(self, line: str | bytes) -> None:
        self.write(b"* " + (line.encode() if isinstance(line, str) else line) + b"\r\n")

    def tagged(self, tag: str, status: str, text: str) -> None:
        self.write(f"{tag} {status} {text}\r\n".encode())

    async def flush(self) -> None:
        await self.writer.drain()

    def capability_text(self) -> str:
        return " ".join(self.config.capabilities)

    # ------------------------------------------------------------ the selected folder

    def select(self, folder: Folder, readonly: bool) -> None:
        self.folder, self.readonly, self.state = folder, readonly, "selected"
        self.view = folder.uids()
        self.told_flags = {m.uid: frozenset(m.flags) for m in folder.messages.values()}
        self.told_version = folder.version

    def deselect(self) -> None:
        self.folder, self.view, self.told_flags = None, [], {}
        self.state = "auth"

    def sync(self, expunges: bool) -> None:
        """Tell the client what changed in the folder since it last heard: expunged messages
        (when allowed now), new messages (EXISTS), and flags others changed."""
        folder = self.folder
        if folder is None:
            return
        if expunges and folder.version != self.told_version:
            self.forget([uid for uid in self.view if uid not in folder.messages])
        last = self.view[-1] if self.view else 0
        new = []
        for uid in reversed(folder.messages):
            if uid <= last:
                break
            new.append(uid)
        if new:
            for uid in reversed(new):
                self.view.append(uid)
                self.told_flags[uid] = frozenset(folder.messages[uid].flags)
            self.untagged(f"{len(self.view)} EXISTS")
        if folder.version != self.told_version:
            self._tell_flags(folder)

    def _tell_flags(self, folder: Folder) -> None:
        for seq, uid in enumerate(self.view, start=1):
            message = folder.messages.get(uid)
            if message is not None and frozenset(message.flags) != self.told_flags.get(uid):
                self.told_flags[uid] = frozenset(message.flags)
                self.untagged(f"{seq} FETCH (FLAGS ".encode() + flag_list(message.flags) + b")")
        if self.view == [uid for uid in self.view if uid in folder.messages]:
            self.told_version = folder.version

    def forget(self, uids: list[int]) -> None:
        """Send EXPUNGE for these UIDs (highest sequence number first) and drop them."""
        gone = set(uids)
        for index in range(len(self.view) - 1, -1, -1):
            if self.view[index] in gone:
                self.untagged(f"{index + 1} EXPUNGE")
                self.told_flags.pop(self.view.pop(index), None)


UID_COMMANDS = frozenset({"FETCH", "SEARCH", "STORE", "COPY", "MOVE", "EXPUNGE"})


def _why_not(state: str, allowed: frozenset[str]) -> str:
    if state == "nonauth":
        return "before LOGIN"
    if allowed == {"nonauth"}:
        return "after LOGIN"
    return "without a selected folder"
