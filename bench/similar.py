"""Similarity search over many resolved tickets, and what the duplicate check costs ingest.

    python bench/similar.py [--tickets 100000] [--queries 400] [--mails 2000] [--repeats 3]
                            [--pg URL | --no-pg] [--seed 1]

- search: --tickets resolved tickets, each with a #resolve summary, are written in bulk to a
  fresh SQLite file and to a throwaway PostgreSQL schema (as tests/databases.py makes them;
  PG at 127.0.0.1:5432 unless --pg says otherwise; the schema is dropped at the end), in two
  corpora:
  - realistic: a vocabulary of VOCABULARY words drawn with a Zipf law (a few words are in
    many reports, most in few), each report one of TOPICS problems (five topic words, so
    each has ~5 past fixes in 100,000) plus Zipf noise words;
  - small vocabulary (worst case): reports from ~70 devices, apps, symptoms and places, so
    nearly every word is in more than 5% of the reports.
  Then --queries new reports are searched as a new ticket's mails search them
  (`find_similar`: its look-alikes of the last 4h, 48 of which exist, and its past fixes):
  p50/p95/p99 of the whole search and of each half.
- ingest: --mails generated mails (bench/mailgen.py, the usual mix) drained in process as
  `drain` does, in batches of 100 through process_batch with the daemon's mail writer,
  over a copy of a store that already holds 20,000 resolved tickets; the clock moves 30 s a
  mail (120 tickets an hour: a 4h window holds ~480). Duplicate check on (the shipped
  settings) and off (duplicates.max and past_fixes 0), alternated --repeats times, median
  rate of each. Indexing a new ticket's report happens in both.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "bench"))

from mailgen import generate  # noqa: E402
from sqlalchemy import text  # noqa: E402

from daemon.config.duplicates import DuplicatesSettings  # noqa: E402
from daemon.inbound.ingest import Inbox, process_batch  # noqa: E402
from daemon.outbound.lookalikes import find_similar  # noqa: E402
from daemon.outbound.writer import MailWriter  # noqa: E402
from daemon.site.config import Config, load_config  # noqa: E402
from daemon.store import search  # noqa: E402
from daemon.store.bulk import insert_rows  # noqa: E402
from daemon.store.database import Database, migrate, open_database  # noqa: E402
from daemon.store.models import Ticket, TicketSearch  # noqa: E402
from daemon.tickets.runtime import Runtime  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test_b"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the bench's own clock, never the real date
BATCH = 100
RECENT = 48  # tickets opened in the last 4h before the queries' "now"

DEVICES = ("printer", "laptop", "monitor", "docking station", "scanner", "phone", "headset",
           "keyboard", "webcam", "projector", "badge reader", "desktop", "tablet", "router")
APPS = ("Outlook", "Teams", "VPN client", "SAP", "Excel", "browser", "Zoom", "OneDrive",
        "SharePoint", "Citrix", "Jira", "payroll app", "CRM", "file share", "Wi-Fi")
SYMPTOMS = ("does not start", "crashes on start", "is very slow", "shows a certificate error",
            "cannot connect", "keeps asking for my password", "freezes after a few minutes",
            "shows error 0x80070005", "prints blank pages", "jams on every page",
            "drops the connection", "will not sync", "says access denied", "has no sound",
            "is offline", "shows a blue screen", "lost all my settings", "will not update")
PLACES = ("on floor 3", "in room 4.12", "in the Berlin office", "at home", "in the lab",
          "in meeting room Aurora", "at reception", "in the warehouse", "since this morning",
          "after the update", "since Monday")
FIXES = ("reinstalled the driver", "imported the intermediate certificate again",
         "cleared the credential cache", "replaced the toner and the fuser",
         "reset the network adapter", "restored the profile from backup",
         "updated the firmware", "re-enrolled the device in Intune", "rebooted the switch port",
         "added the user to the access group", "replaced the power supply",
         "rolled back the last update", "renewed the DHCP lease", "rebuilt the search index")
VOCABULARY = 8000
TOPICS = 20_000
SYLLABLES = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"] + ["ex", "on", "ir", "ul"]


def vocabulary(seed: int) -> list[str]:
    """VOCABULARY made-up words (2-3 syllables), most frequent first, no stop word."""
    rng = random.Random(seed)
    found: dict[str, None] = {}
    while len(found) < VOCABULARY:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3, 3))))
        if word not in search.words(word) or len(word) < 4:
            continue
        found.setdefault(word, None)
    return list(found)


class Realistic:
    """Reports of TOPICS problems in a Zipf-distributed vocabulary (exponent 1.0)."""

    def __init__(self, seed: int) -> None:
        self.words = vocabulary(seed)
        weights = [1 / rank for rank in range(1, len(self.words) + 1)]
        self.cumulative = list(itertools.accumulate(weights))
        rng = random.Random(seed + 7)
        self.topics = [self.draw(rng, 5) for _ in range(TOPICS)]

    def draw(self, rng: random.Random, count: int) -> list[str]:
        return rng.choices(self.words, cum_weights=self.cumulative, k=count)

    def __call__(self, rng: random.Random) -> tuple[str, str]:
        topic = rng.choice(self.topics)
        # Five topic words in ~10: a report of the same problem scores about 0.5.
        subject = " ".join(topic[:3] + self.draw(rng, 1))
        body = (f"Hello, {' '.join(topic[3:] + self.draw(rng, 2))}. "
                f"{' '.join(self.draw(rng, 3))}. Thanks, regards")
        return subject[0].upper() + subject[1:], body


TECHS = ("sam.rivera@example.com", "alex.chen@example.com", "morgan.lee@example.com",
         "robin.okafor@example.com")


def small_report(rng: random.Random) -> tuple[str, str]:
    thing = rng.choice(DEVICES + APPS)
    subject = f"{thing} {rng.choice(SYMPTOMS)}"
    body = (f"Hello, my {thing} {rng.choice(SYMPTOMS)} {rng.choice(PLACES)}. "
            f"I already tried restarting the {rng.choice(DEVICES)}. "
            f"Also the {rng.choice(APPS)} {rng.choice(SYMPTOMS)}. Thanks, regards")
    return subject[0].upper() + subject[1:], body


# ------------------------------------------------------------------ the stores

Report = Callable[[random.Random], tuple[str, str]]


def fill(database: Database, count: int, seed: int, report: Report, *,
         start_id: int = 1) -> None:
    """`count` resolved tickets over the year before T0, plus RECENT open ones just before."""
    rng = random.Random(seed)
    ticket_table, search_table = Ticket.__table__, TicketSearch.__table__
    ticket_columns = [c.key for c in ticket_table.columns]
    with database.engine.begin() as connection:
        for first in range(0, count + RECENT, 5000):
            tickets, rows = [], []
            for n in range(first, min(first + 5000, count + RECENT)):
                ticket_id = start_id + n
                recent = n >= count
                at = (T0 - timedelta(hours=4) + timedelta(minutes=5 * (n - count))) if recent \
                    else T0 - timedelta(days=365) + timedelta(seconds=n * 300)
                subject, body = report(rng)
                facts: dict[str, Any] = {
                    "id": ticket_id, "ref": f"TD-{ticket_id}",
                    "state": "triage" if recent else "closed", "priority": "P3",
                    "team": "helpdesk", "assignee": None, "requester": f"u{n}@example.org",
                    "subject": subject, "created_at": at, "updated_at": at,
                    "state_entered_at": at, "return_state": None, "tiers_visited": [],
                    "bounces": 0, "flagged": False, "vendor": None, "responded_at": None,
                    "workflow_name": "it-support", "workflow_version": 1, "linked_ref": None,
                    "parent_id": None}
                tickets.append({k: facts[k] for k in ticket_columns})
                rows.append({"ticket_id": ticket_id, "opened_at": at,
                             "report": search.report_text(subject, body),
                             "resolution": None if recent else rng.choice(FIXES),
                             "resolved_at": None if recent else at + timedelta(hours=3),
                             "resolved_by": None if recent else rng.choice(TECHS)})
            insert_rows(connection, ticket_table, tickets)
            insert_rows(connection, search_table, rows)
        if database.is_postgres:
            connection.execute(text("ANALYZE tickets"))
            connection.execute(text("ANALYZE ticket_search"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure_search(database: Database, queries: int, seed: int, next_id: int,
                   report: Report) -> dict[str, list[float]]:
    """find_similar for `queries` new tickets (each opened at T0, searched, rolled back)."""
    rng = random.Random(seed + 1000)
    settings = DuplicatesSettings()
    times: dict[str, list[float]] = {"find_similar": [], "lookalikes": [], "past_fixes": []}
    hits = 0
    for n in range(queries + 20):  # 20 warm-up queries
        subject, body = report(rng)
        with database.sessions() as session, session.begin():
            ticket = Ticket(id=next_id + n, ref=f"TD-{next_id + n}", state="triage",
                            priority="P3", team="helpdesk", requester="q@example.org",
                            subject=subject, created_at=T0, updated_at=T0,
                            state_entered_at=T0, tiers_visited=[], bounces=0, flagged=False,
                            workflow_name="it-support", workflow_version=1)
            session.add(ticket)
            search.index_ticket(session, ticket, subject, body)
            session.flush()
            doc = search.report_text(subject, body)
            started = time.perf_counter()
            found = find_similar(session, ticket, settings)
            total = time.perf_counter() - started
            started = time.perf_counter()
            search.lookalikes(session, ticket.id, doc, since=T0 - settings.window,
                              limit=settings.max, threshold=settings.similarity)
            alike = time.perf_counter() - started
            started = time.perf_counter()
            search.past_fixes(session, doc, limit=settings.past_fixes,
                              threshold=settings.similarity, ticket_id=ticket.id)
            fixes = time.perf_counter() - started
            session.rollback()
        if n >= 20:
            times["find_similar"].append(total)
            times["lookalikes"].append(alike)
            times["past_fixes"].append(fixes)
            hits += bool(found.past_fixes)
    print(f"  {hits / queries:.0%} of the queries found a past fix")
    return times


def print_search(name: str, times: dict[str, list[float]], build_s: float) -> None:
    print(f"  {name}: store filled in {build_s:.1f}s")
    for key, values in times.items():
        print(f"    {key:<13} p50 {percentile(values, .5) * 1e3:6.2f} ms   "
              f"p95 {percentile(values, .95) * 1e3:6.2f} ms   "
              f"p99 {percentile(values, .99) * 1e3:6.2f} ms")


@contextmanager
def pg_schema(url: str) -> Iterator[str]:
    admin = open_database(url)
    name = f"td_bench_{secrets.token_hex(6)}"
    try:
        with admin.engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{name}"'))
        yield admin.url.update_query_dict({"options": f"-csearch_path={name}"}) \
            .render_as_string(hide_password=False)
    finally:
        with admin.engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.close()


def search_bench(url: str, label: str, args: argparse.Namespace, report: Report) -> None:
    database = open_database(url)
    try:
        migrate(database)
        started = time.perf_counter()
        fill(database, args.tickets, args.seed, report)
        build = time.perf_counter() - started
        times = measure_search(database, args.queries, args.seed, args.tickets + RECENT + 1,
                               report)
        print_search(label, times, build)
    finally:
        database.close()


# ------------------------------------------------------------------ ingest

def inbox_for(config: Config, on: bool, past_fixes: bool = True) -> Inbox:
    duplicates = config.settings.duplicates
    if not on:
        duplicates = duplicates.model_copy(update={"max": 0, "past_fixes": 0})
    elif not past_fixes:  # the duplicate check alone (point 2), without knowledge (point 3)
        duplicates = duplicates.model_copy(update={"past_fixes": 0})
    settings = config.settings.model_copy(update={"duplicates": duplicates})
    config = replace(config, settings=settings)
    return Inbox.build(Runtime.build(config, mail_hook=MailWriter.from_config(config)))


def drain_once(base: Path, folder: Path, inbox: Inbox, mails: list[bytes]) -> float:
    """Mails per second through process_batch over a copy of the base store."""
    path = folder / "run.db"
    shutil.copyfile(base, path)
    database = open_database(f"sqlite:///{path}")
    try:
        started = time.perf_counter()
        for first in range(0, len(mails), BATCH):
            now = T0 + timedelta(seconds=30 * first)
            chunk = list(enumerate(mails[first:first + BATCH], start=first + 1))
            with database.transaction() as session:
                process_batch(session, chunk, inbox, now, folder="INBOX")
        return len(mails) / (time.perf_counter() - started)
    finally:
        database.close()
        path.unlink()


def ingest_bench(args: argparse.Namespace, folder: Path) -> None:
    config = load_config(ROOT, {"TIERDESK_SITE_DOMAIN": "example.com"})
    base = folder / "base.db"
    database = open_database(f"sqlite:///{base}")
    try:
        migrate(database)
        fill(database, 20_000, args.seed, Realistic(args.seed))
    finally:
        database.close()
    mails = [m.raw for m in generate(args.mails, seed=args.seed, support=config.settings.mail
                                     .address)]
    inboxes = {"on": inbox_for(config, True), "off": inbox_for(config, False),
               "look-alikes only": inbox_for(config, True, past_fixes=False)}
    rates: dict[str, list[float]] = {key: [] for key in inboxes}
    drain_once(base, folder, inboxes["off"], mails[:200])  # warm-up: imports, caches
    order = list(inboxes)
    for repeat in range(args.repeats):
        for key in (order if repeat % 2 == 0 else order[::-1]):
            rates[key].append(drain_once(base, folder, inboxes[key], mails))
    on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
    alike = statistics.median(rates["look-alikes only"])
    print(f"  {args.mails} mails, batches of {BATCH}, store with 20,000 resolved tickets "
          "(realistic corpus), "
          f"median of {args.repeats}")
    for key, rate in (("off", off), ("on", on), ("look-alikes only", alike)):
        runs = ", ".join(f"{r:.0f}" for r in rates[key])
        print(f"    duplicate check {key + ':':<17} {rate:7.0f} mails/s   (runs: {runs})")
    for label, rate in (("look-alikes and past fixes", on), ("look-alikes only", alike)):
        cost = (off - rate) / off
        print(f"    cost, {label}: {cost:+.1%} of the rate (budget 10%): "
              f"{'ok' if cost <= 0.10 else 'OVER BUDGET'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=100_000,
                        help="resolved tickets to search (default: %(default)s)")
    parser.add_argument("--queries", type=int, default=400,
                        help="searches timed per backend (default: %(default)s)")
    parser.add_argument("--mails", type=int, default=2000,
                        help="mails drained per ingest run (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="ingest runs per side, alternated (default: %(default)s)")
    parser.add_argument("--pg", default=os.environ.get("TIERDESK_TEST_PG_URL", PG_URL),
                        metavar="URL", help="PostgreSQL for the search bench "
                                            "(default: TIERDESK_TEST_PG_URL or %(default)s)")
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--seed", type=int, default=1, help="same seed, same data")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="td-bench-similar-") as tmp:
        folder = Path(tmp)
        print(f"similarity search over {args.tickets:,} resolved tickets, "
              f"{args.queries} queries (find_similar: look-alikes of the last 4h + past fixes)")
        corpora: dict[str, Report] = {"realistic": Realistic(args.seed),
                                      "small vocabulary (worst case)": small_report}
        for corpus, report in corpora.items():
            print(f"corpus: {corpus}")
            path = folder / "search.db"
            search_bench(f"sqlite:///{path}", "SQLite FTS5", args, report)
            path.unlink(missing_ok=True)
            if not args.no_pg:
                with pg_schema(args.pg) as url:
                    search_bench(url, "PostgreSQL tsvector", args, report)
        print("ingest with the duplicate check on vs off (in process, SQLite)")
        ingest_bench(args, folder)


if __name__ == "__main__":
    main()
