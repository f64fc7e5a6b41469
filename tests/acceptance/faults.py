"""Fault injection as users would hit it (issue 15, points 5 and 6): the shared harness of
tests/acceptance/test_faults.py (CI size) and bench/faults.py (full size).

Real peers only: a private Dovecot (tests/inbound/imap/servers.py), an aiosmtpd server in a thread
that records every mail it accepts and can be stopped and started again on its port
(tests/outbound/smtp_server.py), `run.py run` as separate processes, and for PostgreSQL a
private cluster (initdb/pg_ctl as the `postgres` user, on a free port, removed at the end).

The burst: bench/mailgen.py's realistic mix (new reports, replies threaded by In-Reply-To,
auto-replies, bounces), a few new reports that reuse an earlier mail's Message-ID with
different content (some mailers do: DESIGN "Mail facts"), and technicians' commands
(`#take`, `#note`, `#escalate reason`) from directory members to their signed reply address
support+TD-n.<token>@ (TIERDESK_AUTH_SECRET), written once the ticket they answer exists,
as a technician answers the handoff they received. Every mail carries a unique
`X-Tierdesk-Fault-Seq` header, so each appended mail can be found in the store
(messages.raw or quarantine.raw) whatever its Message-ID.

Faults are triggered at seeded points of the progress (mails stored / mails planned), so they
land while work is going on at any size: SIGKILL of a daemon (restarted at once), and on
PostgreSQL also `pg_ctl restart`, the SMTP server away for a while, a Dovecot restart.

Then the harness waits (bounded) until every mail is seen and the outbox is quiet, SIGTERMs
the daemons, and counts: appended / stored / owed / delivered / duplicates. `Run.failures()`
lists every assertion of the issue that does not hold, each with its numbers.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import importlib.util
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as wall_time
from email.utils import format_datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from imapclient import IMAPClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from daemon.auth.sender_auth import sign, signed_address
from daemon.config.calendars import Calendar
from daemon.store.database import migrate, open_database
from tests.inbound.imap.servers import DOVECOT, Account, DovecotServer, client, free_port
from tests.outbound.smtp_server import SmtpServer
from tests.processes import pythonpath

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
SECRET = "fault-injection-secret-" + "y" * 32  # TIERDESK_AUTH_SECRET: signs reply addresses
SUPPORT = "support@example.com"
DOMAIN = "example.com"
SEQ_HEADER = b"X-Tierdesk-Fault-Seq"
SEQ = re.compile(rb"^X-Tierdesk-Fault-Seq: (\d+)\r?$", re.MULTILINE)
SMTP_CONNECTIONS = 4  # the daemon's pool (daemon/outbound/sender.py Sender.from_config)
ESCALATES = {"triage": "tier1", "tier1": "tier2", "tier2": "tier3"}  # default dests
SITE_FOLDERS = ("config", "workflows", "mail_templates")
# Faults are placed on the work done: mails stored + outbox rows sent, about 1.5 rows a mail.
WORK_PER_MAIL = 2.5
# The timer phase: this share of the burst's mails are new reports opened first by a daemon
# whose clock stands this many business days (default calendar) in the past, at a morning.
EARLY_SHARE = 0.2
EARLY_BUSINESS_DAYS = 3
TIMESHIFT = ROOT / "tests" / "timeshift"
# Clock events an early ticket gets while the clock catches up (measured: ~14 three working
# days back: each tier's expiry with its breach and late-timer lines, the SLA targets, tier
# 3's manager alerts, the last reminder); timer kills are placed on fractions of this.
CLOCK_EVENTS_PER_EARLY = 12.0


def load_mailgen() -> ModuleType:
    """bench/mailgen.py (bench/ is no package): the benches' realistic mail."""
    if "mailgen" in sys.modules:
        return sys.modules["mailgen"]
    spec = importlib.util.spec_from_file_location("mailgen", ROOT / "bench" / "mailgen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mailgen"] = module
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ the burst

@dataclass(frozen=True)
class Member:
    name: str
    address: str  # the first directory address: the one reply addresses are signed for


def members(site: Path) -> list[Member]:
    teams = yaml.safe_load((site / "config" / "teams.yaml").read_text())["teams"]
    return [Member(m["name"], m["addresses"][0]) for team in teams.values()
            for m in team["members"]]


@dataclass
class Planned:
    seq: int
    kind: str  # new, reply, auto_reply, bounce, reused_id, command
    raw: bytes = b""
    message_id: str = ""
    route: str | None = None  # a new report: the tier triage sends it to (None: triage)
    target: int | None = None  # a command: the seq of the new report whose ticket it answers
    command: str = ""  # take, note, escalate
    member: Member | None = None


@dataclass
class Burst:
    mails: list[Planned]  # base mails in arrival order (commands are appended when due)
    commands: list[Planned]
    # New reports opened before the burst by a daemon whose clock is business days in the
    # past (the timer phase), so their timers are due when the burst starts.
    early: list[Planned] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.early) + len(self.mails) + len(self.commands)

    @property
    def by_seq(self) -> dict[int, Planned]:
        return {p.seq: p for p in (*self.early, *self.mails, *self.commands)}

    @property
    def reports(self) -> list[Planned]:
        """Every mail that opens a ticket: the early reports and the burst's new ones."""
        return [p for p in (*self.early, *self.mails) if p.kind in ("new", "reused_id")]

    def summary(self) -> str:
        kinds = Counter(p.kind for p in self.mails)
        commands = Counter(p.command for p in self.commands)
        early = sum(1 for c in self.commands if c.target in {p.seq for p in self.early})
        return (f"{self.total:,} mails: {len(self.early):,} new reports opened before the"
                " burst (timer phase); then " + ", ".join(f"{n:,} {k}" for k, n in
                                                        sorted(kinds.items()))
                + f"; {len(self.commands):,} commands ("
                + ", ".join(f"{n} #{c}" for c, n in sorted(commands.items()))
                + f"; {early} on early tickets)")


def with_seq(raw: bytes, seq: int) -> bytes:
    return SEQ_HEADER + f": {seq}\r\n".encode() + raw


def make_burst(n: int, seed: int, site: Path, early_share: float = 0.0) -> Burst:
    """n mails: ~80% mailgen's mix, ~0.5% (at least 2) new reports reusing an earlier
    Message-ID, the rest technicians' commands on tickets opened earlier in the burst.
    `early_share` of n (at most half the new reports) are the mix's first new reports, taken
    out of the burst to be opened before it (the timer phase); commands answer those too."""
    mailgen = load_mailgen()
    rng = random.Random(seed * 7919 + 1)
    n_commands = max(3, n // 5)
    n_reused = max(2, n // 200)
    n_base = max(1, n - n_commands - n_reused)
    mails: list[Planned] = []
    seq = 0
    for generated in mailgen.generate(n_base, seed):
        seq += 1
        mails.append(Planned(seq, generated.kind, with_seq(generated.raw, seq),
                             generated.message_id, generated.route))
    news = [p for p in mails if p.kind == "new"]
    for _ in range(n_reused):
        seq += 1
        earlier = news[rng.randrange(len(news))]
        raw = _reused_id_report(seq, earlier.message_id, rng)
        at = rng.randrange(mails.index(earlier) + 1, len(mails) + 1)
        mails.insert(at, Planned(seq, "reused_id", raw, earlier.message_id, None))
    n_early = min(int(n * early_share), len(news) // 2)
    early = news[:n_early]
    taken = {p.seq for p in early}
    mails = [p for p in mails if p.seq not in taken]
    staff = members(site)
    opened = [*early, *(p for p in mails if p.kind == "new")]
    escalated: Counter[int] = Counter()
    commands: list[Planned] = []
    for _ in range(n_commands):
        seq += 1
        target = opened[rng.randrange(len(opened))]
        command = rng.choice(("take", "note", "escalate"))
        if command == "escalate" and escalated[target.seq] >= 2:
            command = "note"
        escalated[target.seq] += command == "escalate"
        commands.append(Planned(seq, "command", target=target.seq, command=command,
                                member=rng.choice(staff)))
    return Burst(mails, commands, early)


def _reused_id_report(seq: int, message_id: str, rng: random.Random) -> bytes:
    """A new report, different sender and text, under an earlier mail's Message-ID."""
    who = rng.randrange(10_000)
    lines = [
        f"From: Reuse Tester {who} <reuse.{who}@mailer.example.net>",
        f"To: {SUPPORT}",
        f"Subject: Docking station {seq} does not charge the laptop",
        f"Date: {format_datetime(datetime.now(UTC))}",
        f"Message-ID: <{message_id}>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        f"Hi, the docking station at desk {seq} no longer charges my laptop.",
        "(This mailer reuses Message-IDs.)",
        "",
    ]
    return with_seq("\r\n".join(lines).encode(), seq)


def command_mail(planned: Planned, ref: str, subject: str) -> bytes:
    """A member's answer to the ticket's handoff, to their own signed reply address."""
    assert planned.member is not None
    member = planned.member
    last_day = (datetime.now(UTC) + timedelta(days=90)).date()  # as the handoff carries it
    to = signed_address(SUPPORT, DOMAIN, ref, sign(ref, member.address, SECRET, last_day))
    tag = {"take": "#take", "note": f"#note checked the logs (fault run {planned.seq})",
           "escalate": f"#escalate needs the next tier (fault run {planned.seq})"}
    lines = [
        f"From: {member.name} <{member.address}>",
        f"To: {to}",
        f"Subject: Re: [{ref}] {subject}",
        f"Date: {format_datetime(datetime.now(UTC))}",
        f"Message-ID: <fault-{planned.seq}-{random.getrandbits(48):012x}@{DOMAIN}>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        tag[planned.command],
        "",
        "-- ",
        member.name,
        "",
    ]
    return with_seq("\r\n".join(lines).encode(), planned.seq)


# ------------------------------------------------------------------ PostgreSQL, private

class PgCluster:
    """A private PostgreSQL 15 cluster: initdb as `postgres` in a temp folder, a free port,
    its socket in the same folder; `cleanup()` stops it (immediate) and removes everything."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"PostgreSQL binaries not found under {PG_BIN}")
        self.root = Path(tempfile.mkdtemp(prefix="tierdesk-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.started = False
        shutil.chown(self.root, "postgres", "postgres")
        self._as_postgres(PG_BIN / "initdb", "-D", str(self.data), "-A", "trust",
                          "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync")

    def _as_postgres(self, *command: str | Path, check: bool = True,
                     timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Output to a file, not a pipe: a server pg_ctl starts would hold a pipe open."""
        runuser = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
        with tempfile.TemporaryFile() as out:
            result = subprocess.run([*runuser, *map(str, command)], stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                                    cwd=self.root)
            out.seek(0)
            output = out.read().decode(errors="replace")
        if check and result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed ({result.returncode}):\n{output}"
                               f"\n{self.log()}")
        return subprocess.CompletedProcess(result.args, result.returncode, output, "")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/tierdesk"

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
                   " -c max_connections=60")
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.root / "pg.log",
                          "-w", "-t", "60", "-o", options, "start")
        self.started = True
        self._as_postgres(PG_BIN / "createdb", "-h", self.root, "-p", str(self.port),
                          "tierdesk", check=False)

    def restart(self) -> None:
        """A clean restart (fast shutdown: sessions are ended), as an administrator's."""
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.root / "pg.log",
                          "-w", "-t", "60", "-m", "fast", "restart")

    def cleanup(self) -> None:
        if self.started:
            result = self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-w", "-t", "30",
                                       "-m", "immediate", "stop", check=False)
            if result.returncode != 0:
                self._kill_postmaster()
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)

    def log(self) -> str:
        path = self.root / "pg.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"


# ------------------------------------------------------------------ the daemons

class DaemonProcess:
    """`run.py run` in its own process; its JSON log goes to a file in the run's folder."""

    def __init__(self, name: str, site: Path, env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.log_path = logs / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "run.py"), "run", "--config", str(site),
             "--log-format", "json"],
            cwd=site, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def messages(self) -> list[str]:
        out = []
        for line in self.text().splitlines():
            try:
                out.append(str(json.loads(line)["msg"]))
            except (ValueError, KeyError, TypeError):
                out.append(line)
        return out

    def wait_started(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while "tierdesk started:" not in self.text():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n"
                                   + self.text()[-3000:])
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start within {timeout:.0f} s:\n"
                                   + self.text()[-3000:])
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self._log.close()

    def terminate(self, timeout: float = 60) -> int | None:
        """SIGTERM and the exit code; None (and SIGKILL) if it did not exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
            self.process.kill()
            self.process.wait(30)
        self._log.close()
        return code

    def tracebacks(self) -> int:
        return self.text().count("Traceback")


def daemon_env(server: DovecotServer, account: Account, smtp: SmtpServer,
               url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERDESK_")}
    # Keep what is on PYTHONPATH (tests/timeshift moves the clock of every process started).
    env["PYTHONPATH"] = pythonpath(ROOT)
    env.update({
        "PYTHONUNBUFFERED": "1",
        "TIERDESK_IMAP_HOST": server.host, "TIERDESK_IMAP_PORT": str(server.port),
        "TIERDESK_IMAP_SECURITY": "none", "TIERDESK_IMAP_USERNAME": account.username,
        "TIERDESK_IMAP_PASSWORD": account.password, "TIERDESK_IMAP_TIMEOUT": "5s",
        "TIERDESK_SMTP_HOST": smtp.host, "TIERDESK_SMTP_PORT": str(smtp.port),
        "TIERDESK_SMTP_SECURITY": "none", "TIERDESK_SMTP_TIMEOUT": "5s",
        "TIERDESK_DATABASE_URL": url, "TIERDESK_AUTH_SECRET": SECRET,
        # The burst is weeks of mail at once: some people's many reports would meet the
        # hourly new-ticket limit (tests/inbound/ingest/test_new_ticket_limit.py covers it).
        "TIERDESK_MAIL_MAX_NEW_TICKETS_PER_HOUR": "1000000",
    })
    return env


def past_business_morning(site: Path, now: datetime, days: int) -> datetime:
    """An hour after opening on the `days`-th working day before `now`'s local date on the
    site's default calendar (weekends, closed days and holidays skipped), in UTC. Computed
    from the caller's clock, so it holds whatever the date (and under tests/timeshift)."""
    settings = yaml.safe_load((site / "config" / "settings.yaml").read_text())
    calendar = Calendar.model_validate(settings["calendars"]["default"],
                                       context={"config_dir": str(site / "config")})
    zone = calendar.timezone
    day = now.astimezone(zone).date()
    found = 0
    for _ in range(3 * 366):
        day -= timedelta(days=1)
        spans = calendar.spans(day.weekday())
        if not spans or calendar.is_holiday(day):
            continue
        found += 1
        if found == days:
            opens = datetime.combine(day, wall_time()) + spans[0].start
            return (opens + timedelta(hours=1)).replace(tzinfo=zone).astimezone(UTC)
    raise RuntimeError(f"no {days} working days in the default calendar before {now}")


def shifted_env(env: dict[str, str], at: datetime) -> dict[str, str]:
    """A child whose Python clock starts at `at` (tests/timeshift/sitecustomize.py): its own
    TIMESHIFT_TO, and no TIMESHIFT_OFFSET inherited from this process (a date-shifted run
    hands its own offset down), so the child computes the offset to `at` itself."""
    shifted = {k: v for k, v in env.items() if k != "TIMESHIFT_OFFSET"}
    shifted["TIMESHIFT_TO"] = at.isoformat()
    shifted["PYTHONPATH"] = os.pathsep.join([str(TIMESHIFT), env.get("PYTHONPATH", "")])
    return shifted


def make_site(folder: Path) -> Path:
    root = folder / "site"
    for name in SITE_FOLDERS:
        shutil.copytree(ROOT / name, root / name)
    return root


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or (DOVECOT if os.path.exists(DOVECOT) else None)


# ------------------------------------------------------------------ reading the store

class Store:
    """Plain SQL over the daemon's store (never through the daemon's own code)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, poolclass=NullPool)

    def close(self) -> None:
        self.engine.dispose()

    def scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        with self.engine.connect() as connection:
            return connection.execute(text(sql), params or {}).scalar()

    def rows(self, sql: str) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(text(sql)))

    def safe(self, sql: str, default: Any = None, params: dict[str, Any] | None = None) -> Any:
        """For polling while faults happen: the database may be restarting."""
        try:
            return self.scalar(sql, params)
        except Exception:  # noqa: BLE001  (any driver error while PostgreSQL restarts)
            return default

    def instant(self, value: datetime) -> Any:
        """A UTC instant as a bound parameter: SQLite stores naive UTC text (the daemon's
        UTCDateTime), which compares as text; PostgreSQL takes the aware datetime."""
        if self.engine.dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        return value

    def clock_events(self) -> int:
        """Timeline lines the clock wrote (timers fired: moves, reminders, warnings, SLA)."""
        return int(self.safe("SELECT count(*) FROM events WHERE actor = 'clock'", 0) or 0)

    def due_timers(self) -> int | None:
        """Timers due now (this process's clock, which the daemons of the burst share)."""
        value = self.safe("SELECT count(*) FROM timers WHERE due_at <= :now", None,
                          {"now": self.instant(datetime.now(UTC))})
        return None if value is None else int(value)

    def stored_count(self) -> int:
        stored = self.safe("SELECT (SELECT count(*) FROM messages WHERE direction = 'in')"
                           " + (SELECT count(*) FROM quarantine)", None)
        return int(stored or 0)

    def work(self) -> int:
        """Mails stored plus outbox rows sent: how far the run is, ingest and sending."""
        sent = self.safe("SELECT count(*) FROM outbox WHERE status = 'sent'", None)
        return self.stored_count() + int(sent or 0)

    def ticket_of(self, message_id: str) -> tuple[str, str] | None:
        """(ref, subject) of the ticket an inbound mail with this Message-ID opened."""
        with contextlib.suppress(Exception):
            with self.engine.connect() as connection:
                row = connection.execute(text(
                    "SELECT t.ref, t.subject FROM messages m JOIN tickets t"
                    " ON t.id = m.ticket_id WHERE m.direction = 'in'"
                    " AND lower(m.message_id) = lower(:mid) ORDER BY m.id"),
                    {"mid": message_id}).first()
                return (row[0], row[1]) if row else None
        return None


# ------------------------------------------------------------------ feeding the mailbox

class Feeder(threading.Thread):
    """APPENDs the burst (MULTIAPPEND, `chunk` mails a command) as fast as the server takes
    it, and each command once the ticket it answers exists. Survives a Dovecot restart."""

    def __init__(self, server: DovecotServer, account: Account, burst: Burst, store: Store,
                 chunk: int = 25, deadline_s: float = 600) -> None:
        super().__init__(name="feeder", daemon=True)
        self.server, self.account, self.burst, self.store = server, account, burst, store
        self.chunk, self.deadline_s = chunk, deadline_s
        self.appended: list[int] = []  # seqs, in APPEND order
        self.refs: dict[int, str] = {}  # command seq -> the ticket it was written for
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            self._feed()
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        finally:
            self.done.set()

    def _feed(self) -> None:
        deadline = time.monotonic() + self.deadline_s
        pending = list(self.burst.commands)
        targets = {p.seq: p for p in (*self.burst.early, *self.burst.mails)}
        mails = self.burst.mails
        for start in range(0, len(mails), self.chunk):
            self._append(mails[start:start + self.chunk])
            pending = self._commands(pending, targets, limit=self.chunk)
        while pending and not self.stopping.is_set():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} commands never found their ticket")
            before = len(pending)
            pending = self._commands(pending, targets, limit=self.chunk)
            if len(pending) == before:
                time.sleep(0.2)

    def append_early(self) -> None:
        """The timer phase's reports, in this thread (before the burst's own starts)."""
        mails = self.burst.early
        for start in range(0, len(mails), self.chunk):
            self._append(mails[start:start + self.chunk])

    def _commands(self, pending: list[Planned], targets: dict[int, Planned],
                  limit: int) -> list[Planned]:
        ready: list[Planned] = []
        left: list[Planned] = []
        for planned in pending:
            assert planned.target is not None
            target = targets[planned.target]
            found = None
            if len(ready) < limit and target.seq in self.appended_set:
                found = self.store.ticket_of(target.message_id)
            if found is None:
                left.append(planned)
                continue
            ref, subject = found
            planned.raw = command_mail(planned, ref, subject)
            self.refs[planned.seq] = ref
            ready.append(planned)
        if ready:
            self._append(ready)
        return left

    @property
    def appended_set(self) -> set[int]:
        return set(self.appended)

    def _append(self, chunk: list[Planned]) -> None:
        """MULTIAPPEND is atomic in Dovecot: on a broken connection, retry the whole chunk
        only if none of it arrived (checked by the seq header)."""
        for attempt in range(60):
            try:
                with client(self.server, self.account) as imap:
                    if attempt:
                        present = self._present(imap, chunk)
                        chunk = [p for p in chunk if p.seq not in present]
                    if chunk:
                        imap.multiappend("INBOX", [p.raw for p in chunk])
                self.appended.extend(p.seq for p in chunk)
                return
            except (OSError, IMAPClient.Error, IMAPClient.AbortError):
                time.sleep(0.5)
        raise RuntimeError("could not APPEND to Dovecot for 30 s")

    @staticmethod
    def _present(imap: IMAPClient, chunk: list[Planned]) -> set[int]:
        imap.select_folder("INBOX", readonly=True)
        found: set[int] = set()
        for planned in chunk:
            hits = imap.search(["HEADER", SEQ_HEADER.decode(), str(planned.seq)])
            if hits:
                found.add(planned.seq)
        return found


def mailbox_last_uid(server: DovecotServer, account: Account) -> int | None:
    with contextlib.suppress(Exception):
        with client(server, account) as imap:
            status = imap.folder_status("INBOX", [b"UIDNEXT"])
            return int(status[b"UIDNEXT"]) - 1
    return None


# ------------------------------------------------------------------ faults

@dataclass(frozen=True)
class Fault:
    # by "work": fraction of the estimated work (mails stored + rows sent); by "timers":
    # fraction of the timer phase's expected clock events (timers fired)
    at: float
    kind: str  # kill, db_restart, smtp_outage, dovecot_restart
    daemon: int = 0
    by: str = "work"


def schedule(rng: random.Random, kills: int, extra: tuple[str, ...] = (),
             timer_kills: int = 0) -> list[Fault]:
    """`timer_kills` of the kills at seeded points of the clock's catching up (the timer
    phase's due timers firing), first; the others at seeded points of the first 90% of the
    burst; the other faults after them, in order, between 55% and 95%."""
    timer_kills = min(timer_kills, kills)
    by_timers = sorted(Fault(round(rng.uniform(0.1, 0.6), 3), "kill", by="timers")
                       for _ in range(timer_kills))
    faults = [Fault(round(rng.uniform(0.03, 0.9), 3), "kill") for _ in range(kills - timer_kills)]
    for i, kind in enumerate(extra):
        low = 0.55 + 0.4 * i / max(len(extra), 1)
        faults.append(Fault(round(rng.uniform(low, low + 0.4 / max(len(extra), 1)), 3), kind))
    return [*sorted(by_timers, key=lambda f: f.at), *sorted(faults, key=lambda f: f.at)]


@dataclass
class FaultLog:
    entries: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    kills_while_firing: int = 0  # SIGKILLs that found due timers not yet fired

    def add(self, what: str) -> None:
        self.entries.append(f"{time.monotonic() - self.started:7.1f}s {what}")


# ------------------------------------------------------------------ the timer phase

@dataclass(frozen=True)
class TimerPhase:
    at: datetime | None  # the early daemon's clock at its start (None: no timer phase)
    due: int  # timers due when the burst starts
    clock_base: int  # clock events before the burst (the early daemon fires none)
    expected: float  # clock events the catching up is expected to write (kills are placed on it)


def _timer_phase(s: Scenario, site: Path, env: dict[str, str], logs: Path, burst: Burst,
                 feeder: Feeder, store: Store, every: list[DaemonProcess],
                 exit_codes: dict[str, int | None], log: FaultLog) -> TimerPhase:
    """Before the burst: a daemon whose clock stands EARLY_BUSINESS_DAYS working days back (a
    morning) opens the early reports and sends their mail, and is stopped (SIGTERM). Their
    tickets' timers (triage's expiry, the SLA targets, then each tier's) are then due at the
    burst's real time, so the burst's daemons catch up on them while mail comes and goes."""
    if not burst.early:
        return TimerPhase(None, 0, 0, 0.0)
    at = past_business_morning(site, datetime.now(UTC), EARLY_BUSINESS_DAYS)
    early = DaemonProcess("early", site, shifted_env(env, at), logs)
    every.append(early)
    early.wait_started()  # migrates the store
    feeder.append_early()
    deadline = time.monotonic() + 120
    while True:
        tickets = int(store.safe("SELECT count(*) FROM tickets", 0) or 0)
        busy = store.safe("SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')")
        if tickets >= len(burst.early) and busy == 0:
            break
        if time.monotonic() > deadline or early.process.poll() is not None:
            raise RuntimeError(f"the timer phase did not settle ({tickets}/{len(burst.early)}"
                               f" tickets, {busy} mails unsent):\n{early.text()[-3000:]}")
        time.sleep(0.1)
    exit_codes[early.name] = early.terminate()
    due = store.due_timers() or 0
    base = store.clock_events()
    phase = TimerPhase(at, due, base, expected=CLOCK_EVENTS_PER_EARLY * len(burst.early))
    log.add(f"timer phase: {len(burst.early)} tickets opened at {at:%a %Y-%m-%d %H:%M} UTC"
            f" (clock shifted {EARLY_BUSINESS_DAYS} working days back); {due} timers due"
            f" at the burst")
    s.progress(f"[{s.store}] {log.entries[-1].strip()}")
    return phase


def _wait_timers(store: Store, target: float, base: int, feeder: Feeder, deadline_s: float,
                 stall_s: float = 5.0) -> None:
    """Until the clock wrote `target` events since the timer phase, or it stalls."""
    deadline = time.monotonic() + deadline_s
    last, moved = -1, time.monotonic()
    while (done := store.clock_events() - base) < target:
        if feeder.error is not None:
            raise feeder.error
        if done != last:
            last, moved = done, time.monotonic()
        if time.monotonic() - moved > stall_s or time.monotonic() > deadline:
            return
        time.sleep(0.01)


# ------------------------------------------------------------------ the counts

@dataclass
class Figures:
    store: str
    daemons: int
    appended: int
    stored: int  # appended mails found exactly once in messages(in) or quarantine
    missing: list[int]  # seqs not found at all
    doubled: list[int]  # seqs found more than once
    missing_kinds: Counter[str]
    quarantined: int
    owed: int  # outbox rows not skipped by loop protection
    skipped: int
    unsent: Counter[str]  # owed rows by status, when not sent
    delivered: int  # owed rows sent AND seen by the SMTP server
    received: int  # mails the SMTP server accepted
    duplicates: int  # extra copies at the SMTP server (same Message-ID)
    duplicate_mismatch: list[str]  # same Message-ID, different recipients or subject
    unknown_at_smtp: int  # Message-IDs the server got that no outbox row has
    kills: int
    faults: list[str]
    tickets: int
    expected_tickets: int
    bad_tickets: list[str]
    exit_codes: dict[str, int | None]
    tracebacks: int
    settled: bool
    seconds: float
    clock_events: Counter[str] = field(default_factory=Counter)  # the clock's lines, by kind
    timer_problems: list[str] = field(default_factory=list)
    timer_mails: int = 0  # owed mails that fired timers queued
    timer_mails_delivered: int = 0
    kills_while_firing: int = 0  # SIGKILLs that found due timers not yet fired

    @property
    def timers_fired(self) -> int:
        """Timers that fired and did something, from the clock's lines: an expiry writes a
        breach with its move (the states that escalate run their clock), a reminder or a
        warning its line, a first-response or resolution target its breach or met line.
        (Resolution targets set again for paused time and stale timers write none.)"""
        return sum(self.clock_events[k] for k in ("sla_breach", "sla_met", "reminder",
                                                   "warning", "refused"))

    @property
    def duplicate_bound(self) -> int:
        return self.kills * SMTP_CONNECTIONS

    def line(self) -> str:
        return (f"{self.store:<10} daemons {self.daemons}  appended {self.appended:>5}  "
                f"stored {self.stored:>5}  owed {self.owed:>5}  delivered {self.delivered:>5}  "
                f"duplicates {self.duplicates:>4} (bound {self.duplicate_bound})  "
                f"kills {self.kills} ({self.kills_while_firing} while timers fire)  "
                f"timers fired {self.timers_fired}  {self.seconds:.0f} s")

    def detail(self) -> str:
        return "\n".join([
            self.line(),
            f"  missing from the store: {len(self.missing)} {dict(self.missing_kinds)}"
            f"{' seqs ' + str(self.missing[:10]) if self.missing else ''};"
            f" stored twice: {len(self.doubled)} {self.doubled[:10]};"
            f" quarantined {self.quarantined}",
            f"  outbox: {self.owed} owed, {self.skipped} skipped by loop protection,"
            f" not sent: {dict(self.unsent)}; SMTP received {self.received}"
            f" ({self.unknown_at_smtp} unknown Message-IDs)",
            f"  tickets {self.tickets} (expected {self.expected_tickets}); unexplained:"
            f" {len(self.bad_tickets)} {self.bad_tickets[:5]}",
            f"  clock: {dict(sorted(self.clock_events.items()))}; timer mails owed"
            f" {self.timer_mails}, delivered {self.timer_mails_delivered}; timer problems"
            f" {len(self.timer_problems)} {self.timer_problems[:5]}",
            f"  exit codes on SIGTERM {self.exit_codes}; tracebacks in logs {self.tracebacks};"
            f" settled {self.settled}",
            *(f"  {entry}" for entry in self.faults),
        ])

    def checks(self) -> dict[str, str | None]:
        """The issue's assertions by name: None where it holds, else what was found."""
        unsent = self.unsent or self.delivered != self.owed
        dup = self.duplicates > self.duplicate_bound or self.duplicate_mismatch
        return {
            "settled": None if self.settled else
            "the run did not settle (mail unseen or outbox busy at the deadline)",
            "stored_once": None if not (self.missing or self.doubled) else
            f"stored exactly once: {self.stored}/{self.appended}; missing"
            f" {len(self.missing)} {dict(self.missing_kinds)}, twice {len(self.doubled)}",
            "tickets_opened": None if self.tickets == self.expected_tickets else
            f"tickets {self.tickets}, one per new report appended: {self.expected_tickets}",
            "delivered": None if not unsent and not self.unknown_at_smtp else
            f"every owed mail delivered: {self.delivered}/{self.owed}; not sent"
            f" {dict(self.unsent)}; {self.unknown_at_smtp} unknown Message-IDs at the server",
            "duplicates": None if not dup else
            f"duplicates at the SMTP server {self.duplicates}, bound kills x connections ="
            f" {self.kills} x {SMTP_CONNECTIONS} = {self.duplicate_bound}; resends differing"
            f" from the first copy: {self.duplicate_mismatch[:3]}",
            "tickets_explained": None if not self.bad_tickets else
            f"{len(self.bad_tickets)} tickets the story does not explain: {self.bad_tickets[:5]}",
            "timers": None if not self.timer_problems else
            f"{len(self.timer_problems)} timer problems (lost, left unfired, or fired"
            f" without their mails): {self.timer_problems[:5]}",
            "clean_exit": None if all(c == 0 for c in self.exit_codes.values()) else
            f"exit codes on SIGTERM {self.exit_codes}",
        }

    def failures(self) -> list[str]:
        return [f"{name}: {why}" for name, why in self.checks().items() if why]


def _header_id(data: bytes) -> str:
    parsed = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(data)
    return str(parsed["Message-ID"] or "").strip()


def _bare(message_id: str | None) -> str:
    return (message_id or "").strip().strip("<>")


def count(store: Store, smtp: SmtpServer, burst: Burst, feeder: Feeder, workflow: WorkflowFacts,
          kills: int, daemons: int, log: FaultLog, exit_codes: dict[str, int | None],
          tracebacks: int, settled: bool, started: float) -> Figures:
    planned = burst.by_seq
    appended = list(feeder.appended)
    found: Counter[int] = Counter()
    ticket_of_seq: dict[int, int] = {}
    for raw, ticket_id in store.rows("SELECT raw, ticket_id FROM messages"
                                     " WHERE direction = 'in'"):
        for match in SEQ.finditer(bytes(raw or b"")[:400]):
            seq = int(match.group(1))
            found[seq] += 1
            if ticket_id is not None:
                ticket_of_seq[seq] = ticket_id
            break
    quarantined = 0
    for (raw,) in store.rows("SELECT raw FROM quarantine"):
        quarantined += 1
        match = SEQ.search(bytes(raw or b"")[:400])
        if match:
            found[int(match.group(1))] += 1
    missing = [s for s in appended if found[s] == 0]
    doubled = [s for s in appended if found[s] > 1]
    stored = sum(1 for s in appended if found[s] == 1)

    rows = store.rows("SELECT message_id, status, recipients, subject FROM outbox")
    owed_rows = [r for r in rows if r[1] != "skipped"]
    received = smtp.received
    ids_at_smtp = [_bare(_header_id(r.data)) for r in received]
    copies = Counter(ids_at_smtp)
    seen = set(copies)
    delivered = sum(1 for r in owed_rows if r[1] == "sent" and _bare(r[0]) in seen)
    outbox_ids = {_bare(r[0]) for r in rows}
    mismatch = []
    by_id: dict[str, set[tuple[tuple[str, ...], bytes]]] = {}
    for r, mid in zip(received, ids_at_smtp, strict=True):
        if copies[mid] > 1:
            by_id.setdefault(mid, set()).add((tuple(sorted(r.rcpt_tos)), r.data))
    mismatch = [mid for mid, variants in by_id.items() if len(variants) > 1]

    check = check_tickets(store, burst, ticket_of_seq, feeder, workflow)
    # The mails fired timers queued are owed like any other (loop protection aside).
    owed_ids = {_bare(r[0]): r[1] for r in owed_rows}
    timer_owed = {mid for mid in map(_bare, check.timer_mail_ids) if mid in owed_ids}
    return Figures(
        store=store.engine.dialect.name, daemons=daemons, appended=len(appended),
        stored=stored, missing=missing, doubled=doubled,
        missing_kinds=Counter(planned[s].kind for s in missing), quarantined=quarantined,
        owed=len(owed_rows), skipped=len(rows) - len(owed_rows),
        unsent=Counter(r[1] for r in owed_rows if r[1] != "sent"), delivered=delivered,
        received=len(received), duplicates=sum(n - 1 for n in copies.values()),
        duplicate_mismatch=mismatch, unknown_at_smtp=len(seen - outbox_ids), kills=kills,
        faults=log.entries, tickets=check.tickets, expected_tickets=check.expected,
        bad_tickets=check.bad, exit_codes=exit_codes, tracebacks=tracebacks, settled=settled,
        seconds=time.monotonic() - started, clock_events=check.clock_events,
        timer_problems=check.timer_problems, timer_mails=len(timer_owed),
        timer_mails_delivered=sum(1 for mid in timer_owed
                                  if owed_ids[mid] == "sent" and mid in seen),
        kills_while_firing=log.kills_while_firing)


@dataclass(frozen=True)
class Timeout:
    then: str
    after: timedelta
    per_priority: dict[str, timedelta]
    remind_every: timedelta | None
    warn_at: float | None

    def limit(self, priority: str) -> timedelta:
        return self.per_priority.get(priority, self.after)


@dataclass(frozen=True)
class WorkflowFacts:
    """What the harness reads from workflows/*.yaml itself (never the daemon's own model)."""

    states: set[str]
    timeouts: dict[str, Timeout]  # by state
    notify: dict[str, list[str]]  # event or trigger -> templates

    def mails_for(self, trigger: str, moved: bool) -> set[str]:
        names = self.notify.get(trigger) if trigger in self.notify else (
            self.notify.get("moved", []) if moved else [])
        return set(names or [])


_DURATION = re.compile(r"(\d+)\s*([wdhms])")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def duration(value: str) -> timedelta:
    """"30m", "4h", "1h30m", "5d": as workflows/*.yaml writes them."""
    parts = _DURATION.findall(str(value))
    if not parts:
        raise ValueError(f"not a duration: {value!r}")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


def workflow_facts(site: Path) -> WorkflowFacts:
    states: set[str] = set()
    timeouts: dict[str, Timeout] = {}
    notify: dict[str, list[str]] = {}
    for path in sorted((site / "workflows").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        states |= set(data["states"])
        for name, state in data["states"].items():
            timeout = (state or {}).get("timeout")
            if not timeout or timeout.get("vendor_clock"):
                continue  # a vendor's clock is the vendor's calendar: not in this story
            remind = timeout.get("remind")
            timeouts[name] = Timeout(
                timeout["then"], duration(timeout["after"]),
                {k: duration(v) for k, v in (timeout.get("per_priority") or {}).items()},
                duration(remind["every"]) if remind else None, timeout.get("warn_at"))
        for key, mails in (data.get("notify") or {}).items():
            notify[key] = [m["template"] for m in mails or []]
    return WorkflowFacts(states, timeouts, notify)


def _instant(value: Any) -> datetime:
    """An events/outbox time as read by plain SQL: SQLite gives naive UTC text."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _data(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return dict(json.loads(value) or {})
    return dict(value or {})


@dataclass
class TicketCheck:
    tickets: int
    expected: int
    bad: list[str]
    clock_events: Counter[str]  # by kind (transitions by trigger)
    timer_problems: list[str]
    timer_mail_ids: set[str]  # outbox Message-IDs of the mails fired timers queued


def check_tickets(store: Store, burst: Burst, ticket_of_seq: dict[int, int], feeder: Feeder,
                  workflow: WorkflowFacts) -> TicketCheck:
    """Every ticket in a state of the workflow, reached through its recorded events (each
    event starts where the previous left it), every move explained by the story:
    - triage's route (the report's planned tier), at opening;
    - a member's `#escalate` one tier up; every #escalate sent is a move or, in tier 3, a
      refusal;
    - the clock: the state's timeout trigger (`then`) to its default tier, only once the
      state's limit has passed: the event comes at least the limit (wall time, never less
      than the business time it stands for) after the state was entered; a late expiry
      enters the next state at the missed deadline, so the bound adds up along the chain.
      Reminders and warnings likewise no earlier than their share of the limit.
    Assigned to one who took it (unless a move changed the team, which clears the assignee).
    Also: every fired timer queued the mails the workflow's notify says, in its transaction
    (outbox rows of the ticket at the event's instant)."""
    tickets = {row[0]: row for row in store.rows(
        "SELECT id, ref, state, assignee, priority FROM tickets")}
    events: dict[int, list[Any]] = {}
    for row in store.rows("SELECT ticket_id, kind, from_state, to_state, actor, at, data"
                          " FROM events ORDER BY id"):
        events.setdefault(row[0], []).append(row)
    outbox: dict[tuple[int, datetime], list[tuple[str, str]]] = {}
    for ticket_id, created, template, message_id in store.rows(
            "SELECT ticket_id, created_at, template, message_id FROM outbox"
            " WHERE ticket_id IS NOT NULL"):
        outbox.setdefault((ticket_id, _instant(created)), []).append((template, message_id))
    opened = burst.reports
    escalations: Counter[int] = Counter()
    takers: dict[int, set[str]] = {}
    appended = feeder.appended_set
    for command in burst.commands:
        if command.seq not in appended:
            continue
        assert command.target is not None and command.member is not None
        if command.command == "escalate":
            escalations[command.target] += 1
        if command.command == "take":
            takers.setdefault(command.target, set()).add(command.member.address.lower())
    bad: list[str] = []
    clock: Counter[str] = Counter()
    timer_problems: list[str] = []
    timer_mails: set[str] = set()
    # ticket id -> (routes, #escalate moves, #escalate refusals, team changes)
    story: dict[int, tuple[list[str], int, int, int]] = {}
    for tid, (_, ref, state, _assignee, priority) in tickets.items():
        current: str | None = None
        entered: datetime | None = None
        routes: list[str] = []
        moved = refused = team_moves = 0
        for _, kind, src, dest, actor, at_value, data_value in events.get(tid, []):
            if src is not None and current is not None and src != current:
                bad.append(f"{ref}: {kind} from {src} while in {current}")
                break
            current = dest if dest is not None else current
            at, data = _instant(at_value), _data(data_value)
            if kind == "created":
                entered = at
            if actor == "clock":
                why = _clock_event(ref, kind, src, dest, at, data, entered, priority, workflow)
                clock[f"{kind} {data.get('trigger')}" if kind == "transition" else kind] += 1
                if isinstance(why, str):
                    bad.append(why)
                    break
                entered = why if why is not None else entered
                if kind in ("transition", "reminder", "warning"):
                    want = (workflow.mails_for(data.get("trigger", ""), src != dest)
                            if kind == "transition" else workflow.mails_for(kind, False))
                    rows = outbox.get((tid, at), [])
                    if not want <= {template for template, _ in rows}:
                        timer_problems.append(
                            f"{ref}: the clock's {kind} {data.get('trigger', '')} at {at:%H:%M:%S}"
                            f" queued {sorted(t for t, _ in rows)}, notify says {sorted(want)}")
                    timer_mails |= {mid for template, mid in rows if template in want}
                team_moves += kind == "transition" and src != dest
            elif kind == "transition":
                trigger = data.get("trigger")
                if actor == "triage" and trigger == "route":
                    routes.append(str(dest))
                elif data.get("command") == "escalate" and dest == ESCALATES.get(src or ""):
                    moved += 1
                    team_moves += 1
                else:
                    bad.append(f"{ref}: a move the story does not have: {trigger} {src} -> {dest}"
                               f" by {actor} ({data})")
                    break
                entered = at
            elif kind == "refused" and "escalate" in str(data.get("command", "")).lower():
                if src != "tier3":
                    bad.append(f"{ref}: #escalate refused in {src}")
                    break
                refused += 1
        else:
            if state not in workflow.states:
                bad.append(f"{ref}: state {state!r} is not in the workflow")
            elif current != state:
                bad.append(f"{ref}: in {state} but its events end in {current}")
        story[tid] = (routes, moved, refused, team_moves)
    for report in opened:
        tid = ticket_of_seq.get(report.seq)
        if tid is None or tid not in tickets:
            continue  # counted as not stored
        _, ref, state, assignee, _ = tickets[tid]
        routes, moved, refused, team_moves = story[tid]
        want = [report.route] if report.route else []
        if routes != want:
            bad.append(f"{ref}: routed to {routes}, the story says {want}")
        if moved + refused != escalations[report.seq]:
            bad.append(f"{ref}: {escalations[report.seq]} #escalate sent, {moved} moved it,"
                       f" {refused} refused in tier 3")
        if report.seq in takers and not team_moves \
                and (assignee or "").lower() not in takers[report.seq]:
            bad.append(f"{ref}: assigned to {assignee!r}, taken by {sorted(takers[report.seq])}")
    expected = sum(1 for p in opened if p.seq in appended)
    timer_problems += _timers_left(store, tickets, workflow)
    return TicketCheck(len(tickets), expected, bad, clock, timer_problems, timer_mails)


def _clock_event(ref: str, kind: str, src: str | None, dest: str | None, at: datetime,
                 data: dict[str, Any], entered: datetime | None, priority: str,
                 workflow: WorkflowFacts) -> str | datetime | None:
    """A line the clock wrote, checked against the state's timeout: a problem (str), the
    lower bound of when the next state was entered (a datetime, for a move), or None."""
    timeout = workflow.timeouts.get(src or "")
    if kind == "transition":
        if timeout is None or entered is None:
            return f"{ref}: the clock moved it from {src}, which has no timeout"
        step = ESCALATES.get(src or "") if timeout.then == "escalate" else src
        if data.get("trigger") != timeout.then or data.get("timer") != "expire" or dest != step:
            return (f"{ref}: the clock moved it {src} -> {dest} by {data.get('trigger')}; the"
                    f" timeout of {src} says {timeout.then} to {step}")
        due = entered + timeout.limit(priority)
        if at < due:
            return (f"{ref}: the clock moved it {src} -> {dest} at {at:%Y-%m-%d %H:%M:%S}, before"
                    f" its limit could pass ({timeout.limit(priority)} after {entered:%H:%M:%S})")
        return due
    if kind in ("reminder", "warning"):
        if timeout is None or entered is None:
            return f"{ref}: a {kind} in {src}, which has no timeout"
        if kind == "reminder":
            if timeout.remind_every is None:
                return f"{ref}: a reminder in {src}, which has none"
            earliest = entered + timeout.remind_every * max(1, int(data.get("seq") or 1))
        else:
            if timeout.warn_at is None:
                return f"{ref}: a warning in {src}, which has none"
            earliest = entered + timeout.limit(priority) * timeout.warn_at
        if at < earliest:
            return f"{ref}: a {kind} in {src} at {at:%H:%M:%S}, before {earliest:%H:%M:%S}"
        return None
    if src != dest:
        return f"{ref}: the clock's {kind} moved it {src} -> {dest}"
    return None  # late_timer, sla_breach, sla_met, a refusal: the ticket stays


def _timers_left(store: Store, tickets: dict[int, Any], workflow: WorkflowFacts) -> list[str]:
    """None lost, none left behind: nothing due (but just now) unfired, and every ticket in
    a state with a timeout holds exactly one expiry for that state."""
    problems: list[str] = []
    cutoff = datetime.now(UTC) - timedelta(seconds=10)
    overdue = store.scalar("SELECT count(*) FROM timers WHERE due_at <= :cutoff",
                           {"cutoff": store.instant(cutoff)})
    if overdue:
        problems.append(f"{overdue} timers due more than 10 s ago never fired")
    expiries: Counter[int] = Counter()
    states = {tid: row[2] for tid, row in tickets.items()}
    for ticket_id, state in store.rows("SELECT ticket_id, state FROM timers WHERE kind = 'expire'"):
        if states.get(ticket_id) == state:
            expiries[ticket_id] += 1
    for tid, (_, ref, state, _, _) in tickets.items():
        if state in workflow.timeouts and expiries[tid] != 1:
            problems.append(f"{ref}: in {state} with {expiries[tid]} expiry timers (want 1)")
    return problems


# ------------------------------------------------------------------ one scenario

@dataclass
class Scenario:
    store: str  # sqlite | postgresql
    mails: int
    kills: int
    seed: int
    daemons: int = 1  # PostgreSQL: 2 on one mailbox and one database
    db_restart: bool = False
    smtp_outage_s: float = 0.0
    dovecot_restart: bool = False
    settle_s: float = 240.0  # after the last fault: every mail seen, the outbox quiet
    early_share: float = EARLY_SHARE  # the timer phase's reports, a share of `mails`
    timer_kills: int = 1  # of `kills`, placed on the timers fired instead of the work done
    progress: Callable[[str], None] = print


@contextlib.contextmanager
def services(folder: Path, store: str) -> Iterator[tuple[DovecotServer, SmtpServer,
                                                         PgCluster | None, str]]:
    """Dovecot, the SMTP server and the database (a SQLite file or a private cluster), all
    stopped and removed on the way out, also on failure."""
    binary = dovecot_binary()
    if binary is None:
        raise FileNotFoundError("dovecot is not installed (apt-get install dovecot-imapd)")
    with contextlib.ExitStack() as stack:
        dovecot = DovecotServer(binary)
        stack.callback(dovecot.cleanup)
        dovecot.start()
        smtp = SmtpServer()
        stack.callback(smtp.stop)
        smtp.start()
        cluster = None
        if store == "postgresql":
            cluster = PgCluster()
            stack.callback(cluster.cleanup)
            cluster.start()
            url = cluster.url
        else:
            url = f"sqlite:///{folder / 'tierdesk.db'}"
        yield dovecot, smtp, cluster, url


def run(scenario: Scenario, folder: Path | None = None) -> Figures:
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix="tierdesk-faults-")))
        dovecot, smtp, cluster, url = stack.enter_context(services(folder, scenario.store))
        return _play(scenario, folder, dovecot, smtp, cluster, url, stack)
    raise AssertionError("unreachable")


def _play(s: Scenario, folder: Path, dovecot: DovecotServer, smtp: SmtpServer,
          cluster: PgCluster | None, url: str, stack: contextlib.ExitStack) -> Figures:
    started = time.monotonic()
    site = make_site(folder)
    logs = folder / "logs"
    logs.mkdir()
    burst = make_burst(s.mails, s.seed, site, s.early_share)
    s.progress(f"[{s.store}] burst: {burst.summary()}")
    account = dovecot.new_account()
    env = daemon_env(dovecot, account, smtp, url)
    runs: Counter[int] = Counter()
    live: dict[int, DaemonProcess] = {}
    every: list[DaemonProcess] = []
    exit_codes: dict[str, int | None] = {}

    def start(index: int) -> DaemonProcess:
        runs[index] += 1
        daemon = DaemonProcess(f"daemon{index}-run{runs[index]}", site, env, logs)
        every.append(daemon)
        live[index] = daemon
        return daemon

    def kill_all() -> None:
        for daemon in every:
            if daemon.process.poll() is None:
                daemon.kill()

    stack.callback(kill_all)
    store = Store(url)
    stack.callback(store.close)
    feeder = Feeder(dovecot, account, burst, store)
    stack.callback(feeder.stopping.set)
    log = FaultLog()
    timer_phase = _timer_phase(s, site, env, logs, burst, feeder, store, every, exit_codes, log)
    base = store.work()  # the timer phase's mails and rows, done before the burst
    # The burst starts arriving as the daemons start, so their clock's catching up on the
    # timer phase's due timers runs while mail is ingested and sent.
    feeder.start()
    first = start(0)
    first.wait_started()  # migrates the store; a second daemon then finds it migrated
    for index in range(1, s.daemons):
        start(index).wait_started()
    extra = tuple(kind for kind, on in (("db_restart", s.db_restart),
                                        ("smtp_outage", s.smtp_outage_s > 0),
                                        ("dovecot_restart", s.dovecot_restart)) if on)
    faults = schedule(random.Random(s.seed), s.kills, extra,
                      timer_kills=s.timer_kills if burst.early else 0)
    s.progress(f"[{s.store}] faults at: "
               + ", ".join(f"{f.kind}@{f.at:.0%}{' of the timers' if f.by == 'timers' else ''}"
                           for f in faults))
    kills = 0
    for fault in faults:
        if fault.by == "timers":
            _wait_timers(store, fault.at * timer_phase.expected, timer_phase.clock_base,
                         feeder, deadline_s=120)
        else:
            _wait_progress(store, base + fault.at * burst.total * WORK_PER_MAIL, feeder,
                           deadline_s=300)
        kills += _inject(fault, s, live, start, cluster, smtp, dovecot, log, store)
        s.progress(f"[{s.store}] {log.entries[-1].strip()}")
    feeder.join(s.settle_s)
    if feeder.error is not None:
        raise feeder.error
    settled = _settle(store, dovecot, account, feeder, s.settle_s)
    s.progress(f"[{s.store}] settled: {settled}, after {time.monotonic() - started:.0f} s")
    exit_codes.update({d.name: d.terminate() for d in live.values()})
    tracebacks = sum(d.tracebacks() for d in every)
    figures = count(store, smtp, burst, feeder, workflow_facts(site), kills, s.daemons, log,
                    exit_codes, tracebacks, settled, started)
    if figures.tracebacks or not settled:
        for daemon in every:
            if daemon.tracebacks():
                s.progress(f"--- {daemon.name} (traceback) ---\n{daemon.text()[-4000:]}")
    return figures


def _inject(fault: Fault, s: Scenario, live: dict[int, DaemonProcess],
            start: Callable[[int], DaemonProcess], cluster: PgCluster | None, smtp: SmtpServer,
            dovecot: DovecotServer, log: FaultLog, store: Store) -> int:
    stored = f"{store.stored_count()} stored, {store.work() - store.stored_count()} sent"
    if fault.kind == "kill":
        victim = live[fault.daemon]
        victim.kill()
        due, fired = store.due_timers(), store.clock_events()
        firing = bool(due)
        log.kills_while_firing += firing
        log.add(f"SIGKILL {victim.name} at {stored}, {fired} clock events, {due} timers due"
                f"{' (while timers fire)' if firing else ''} (planned at {fault.at:.0%}"
                f"{' of the timers' if fault.by == 'timers' else ''})")
        start(fault.daemon).wait_started()
        return 1
    if fault.kind == "db_restart":
        assert cluster is not None
        began = time.monotonic()
        cluster.restart()
        log.add(f"pg_ctl restart at {stored} ({time.monotonic() - began:.1f} s)")
    elif fault.kind == "smtp_outage":
        smtp.stop()
        log.add(f"SMTP server stopped at {stored}, for {s.smtp_outage_s:.0f} s")
        time.sleep(s.smtp_outage_s)  # the outage itself: a fixed length by definition
        smtp.start()
        log.add("SMTP server started again")
    elif fault.kind == "dovecot_restart":
        dovecot.restart()
        log.add(f"Dovecot restarted at {stored}")
    return 0


def _wait_progress(store: Store, target: float, feeder: Feeder, deadline_s: float,
                   stall_s: float = 3.0) -> None:
    """Until the work done (mails stored + outbox rows sent) reaches `target`, or nothing
    moves for `stall_s` (the burst is smaller than estimated), or the deadline."""
    deadline = time.monotonic() + deadline_s
    last, moved = -1, time.monotonic()
    while (done := store.work()) < target:
        if feeder.error is not None:
            raise feeder.error
        if done != last:
            last, moved = done, time.monotonic()
        if time.monotonic() - moved > stall_s or time.monotonic() > deadline:
            return  # the fault happens anyway; the counts will show what stalled
        time.sleep(0.02)


def _settle(store: Store, dovecot: DovecotServer, account: Account, feeder: Feeder,
            timeout: float) -> bool:
    """Every appended mail seen by the daemons (the cursor at the mailbox's last UID), the
    outbox with nothing pending or sending, and nothing new for 2 s."""
    deadline = time.monotonic() + timeout
    last: tuple[Any, ...] | None = None
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        top = mailbox_last_uid(dovecot, account)
        cursor = store.safe("SELECT max(last_uid) FROM mailbox_cursors")
        busy = store.safe("SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')")
        total = store.safe("SELECT count(*) FROM outbox")
        now = (top, cursor, busy, total, store.stored_count())
        if now != last:
            last, quiet_since = now, time.monotonic()
        done = (feeder.done.is_set() and top is not None and cursor == top and busy == 0)
        if done and time.monotonic() - quiet_since >= 2.0:
            return True
        time.sleep(0.25)
    return False


# ------------------------------------------------------------------ point 6: sharing

@dataclass(frozen=True)
class RateRun:
    daemons: int
    mails: int
    ingest_s: float  # first APPEND to the last mail stored
    drained_s: float  # first APPEND to the outbox quiet
    stored_once: bool
    duplicates: int
    acks_doubled: int  # acknowledgements beyond one per ticket
    tickets: int
    expected_tickets: int
    # CPU seconds the daemons used until the last mail was stored (all of them together),
    # and how busy the machine was meanwhile: whether the work was shared, not doubled,
    # and whether the cores were the limit.
    daemon_cpu_s: float = 0.0
    machine_busy: float = 0.0

    @property
    def rate(self) -> float:
        return self.mails / self.ingest_s


def process_cpu_s(pid: int) -> float:
    """utime + stime of a live process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores so far, from /proc/stat."""
    numbers = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = numbers[3] + numbers[4]  # idle + iowait
    return sum(numbers) - idle, sum(numbers)


def ingest_rate(daemons: int, mails: int, seed: int, progress: Callable[[str], None] = print,
                timeout_s: float = 600, arriving: bool = False) -> RateRun:
    """N daemons on one mailbox and one private PostgreSQL, the same burst (mailgen's mix, no
    commands) each time. By default the burst is in the mailbox before the daemons start
    (all at once), timed from the first one's start-up line to the last mail stored: the
    MULTIAPPEND rate does not cap the figure. `arriving`: the daemons idle on the empty
    mailbox and the burst arrives by MULTIAPPEND, timed from the first APPEND."""
    mailgen = load_mailgen()
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tierdesk-rate-")))
        dovecot, smtp, _, url = stack.enter_context(services(folder, "postgresql"))
        site = make_site(folder)
        (folder / "logs").mkdir()
        account = dovecot.new_account()
        env = daemon_env(dovecot, account, smtp, url)
        generated = list(mailgen.generate(mails, seed))
        raws = [with_seq(m.raw, i) for i, m in enumerate(generated, 1)]
        news = sum(1 for m in generated if m.kind == "new")
        procs: list[DaemonProcess] = []

        def kill_all() -> None:
            for proc in procs:
                if proc.process.poll() is None:
                    proc.kill()

        def append_all() -> float:
            began = time.monotonic()
            with client(dovecot, account) as imap:
                for start in range(0, len(raws), 50):
                    imap.multiappend("INBOX", raws[start:start + 50])
            return time.monotonic() - began

        stack.callback(kill_all)
        store = Store(url)
        stack.callback(store.close)
        if arriving:
            for index in range(daemons):
                procs.append(DaemonProcess(f"rate{daemons}-{index}", site, env, folder / "logs"))
                procs[-1].wait_started()
            time.sleep(1.0)  # let them reach IDLE on the empty mailbox
            began = time.monotonic()
            appended = append_all()
        else:
            appended = append_all()
            # Migrated beforehand (else one daemon would start ingesting while the other
            # waits for the migration lock), then all start at once.
            database = open_database(url)
            try:
                migrate(database)
            finally:
                database.close()
            for index in range(daemons):
                procs.append(DaemonProcess(f"rate{daemons}-{index}", site, env, folder / "logs"))
            deadline = time.monotonic() + 60
            while not any("tierdesk started:" in p.text() for p in procs):
                if time.monotonic() > deadline:
                    raise RuntimeError("no daemon started within 60 s")
                time.sleep(0.01)
            began = time.monotonic()
        deadline = began + timeout_s
        ticks = machine_ticks()
        while store.stored_count() < mails and time.monotonic() < deadline:
            time.sleep(0.02)
        ingest_s = time.monotonic() - began
        busy, total = (b - a for a, b in zip(ticks, machine_ticks(), strict=True))
        daemon_cpu_s = sum(process_cpu_s(p.process.pid) for p in procs)
        while (store.safe("SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')")
               and time.monotonic() < deadline):
            time.sleep(0.05)
        drained_s = time.monotonic() - began
        seqs = Counter(int(m.group(1)) for (raw,) in store.rows(
            "SELECT raw FROM messages WHERE direction = 'in'")
            for m in [SEQ.search(bytes(raw)[:400])] if m)
        # One acknowledgement per ticket, one ticket per new report: nothing doubled.
        doubled = store.scalar(
            "SELECT count(*) - count(DISTINCT ticket_id) FROM outbox"
            " WHERE template = 'acknowledgement'")
        tickets = store.scalar("SELECT count(*) FROM tickets")
        # What opened each ticket (its first mail): a reply opening one lost its thread.
        openers = Counter(
            generated[int(m.group(1)) - 1].kind for (raw,) in store.rows(
                "SELECT raw FROM messages WHERE id IN (SELECT min(id) FROM messages"
                " WHERE direction = 'in' AND ticket_id IS NOT NULL GROUP BY ticket_id)")
            for m in [SEQ.search(bytes(raw)[:400])] if m)
        copies = Counter(_bare(_header_id(r.data)) for r in smtp.received)
        codes = [proc.terminate() for proc in procs]
        result = RateRun(daemons, mails, ingest_s, drained_s,
                         sorted(seqs) == list(range(1, mails + 1)) and set(seqs.values()) == {1},
                         sum(n - 1 for n in copies.values()), int(doubled or 0),
                         int(tickets or 0), news, daemon_cpu_s, busy / total if total else 0.0)
        progress(f"{daemons} daemon{'s' if daemons > 1 else ''}: {mails} mails appended in"
                 f" {appended:.1f} s, all stored after {ingest_s:.1f} s ({result.rate:,.0f}"
                 f"/s; daemons' CPU {daemon_cpu_s:.1f} s, cores busy"
                 f" {result.machine_busy:.0%}), outbox drained after {drained_s:.1f} s; stored once"
                 f" {result.stored_once}, tickets {result.tickets}/{result.expected_tickets},"
                 f" acknowledgements doubled {result.acks_doubled}, SMTP duplicates"
                 f" {result.duplicates}; tickets opened by {dict(openers)}; exit codes {codes}")
        return result
