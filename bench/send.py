"""Sending throughput: N outbox rows rendered from the real templates, drained to a local
aiosmtpd sink by the real sender loop, against the same-run ceiling: raw aiosmtplib sends of
the same prebuilt mails over the same number of connections.

    python bench/send.py [N] [--connections 8] [--repeats 5]

The sink runs in its own process (it shares the machine's cores, as a local MTA would). After
a warm-up round, each repeat resets the rows to pending and runs ours and the ceiling back to
back, alternating which goes first, so drift and neighbours' load hit both alike.
Also printed: render + MIME build per mail (no database), with the stdlib EmailMessage build
for comparison, and materialize per mail (with its queries) as the ingest transaction sees it.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import aiosmtplib
from sqlalchemy import delete, select, update

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from daemon.config.settings import SmtpSettings  # noqa: E402
from daemon.mail.mime import Address, Mail, build  # noqa: E402
from daemon.outbound.sender import Sender, SenderSettings  # noqa: E402
from daemon.outbound.smtp import SmtpPool  # noqa: E402
from daemon.outbound.writer import MailWriter, enrich, materialize  # noqa: E402
from daemon.site.config import load_config  # noqa: E402
from daemon.store import repository  # noqa: E402
from daemon.store.database import Database, migrate, open_database  # noqa: E402
from daemon.store.models import Outbox, Ticket  # noqa: E402
from daemon.workflow.facts import MailOrder  # noqa: E402
from daemon.workflow.mails import context  # noqa: E402

# Per ticket: what a ticket's life sends most (three to the requester, two to teams).
MIX = (("acknowledgement", "requester"), ("escalation_handoff", "team"),
       ("status_update", "requester"), ("reminder", "team"), ("resolution_notice", "requester"))
NOW = datetime.now(UTC)
FROM = "support@example.com"


# ------------------------------------------------------------------ the sink

def _sink(port: int, ready: Any, count: Synchronized[int]) -> None:
    import logging

    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with count.get_lock():
                count.value += 1
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port,
                            server_hostname="localhost")
    controller.start()
    ready.set()
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


def start_sink(port: int) -> tuple[multiprocessing.Process, Synchronized[int]]:
    ready = multiprocessing.Event()
    count: Synchronized[int] = multiprocessing.Value("q", 0)
    process = multiprocessing.Process(target=_sink, args=(port, ready, count), daemon=True)
    process.start()
    if not ready.wait(20):
        raise SystemExit("the aiosmtpd sink did not start")
    return process, count


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ rows

def fill(database: Database, writer: MailWriter, n: int, per_call: int) -> float:
    """N rendered rows, materialized `per_call` tickets at a time (1: the Runtime's per-ticket
    hook; more: one call per ingest batch); returns seconds per mail spent in materialize."""
    spent = 0.0
    pending: list[Outbox] = []
    with database.transaction() as session:
        for i in range(0, n, len(MIX)):
            ticket = repository.create_ticket(
                session, requester=f"user{i}@example.org", subject=f"VPN drops, case {i}",
                workflow_name="it-support", workflow_version=1, initial_state="tier1",
                priority="P2", team="tier1", now=NOW)
            pending += [repository.add_mail(session, MailOrder(t, role, _facts(ticket)), NOW,
                                            domain="example.com", ticket=ticket)
                        for t, role in MIX[: n - i]]
            if len(pending) >= per_call * len(MIX) or i + len(MIX) >= n:
                spent += _timed_materialize(session, pending, writer)
                pending = []
    return spent / n


def _timed_materialize(session: Any, rows: list[Outbox], writer: MailWriter) -> float:
    session.flush()  # the INSERTs are the store's cost, not materialize's
    started = time.perf_counter()
    materialize(session, rows, writer, NOW)
    session.flush()  # ...but writing the rendered rows is
    return time.perf_counter() - started


def _facts(ticket: Ticket) -> dict[str, Any]:
    facts = repository.facts(ticket)
    engine = context(facts, facts, event="transition", actor="clock",
                     reason="no response in tier 1 within 4h", trigger="escalate",
                     deadline=NOW + timedelta(hours=4))
    jsonable: dict[str, Any] = repository.jsonable(engine)
    return jsonable


def reset(database: Database, drop: bool = False) -> None:
    with database.transaction() as session:
        if drop:
            session.execute(delete(Outbox))
            return
        session.execute(update(Outbox).values(status="pending", attempts=0, sent_at=None,
                                              next_attempt_at=NOW, last_error=None))


def prebuilt(database: Database) -> list[tuple[str, bytes]]:
    with database.reading() as session:
        return [(r or "", b or b"")
                for r, b in session.execute(select(Outbox.recipients, Outbox.body))]


# ------------------------------------------------------------------ the runs

def ours(database: Database, settings: SmtpSettings, connections: int, n: int) -> float:
    reset(database)

    async def drain() -> int:
        async with SmtpPool(settings, size=connections) as pool:
            sender = Sender(database, pool, FROM, settings=SenderSettings())
            return (await sender.run_once()).sent

    started = time.perf_counter()
    sent = asyncio.run(drain())
    elapsed = time.perf_counter() - started
    assert sent == n, f"sent {sent} of {n}"
    return n / elapsed


def ceiling(mails: list[tuple[str, bytes]], port: int, connections: int) -> float:
    async def raw() -> None:
        queue = iter(mails)

        async def one_connection() -> None:
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False,
                                     local_hostname="localhost")
            await client.connect()
            for rcpt, body in queue:
                await client.sendmail(FROM, [rcpt], body)
            await client.quit()

        await asyncio.gather(*(one_connection() for _ in range(connections)))

    started = time.perf_counter()
    asyncio.run(raw())
    return len(mails) / (time.perf_counter() - started)


# ------------------------------------------------------------------ render + MIME alone

def build_costs(writer: MailWriter, count: int = 2000) -> tuple[float, float, float]:
    """Seconds per mail: render + our MIME; our MIME alone; the stdlib EmailMessage build."""
    facts = {**_sample_facts(), **enrich(_sample_facts(), writer, NOW)}
    rendered = writer.renderer.render("acknowledgement", facts)

    def ours_build() -> bytes:
        return build(Mail(writer.sender, (Address("", "ann@example.org"),), rendered.subject,
                          "<td-1-abc@example.com>", NOW, rendered.text, rendered.html,
                          reply_to=writer.reply_to("TD-1"), in_reply_to="<TD-1.ticket@x>",
                          references=("<TD-1.ticket@x>",), auto_submitted="auto-replied"))

    def full() -> bytes:
        out = writer.renderer.render(MIX[n_full[0] % len(MIX)][0], facts)
        n_full[0] += 1
        return build(Mail(writer.sender, (Address("", "ann@example.org"),), out.subject,
                          "<td-1-abc@example.com>", NOW, out.text, out.html))

    def stdlib() -> bytes:
        message = EmailMessage()
        message["From"], message["To"] = "IT Support <support@example.com>", "ann@example.org"
        message["Subject"], message["Message-ID"] = rendered.subject, "<td-1-abc@example.com>"
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        return message.as_bytes()

    n_full = [0]
    return _per_call(full, count), _per_call(ours_build, count), _per_call(stdlib, count // 4)


def _sample_facts() -> dict[str, Any]:
    from daemon.outbound.render import sample_contexts

    return sample_contexts()[0]


def _per_call(call: Callable[[], bytes], count: int) -> float:
    call()
    started = time.perf_counter()
    for _ in range(count):
        call()
    return (time.perf_counter() - started) / count


# ------------------------------------------------------------------ main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=5000, help="mails (default 5000)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    config = load_config(ROOT, {})
    writer = MailWriter.from_config(config)
    port = free_port()
    sink, received = start_sink(port)
    with tempfile.TemporaryDirectory() as folder:
        database = open_database(f"sqlite:///{folder}/bench.db")
        migrate(database)
        try:
            run(database, writer, port, received, args)
        finally:
            database.close()
            sink.terminate()


def run(database: Database, writer: MailWriter, port: int, received: Synchronized[int],
        args: argparse.Namespace) -> None:
    full, mime_only, stdlib = build_costs(writer)
    print(f"render + MIME build per mail:   {full * 1e6:7.0f} µs  "
          f"(MIME alone {mime_only * 1e6:.0f} µs; stdlib EmailMessage {stdlib * 1e6:.0f} µs, "
          f"{stdlib / mime_only:.0f}x slower)")
    batched = fill(database, writer, args.n, per_call=20)
    reset(database, drop=True)
    per_ticket = fill(database, writer, args.n, per_call=1)
    print(f"materialize per mail (with DB): {per_ticket * 1e6:7.0f} µs called per ticket, "
          f"{batched * 1e6:.0f} µs called per 20 tickets ({args.n} rows, {len(MIX)} templates)")
    settings = SmtpSettings(host="127.0.0.1", port=port, security="none")
    mails = prebuilt(database)
    ours(database, settings, args.connections, args.n)  # warm-up round, not counted
    ceiling(mails, port, args.connections)
    ours_rates, ceiling_rates = [], []
    for repeat in range(args.repeats):
        before = received.value
        # Alternate which goes first, so neither always runs on a warmer (or busier) machine.
        if repeat % 2:
            ceiling_rates.append(ceiling(mails, port, args.connections))
            ours_rates.append(ours(database, settings, args.connections, args.n))
        else:
            ours_rates.append(ours(database, settings, args.connections, args.n))
            ceiling_rates.append(ceiling(mails, port, args.connections))
        assert received.value - before == 2 * args.n, "the sink missed mail"
    report(ours_rates, ceiling_rates, args)


def report(ours_rates: list[float], ceiling_rates: list[float], args: argparse.Namespace) -> None:
    mine, best = statistics.median(ours_rates), statistics.median(ceiling_rates)
    print(f"sender loop:  {mine:7.0f} mails/s  (median of {args.repeats}: "
          f"{', '.join(f'{r:.0f}' for r in ours_rates)})")
    print(f"raw ceiling:  {best:7.0f} mails/s  (median of {args.repeats}: "
          f"{', '.join(f'{r:.0f}' for r in ceiling_rates)})")
    pairs = statistics.median(o / c for o, c in zip(ours_rates, ceiling_rates, strict=True))
    print(f"ratio:        {mine / best:7.0%}  of the medians; {pairs:.0%} median of the "
          f"same-repeat ratios ({args.n} mails, {args.connections} connections)")
    ok = mine >= 1500 and mine / best >= 0.8
    print("targets (>= 1,500 mails/s and >= 80% of the ceiling):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()
