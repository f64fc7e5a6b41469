"""The embedded IMAP server's mail store: accounts, folders, messages, in memory.

Used only from the server's event loop thread, so it needs no locks. Every change calls the
`on_change` callbacks, which is how idling sessions learn of new mail.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
DELIMITER = "/"


class StoreError(Exception):
    """A request the store refuses; `code` is an IMAP response code such as TRYCREATE."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class StoredMessage:
    uid: int
    raw: bytes
    flags: set[str]
    internaldate: datetime


@dataclass
class Folder:
    name: str
    uidvalidity: int
    uidnext: int = 1
    messages: dict[int, StoredMessage] = field(default_factory=dict)  # by UID, ascending
    version: int = 0  # bumped when flags change or messages go, so sessions can tell clients

    def uids(self) -> list[int]:
        return list(self.messages)

    def add(self, raw: bytes, flags: Iterable[str], internaldate: datetime) -> StoredMessage:
        message = StoredMessage(self.uidnext, raw, set(flags), internaldate)
        self.messages[message.uid] = message
        self.uidnext += 1
        return message

    def unseen(self) -> int:
        return sum("\\Seen" not in message.flags for message in self.messages.values())


def normalise_name(name: str) -> str:
    """Folder names as stored: INBOX in any case is INBOX; no trailing delimiter."""
    name = name.rstrip(DELIMITER)
    if name.upper() == "INBOX" or name.upper().startswith("INBOX" + DELIMITER):
        name = "INBOX" + name[5:]
    return name


class Store:
    """Accounts {username: password}, each with its own folders; INBOX always exists."""

    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.passwords: dict[str, str] = {}
        self.folders: dict[str, dict[str, Folder]] = {}
        self.subscribed: dict[str, set[str]] = {}
        self.on_change: list[Callable[[], None]] = []
        # UIDVALIDITY: distinct per folder and across restarts of the process.
        self._validity = itertools.count(int(time.time()) & 0x7FFFFFFF)
        for name, password in (users or {}).items():
            self.add_user(name, password)

    def add_user(self, name: str, password: str) -> None:
        self.passwords[name] = password
        if name not in self.folders:
            self.folders[name] = {}
            self.subscribed[name] = set()
            self.create(name, "INBOX")

    def check_password(self, name: str, password: str) -> bool:
        return name in self.passwords and self.passwords[name] == password

    def only_user(self) -> str:
        if len(self.passwords) != 1:
            raise StoreError("name the user: the server has "
                             f"{len(self.passwords)} users, not exactly one")
        return next(iter(self.passwords))

    # ------------------------------------------------------------ folders

    def folder(self, user: str, name: str) -> Folder:
        if user not in self.folders:
            raise StoreError(f"no user {user!r}")
        folder = self.folders[user].get(normalise_name(name))
        if folder is None:
            raise StoreError(f"no folder {name!r}", code="TRYCREATE")
        return folder

    def exists(self, user: str, name: str) -> bool:
        return normalise_name(name) in self.folders[user]

    def create(self, user: str, name: str) -> Folder:
        name = normalise_name(name)
        if not name or name in self.folders[user]:
            raise StoreError(f"folder {name!r} already exists" if name else "empty folder name")
        folder = Folder(name, next(self._validity))
        self.folders[user][name] = folder
        self.subscribed[user].add(name)
        return folder

    def delete(self, user: str, name: str) -> None:
        folder = self.folder(user, name)
        if folder.name == "INBOX":
            raise StoreError("INBOX cannot be deleted")
        del self.folders[user][folder.name]
        self.subscribed[user].discard(folder.name)
        self.changed()

    def rename(self, user: str, old: str, new: str) -> None:
        folder = self.folder(user, old)
        new = normalise_name(new)
        if new in self.folders[user]:
            raise StoreError(f"folder {new!r} already exists")
        if folder.name == "INBOX":
            raise StoreError("renaming INBOX is not supported here")
        del self.folders[user][folder.name]
        folder.name, folder.uidvalidity = new, next(self._validity)
        self.folders[user][new] = folder

    # ------------------------------------------------------------ messages

    def append(self, user: str, name: str, raw: bytes, flags: Iterable[str] = (),
               internaldate: datetime | None = None) -> StoredMessage:
        folder = self.folder(user, name)
        message = folder.add(raw, flags, internaldate or datetime.now(UTC).replace(microsecond=0))
        self.changed()
        return message

    def copy(self, user: str, source: Folder, uids: list[int], target_name: str) -> list[int]:
        """Copy to target; returns the new UIDs in the order of `uids`."""
        target = self.folder(user, target_name)
        new = [target.add(m.raw, set(m.flags), m.internaldate).uid
               for m in (source.messages[uid] for uid in uids)]
        self.changed()
        return new

    def expunge(self, folder: Folder, uids: Iterable[int]) -> list[int]:
        gone = [uid for uid in uids if folder.messages.pop(uid, None) is not None]
        if gone:
            folder.version += 1
            self.changed()
        return gone

    def set_uidvalidity(self, user: str, name: str, value: int) -> None:
        """A new UIDVALIDITY, and every message renumbered from UID 1: what a server does when
        it rebuilds a folder's index. Sessions holding the folder must be dropped by the caller."""
        folder = self.folder(user, name)
        messages = list(folder.messages.values())
        folder.uidvalidity, folder.uidnext, folder.messages = value, 1, {}
        for message in messages:
            folder.add(message.raw, message.flags, message.internaldate)
        self.changed()

    def flags_changed(self, folder: Folder) -> None:
        folder.version += 1
        self.changed()

    def changed(self) -> None:
        for callback in list(self.on_change):
            callback()
