"""What `run.py status` concludes from the facts it gathered: each daemon's and loop's state,
and the list of things that need an admin (attention items), each with what to do.

Pure: plain data and `now` in, plain data out; cli_status.py does the reading.

A loop is stale when it has not beaten for `stale_after`: three beats missed plus one pass
stuck on a socket until its timeout. A loop beats after each pass and while it waits, at least
once per max(imap.poll_interval, MIN_BEAT_INTERVAL), so with the defaults (60 s poll, 30 s
timeouts) a loop is stale after 3m30s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from daemon.config.settings import Settings
from daemon.inbound.held_senders import HeldSender

LOOPS = ("ingest", "clock", "sender")
# The slowest a healthy loop may beat; a longer poll_interval stretches it.
MIN_BEAT_INTERVAL = timedelta(seconds=40)
MISSED_BEATS = 3
# A mail still pending after this has met a refusing or absent SMTP server several times
# (the sender retries after 1, 2, 4 and 8 minutes).
OUTBOX_PENDING_LIMIT = timedelta(minutes=15)
# Daemons last seen longer ago than this are history, not news: left out of the report.
FORGET_AFTER = timedelta(days=7)


@dataclass(frozen=True)
class Limits:
    stale_after: timedelta       # a loop silent this long is stuck or gone
    mail_waiting: timedelta      # a mail left in the mailbox this long was not picked up
    outbox_pending: timedelta    # a mail not sent after this long

    def as_json(self) -> dict[str, int]:
        return {"stale_after_s": _s(self.stale_after), "mail_waiting_s": _s(self.mail_waiting),
                "outbox_pending_s": _s(self.outbox_pending)}


def limits(settings: Settings) -> Limits:
    interval = max(settings.imap.poll_interval, MIN_BEAT_INTERVAL)
    stale = MISSED_BEATS * interval + max(settings.imap.timeout, settings.smtp.timeout)
    # A live ingest loop takes new mail within one poll (IDLE: at once), so the same bound.
    return Limits(stale_after=stale, mail_waiting=stale, outbox_pending=OUTBOX_PENDING_LIMIT)


# ------------------------------------------------------------------ facts

@dataclass(frozen=True)
class Beat:
    """One loop_heartbeats row."""

    daemon: str
    loop: str
    started_at: datetime
    beat_at: datetime
    ok_at: datetime | None = None
    error: str | None = None
    error_at: datetime | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    stopped_at: datetime | None = None


@dataclass(frozen=True)
class MailboxFacts:
    where: str                           # "imap host:port INBOX"
    waiting: int | None = None           # None: the server could not be asked
    oldest_at: datetime | None = None    # the oldest waiting mail's arrival
    error: str | None = None             # why the server could not be asked


@dataclass(frozen=True)
class Overdue:
    ref: str
    state: str
    team: str | None
    deadline: datetime


@dataclass(frozen=True)
class Facts:
    now: datetime
    beats: Sequence[Beat]
    mailbox: MailboxFacts
    pending: int = 0
    oldest_pending_at: datetime | None = None
    parked: int = 0
    quarantined: int = 0
    overdue: Sequence[Overdue] = ()
    held_senders: Sequence[HeldSender] = ()


@dataclass(frozen=True)
class Attention:
    code: str
    service: bool   # a sick service (counts for --health), not mail or tickets to look at
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.message}: {self.fix}"


# ------------------------------------------------------------------ loops and daemons

def loop_state(beat: Beat, now: datetime, stale_after: timedelta) -> str:
    """stopped (gracefully), alive (a recent beat) or stale (silent, never stopped)."""
    if beat.stopped_at is not None:
        return "stopped"
    return "alive" if now - beat.beat_at <= stale_after else "stale"


@dataclass(frozen=True)
class Daemon:
    name: str
    state: str                  # running, stopped, dead
    loops: tuple[Beat, ...]
    replaced_by: str | None     # a later daemon on the same host (a dead one was restarted)

    @property
    def host(self) -> str:
        return host_of(self.name)

    @property
    def started_at(self) -> datetime:
        return min(b.started_at for b in self.loops)

    @property
    def last_beat(self) -> datetime:
        return max(b.beat_at for b in self.loops)


def host_of(daemon: str) -> str:
    return daemon.rpartition(":")[0] or daemon


def daemons(beats: Sequence[Beat], now: datetime, stale_after: timedelta) -> list[Daemon]:
    """Daemons seen within FORGET_AFTER, newest start first."""
    grouped: dict[str, list[Beat]] = {}
    for beat in beats:
        grouped.setdefault(beat.daemon, []).append(beat)
    found = []
    for name, rows in grouped.items():
        states = {loop_state(b, now, stale_after) for b in rows}
        state = ("running" if "alive" in states else
                 "stopped" if states == {"stopped"} else "dead")
        if now - max(b.beat_at for b in rows) <= FORGET_AFTER:
            found.append(Daemon(name, state, tuple(sorted(rows, key=_loop_order)), None))
    found.sort(key=lambda d: d.started_at, reverse=True)
    return [_with_successor(d, found) for d in found]


def _loop_order(beat: Beat) -> tuple[int, str]:
    return (LOOPS.index(beat.loop) if beat.loop in LOOPS else len(LOOPS), beat.loop)


def _with_successor(daemon: Daemon, others: Sequence[Daemon]) -> Daemon:
    later = [o for o in others if o.host == daemon.host and o.started_at > daemon.started_at]
    if not later:
        return daemon
    return Daemon(daemon.name, daemon.state, daemon.loops, min(later, key=_start).name)


def _start(daemon: Daemon) -> datetime:
    return daemon.started_at


# ------------------------------------------------------------------ the rules

def attention(facts: Facts, limits: Limits) -> list[Attention]:
    """Every problem, service problems first."""
    found = _daemon_items(facts, limits)
    found += _mail_items(facts, limits)
    found += _housekeeping_items(facts)
    return sorted(found, key=lambda item: not item.service)


def _daemon_items(facts: Facts, limits: Limits) -> list[Attention]:
    now = facts.now
    seen = daemons(facts.beats, now, limits.stale_after)
    items: list[Attention] = []
    if not any(d.state == "running" for d in seen):
        last = max((b.beat_at for b in facts.beats), default=None)
        when = f"last beat {_ago(last, now)}" if last else "none has ever run on this database"
        items.append(Attention("no_daemon", True, f"no daemon is running ({when})",
                               "start it: systemctl start tierdesk, or python run.py run"))
    for daemon in seen:
        if daemon.state == "dead" and daemon.replaced_by is None:
            items.append(Attention(
                "daemon_dead", True,
                f"daemon {daemon.name} went silent {_ago(daemon.last_beat, now)} without "
                "stopping", "it crashed or hangs: read its log (journalctl -u tierdesk) and "
                "start it again"))
        if daemon.state == "running":
            items += _loop_items(daemon, now, limits.stale_after)
    return items


def _loop_items(daemon: Daemon, now: datetime, stale_after: timedelta) -> list[Attention]:
    items = []
    present = {b.loop for b in daemon.loops}
    if now - daemon.started_at > stale_after:
        items += [Attention("loop_missing", True, f"{daemon.name}: the {loop} loop has never "
                            "reported", "read the daemon's log; restart it")
                  for loop in LOOPS if loop not in present]
    for beat in daemon.loops:
        if loop_state(beat, now, stale_after) == "stale":
            items.append(Attention(
                "loop_stale", True, f"{daemon.name}: the {beat.loop} loop has been silent "
                f"for {span(now - beat.beat_at)} (stale after {span(stale_after)})",
                "it is stuck: read the daemon's log and restart it"))
        elif failing(beat, now, stale_after):
            since = f"no success {_ago(beat.ok_at, now)}" if beat.ok_at else "never succeeded"
            items.append(Attention("loop_failing", True, f"{daemon.name}: the {beat.loop} loop "
                                   f"is failing ({since}): {beat.error}", _FIXES[beat.loop]
                                   if beat.loop in _FIXES else "read the daemon's log"))
    return items


def failing(beat: Beat, now: datetime, stale_after: timedelta) -> bool:
    """Its last pass failed and none worked for a while: one dropped connection that the next
    pass mends is not news."""
    if beat.error is None:
        return False
    return beat.ok_at is None or now - beat.ok_at > stale_after


_FIXES = {
    "ingest": "check the IMAP server and the TIERDESK_IMAP_* settings",
    "sender": "check the SMTP server and the TIERDESK_SMTP_* settings; mail stays queued",
    "clock": "read the daemon's log (a database problem?)",
}


def _mail_items(facts: Facts, limits: Limits) -> list[Attention]:
    now, box = facts.now, facts.mailbox
    items = []
    if box.error is not None:
        items.append(Attention("imap_unreachable", True, f"IMAP unreachable: {box.error}",
                               "check the server and the TIERDESK_IMAP_* settings"))
    if box.waiting and box.oldest_at is not None and now - box.oldest_at > limits.mail_waiting:
        items.append(Attention(
            "mail_waiting", True, f"{_mails(box.waiting)} waiting in {box.where}, the oldest "
            f"for {span(now - box.oldest_at)}", "the ingest loop is not taking mail: see the "
            "loops above and the daemon's log"))
    oldest = facts.oldest_pending_at
    if facts.pending and oldest is not None and now - oldest > limits.outbox_pending:
        items.append(Attention(
            "outbox_pending", True, f"{_mails(facts.pending)} pending in the outbox, the "
            f"oldest for {span(now - oldest)}", "see run.py outbox for the SMTP server's answer"))
    return items


def _housekeeping_items(facts: Facts) -> list[Attention]:
    items = []
    if facts.parked:
        items.append(Attention("outbox_parked", False,
                               f"{_mails(facts.parked)} parked in the outbox",
                               "see run.py outbox; run.py outbox retry ID sends one again"))
    if facts.quarantined:
        items.append(Attention("quarantine", False, f"{_mails(facts.quarantined)} quarantined",
                               "see run.py quarantine; run.py quarantine retry ID processes "
                               "one again"))
    if facts.overdue:
        worst = sorted(facts.overdue, key=lambda o: o.deadline)[:3]
        shown = ", ".join(f"{o.ref} by {span(facts.now - o.deadline)}" for o in worst)
        more = ", ..." if len(facts.overdue) > len(worst) else ""
        count = len(facts.overdue)
        items.append(Attention("tickets_overdue", False,
                               f"{count} ticket{'s' if count != 1 else ''} past the deadline "
                               f"({shown}{more})", "see run.py tickets"))
    return items + [_held_item(held) for held in facts.held_senders]


def _held_item(held: HeldSender) -> Attention:
    """A loop that opens tickets, or a person who writes a lot: an admin tells them apart."""
    more = f"{held.held} more new conversation{'s' if held.held != 1 else ''}"
    return Attention(
        "sender_held", False,
        f"{held.address} opened {held.tickets} tickets within the hour "
        f"(mail.max_new_tickets_per_hour is {held.limit}); {more} from it recorded on "
        f"{held.ticket} with no ticket and no mail",
        f"a mail loop stops by itself; if it is a person, `{held.release}` lets the next "
        "mail open a ticket")


def exit_code(items: Sequence[Attention], health_only: bool) -> int:
    """0: all well; 1: something needs attention (with health_only: a service problem)."""
    counted = [item for item in items if item.service or not health_only]
    return 1 if counted else 0


# ------------------------------------------------------------------ wording

def span(delta: timedelta) -> str:
    """The two largest units: 45s, 12m, 3h20m, 2d4h."""
    seconds = max(0, int(delta.total_seconds()))
    parts: list[tuple[int, str]] = []
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m"), (1, "s")):
        n, seconds = divmod(seconds, size)
        if n or parts:
            parts.append((n, unit))
    return "".join(f"{n}{unit}" for n, unit in parts[:2] if n) or "0s"


def _ago(moment: datetime | None, now: datetime) -> str:
    return "never" if moment is None else f"{span(now - moment)} ago"


def _mails(n: int) -> str:
    return f"{n} mail{'s' if n != 1 else ''}"


def _s(delta: timedelta) -> int:
    return int(delta.total_seconds())
