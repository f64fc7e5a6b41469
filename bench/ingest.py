"""Ingest end to end against its same-run ceiling, peak RSS, and IDLE latency (issue 3).

    python bench/ingest.py [N] [--repeats 3] [--e2e-repeats 1] [--idle 50] [--seed 1]
                           [--profile [--profile-out FILE]]
    python bench/ingest.py --sizes 1000,5000,10000

N realistic mails (bench/mailgen.py: plain, HTML alternative, attachments, threaded replies,
RFC 2047 subjects, Latin-1 and UTF-8 bodies, auto-replies, bounces) go into a private Dovecot
(tests/inbound/imap/servers.py) over one IMAP connection, MULTIAPPEND 50 at a time, as
delivered mail arrives: Dovecot indexes each mail on arrival, as in a live mailbox.
(Writing the Maildir before starting Dovecot would leave that indexing to the first
reader and charge it to whichever side of the comparison runs first.) Then, in the same run:

- ceiling: imapclient UID FETCH BODY.PEEK[] in batches of 100, plus
  email.message_from_bytes(policy=default) of every mail; median of --repeats runs,
  alternated with the end-to-end runs so drift in the machine's load hits both sides;
- end to end: `python run.py run --once` as its own process over a temp copy of config/,
  workflows/ and mail_templates/, IMAP at the Dovecot, SMTP at a closed local port (the sending
  pass reports the outage and the mails stay queued: the figure is tickets created and
  acknowledgements enqueued), a fresh SQLite file. Timed: the ingest phase (from the process's
  first output line to its `imap:` summary line: Parts.build, connect and drain) and the whole
  process; peak RSS (VmHWM) polled from /proc. The store is then checked against what the
  mix implies;
- drain in process: `drain` alone, timed over a fresh SQLite file (no start-up);
  --profile runs it once more under cProfile and prints the top 25 by cumulative and own time;
- IDLE latency: a Mailbox IDLE-waiting in a thread drains on every wake-up while --idle mails
  are APPENDed one at a time from another connection: APPEND's return to the ticket visible in
  the database, split into the IDLE wake-up and the drain after it. Dovecot waits a fixed
  500 ms after a change before it tells IDLE clients (NOTIFY_DELAY_MSECS in
  src/lib-storage/mailbox-watch.c), so the same is measured against the embedded server.

Rates are printed per wall-clock second and per CPU-second of the measured process, the latter
less at the mercy of whatever else the machine runs. --sizes runs the end-to-end measurement
once per N (a fresh mailbox each, and an empty one for the baseline) and prints peak RSS per N:
it must stay flat as N grows. Dovecot is stopped and every temp folder removed at the end,
also on error.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import email
import email.policy
import os
import pstats
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # measure this checkout; tests.inbound.imap.servers for the Dovecot
sys.path.insert(1, str(ROOT / "bench"))

from mailgen import NEW_ONLY, GeneratedMail, Mix, generate  # noqa: E402

from daemon.demo.imap_server.server import Controller  # noqa: E402
from daemon.inbound.imap import Mailbox  # noqa: E402
from daemon.inbound.ingest_loop import drain  # noqa: E402
from daemon.service.app import Parts  # noqa: E402
from daemon.site.config import load_config  # noqa: E402
from daemon.store.database import Database, open_and_migrate  # noqa: E402
from tests.inbound.imap.servers import (  # noqa: E402
    DOVECOT,
    Account,
    DovecotServer,
    EmbeddedServer,
    ImapTestServer,
    client,
    free_port,
)

BATCH = 100
APPEND_CHUNK, APPEND_BYTES = 50, 8 * 2**20
TARGET_RATE = 1000  # mails/s end to end at N=5000 on SQLite
# Issue 17 allows 100 MB for pydantic's config models (about 8 MB, bench/records.py).
TARGET_RSS_MB = 100
TARGET_IDLE_MS = 300  # p50
SITE_FOLDERS = ("config", "workflows", "mail_templates")


# ------------------------------------------------------------------ the mailbox

@contextlib.contextmanager
def dovecot() -> Iterator[DovecotServer]:
    binary = shutil.which("dovecot") or DOVECOT
    if not os.path.exists(binary):
        sys.exit("dovecot is not installed (apt-get install dovecot-imapd)")
    server = DovecotServer(binary)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@dataclass(frozen=True)
class Loaded:
    account: Account
    mix: Mix
    seconds: float


def load(server: ImapTestServer, mails: Iterable[GeneratedMail]) -> Loaded:
    """A fresh account holding the mails in generation order, over one connection:
    MULTIAPPEND of up to 50 mails or 8 MB a command (4-5x faster than one APPEND each,
    which waits for a continuation and an fsync per mail); each is still its own mail."""
    account, mix = server.new_account(), Mix()
    started = time.perf_counter()
    with client(server, account) as imap:
        for chunk in _chunks(mails, mix):
            imap.multiappend("INBOX", chunk)
    return Loaded(account, mix, time.perf_counter() - started)


def _chunks(mails: Iterable[GeneratedMail], mix: Mix) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    size = 0
    for mail in mails:
        mix.add(mail)
        chunk.append(mail.raw)
        size += len(mail.raw)
        if len(chunk) >= APPEND_CHUNK or size >= APPEND_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


# ------------------------------------------------------------------ the ceiling

@dataclass(frozen=True)
class Ceiling:
    mails: int
    fetch_s: float
    parse_s: float
    cpu_s: float  # this process only: Dovecot's share of the fetch is not in it

    @property
    def rate(self) -> float:
        return self.mails / (self.fetch_s + self.parse_s)

    @property
    def fetch_rate(self) -> float:
        return self.mails / self.fetch_s

    @property
    def cpu_rate(self) -> float:
        return self.mails / self.cpu_s


def ceiling(server: ImapTestServer, account: Account) -> Ceiling:
    """Raw imapclient fetch in batches of 100 plus the stdlib parse of every mail."""
    fetch_s = parse_s = 0.0
    mails, cpu = 0, time.process_time()
    with client(server, account) as imap:
        imap.select_folder("INBOX", readonly=True)
        uids = sorted(imap.search("ALL"))
        for start in range(0, len(uids), BATCH):
            began = time.perf_counter()
            response = imap.fetch(uids[start:start + BATCH], ["BODY.PEEK[]"])
            fetched = time.perf_counter()
            for data in response.values():
                email.message_from_bytes(data[b"BODY[]"], policy=email.policy.default)
            mails += len(response)
            fetch_s += fetched - began
            parse_s += time.perf_counter() - fetched
    return Ceiling(mails, fetch_s, parse_s, time.process_time() - cpu)


def median_ceiling(runs: list[Ceiling]) -> Ceiling:
    return sorted(runs, key=lambda run: run.rate)[len(runs) // 2]


# ------------------------------------------------------------------ the daemon's side

@dataclass(frozen=True)
class Site:
    """A temp copy of the config with the TIERDESK_* variables that point it at the bench."""

    root: Path
    server: ImapTestServer
    smtp_port: int  # nothing listens there

    def env(self, account: Account, database: Path,
            server: ImapTestServer | None = None) -> dict[str, str]:
        server = server or self.server
        return {
            "TIERDESK_IMAP_HOST": server.host, "TIERDESK_IMAP_PORT": str(server.port),
            "TIERDESK_IMAP_SECURITY": "none", "TIERDESK_IMAP_USERNAME": account.username,
            "TIERDESK_IMAP_PASSWORD": account.password,
            "TIERDESK_SMTP_HOST": "127.0.0.1", "TIERDESK_SMTP_PORT": str(self.smtp_port),
            "TIERDESK_SMTP_SECURITY": "none", "TIERDESK_DATABASE_URL": f"sqlite:///{database}",
            # The mix is weeks of mail ingested at once: some people's dozen reports would
            # meet the hourly new-ticket limit, which the tests cover (tests/ingest).
            "TIERDESK_MAIL_MAX_NEW_TICKETS_PER_HOUR": "1000000",
        }


def make_site(folder: Path, server: DovecotServer) -> Site:
    root = folder / "site"
    for name in SITE_FOLDERS:
        shutil.copytree(ROOT / name, root / name)
    return Site(root, server, free_port())


@dataclass(frozen=True)
class Sample:
    """The moment a line of the process's output arrived, and its CPU time and peak RSS."""

    wall: float
    cpu: float
    hwm_kib: int
    line: str


@dataclass(frozen=True)
class ProcessRun:
    wall_s: float
    cpu_s: float
    rss_mb: float  # peak over the whole process
    samples: tuple[Sample, ...]

    def line(self, prefix: str) -> str:
        return next((s.line for s in self.samples if s.line.startswith(prefix)), "(none)")

    def _ingest(self) -> tuple[Sample, Sample]:
        """From the first output line (config loaded, store migrated) to the `imap:` line:
        Parts.build, connect, drain."""
        first = self.samples[0]
        return first, next((s for s in self.samples if s.line.startswith("imap:")), first)

    @property
    def ingest_s(self) -> float:
        first, done = self._ingest()
        return done.wall - first.wall

    @property
    def ingest_cpu_s(self) -> float:
        first, done = self._ingest()
        return done.cpu - first.cpu

    @property
    def ingest_rss_mb(self) -> float:
        return self._ingest()[1].hwm_kib / 1024


def run_once(site: Site, env: Mapping[str, str], stderr_path: Path) -> ProcessRun:
    """`python run.py run --once` as its own process, watched through /proc."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("TIERDESK_")}
    child_env.update(env, PYTHONUNBUFFERED="1")
    command = [sys.executable, str(ROOT / "run.py"), "run", "--once", "--config", str(site.root)]
    started, cpu_before = time.perf_counter(), children_cpu()
    with stderr_path.open("wb") as errors, subprocess.Popen(
            command, cwd=site.root, env=child_env, text=True, stdout=subprocess.PIPE,
            stderr=errors) as process:
        assert process.stdout is not None
        proc = Proc(process.pid)
        with proc.watching():
            samples = tuple(proc.sample(line.rstrip("\n")) for line in process.stdout)
        process.wait()
    run = ProcessRun(time.perf_counter() - started, children_cpu() - cpu_before,
                     proc.peak_kib / 1024, samples)
    if not run.line("imap:").startswith("imap: ") or "stays in the mailbox" in run.line("imap:"):
        sys.exit("run --once did not drain the mailbox:\n" + "\n".join(s.line for s in samples)
                 + "\n" + stderr_path.read_text()[-3000:])
    return run


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Proc:
    """A running process seen through /proc: CPU time, and its peak RSS (VmHWM) polled every
    few ms while it runs.

    Not ru_maxrss from wait4 or RUSAGE_CHILDREN: Linux carries the high-water mark of the
    address space a child had before exec into its figure, and subprocess spawns with vfork,
    so a child would report the bench's own peak whenever that is the larger."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, pid: int) -> None:
        self.folder = Path(f"/proc/{pid}")
        self.peak_kib = 0

    def cpu(self) -> float:
        with contextlib.suppress(OSError):
            fields = (self.folder / "stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / self.TICK  # utime, stime
        return float("nan")

    def hwm(self) -> int:
        with contextlib.suppress(OSError):
            for line in (self.folder / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_kib = max(self.peak_kib, int(line.split()[1]))
        return self.peak_kib

    def sample(self, line: str) -> Sample:
        return Sample(time.perf_counter(), self.cpu(), self.hwm(), line)

    @contextlib.contextmanager
    def watching(self, every_s: float = 0.005) -> Iterator[None]:
        done = threading.Event()

        def poll() -> None:
            while not done.wait(every_s):
                self.hwm()

        thread = threading.Thread(target=poll, name="rss-poller", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            self.hwm()  # at the end of its output the process may still be there


@dataclass(frozen=True)
class DrainRun:
    mails: int
    seconds: float
    cpu_s: float
    profile: cProfile.Profile | None


def drain_in_process(site: Site, env: Mapping[str, str], profile: bool = False) -> DrainRun:
    """`drain` alone, as run --once calls it, over a fresh store."""
    config = load_config(site.root, env)
    database = open_and_migrate(config.settings.database.url)
    profiler = cProfile.Profile() if profile else None
    try:
        parts = Parts.build(config, database)
        with Mailbox(config.settings.imap) as mailbox:
            started, cpu = time.perf_counter(), time.process_time()
            if profiler is not None:
                profiler.enable()
            report = drain(mailbox, database, parts.inbox)
            if profiler is not None:
                profiler.disable()
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        database.close()
    return DrainRun(report.total, seconds, cpu, profiler)


def print_profile(profiler: cProfile.Profile, mails: int, top: int = 25) -> None:
    for order in ("cumulative", "tottime"):
        print(f"\n--- cProfile of drain over {mails:,} mails, top {top} by {order} ---")
        stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats(order)
        stats.print_stats(top)


# ------------------------------------------------------------------ checking the store

@dataclass(frozen=True)
class Counts:
    tickets: int
    inbound: int
    human: int
    auto_reply: int
    bounce: int
    on_tickets: int  # inbound mails recorded on a ticket
    acks: int
    acks_queued: int  # pending: enqueued, waiting for the SMTP server
    handoffs: int
    quarantined: int


QUERIES = {
    "tickets": "SELECT count(*) FROM tickets",
    "inbound": "SELECT count(*) FROM messages WHERE direction = 'in'",
    "human": "SELECT count(*) FROM messages WHERE direction = 'in' AND kind = 'human'",
    "auto_reply": "SELECT count(*) FROM messages WHERE direction = 'in' AND kind = 'auto_reply'",
    "bounce": "SELECT count(*) FROM messages WHERE direction = 'in' AND kind = 'bounce'",
    "on_tickets": "SELECT count(*) FROM messages WHERE direction = 'in'"
                  " AND ticket_id IS NOT NULL",
    "acks": "SELECT count(*) FROM outbox WHERE template = 'acknowledgement'",
    "acks_queued": "SELECT count(*) FROM outbox WHERE template = 'acknowledgement'"
                   " AND status = 'pending'",
    "handoffs": "SELECT count(*) FROM outbox WHERE template = 'escalation_handoff'",
    "quarantined": "SELECT count(*) FROM quarantine",
}


def store_counts(path: Path) -> Counts:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return Counts(**{name: db.execute(sql).fetchone()[0] for name, sql in QUERIES.items()})


def expected_counts(mix: Mix, hourly_limit: int) -> Counts:
    """What the generated mix implies: a ticket and an acknowledgement per new report, the
    acknowledgement queued unless its requester already got `hourly_limit` this hour; a
    handoff per report the triage rules route; every mail stored, replies and threaded
    auto-replies on their ticket, nothing quarantined."""
    kinds = mix.kinds
    queued = sum(min(n, hourly_limit) for n in mix.opened_by.values())
    return Counts(
        tickets=kinds["new"], inbound=mix.mails, human=kinds["new"] + kinds["reply"],
        auto_reply=kinds["auto_reply"], bounce=kinds["bounce"],
        on_tickets=kinds["new"] + kinds["reply"] + mix.threaded_auto,
        acks=kinds["new"], acks_queued=queued, handoffs=mix.routed, quarantined=0)


def check_store(actual: Counts, expected: Counts) -> bool:
    print("store check (expected / actual):")
    ok = True
    for item in fields(Counts):
        want, got = getattr(expected, item.name), getattr(actual, item.name)
        ok &= want == got
        print(f"  {item.name:<12} {want:>7,} / {got:<7,} {'ok' if want == got else 'MISMATCH'}")
    return ok


# ------------------------------------------------------------------ IDLE latency

class Watcher(threading.Thread):
    """The ingest loop's shape: IDLE-wait, drain on every wake-up, until stopped."""

    def __init__(self, mailbox: Mailbox, database: Database, parts: Parts) -> None:
        super().__init__(name="idle-watcher", daemon=True)
        self.mailbox, self.database, self.parts = mailbox, database, parts
        self.ready, self.stopping = threading.Event(), threading.Event()
        self.error: BaseException | None = None
        self.last_wake = 0.0

    def run(self) -> None:
        try:
            self.mailbox.connect()
            drain(self.mailbox, self.database, self.parts.inbox)
            self.ready.set()
            while not self.stopping.is_set():
                if self.mailbox.wait(timeout_s=1.0):
                    self.last_wake = time.perf_counter()
                    drain(self.mailbox, self.database, self.parts.inbox)
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        finally:
            self.ready.set()
            self.mailbox.close()

    def stop(self) -> None:
        self.stopping.set()
        self.mailbox.wake()
        self.join(timeout=10)


@dataclass(frozen=True)
class Latency:
    server: str
    total_s: list[float]  # APPEND returned -> ticket visible in the database
    wake_s: list[float]  # APPEND returned -> IDLE woke the watcher

    def p(self, q: float, which: str = "total") -> float:
        """Percentile q in ms of the total, of the wake-up, or of the rest ("drain")."""
        values = {"total": self.total_s, "wake": self.wake_s,
                  "drain": [t - w for t, w in zip(self.total_s, self.wake_s, strict=True)]}
        ordered = sorted(values[which])
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def idle_latency(site: Site, server: ImapTestServer, folder: Path, count: int,
                 seed: int) -> Latency:
    account = server.new_account()
    path = folder / f"idle-{server.kind}.db"
    config = load_config(site.root, site.env(account, path, server))
    database = open_and_migrate(config.settings.database.url)
    watcher = Watcher(Mailbox(config.settings.imap), database, Parts.build(config, database))
    watcher.start()
    try:
        watcher.ready.wait(30)
        if watcher.error is not None:
            raise watcher.error
        mails = generate(count, seed, NEW_ONLY)
        total, wake = _append_and_wait(server, account, path, watcher, mails)
    finally:
        watcher.stop()
        database.close()
    return Latency(server.kind, total, wake)


def embedded_idle_latency(site: Site, folder: Path, count: int, seed: int) -> Latency:
    """The same against the embedded IMAP server (in this process): no notify delay."""
    with Controller() as controller:
        return idle_latency(site, EmbeddedServer(controller), folder, count, seed)


def _append_and_wait(server: ImapTestServer, account: Account, path: Path, watcher: Watcher,
                     mails: Iterable[GeneratedMail]) -> tuple[list[float], list[float]]:
    total, wake = [], []
    with client(server, account) as imap, contextlib.closing(sqlite3.connect(path)) as db:
        for mail in mails:
            imap.append("INBOX", mail.raw)
            appended = time.perf_counter()
            _wait_for_ticket(db, mail.message_id.lower(), watcher)
            total.append(time.perf_counter() - appended)
            wake.append(max(watcher.last_wake - appended, 0.0))
            time.sleep(0.05)  # mail arrives now and then, not back to back
    return total, wake


def _wait_for_ticket(db: sqlite3.Connection, message_id: str, watcher: Watcher,
                     timeout: float = 60.0) -> None:
    sql = ("SELECT 1 FROM messages WHERE direction = 'in' AND message_id = ?"
           " AND ticket_id IS NOT NULL")
    deadline = time.perf_counter() + timeout
    while db.execute(sql, (message_id,)).fetchone() is None:
        if watcher.error is not None:
            raise watcher.error
        if time.perf_counter() > deadline:
            raise TimeoutError(f"no ticket for <{message_id}> after {timeout:.0f} s")
        time.sleep(0.001)


# ------------------------------------------------------------------ printing

def verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


@dataclass(frozen=True)
class Figures:
    n: int
    ceiling: Ceiling
    ceilings: int
    e2e: ProcessRun
    e2e_runs: int
    inproc: DrainRun
    baseline: ProcessRun
    latencies: list[Latency]


def print_figures(f: Figures) -> None:
    """One block: wall-clock figures, the same per CPU-second (less at the mercy of whatever
    else runs on the machine), and the targets."""
    e2e, ceil = f.e2e, f.ceiling
    rate, cpu_rate = f.n / e2e.ingest_s, f.n / e2e.ingest_cpu_s
    runs = f"median of {f.e2e_runs}" if f.e2e_runs > 1 else "one run"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n=== ingest, N={f.n:,}, SQLite, {os.cpu_count()} cores, load average {load} ===")
    rows = [
        ("", "wall clock", "per CPU-s", "target"),
        ("ceiling: UID FETCH x100 + message_from_bytes(default)", f"{ceil.rate:,.0f}/s",
         f"{ceil.cpu_rate:,.0f}/s", f"(median of {f.ceilings}; the fetch alone"
         f" {ceil.fetch_rate:,.0f}/s)"),
        ("end to end: run --once, ingest phase", f"{rate:,.0f}/s", f"{cpu_rate:,.0f}/s",
         f">= {TARGET_RATE:,}/s  {verdict(rate >= TARGET_RATE)}  ({runs}, {e2e.ingest_s:.1f} s)"),
        ("  whole process (start-up, migrate, clock, smtp pass)", f"{f.n / e2e.wall_s:,.0f}/s",
         f"{f.n / e2e.cpu_s:,.0f}/s", f"({e2e.wall_s:.1f} s wall, {e2e.cpu_s:.1f} s CPU)"),
        ("  drain in process (no start-up)", f"{f.inproc.mails / f.inproc.seconds:,.0f}/s",
         f"{f.inproc.mails / f.inproc.cpu_s:,.0f}/s", f"({f.inproc.seconds:.1f} s)"),
        ("ratio end to end / ceiling", f"{rate / ceil.rate:.2f}",
         f"{cpu_rate / ceil.cpu_rate:.2f}", f">= {TARGET_RATE / ceil.rate:.2f} for 1,000/s"
         " against this run's ceiling"),
        ("peak RSS of run --once", f"{e2e.rss_mb:.0f} MB", "",
         f"< {TARGET_RSS_MB} MB  {verdict(e2e.rss_mb < TARGET_RSS_MB)}  (at its imap: line"
         f" {e2e.ingest_rss_mb:.0f} MB; empty mailbox {f.baseline.rss_mb:.0f} MB)"),
        *(_latency_row(latency) for latency in f.latencies),
    ]
    for label, wall, cpu, target in rows:
        print(f"{label:<55}{wall:>11}{cpu:>11}   {target}")


def _latency_row(latency: Latency) -> tuple[str, str, str, str]:
    p50 = latency.p(0.5)
    return (f"IDLE ({latency.server}): APPEND -> ticket committed",
            f"p50 {p50:,.0f} ms", "", f"< {TARGET_IDLE_MS} ms  {verdict(p50 < TARGET_IDLE_MS)}"
            f"  ({len(latency.total_s)} mails; p99 {latency.p(0.99):,.0f} ms; p50 of the IDLE"
            f" wake-up {latency.p(0.5, 'wake'):,.0f} ms, of wake -> commit"
            f" {latency.p(0.5, 'drain'):,.0f} ms)")


# ------------------------------------------------------------------ the two modes

def single(args: argparse.Namespace) -> None:
    with dovecot() as server, tempfile.TemporaryDirectory(prefix="tierdesk-bench-") as tmp:
        folder = Path(tmp)
        site = make_site(folder, server)
        loaded = load(server, generate(args.n, args.seed))
        print(f"{loaded.mix.summary()}\nloaded by MULTIAPPEND in {loaded.seconds:.1f} s"
              f" ({loaded.mix.mails / loaded.seconds:,.0f} mails/s)", flush=True)
        ceilings, runs = side_by_side(site, loaded.account, folder, args)
        store_ok = check_store(store_counts(folder / "e2e0.db"),
                               expected_counts(loaded.mix, hourly_limit(site)))
        inproc = drain_in_process(site, site.env(loaded.account, folder / "drain.db"))
        print(f"drain in process: {inproc.mails:,} mails in {inproc.seconds:.1f} s", flush=True)
        baseline = run_once(site, site.env(server.new_account(), folder / "empty.db"),
                            folder / "empty.err")
        latencies = [idle_latency(site, server, folder, args.idle, args.seed + 1),
                     embedded_idle_latency(site, folder, args.idle, args.seed + 1)] \
            if args.idle else []
        if args.profile:
            profile(site, site.env(loaded.account, folder / "profile.db"), args.profile_out)
    e2e = sorted(runs, key=lambda run: run.ingest_s)[len(runs) // 2]
    print_figures(Figures(args.n, median_ceiling(ceilings), len(ceilings), e2e, len(runs),
                          inproc, baseline, latencies))
    if not store_ok:
        sys.exit("the store does not hold what the mails imply: the figures measure something else")


def side_by_side(site: Site, account: Account, folder: Path,
                 args: argparse.Namespace) -> tuple[list[Ceiling], list[ProcessRun]]:
    """Ceiling and end-to-end runs alternated, so drift in the machine's load hits both."""
    ceilings: list[Ceiling] = []
    runs: list[ProcessRun] = []
    for r in range(max(args.repeats, args.e2e_repeats)):
        if r < args.repeats:
            ceilings.append(ceiling(site.server, account))
            print(f"ceiling run {r + 1}: {ceilings[-1].rate:,.0f} mails/s", flush=True)
        if r < args.e2e_repeats:
            run = run_once(site, site.env(account, folder / f"e2e{r}.db"), folder / f"e2e{r}.err")
            runs.append(run)
            print(f"run --once {r + 1}: ingest phase {run.ingest_s:.1f} s; its output: "
                  + " | ".join(sample.line for sample in run.samples), flush=True)
    return ceilings, runs


def hourly_limit(site: Site) -> int:
    return load_config(site.root, {}).settings.mail.max_auto_replies_per_hour


def profile(site: Site, env: Mapping[str, str], out: Path | None) -> None:
    profiled = drain_in_process(site, env, profile=True)
    assert profiled.profile is not None
    print_profile(profiled.profile, profiled.mails)
    if out is not None:
        profiled.profile.dump_stats(out)
        print(f"\nprofile written to {out} (python -m pstats {out})")


@dataclass(frozen=True)
class SizeRow:
    n: int
    megabytes: float
    ceiling: float
    run: ProcessRun
    store_ok: bool


def one_size(site: Site, folder: Path, n: int, seed: int, limit: int) -> SizeRow:
    loaded = load(site.server, generate(n, seed))
    rate = ceiling(site.server, loaded.account).rate if n else 0.0
    path = folder / f"size{n}.db"
    run = run_once(site, site.env(loaded.account, path), folder / f"size{n}.err")
    actual, expected = store_counts(path), expected_counts(loaded.mix, limit)
    if actual != expected:
        check_store(actual, expected)
    print(f"N={n:,}: {run.line('imap:')}; peak RSS {run.rss_mb:.0f} MB", flush=True)
    return SizeRow(n, loaded.mix.size / 2**20, rate, run, actual == expected)


def sizes(args: argparse.Namespace) -> None:
    wanted = [int(part) for part in args.sizes.split(",") if part.strip()]
    with dovecot() as server, tempfile.TemporaryDirectory(prefix="tierdesk-bench-") as tmp:
        folder = Path(tmp)
        site = make_site(folder, server)
        rows = [one_size(site, folder, n, args.seed, hourly_limit(site)) for n in [0, *wanted]]
    print(f"\n{'N':>7} {'mailbox':>9} {'ceiling':>9} {'ingest':>9} {'ratio':>6} {'process':>8}"
          f" {'RSS at imap:':>13} {'peak RSS':>9}  store   (target < {TARGET_RSS_MB} MB, flat)")
    for row in rows:
        rate = row.n / row.run.ingest_s if row.n else 0.0
        ratio = f"{rate / row.ceiling:.2f}" if row.n else "-"
        print(f"{row.n:>7,} {row.megabytes:>6.1f} MB {row.ceiling:>7,.0f}/s {rate:>7,.0f}/s"
              f" {ratio:>6} {row.run.wall_s:>6.1f} s {row.run.ingest_rss_mb:>10.0f} MB"
              f" {row.run.rss_mb:>6.0f} MB  {'ok' if row.store_ok else 'MISMATCH'}")
    grown = [row.run.rss_mb for row in rows if row.n]
    if grown:
        print(f"peak RSS from N={rows[1].n:,} to N={rows[-1].n:,}: {grown[0]:.0f} -> "
              f"{grown[-1]:.0f} MB ({grown[-1] - grown[0]:+.0f} MB); empty mailbox"
              f" {rows[0].run.rss_mb:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=5000)
    parser.add_argument("--repeats", type=int, default=3, help="ceiling runs (median)")
    parser.add_argument("--e2e-repeats", type=int, default=1, help="run --once runs (median)")
    parser.add_argument("--idle", type=int, default=50, help="mails for the IDLE latency")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="cProfile drain in process")
    parser.add_argument("--profile-out", type=Path, metavar="FILE",
                        help="with --profile: also write the pstats file here")
    parser.add_argument("--sizes", help="comma-separated N: peak RSS per N instead")
    args = parser.parse_args()
    if args.sizes:
        sizes(args)
    else:
        single(args)


if __name__ == "__main__":
    main()
