"""Clock loop cost on a store with many open tickets (issue 6).

    python bench/clock.py [--tickets 1000000] [--due 1000] [--backend sqlite|postgresql|both]

Fills a store with open tickets, each holding a timer far in the future, then measures:
an idle tick (nothing due), and a tick that fires `--due` reminders, each writing its event
and outbox row (and, when the outbound mailer is present, rendering the mail). Prints medians
and the process RSS, which must not grow with the tickets the clock does not act on.
PostgreSQL runs in a throwaway schema of TIERDESK_TEST_PG_URL's database, dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402

from daemon.outbound.writer import MailWriter  # noqa: E402
from daemon.site.config import Config, load_config  # noqa: E402
from daemon.store.database import Database, migrate, open_database  # noqa: E402
from daemon.store.models import Ticket, Timer  # noqa: E402
from daemon.tickets.runtime import MailHook, Runtime  # noqa: E402
from daemon.tickets.timers import tick  # noqa: E402
from daemon.workflow.engine import wall_clock  # noqa: E402

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CHUNK = 20_000
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fill(database: Database, tickets: int) -> None:
    """`tickets` open tickets in tier1, each with an expiry timer a week away."""
    far = T0 + timedelta(days=7)
    with database.engine.begin() as conn:
        for start in range(1, tickets + 1, CHUNK):
            ids = range(start, min(start + CHUNK, tickets + 1))
            conn.execute(insert(Ticket), [_ticket_row(i) for i in ids])
            conn.execute(insert(Timer), [{"ticket_id": i, "kind": "expire", "state": "tier1",
                                          "seq": 0, "due_at": far} for i in ids])
    # A store that grew over months has planner statistics (autovacuum); a bulk load has none.
    with database.engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()


def _ticket_row(i: int) -> dict[str, object]:
    return {"id": i, "ref": f"TD-{i}", "state": "tier1", "priority": "P3", "team": "tier1",
            "requester": f"user{i}@example.org", "subject": f"Problem {i}",
            "created_at": T0, "updated_at": T0, "state_entered_at": T0,
            "tiers_visited": ["tier1"], "bounces": 0, "flagged": False,
            "workflow_name": "it-support", "workflow_version": 1}


def add_due(database: Database, tickets: int, due: int, at: datetime) -> None:
    """`due` reminders due at `at`, on tickets spread over the store."""
    step = max(1, tickets // due)
    with database.engine.begin() as conn:
        conn.execute(insert(Timer), [{"ticket_id": 1 + (k * step) % tickets, "kind": "remind",
                                      "state": "tier1", "seq": 1, "due_at": at}
                                     for k in range(due)])


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(database: Database, runtime: Runtime, tickets: int, due: int,
            repeats: int) -> dict[str, float]:
    idle_now = T0 + timedelta(hours=1)
    idle = [timed(lambda: tick(database, runtime, idle_now)) for _ in range(20)]
    busy = []
    for r in range(repeats):
        at = T0 + timedelta(hours=2, minutes=r)
        add_due(database, tickets, due, at)
        started = time.perf_counter()
        fired = tick(database, runtime, at, batch=due).fired
        busy.append(time.perf_counter() - started)
        assert fired == due, f"fired {fired}, expected {due}"
    return {"idle_ms": statistics.median(idle) * 1000, "busy_s": statistics.median(busy)}


@contextmanager
def store(backend: str) -> Iterator[Database]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            database = open_database(f"sqlite:///{folder}/bench.db")
            try:
                migrate(database)
                yield database
            finally:
                database.close()
        return
    admin = open_database(os.environ.get("TIERDESK_TEST_PG_URL", PG_DEFAULT))
    schema = f"bench_clock_{secrets.token_hex(4)}"
    with admin.engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = admin.url.update_query_dict({"options": f"-csearch_path={schema}"})
    database = open_database(url.render_as_string(hide_password=False))
    try:
        migrate(database)
        yield database
    finally:
        database.close()
        with admin.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.close()


def mail_hook(config: Config) -> tuple[MailHook, str]:
    """The real outbound writer, so reminders are rendered and built as in production."""
    return MailWriter.from_config(config), "rendered and built as MIME"



def measure_in_child(url: str, tickets: int, due: int, repeats: int) -> dict[str, float]:
    """Measure in a fresh process, so its RSS is the daemon's, not the filler's."""
    out = subprocess.run(
        [sys.executable, __file__, "--measure", url, "--tickets", str(tickets), "--due",
         str(due), "--repeats", str(repeats)], check=True, capture_output=True, text=True).stdout
    return {k: float(v) for k, v in json.loads(out.splitlines()[-1]).items()}


def child(url: str, tickets: int, due: int, repeats: int) -> None:
    config = load_config(ROOT, {})
    hook, _ = mail_hook(config)
    runtime = Runtime.build(config, add_time=wall_clock, mail_hook=hook)
    database = open_database(url)
    try:
        figures = measure(database, runtime, tickets, due, repeats)
    finally:
        database.close()
    print(json.dumps({**figures, "rss_mb": rss_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--measure", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return child(args.measure, args.tickets, args.due, args.repeats)
    print(f"{args.tickets:,} open tickets, {args.due:,} due reminders per busy tick; mail "
          "rendered and built as MIME; measured in a fresh process")
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    for backend in backends:
        with store(backend) as database:
            started = time.perf_counter()
            fill(database, args.tickets)
            filled = time.perf_counter() - started
            url = database.url.render_as_string(hide_password=False)
            figures = measure_in_child(url, args.tickets, args.due, args.repeats)
            print(f"{backend:>10}: fill {filled:6.1f} s | idle tick {figures['idle_ms']:6.2f} ms"
                  f" (target < 5) | {args.due} due {figures['busy_s']:6.3f} s (target < 1)"
                  f" | daemon RSS {figures['rss_mb']:5.0f} MB")


if __name__ == "__main__":
    main()
