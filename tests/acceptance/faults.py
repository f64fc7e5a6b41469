"""Fault injection as users would hit it (issue 15, points 5 and 6): the shared harness of
tests/acceptance/test_faults.py (CI size) and bench/faults.py (full size).

Real peers only: a private Dovecot (tests/imap/servers.py), an aiosmtpd server in a thread
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
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from imapclient import IMAPClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from daemon.sender_auth import sign, signed_address
from daemon.store.database import migrate, open_database
from tests.imap.servers import DOVECOT, Account, DovecotServer, client, free_port
from tests.outbound.smtp_server import SmtpServer

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
SECRET = "fault-injection-secret-" + "y" * 32  # TIERDESK_AUTH_SECRET: signs reply addresses
SUPPORT = "support@example.com"
DOMAIN = "example.com"
SEQ_HEADER = b"X-Tierdesk-Fault-Seq"
SEQ = re.compile(rb"^X-Tierdesk-Fault-Seq: (\d+)\r?$", re.MULTILINE)
SMTP_CONNECTIONS = 4  # the daemon's pool (daemon/sender.py Sender.from_config)
ESCALATES = {"triage": "tier1", "tier1": "tier2", "tier2": "tier3"}  # default dests
SITE_FOLDERS = ("config", "workflows", "mail_templates")
# Faults are placed on the work done: mails stored + outbox rows sent, about 1.5 rows a mail.
WORK_PER_MAIL = 2.5


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

    @property
    def total(self) -> int:
        return len(self.mails) + len(self.commands)

    @property
    def by_seq(self) -> dict[int, Planned]:
        return {p.seq: p for p in (*self.mails, *self.commands)}

    def summary(self) -> str:
        kinds = Counter(p.kind for p in self.mails)
        commands = Counter(p.command for p in self.commands)
        return (f"{self.total:,} mails: " + ", ".join(f"{n:,} {k}" for k, n in
                                                    sorted(kinds.items()))
                + f"; {len(self.commands):,} commands ("
                + ", ".join(f"{n} #{c}" for c, n in sorted(commands.items())) + ")")


def with_seq(raw: bytes, seq: int) -> bytes:
    return SEQ_HEADER + f": {seq}\r\n".encode() + raw


def make_burst(n: int, seed: int, site: Path) -> Burst:
    """n mails: ~80% mailgen's mix, ~0.5% (at least 2) new reports reusing an earlier
    Message-ID, the rest technicians' commands on tickets opened earlier in the burst."""
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
    staff = members(site)
    opened = [p for p in mails if p.kind == "new"]
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
    return Burst(mails, commands)


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
    to = signed_address(SUPPORT, DOMAIN, ref, sign(ref, member.address, SECRET))
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
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update({
        "PYTHONUNBUFFERED": "1",
        "TIERDESK_IMAP_HOST": server.host, "TIERDESK_IMAP_PORT": str(server.port),
        "TIERDESK_IMAP_SECURITY": "none", "TIERDESK_IMAP_USERNAME": account.username,
        "TIERDESK_IMAP_PASSWORD": account.password, "TIERDESK_IMAP_TIMEOUT": "5s",
        "TIERDESK_SMTP_HOST": smtp.host, "TIERDESK_SMTP_PORT": str(smtp.port),
        "TIERDESK_SMTP_SECURITY": "none", "TIERDESK_SMTP_TIMEOUT": "5s",
        "TIERDESK_DATABASE_URL": url, "TIERDESK_AUTH_SECRET": SECRET,
    })
    return env


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

    def scalar(self, sql: str) -> Any:
        with self.engine.connect() as connection:
            return connection.execute(text(sql)).scalar()

    def rows(self, sql: str) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(text(sql)))

    def safe(self, sql: str, default: Any = None) -> Any:
        """For polling while faults happen: the database may be restarting."""
        try:
            return self.scalar(sql)
        except Exception:  # noqa: BLE001  (any driver error while PostgreSQL restarts)
            return default

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
        targets = {p.seq: p for p in self.burst.mails}
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
    at: float  # fraction of the estimated work (mails stored + rows sent)
    kind: str  # kill, db_restart, smtp_outage, dovecot_restart
    daemon: int = 0


def schedule(rng: random.Random, kills: int, extra: tuple[str, ...] = ()) -> list[Fault]:
    """Kills at seeded points of the first 90% of the burst; the other faults after them,
    in order, between 55% and 95%."""
    faults = [Fault(round(rng.uniform(0.03, 0.9), 3), "kill") for _ in range(kills)]
    for i, kind in enumerate(extra):
        low = 0.55 + 0.4 * i / max(len(extra), 1)
        faults.append(Fault(round(rng.uniform(low, low + 0.4 / max(len(extra), 1)), 3), kind))
    return sorted(faults, key=lambda f: f.at)


@dataclass
class FaultLog:
    entries: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def add(self, what: str) -> None:
        self.entries.append(f"{time.monotonic() - self.started:7.1f}s {what}")


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

    @property
    def duplicate_bound(self) -> int:
        return self.kills * SMTP_CONNECTIONS

    def line(self) -> str:
        return (f"{self.store:<10} daemons {self.daemons}  appended {self.appended:>5}  "
                f"stored {self.stored:>5}  owed {self.owed:>5}  delivered {self.delivered:>5}  "
                f"duplicates {self.duplicates:>4} (bound {self.duplicate_bound})  "
                f"kills {self.kills}  {self.seconds:.0f} s")

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


def count(store: Store, smtp: SmtpServer, burst: Burst, feeder: Feeder, workflow_states: set[str],
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

    tickets, expected_tickets, bad = check_tickets(store, burst, ticket_of_seq, feeder,
                                                   workflow_states)
    return Figures(
        store=store.engine.dialect.name, daemons=daemons, appended=len(appended),
        stored=stored, missing=missing, doubled=doubled,
        missing_kinds=Counter(planned[s].kind for s in missing), quarantined=quarantined,
        owed=len(owed_rows), skipped=len(rows) - len(owed_rows),
        unsent=Counter(r[1] for r in owed_rows if r[1] != "sent"), delivered=delivered,
        received=len(received), duplicates=sum(n - 1 for n in copies.values()),
        duplicate_mismatch=mismatch, unknown_at_smtp=len(seen - outbox_ids), kills=kills,
        faults=log.entries, tickets=tickets, expected_tickets=expected_tickets,
        bad_tickets=bad, exit_codes=exit_codes, tracebacks=tracebacks, settled=settled,
        seconds=time.monotonic() - started)


def check_tickets(store: Store, burst: Burst, ticket_of_seq: dict[int, int], feeder: Feeder,
                  workflow_states: set[str]) -> tuple[int, int, list[str]]:
    """Every ticket in a state of the workflow, reached through its recorded events (each
    event starts where the previous left it), and where the story puts it: triage's route,
    then one tier up per `#escalate` sent (tier 3 refuses it); assigned to one who took it
    (unless an #escalate moved it to another team, which clears the assignee)."""
    tickets = {row[0]: row for row in store.rows(
        "SELECT id, ref, state, assignee FROM tickets")}
    events: dict[int, list[Any]] = {}
    for row in store.rows("SELECT ticket_id, kind, from_state, to_state, actor FROM events"
                          " ORDER BY id"):
        events.setdefault(row[0], []).append(row)
    opened = [p for p in burst.mails if p.kind in ("new", "reused_id")]
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
            takers.setdefault(command.target, set()).add(command.member.address)
    bad: list[str] = []
    for tid, (_, ref, state, _assignee) in tickets.items():
        current: str | None = None
        for _, kind, src, dest, _actor in events.get(tid, []):
            if src is not None and current is not None and src != current:
                bad.append(f"{ref}: {kind} from {src} while in {current}")
                break
            current = dest if dest is not None else current
        if state not in workflow_states:
            bad.append(f"{ref}: state {state!r} is not in the workflow")
        elif current != state:
            bad.append(f"{ref}: in {state} but its events end in {current}")
    for report in opened:
        tid = ticket_of_seq.get(report.seq)
        if tid is None or tid not in tickets:
            continue  # counted as not stored
        _, ref, state, assignee = tickets[tid]
        want = report.route or "triage"
        for _ in range(escalations[report.seq]):
            want = ESCALATES.get(want, want)
        if state != want:
            bad.append(f"{ref}: in {state}, the story says {want}"
                       f" (route {report.route}, {escalations[report.seq]} #escalate)")
        # A move to another team clears the assignee (the engine), so only without one.
        if report.seq in takers and not escalations[report.seq] \
                and (assignee or "").lower() not in takers[report.seq]:
            bad.append(f"{ref}: assigned to {assignee!r}, taken by {sorted(takers[report.seq])}")
    expected = sum(1 for p in opened if p.seq in appended)
    return len(tickets), expected, bad


def workflow_states(site: Path) -> set[str]:
    states: set[str] = set()
    for path in (site / "workflows").glob("*.yaml"):
        states |= set(yaml.safe_load(path.read_text())["states"])
    return states


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
    burst = make_burst(s.mails, s.seed, site)
    s.progress(f"[{s.store}] burst: {burst.summary()}")
    account = dovecot.new_account()
    env = daemon_env(dovecot, account, smtp, url)
    runs: Counter[int] = Counter()
    live: dict[int, DaemonProcess] = {}
    every: list[DaemonProcess] = []

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
    first = start(0)
    first.wait_started()  # migrates the store; a second daemon then finds it migrated
    for index in range(1, s.daemons):
        start(index).wait_started()
    log = FaultLog()
    extra = tuple(kind for kind, on in (("db_restart", s.db_restart),
                                        ("smtp_outage", s.smtp_outage_s > 0),
                                        ("dovecot_restart", s.dovecot_restart)) if on)
    faults = schedule(random.Random(s.seed), s.kills, extra)
    s.progress(f"[{s.store}] faults at: "
               + ", ".join(f"{f.kind}@{f.at:.0%}" for f in faults))
    feeder = Feeder(dovecot, account, burst, store)
    feeder.start()
    stack.callback(feeder.stopping.set)
    kills = 0
    for fault in faults:
        _wait_progress(store, fault.at * burst.total * WORK_PER_MAIL, feeder, deadline_s=300)
        kills += _inject(fault, s, live, start, cluster, smtp, dovecot, log, store)
        s.progress(f"[{s.store}] {log.entries[-1].strip()}")
    feeder.join(s.settle_s)
    if feeder.error is not None:
        raise feeder.error
    settled = _settle(store, dovecot, account, feeder, s.settle_s)
    s.progress(f"[{s.store}] settled: {settled}, after {time.monotonic() - started:.0f} s")
    exit_codes = {d.name: d.terminate() for d in live.values()}
    tracebacks = sum(d.tracebacks() for d in every)
    figures = count(store, smtp, burst, feeder, workflow_states(site), kills, s.daemons, log,
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
        log.add(f"SIGKILL {victim.name} at {stored} (planned at {fault.at:.0%})")
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
