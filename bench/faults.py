"""Fault injection at full size (issue 15, point 5) and "several daemons share the work"
(point 6). The harness is tests/acceptance/faults.py, shared with tests/acceptance/test_faults.py.

    python bench/faults.py [--mails 2000] [--kills K] [--seed 1] [--store sqlite|postgresql]
                           [--smtp-outage 30] [--early-share 0.2] [--timer-kills 1]
    python bench/faults.py --share [--mails 2000] [--repeats 3] [--seed 1]

First the timer phase: a daemon whose clock stands three working days back opens
--early-share of the reports and stops, so their timers are due as the burst starts and fire
while it is ingested and sent; --timer-kills of the kills are placed on the timers fired.
Faults: SQLite, one `run.py run` SIGKILLed K times (default 5) at seeded points of the work,
restarted each time. PostgreSQL (a private cluster, initdb/pg_ctl on a free port, removed at
the end): two daemons on one mailbox and one database, one of them SIGKILLed K times (default
3), then `pg_ctl restart`, the SMTP server away --smtp-outage seconds, Dovecot restarted.
Without --store both run, one after the other. Printed per store: appended / stored / owed /
delivered / duplicates (and kills), then every assertion of the issue that does not hold.

--share: ingest rate on PostgreSQL of one daemon against two on the same mailbox and database,
alternated (1, 2, 1, 2, ...) --repeats times in the same run, each on a fresh cluster and
mailbox with the same burst (mailgen's mix), in the mailbox before the daemons start (timed
from the first start-up line to the last mail stored), or with --arriving appended by
MULTIAPPEND while they idle (then the APPEND rate caps one daemon's figure); medians, ratio,
and whether anything was doubled or missing (a mail stored twice, a ticket's acknowledgement
twice, a Message-ID twice at the SMTP server, more or fewer tickets than new reports).

Exit status 1 if an assertion does not hold (the figures are printed first).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # measure this checkout; the harness lives in tests/

from tests.acceptance.faults import Figures, RateRun, Scenario, ingest_rate, run  # noqa: E402


def faults(args: argparse.Namespace) -> int:
    stores = [args.store] if args.store else ["sqlite", "postgresql"]
    results: list[Figures] = []
    for store in stores:
        if store == "sqlite":
            scenario = Scenario("sqlite", args.mails, kills=_kills(args, 5), seed=args.seed,
                                settle_s=args.settle, early_share=args.early_share,
                                timer_kills=args.timer_kills)
        else:
            scenario = Scenario("postgresql", args.mails, kills=_kills(args, 3), seed=args.seed,
                                daemons=2, db_restart=True, smtp_outage_s=args.smtp_outage,
                                dovecot_restart=True, settle_s=args.settle,
                                early_share=args.early_share, timer_kills=args.timer_kills)
        results.append(run(scenario))
        print(results[-1].detail(), flush=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n=== faults, {args.mails:,} mails, seed {args.seed}, {os.cpu_count()} cores,"
          f" load average {load} ===")
    for figures in results:
        print(figures.line())
    failed = 0
    for figures in results:
        for failure in figures.failures():
            failed += 1
            print(f"  FAIL {figures.store}: {failure}")
    return 1 if failed else 0


def _kills(args: argparse.Namespace, default: int) -> int:
    return default if args.kills is None else args.kills


def share(args: argparse.Namespace) -> int:
    runs: dict[int, list[RateRun]] = {1: [], 2: []}
    for _ in range(args.repeats):
        for daemons in (1, 2):
            runs[daemons].append(ingest_rate(daemons, args.mails, args.seed,
                                             arriving=args.arriving))
    one = statistics.median(r.rate for r in runs[1])
    two = statistics.median(r.rate for r in runs[2])
    drained = {n: statistics.median(r.mails / r.drained_s for r in rs) for n, rs in runs.items()}
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n=== sharing the work: {args.mails:,} mails on PostgreSQL, median of"
          f" {args.repeats}, {os.cpu_count()} cores, load average {load} ===")
    for n in (1, 2):
        rates = ", ".join(f"{r.rate:,.0f}" for r in runs[n])
        median = statistics.median(r.rate for r in runs[n])
        cpu = statistics.median(1000 * r.daemon_cpu_s / r.mails for r in runs[n])
        busy = statistics.median(r.machine_busy for r in runs[n])
        print(f"{n} daemon{'s' if n > 1 else ' '}: ingest {median:,.0f}"
              f" mails/s (runs: {rates}); ingest + outbox drained {drained[n]:,.0f} mails/s;"
              f" daemons' CPU {cpu:.2f} ms a mail, cores busy {busy:.0%} while ingesting")
    print(f"ratio two / one: ingest {two / one:.2f}, with the outbox drained"
          f" {drained[2] / drained[1]:.2f}")
    doubled = [r for rs in runs.values() for r in rs
               if not r.stored_once or r.duplicates or r.acks_doubled
               or r.tickets != r.expected_tickets]
    print("nothing doubled" if not doubled else f"DOUBLED OR MISSING in {len(doubled)} runs:"
          f" {doubled}")
    return 1 if doubled else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--kills", type=int, help="SIGKILLs (default 5 SQLite, 3 PostgreSQL)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store", choices=["sqlite", "postgresql"], help="default: both")
    parser.add_argument("--smtp-outage", type=float, default=30.0, help="seconds")
    parser.add_argument("--settle", type=float, default=600.0,
                        help="seconds to wait after the last fault for the run to settle")
    parser.add_argument("--early-share", type=float, default=0.2,
                        help="the timer phase: this share of --mails are new reports opened"
                        " first by a daemon whose clock stands 3 working days back (0: none)")
    parser.add_argument("--timer-kills", type=int, default=1,
                        help="of the kills, placed on the timers fired (the clock catching up)")
    parser.add_argument("--share", action="store_true", help="point 6: one vs two daemons")
    parser.add_argument("--repeats", type=int, default=3, help="--share: runs of each")
    parser.add_argument("--arriving", action="store_true",
                        help="--share: the burst arrives while the daemons idle (default: in"
                        " the mailbox before they start)")
    args = parser.parse_args()
    sys.exit(share(args) if args.share else faults(args))


if __name__ == "__main__":
    main()
