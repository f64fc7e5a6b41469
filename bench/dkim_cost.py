"""What our own DKIM check costs (issue 16), and that mail without commands pays nothing.

    python bench/dkim_cost.py [N] [--ingest 1000] [--repeats 3]

1. verification: N command mails from a directory member, each DKIM-signed (1024-bit RSA, as
   the tests sign) by the From domain, checked by `DkimVerifier.check` with a warm cache
   (the key fetched once from a DNS stub on 127.0.0.1, tests/inbound/commands/dns_stub.py): median
   and 90th percentile ms/mail, and the first (cold) check: loading the public suffix list
   (~35 ms, once per process) and a DNS round trip on loopback;
2. in ingest: the same mails fed one by one through `process_mail` on SQLite as commands
   on one ticket, once to plain support@ (our DKIM check proves them) and once to the
   member's signed address (no DKIM): the difference is what DKIM adds to a command mail;
3. mail without commands: --ingest mails of bench/mailgen.py's mix (requesters, replies,
   auto-replies, bounces) through `process_batch` in batches of 100 on a fresh SQLite file,
   with auth.dkim on and off, alternated --repeats times: mails/s, and the DNS queries asked
   (must be 0).
Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# This file's name would shadow dkimpy's package (a script's folder comes first on the path):
# load the real one before bench/ goes back on the path for mailgen.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(ROOT))
import dkim  # noqa: E402, F401, I001

sys.path.insert(1, str(BENCH))
from mailgen import generate  # noqa: E402

from daemon.inbound.ingest import Inbox, process_batch, process_mail  # noqa: E402
from daemon.site.config import Config, load_config  # noqa: E402
from daemon.store.database import Database, migrate, open_database  # noqa: E402
from tests.inbound.commands.desk import MORGAN, SECRET, T0, build_inbox, open_in, signed, tech  # noqa: E402
from tests.inbound.commands.dkim_mail import dkim_sign, key_name, key_record  # noqa: E402
from tests.inbound.commands.dns_stub import StubDns  # noqa: E402


def site(dns: StubDns, verify: bool = True) -> Config:
    return load_config(ROOT, {"TIERDESK_AUTH_SECRET": SECRET,
                              "TIERDESK_AUTH_TRUSTED_AUTHSERV_IDS": "",
                              "TIERDESK_AUTH_DNS_SERVERS": dns.address,
                              "TIERDESK_AUTH_DKIM": "true" if verify else "false"})


def command_mails(n: int, to: str | None = None) -> list[bytes]:
    extra = {"to": to} if to else {}
    return [dkim_sign(tech(MORGAN, f"#status\nchecked again ({i})", auth=None, **extra),
                      "example.com") for i in range(n)]


def ms(seconds: Sequence[float]) -> str:
    cut = sorted(seconds)
    p90 = cut[int(len(cut) * 0.9)]
    return f"median {statistics.median(cut) * 1e3:.3f} ms, p90 {p90 * 1e3:.3f} ms"


def verification(dns: StubDns, n: int) -> None:
    inbox = build_inbox(site(dns))
    verifier = inbox.runtime.dkim
    assert verifier is not None
    mails = command_mails(n)
    started = time.perf_counter()
    assert verifier.check(mails[0], "example.com", T0).ok
    cold = time.perf_counter() - started
    times = []
    for raw in mails:
        started = time.perf_counter()
        assert verifier.check(raw, "example.com", T0).ok
        times.append(time.perf_counter() - started)
    print(f"1. DkimVerifier.check, warm cache, {n} mails of {len(mails[0])} bytes: {ms(times)}"
          f"; cold first {cold * 1e3:.2f} ms; DNS queries {verifier.dns.queries}")


def fresh(folder: Path, name: str) -> Database:
    database = open_database(f"sqlite:///{folder / name}.db")
    migrate(database)
    return database


def timed_feed(database: Database, inbox: Inbox, mails: list[bytes]) -> list[float]:
    times = []
    for i, raw in enumerate(mails):
        with database.transaction() as session:
            started = time.perf_counter()
            outcome = process_mail(session, raw, inbox, T0 + timedelta(minutes=i + 1))
            times.append(time.perf_counter() - started)
        assert "1 done" in outcome.detail, outcome.detail
    return times


def in_ingest(dns: StubDns, n: int, folder: Path) -> None:
    inbox = build_inbox(site(dns))
    by_dkim, by_token = command_mails(n), command_mails(n, to=signed(MORGAN))
    figures = {}
    for label, mails in (("DKIM", by_dkim), ("signed address", by_token)):
        database = fresh(folder, label.replace(" ", "_"))
        open_in(database, inbox, "tier2")
        figures[label] = timed_feed(database, inbox, mails)
        database.close()
    dkim_ms = statistics.median(figures["DKIM"]) * 1e3
    token_ms = statistics.median(figures["signed address"]) * 1e3
    print(f"2. process_mail of a command mail on SQLite: proven by DKIM {ms(figures['DKIM'])}; "
          f"by signed address {ms(figures['signed address'])}; DKIM adds "
          f"{dkim_ms - token_ms:.3f} ms/mail")


def ingest_rate(dns: StubDns, n: int, repeats: int, folder: Path) -> None:
    mails = [m.raw for m in generate(n, seed=1)]
    inboxes: dict[str, Inbox] = {"dkim on": build_inbox(site(dns, True)),
                                 "dkim off": build_inbox(site(dns, False))}
    rates: dict[str, list[float]] = {label: [] for label in inboxes}
    asked = dns.queries.total()
    for round_ in range(repeats):
        for label, inbox in inboxes.items():
            database = fresh(folder, f"mix_{label.replace(' ', '_')}_{round_}")
            rates[label].append(n / _batches(database, inbox, mails))
            database.close()
    queries = dns.queries.total() - asked
    shown = "; ".join(f"{label} median {statistics.median(r):,.0f} mails/s "
                      f"(runs {', '.join(f'{x:,.0f}' for x in r)})" for label, r in rates.items())
    print(f"3. {n} mails without commands (bench/mailgen.py mix), process_batch of 100 on SQLite: "
          f"{shown}; DNS queries {queries}")


def _batches(database: Database, inbox: Inbox, mails: list[bytes]) -> float:
    started = time.perf_counter()
    for at in range(0, len(mails), 100):
        batch = [(uid, raw) for uid, raw in enumerate(mails[at:at + 100], at + 1)]
        with database.transaction() as session:
            process_batch(session, batch, inbox, T0 + timedelta(seconds=at), folder="INBOX")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=200)
    parser.add_argument("--ingest", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    dns = StubDns().start()
    dns.publish(key_name("example.com"), key_record(), ttl=3600)
    steps: list[Callable[[], None]] = [
        lambda: verification(dns, args.n),
        lambda: in_ingest(dns, args.n, folder),
        lambda: ingest_rate(dns, args.ingest, args.repeats, folder),
    ]
    try:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            for step in steps:
                step()
    finally:
        dns.stop()


if __name__ == "__main__":
    main()
