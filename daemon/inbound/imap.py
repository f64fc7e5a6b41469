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
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

from imapclient import IMAPClient, SocketTimeout
from imapclient import exceptions as imapclient_errors

from daemon.config.settings import ImapSettings
from daemon.inbound.imap_fetch import fetch_bodies, uid_set

# RFC 2177: re-issue IDLE at least every 29 minutes; we stay well inside that.
IDLE_RENEW_S = 25 * 60
DEFAULT_BATCH_SIZE = 100
# A batch also stops at this many bytes, so a run of 30 MB mails never sits in memory at once.
DEFAULT_BATCH_BYTES = 32 * 1024 * 1024
WINDOW_GROWTH = 16  # the widest UID range searched, in fetch steps (see windows_after)
SEEN = b"\\Seen"
DELETED = b"\\Deleted"


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


def _detail(exc: BaseException) -> str:
    text = exc.args[0] if len(exc.args) == 1 else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text) or type(exc).__name__


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


# ---------------------------------------------------------------- the mailbox

class Mailbox:
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
        self.settings = settings
        self.ssl_context = ssl_context
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.use_idle = use_idle
        self.idle_renew_s = min(settings.idle_renew.total_seconds() if idle_renew_s is None
                                else idle_renew_s, IDLE_RENEW_S)
        self._clock = clock
        self._client: IMAPClient | None = None
        self._capabilities: frozenset[bytes] = frozenset()
        self._folders: set[str] = set()
        self._woken = threading.Event()
        self._wake_pair: tuple[socket.socket, socket.socket] | None = None
        self._last_poll = clock()
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
        self._wake_pair = socket.socketpair()

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
        if self._wake_pair is not None:
            for end in self._wake_pair:
                end.close()
            self._wake_pair = None
        if client is not None:
            try:
                client.logout()
            except Exception:  # the connection may already be gone; we only want it closed
                _shutdown(client)

    def __enter__(self) -> Mailbox:
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

    @property
    def supports_idle(self) -> bool:
        return self.use_idle and b"IDLE" in self._capabilities

    # ------------------------------------------------------------ reading

    def select(self) -> int:
        """Select the configured folder read-write; returns its UIDVALIDITY."""
        client = self._session()
        with self._errors(f"SELECT {self.settings.folder}"):
            response = client.select_folder(self.settings.folder)
        _forget_notices(client)  # the folder's size as selected is no news (see wait())
        self.uidvalidity = int(response[b"UIDVALIDITY"])
        uidnext = response.get(b"UIDNEXT")
        self.uidnext = int(uidnext) if uidnext is not None else None
        self._last_poll = self._clock()
        return self.uidvalidity

    def examine(self) -> int:
        """Select the configured folder read-only (EXAMINE), for a look that changes nothing:
        no flags, and no \\Recent taken from the daemon's own session. Returns UIDVALIDITY."""
        client = self._session()
        with self._errors(f"EXAMINE {self.settings.folder}"):
            response = client.select_folder(self.settings.folder, readonly=True)
        self.uidvalidity = int(response[b"UIDVALIDITY"])
        return self.uidvalidity

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
        _forget_notices(client)  # a drain's moves leave an EXPUNGE notice per mail
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
            _forget_notices(self._client)
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


def _forget_notices(client: IMAPClient) -> None:
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
