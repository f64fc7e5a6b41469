"""IMAP adapter: one folder of one mailbox, through imapclient, for a worker thread.

Blocking by design (the ingest loop runs it off the event loop). Everything speaks UIDs and
UIDVALIDITY, never sequence numbers. Every failure surfaces as an `ImapError` subclass with a
one-line message, so the caller can log it, back off (`Backoff`) and reconnect:

    mailbox = Mailbox(settings.imap)
    mailbox.connect()
    start = resume_point(stored_cursor, mailbox.select())
    for batch in mailbox.fetch_after(start.last_uid):
        ...commit the batch with the cursor (uidvalidity, batch[-1].uid)...
        mailbox.mark_processed([mail.uid for mail in batch])
    mailbox.wait(timeout_s=60)

This module reads the folder (UID searches in windows, fetches in batches bounded by count
and bytes) and marks what was processed. The `Mailbox` is built on the session
(daemon/inbound/imap_session.py: connect, TLS, login, select, errors) and the wait for new
mail (daemon/inbound/imap_idle.py: IDLE or polling, `wake()`).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from imapclient import IMAPClient
from imapclient import exceptions as imapclient_errors

from daemon.config.settings import ImapSettings
from daemon.inbound.imap_fetch import fetch_bodies, uid_set
from daemon.inbound.imap_idle import WaitingSession
from daemon.inbound.imap_session import forget_notices

DEFAULT_BATCH_SIZE = 100
# A batch also stops at this many bytes, so a run of 30 MB mails never sits in memory at once.
DEFAULT_BATCH_BYTES = 32 * 1024 * 1024
WINDOW_GROWTH = 16  # the widest UID range searched, in fetch steps (see windows_after)
SEEN = b"\\Seen"
DELETED = b"\\Deleted"


# ---------------------------------------------------------------- pure helpers

@dataclass(frozen=True, slots=True)
class Fetched:
    """One mail as the server stores it: raw bytes, never parsed here."""

    uid: int
    raw: bytes


@dataclass(frozen=True, slots=True)
class Resume:
    """Where the ingest loop starts reading: UIDs above `last_uid` under `uidvalidity`."""

    uidvalidity: int
    last_uid: int
    reset: bool  # the stored cursor belonged to another UIDVALIDITY and was discarded


def resume_point(stored: tuple[int, int] | None, uidvalidity: int) -> Resume:
    """The rule for a stored cursor (uidvalidity, last_uid) against the folder's UIDVALIDITY.

    Same UIDVALIDITY: go on after the stored UID. No cursor: start at UID 0. A different
    UIDVALIDITY means the server renumbered the folder (restored backup, rebuilt index, a
    moved account), so stored UIDs name nothing: start again from UID 0 and reread the whole
    folder. No old ticket is re-created because every mail is deduplicated by its Message-ID
    (or a content hash when it has none) in the same transaction that records it; mails that
    were already processed and moved to the processed folder are not even seen again.
    """
    if stored is None:
        return Resume(uidvalidity, 0, reset=False)
    stored_validity, last_uid = stored
    if stored_validity == uidvalidity:
        return Resume(uidvalidity, last_uid, reset=False)
    return Resume(uidvalidity, 0, reset=True)


def plan_batches(sizes: Sequence[tuple[int, int]], max_count: int,
                 max_bytes: int | None) -> list[list[int]]:
    """Split (uid, size) pairs, in order, into batches of at most max_count UIDs and max_bytes
    bytes; a mail bigger than max_bytes travels alone."""
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for uid, size in sizes:
        full = len(current) >= max_count or (max_bytes is not None and total + size > max_bytes)
        if current and full:
            batches.append(current)
            current, total = [], 0
        current.append(uid)
        total += size
    if current:
        batches.append(current)
    return batches


# ---------------------------------------------------------------- the mailbox

class Mailbox(WaitingSession):
    """One folder (settings.folder) on one IMAP server. Not thread-safe, except `wake()`."""

    def __init__(
        self,
        settings: ImapSettings,
        ssl_context: ssl.SSLContext | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_bytes: int | None = DEFAULT_BATCH_BYTES,
        use_idle: bool = True,
        idle_renew_s: float | None = None,  # default: settings.idle_renew
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        super().__init__(settings, ssl_context, use_idle=use_idle, idle_renew_s=idle_renew_s,
                         clock=clock)
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes

    # ------------------------------------------------------------ reading

    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs above last_uid, ascending."""
        # "n:*" always matches the highest UID, even when that is below n.
        return self._search(f"UID {last_uid + 1}:*", last_uid + 1)

    def windows_after(self, last_uid: int) -> Iterator[list[int]]:
        """The UIDs above last_uid, ascending, one UID range at a time up to the UIDNEXT
        that SELECT reported: a mailbox of a million mails is never a list of a million UIDs
        in memory. A range that finds little makes the next one wider, so a long run of
        expunged UIDs costs a few searches, not thousands. Then one `low:*` search takes in
        what arrived meanwhile (or what a server's stale UIDNEXT hid), range by range too."""
        step = self._fetch_step
        width, low = step, last_uid + 1
        end = (self.uidnext or 0) - 1
        while True:
            while low <= end:
                high = min(low + width - 1, end)
                found = self._search(f"UID {low}:{high}", low, high)
                if found:
                    yield found
                grow = 2 * len(found) < width  # less than half full
                width = min(width * 2, step * WINDOW_GROWTH) if grow else step
                low = high + 1
            tail = self._search(f"UID {low}:*", low)  # "n:*": see uids_after
            if not tail:
                return
            end = tail[-1]

    def _search(self, criteria: str, low: int, high: int | None = None) -> list[int]:
        """UID SEARCH, ascending and held to [low, high]."""
        client = self._session()
        forget_notices(client)  # a drain's moves leave an EXPUNGE notice per mail
        with self._errors("UID SEARCH"):
            found = client.search(criteria)
        return sorted(uid for uid in found if low <= uid and (high is None or uid <= high))

    def uids_between(self, low: int, high: int) -> list[int]:
        """UIDs from low to high, both included, ascending."""
        return self._search(f"UID {low}:{high}", low, high)

    def fetch_after(self, last_uid: int) -> Iterator[list[Fetched]]:
        """`fetch` of `windows_after`: every mail after the cursor, batch by batch."""
        for window in self.windows_after(last_uid):
            yield from self.fetch(window)

    def unmarked_upto(self, last_uid: int) -> list[int]:
        """Unseen UIDs at or below last_uid: mail committed before a crash or a dropped
        connection kept it from being marked processed."""
        if last_uid < 1:
            return []
        return self._search(f"UID 1:{last_uid} UNSEEN", 1, last_uid)

    def count_waiting(self, last_uid: int) -> int:
        """How many mails sit in the folder after the cursor."""
        return len(self.uids_after(last_uid))

    def arrived_at(self, uid: int) -> datetime | None:
        """When the server received one mail (its INTERNALDATE), None if it is gone."""
        client = self._session()
        with self._errors("UID FETCH INTERNALDATE"):
            response = client.fetch([uid], ["INTERNALDATE"])
        found = response.get(uid, {}).get(b"INTERNALDATE")
        return found if isinstance(found, datetime) else None

    def fetch(self, uids: Iterable[int]) -> Iterator[list[Fetched]]:
        """The mails, in UID order, in batches of at most batch_size mails and batch_bytes
        bytes, fetched one batch at a time (BODY.PEEK[]: fetching never sets \\Seen).
        A UID expunged meanwhile is simply missing from its batch."""
        ordered = sorted(set(uids))
        step = self._fetch_step
        for start in range(0, len(ordered), step):
            for part in self.plan(ordered[start:start + step]):
                yield self.fetch_batch(part)

    @property
    def _fetch_step(self) -> int:
        # Sizes are asked for ten batches at a time: one small command instead of ten.
        return self.batch_size * (1 if self.batch_bytes is None else 10)

    def plan(self, uids: list[int]) -> list[list[int]]:
        """Batches for these UIDs. Only mails bigger than batch_bytes / batch_size can make
        a batch too big, so only their sizes are asked for (a SEARCH LARGER finds them);
        the others count as that bound. Parsing every size costs a third of the fetch rate."""
        if self.batch_bytes is None:
            return [uids]
        bound = max(self.batch_bytes // self.batch_size, 1)
        client = self._session()
        with self._errors("UID SEARCH LARGER"):
            big = client.search(f"UID {uid_set(uids)} LARGER {bound}")
            sizes = client.fetch(big, ["RFC822.SIZE"]) if big else {}
        pairs = [(uid, sizes[uid][b"RFC822.SIZE"] if uid in sizes else bound) for uid in uids]
        return plan_batches(pairs, self.batch_size, self.batch_bytes)

    def fetch_batch(self, uids: list[int]) -> list[Fetched]:
        """One planned batch (see `plan`), in UID order; expunged UIDs are missing."""
        client = self._session()
        with self._errors("UID FETCH"):
            bodies = fetch_bodies(client, uids)
        return [Fetched(uid, bodies[uid]) for uid in uids if uid in bodies]

    # ------------------------------------------------------------ after commit

    def mark_processed(self, uids: Iterable[int]) -> None:
        """Flag the mails \\Seen and, when processed_folder is set, move them there: MOVE when
        the server has it, else COPY + \\Deleted + UID EXPUNGE. Without UIDPLUS the copies stay
        flagged \\Deleted: a plain EXPUNGE would also remove mail others flagged."""
        wanted = sorted(set(uids))
        if not wanted:
            return
        client = self._session()
        target = self.settings.processed_folder
        with self._errors("mark processed"):
            for start in range(0, len(wanted), 1000):  # keeps command lines short
                chunk = uid_set(wanted[start:start + 1000])
                client.add_flags(chunk, [SEEN], silent=True)
                if target:
                    self._move(client, chunk, target)

    def _move(self, client: IMAPClient, chunk: str, target: str) -> None:
        self._ensure_folder(client, target)
        if b"MOVE" in self._capabilities:
            client.move(chunk, target)
            return
        client.copy(chunk, target)
        client.add_flags(chunk, [DELETED], silent=True)
        if b"UIDPLUS" in self._capabilities:
            client.uid_expunge(chunk)

    def _ensure_folder(self, client: IMAPClient, folder: str) -> None:
        if folder in self._folders:
            return
        if not client.folder_exists(folder):
            try:
                client.create_folder(folder)
            except imapclient_errors.IMAPClientError:
                if not client.folder_exists(folder):  # else another daemon just created it
                    raise
        self._folders.add(folder)
