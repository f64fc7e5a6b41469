"""The daemon's figures (issue 7): acknowledgement latency and memory of `run.py run`.

    python bench/latency.py [--mails 200] [--rss 10000,20000] [--seed 1]

A private Dovecot (tests/inbound/imap/servers.py, as bench/ingest.py uses it), an aiosmtpd server
(tests/outbound/smtp_server.py) that notes the moment it accepts each mail, a fresh SQLite
file, and the real `python run.py run` as its own process over a temp copy of config/,
workflows/ and mail_templates/.

- latency: --mails new reports APPENDed one at a time from another connection, each after
  the previous one's acknowledgement: the time from APPEND's return to the SMTP server
  accepting the acknowledgement (found by its In-Reply-To). p50 and p99; targets p50 < 300 ms
  and p99 < 1 s. Dovecot holds IDLE notices back 0.5 s; the daemon re-issues IDLE every
  imap.idle_renew (250 ms by default) to hear sooner.
- memory: the daemon's VmRSS (from /proc) after start-up, after the latency run, then after
  each --rss total of realistic mails (bench/mailgen.py: replies, auto-replies, bounces,
  attachments), loaded with MULTIAPPEND while the daemon runs and waited for until the
  cursor reached the last UID and the outbox is empty. Target: under 100 MB (issue 17: 80
  before pydantic's config models), and not growing between the last two.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "bench"))

from ingest import Site, dovecot, make_site  # noqa: E402
from mailgen import generate  # noqa: E402

from tests.inbound.imap.servers import Account, client  # noqa: E402
from tests.inbound.ingest.mails import mail  # noqa: E402
from tests.outbound.smtp_server import SmtpServer  # noqa: E402
from tests.processes import pythonpath  # noqa: E402

TARGET_P50_MS, TARGET_P99_MS, TARGET_RSS_MB = 300, 1000, 100
_IN_REPLY_TO = re.compile(rb"^In-Reply-To:\s*<([^>]+)>", re.M | re.I)


class Timing:
    """An aiosmtpd handler that keeps no mail: when each was accepted, by In-Reply-To."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.accepted: dict[str, float] = {}
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.perf_counter()
        content = envelope.original_content or envelope.content or b""
        found = _IN_REPLY_TO.search(content[:8192])
        with self.changed:
            self.count += 1
            if found:
                self.accepted.setdefault(found[1].decode().lower(), now)
            self.changed.notify_all()
        return "250 2.0.0 OK"

    def wait_for(self, message_id: str, timeout: float) -> float | None:
        with self.changed:
            self.changed.wait_for(lambda: message_id in self.accepted, timeout)
            return self.accepted.get(message_id)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_daemon(site: Site, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "run", "--config",
                                    str(site.root)], cwd=log.parent, env=env,
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    deadline = time.monotonic() + 30
    while b"tierdesk started:" not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the daemon did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    return process


def latency(site: Site, account: Account, timing: Timing, count: int,
            gap_ms: float, rng: random.Random) -> list[float]:
    """Back to back (gap 0), each APPEND comes right after the previous acknowledgement,
    which the daemon sent right after an IDLE renewal: the arrivals are then phase-locked
    to the renewal and wait nearly a whole idle_renew each. Mail arriving at random moments
    is modelled by a random pause of up to gap_ms before each APPEND."""
    results: list[float] = []
    with client(site.server, account) as imap:
        for n in range(count):
            time.sleep(rng.uniform(0, gap_ms) / 1000)
            message_id = f"latency-{n}-{gap_ms:.0f}-{os.getpid()}@example.org"
            raw = mail(subject=f"Laptop {n} will not boot",
                       sender=f"person{n}.{gap_ms:.0f}@example.org", message_id=f"<{message_id}>",
                       body="It shows a black screen after the logo.\n" * 5)
            imap.append("INBOX", raw)
            appended = time.perf_counter()
            accepted = timing.wait_for(message_id, timeout=10)
            if accepted is None:
                print(f"  mail {n}: no acknowledgement within 10 s", flush=True)
                continue
            results.append(accepted - appended)
    return results


def load(site: Site, account: Account, n: int, seed: int) -> None:
    """n realistic mails with MULTIAPPEND, 50 a command (as bench/ingest.py loads)."""
    with client(site.server, account) as imap:
        for chunk in _chunks((m.raw for m in generate(n, seed=seed)), 50):
            imap.multiappend("INBOX", chunk)


def _chunks(raws: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    for raw in raws:
        chunk.append(raw)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def wait_processed(database: Path, site: Site, account: Account, timeout: float) -> float:
    """Seconds until the cursor is at the folder's last UID and no mail waits to be sent."""
    with client(site.server, account) as imap:
        imap.select_folder("INBOX", readonly=True)
        last = max(imap.search("ALL"))
    began = time.perf_counter()
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        while time.perf_counter() - began < timeout:
            cursor = db.execute("select max(last_uid) from mailbox_cursors").fetchone()[0]
            pending = db.execute("select count(*) from outbox where status in "
                                 "('pending', 'sending') and body is not null").fetchone()[0]
            if cursor == last and pending == 0:
                return time.perf_counter() - began
            time.sleep(0.2)
    finally:
        db.close()
    raise SystemExit(f"not processed within {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=200)
    parser.add_argument("--rss", default="10000,20000",
                        help="totals of realistic mails after which to read RSS ('' for none)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gaps", default="0,500",
                        help="latency runs, each with random pauses of up to this many ms "
                             "before each APPEND (0: back to back)")
    args = parser.parse_args()
    totals = [int(x) for x in args.rss.split(",") if x]
    folder = Path(tempfile.mkdtemp(prefix="tierdesk-latency-"))
    timing = Timing()
    with dovecot() as server, SmtpServer() as smtp:
        smtp.stop()
        smtp.handler = timing  # type: ignore[assignment]
        smtp.start()
        site = make_site(folder, server)
        account = server.new_account()
        database = folder / "tierdesk.db"
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("TIERDESK_")},
               **site.env(account, database), "TIERDESK_SMTP_PORT": str(smtp.port),
               "PYTHONPATH": pythonpath(ROOT)}
        daemon = start_daemon(site, env, folder / "daemon.log")
        try:
            time.sleep(1.0)
            print(f"RSS after start-up: {rss_mb(daemon.pid):.1f} MB", flush=True)
            rng = random.Random(args.seed)
            for gap in (float(x) for x in args.gaps.split(",")):
                values = latency(site, account, timing, args.mails, gap, rng)
                ms = [v * 1000 for v in values]
                p50, p99 = percentile(ms, 0.5), percentile(ms, 0.99)
                print(f"latency APPEND -> acknowledgement accepted, {len(ms)}/{args.mails} "
                      f"mails, pauses 0-{gap:.0f} ms: p50 {p50:.0f} ms (target < "
                      f"{TARGET_P50_MS}), p99 {p99:.0f} ms (target < {TARGET_P99_MS}), "
                      f"min {min(ms):.0f}, max {max(ms):.0f}", flush=True)
                print(f"RSS now: {rss_mb(daemon.pid):.1f} MB", flush=True)
            done, seed = 0, args.seed
            for total in totals:
                began = time.perf_counter()
                load(site, account, total - done, seed)
                loaded = time.perf_counter() - began
                waited = wait_processed(database, site, account, timeout=1800)
                done, seed = total, seed + 1
                print(f"RSS after {total} realistic mails: {rss_mb(daemon.pid):.1f} MB "
                      f"(loaded in {loaded:.0f} s, done {waited:.0f} s after loading)",
                      flush=True)
        finally:
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(60)
            print(f"daemon exit status after SIGTERM: {code}; log: {folder / 'daemon.log'}")


if __name__ == "__main__":
    main()
