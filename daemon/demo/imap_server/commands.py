"""The embedded IMAP server's command handlers, registered by name in session.COMMANDS.

Each handler writes its untagged responses through the session and returns the tagged
OK's text, or raises No/Bad. Messages are addressed through the client's view, so sequence
numbers stay right while other sessions append or expunge.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import Callable

from daemon.demo.imap_server.fetch import (
    FetchItem,
    flag_list,
    parse_fetch_items,
    parse_sequence_set,
    render,
    resolve,
)
from daemon.demo.imap_server.proto import (
    Command,
    Value,
    as_list,
    parse_date_time,
    string,
    text,
)
from daemon.demo.imap_server.search import Candidate, compile_search
from daemon.demo.imap_server.session import COMMANDS, Bad, Handler, No, Reply, Session
from daemon.demo.imap_server.store import DELIMITER, SYSTEM_FLAGS, Folder, StoredMessage

ANY = frozenset({"nonauth", "auth", "selected"})
NONAUTH = frozenset({"nonauth"})
AUTH = frozenset({"auth", "selected"})
SELECTED = frozenset({"selected"})
FLUSH_AT = 1 << 20  # bytes waiting in the transport before a long FETCH pauses to send


def command(name: str, states: frozenset[str]) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        COMMANDS[name] = (states, handler)
        return handler
    return register


def _args(cmd: Command, low: int, high: int | None = None) -> list[Value]:
    high = low if high is None else high
    if not low <= len(cmd.args) <= high:
        wanted = str(low) if low == high else f"{low} to {high}"
        raise Bad(f"{cmd.name} takes {wanted} arguments, not {len(cmd.args)}")
    return cmd.args


def _folder(session: Session) -> Folder:
    assert session.folder is not None  # the state check guarantees it
    return session.folder


# ---------------------------------------------------------------- any state

@command("CAPABILITY", ANY)
async def capability(session: Session, cmd: Command) -> Reply:
    session.untagged("CAPABILITY " + session.capability_text())
    return Reply("CAPABILITY completed")


@command("NOOP", ANY)
async def noop(session: Session, cmd: Command) -> Reply:
    return Reply("NOOP completed")


@command("LOGOUT", ANY)
async def logout(session: Session, cmd: Command) -> Reply:
    session.untagged("BYE logging out")
    session.state = "logout"
    return Reply("LOGOUT completed")


# ---------------------------------------------------------------- authentication

@command("STARTTLS", NONAUTH)
async def starttls(session: Session, cmd: Command) -> Reply:
    raise Bad("STARTTLS is not offered by this server")


@command("LOGIN", NONAUTH)
async def login(session: Session, cmd: Command) -> Reply:
    user, password = (text(value) for value in _args(cmd, 2))
    return _authenticated(session, user, password)


@command("AUTHENTICATE", NONAUTH)
async def authenticate(session: Session, cmd: Command) -> Reply:
    args = _args(cmd, 1, 2)
    if text(args[0]).upper() != "PLAIN":
        raise No(f"unsupported mechanism {text(args[0])}; use PLAIN")
    if len(args) == 2:
        answer = text(args[1]).encode()
    else:
        session.write(b"+ \r\n")
        await session.flush()
        answer = (await session.reader.readuntil(b"\n")).strip()
    if answer == b"*":
        raise Bad("AUTHENTICATE cancelled")
    try:
        decoded = base64.b64decode(b"" if answer == b"=" else answer, validate=True)
        _, user, password = decoded.split(b"\0")
    except (binascii.Error, ValueError):
        raise Bad("AUTHENTICATE PLAIN needs base64 of authzid NUL user NUL password") from None
    return _authenticated(session, user.decode(), password.decode())


def _authenticated(session: Session, user: str, password: str) -> Reply:
    if not session.store.check_password(user, password):
        raise No("Authentication failed.", "AUTHENTICATIONFAILED")
    session.user, session.state = user, "auth"
    return Reply("Logged in", f"CAPABILITY {session.capability_text()}")


# ---------------------------------------------------------------- folders

@command("SELECT", AUTH)
async def select(session: Session, cmd: Command) -> Reply:
    return _select(session, text(_args(cmd, 1)[0]), readonly=False)


@command("EXAMINE", AUTH)
async def examine(session: Session, cmd: Command) -> Reply:
    return _select(session, text(_args(cmd, 1)[0]), readonly=True)


def _select(session: Session, name: str, readonly: bool) -> Reply:
    session.deselect()
    folder = session.store.folder(session.user, name)
    session.select(folder, readonly)
    flags = " ".join(SYSTEM_FLAGS)
    session.untagged(f"FLAGS ({flags})")
    session.untagged(f"OK [PERMANENTFLAGS ({flags} \\*)] Flags permitted.")
    session.untagged(f"{len(session.view)} EXISTS")
    session.untagged("0 RECENT")
    unseen = [seq for seq, m in enumerate(folder.messages.values(), 1) if "\\Seen" not in m.flags]
    if unseen:
        session.untagged(f"OK [UNSEEN {unseen[0]}] First unseen.")
    session.untagged(f"OK [UIDVALIDITY {folder.uidvalidity}] UIDs valid")
    session.untagged(f"OK [UIDNEXT {folder.uidnext}] Predicted next UID")
    return Reply("Select completed", "READ-ONLY" if readonly else "READ-WRITE")


@command("CREATE", AUTH)
async def create(session: Session, cmd: Command) -> Reply:
    session.store.create(session.user, text(_args(cmd, 1)[0]))
    return Reply("CREATE completed")


@command("DELETE", AUTH)
async def delete(session: Session, cmd: Command) -> Reply:
    name = text(_args(cmd, 1)[0])
    if session.folder is not None and session.folder.name == name:
        session.deselect()
    session.store.delete(session.user, name)
    return Reply("DELETE completed")


@command("RENAME", AUTH)
async def rename(session: Session, cmd: Command) -> Reply:
    old, new = (text(value) for value in _args(cmd, 2))
    session.store.rename(session.user, old, new)
    return Reply("RENAME completed")


@command("SUBSCRIBE", AUTH)
async def subscribe(session: Session, cmd: Command) -> Reply:
    folder = session.store.folder(session.user, text(_args(cmd, 1)[0]))
    session.store.subscribed[session.user].add(folder.name)
    return Reply("SUBSCRIBE completed")


@command("UNSUBSCRIBE", AUTH)
async def unsubscribe(session: Session, cmd: Command) -> Reply:
    session.store.subscribed[session.user].discard(text(_args(cmd, 1)[0]))
    return Reply("UNSUBSCRIBE completed")


@command("LIST", AUTH)
async def list_folders(session: Session, cmd: Command) -> Reply:
    return _list(session, cmd, "LIST", list(session.store.folders[session.user]))


@command("LSUB", AUTH)
async def lsub(session: Session, cmd: Command) -> Reply:
    return _list(session, cmd, "LSUB", sorted(session.store.subscribed[session.user]))


def _list(session: Session, cmd: Command, name: str, folders: list[str]) -> Reply:
    reference, pattern = (text(value) for value in _args(cmd, 2))
    if pattern == "":
        session.untagged(f'{name} (\\Noselect) "{DELIMITER}" ""')
        return Reply(f"{name} completed")
    matcher = _pattern(reference + pattern)
    every = session.store.folders[session.user]
    for folder in folders:
        if matcher.fullmatch(folder):
            children = any(other.startswith(folder + DELIMITER) for other in every)
            attribute = "\\HasChildren" if children else "\\HasNoChildren"
            session.untagged(f'{name} ({attribute}) "{DELIMITER}" '.encode() + string(folder))
    return Reply(f"{name} completed")


def _pattern(pattern: str) -> re.Pattern[str]:
    """LIST wildcards: * matches anything, % anything but the hierarchy delimiter."""
    parts = [".*" if c == "*" else f"[^{DELIMITER}]*" if c == "%" else re.escape(c)
             for c in pattern]
    flags = re.IGNORECASE if pattern.upper().startswith("INBOX") else 0
    return re.compile("".join(parts), flags)


@command("STATUS", AUTH)
async def status(session: Session, cmd: Command) -> Reply:
    name_value, items = _args(cmd, 2)
    folder = session.store.folder(session.user, text(name_value))
    values = {"MESSAGES": len(folder.messages), "RECENT": 0, "UIDNEXT": folder.uidnext,
              "UIDVALIDITY": folder.uidvalidity, "UNSEEN": folder.unseen(),
              "SIZE": sum(len(m.raw) for m in folder.messages.values())}
    out = []
    for item in as_list(items):
        key = text(item).upper()
        if key not in values:
            raise Bad(f"unknown STATUS item {key}")
        out.append(f"{key} {values[key]}")
    session.untagged(b"STATUS " + string(folder.name) + f" ({' '.join(out)})".encode())
    return Reply("STATUS completed")


@command("APPEND", AUTH)
async def append(session: Session, cmd: Command) -> Reply:
    args = _args(cmd, 2, 4)
    raw = args[-1]
    if not isinstance(raw, bytes):
        raise Bad("APPEND needs the message as a literal")
    flags: list[str] = []
    date = None
    for option in args[1:-1]:
        if isinstance(option, list):
            flags = [text(flag) for flag in option]
        else:
            date = parse_date_time(text(option))
    message = session.store.append(session.user, text(args[0]), raw, _valid_flags(flags), date)
    folder = session.store.folder(session.user, text(args[0]))
    return Reply("APPEND completed", f"APPENDUID {folder.uidvalidity} {message.uid}")


def _valid_flags(flags: list[str]) -> list[str]:
    system = {flag.upper(): flag for flag in SYSTEM_FLAGS}
    out = []
    for flag in flags:
        if flag.startswith("\\"):
            if flag.upper() not in system:
                raise Bad(f"unknown system flag {flag}")
            flag = system[flag.upper()]
        out.append(flag)
    return out


# ---------------------------------------------------------------- the selected folder

@command("CHECK", SELECTED)
async def check(session: Session, cmd: Command) -> Reply:
    return Reply("CHECK completed")


@command("CLOSE", SELECTED)
async def close(session: Session, cmd: Command) -> Reply:
    folder = _folder(session)
    if not session.readonly:
        deleted = [m.uid for m in folder.messages.values() if "\\Deleted" in m.flags]
        session.store.expunge(folder, deleted)
    session.deselect()
    return Reply("CLOSE completed")


@command("UNSELECT", SELECTED)
async def unselect(session: Session, cmd: Command) -> Reply:
    session.deselect()
    return Reply("UNSELECT completed")


def targets(session: Session, spec: Value, uid: bool) -> list[tuple[int, StoredMessage]]:
    """(sequence number, message) for a sequence set, or a UID set when uid."""
    folder = _folder(session)
    out = []
    for index in resolve(parse_sequence_set(text(spec)), session.view, uid):
        message = folder.messages.get(session.view[index])
        if message is not None:  # expunged by another session, not yet told
            out.append((index + 1, message))
    return out


@command("FETCH", SELECTED)
async def fetch(session: Session, cmd: Command) -> Reply:
    spec, items_value = _args(cmd, 2)
    items = parse_fetch_items(items_value)
    if cmd.uid and not any(item.name == "UID" for item in items):
        items.insert(0, FetchItem("UID"))
    sets_seen = not session.readonly and any(item.sets_seen for item in items)
    for seq, message in targets(session, spec, cmd.uid):
        shown = items
        if sets_seen and "\\Seen" not in message.flags:
            message.flags.add("\\Seen")
            session.store.flags_changed(_folder(session))
            session.told_flags[message.uid] = frozenset(message.flags)
            if not any(item.name == "FLAGS" for item in items):
                shown = [*items, FetchItem("FLAGS")]
        body = b" ".join(render(item, message) for item in shown)
        session.untagged(f"{seq} FETCH (".encode() + body + b")")
        if session.writer.transport.get_write_buffer_size() > FLUSH_AT:
            await session.flush()
    return Reply("FETCH completed")


@command("STORE", SELECTED)
async def store(session: Session, cmd: Command) -> Reply:
    if session.readonly:
        raise No("the folder is read-only (EXAMINE)")
    spec, item, *flag_values = _args(cmd, 3, 99)
    mode, silent = _store_mode(text(item))
    flags = set(_valid_flags([text(f) for v in flag_values for f in as_list(v)]))
    folder = _folder(session)
    changed = False
    for seq, message in targets(session, spec, cmd.uid):
        new = {"+": message.flags | flags, "-": message.flags - flags, "": set(flags)}[mode]
        changed |= new != message.flags
        message.flags = new
        session.told_flags[message.uid] = frozenset(new)
        if not silent:
            uid = f" UID {message.uid}" if cmd.uid else ""
            session.untagged(f"{seq} FETCH (FLAGS ".encode() + flag_list(new) + f"{uid})".encode())
    if changed:
        session.store.flags_changed(folder)
    return Reply("STORE completed")


def _store_mode(item: str) -> tuple[str, bool]:
    match = re.fullmatch(r"([+-]?)FLAGS(\.SILENT)?", item.upper())
    if match is None:
        raise Bad(f"bad STORE item {item}; use FLAGS, +FLAGS or -FLAGS, optionally .SILENT")
    return match[1], match[2] is not None


@command("SEARCH", SELECTED)
async def search(session: Session, cmd: Command) -> Reply:
    predicate = compile_search(cmd.args)
    folder = _folder(session)
    max_uid = session.view[-1] if session.view else 0
    found = []
    for seq, uid in enumerate(session.view, start=1):
        message = folder.messages.get(uid)
        if message and predicate(Candidate(seq, message, len(session.view), max_uid)):
            found.append(str(uid if cmd.uid else seq))
    session.untagged(" ".join(["SEARCH", *found]))
    return Reply("SEARCH completed")


@command("COPY", SELECTED)
async def copy(session: Session, cmd: Command) -> Reply:
    spec, target = _args(cmd, 2)
    return _copy(session, targets(session, spec, cmd.uid), text(target))


@command("MOVE", SELECTED)
async def move(session: Session, cmd: Command) -> Reply:
    if session.readonly:
        raise No("the folder is read-only (EXAMINE)")
    spec, target = _args(cmd, 2)
    chosen = targets(session, spec, cmd.uid)
    reply = _copy(session, chosen, text(target))
    session.untagged(f"OK [{reply.code}] Moved")
    uids = [message.uid for _, message in chosen]
    session.store.expunge(_folder(session), uids)
    session.forget(uids)
    return Reply("MOVE completed")


def _copy(session: Session, chosen: list[tuple[int, StoredMessage]], target: str) -> Reply:
    source = _folder(session)
    uids = [message.uid for _, message in chosen]
    new = session.store.copy(session.user, source, uids, target)
    if not uids:
        return Reply("COPY completed (nothing matched)")
    validity = session.store.folder(session.user, target).uidvalidity
    code = f"COPYUID {validity} {','.join(map(str, uids))} {','.join(map(str, new))}"
    return Reply("COPY completed", code)


@command("EXPUNGE", SELECTED)
async def expunge(session: Session, cmd: Command) -> Reply:
    if session.readonly:
        raise No("the folder is read-only (EXAMINE)")
    folder = _folder(session)
    if cmd.uid:
        chosen = [m for _, m in targets(session, _args(cmd, 1)[0], uid=True)]
    else:
        _args(cmd, 0)
        chosen = list(folder.messages.values())
    doomed = [m.uid for m in chosen if "\\Deleted" in m.flags]
    session.forget(session.store.expunge(folder, doomed))
    return Reply("EXPUNGE completed")


# ---------------------------------------------------------------- IDLE

@command("IDLE", AUTH)
async def idle(session: Session, cmd: Command) -> Reply:
    _args(cmd, 0)
    session.write(b"+ idling\r\n")
    line_task = asyncio.ensure_future(session.reader.readuntil(b"\n"))
    try:
        while not line_task.done():
            session.changed.clear()
            session.sync(expunges=True)
            await session.flush()
            wake = asyncio.ensure_future(session.changed.wait())
            await asyncio.wait({line_task, wake}, return_when=asyncio.FIRST_COMPLETED)
            wake.cancel()
    finally:
        line_task.cancel()
    if line_task.result().strip().upper() != b"DONE":
        raise Bad("expected DONE to end IDLE")
    return Reply("IDLE terminated")

