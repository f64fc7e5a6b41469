"""The sender loop against a real aiosmtpd server and a real SQLite store: delivery, retries,
parking, outages, TLS, reused connections, the daemon loop."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon.outbound.sender import PassReport, Sender
from daemon.outbound.smtp import SmtpPool
from daemon.outbound.writer import MailWriter
from daemon.site.config import Config
from daemon.store.database import Database
from tests.outbound.helpers import (
    ENVELOPE_FROM,
    Clock,
    all_defects,
    events,
    header_id,
    new_ticket,
    queue,
    rows,
    sender,
    smtp_settings,
)
from tests.outbound.smtp_server import SmtpServer, tls_contexts
from tests.outbound.test_outbox import TEMPLATE_ROLES

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


def fill(database: Database, writer: MailWriter, now: datetime, count: int = 1,
         template: str = "reminder", role: str = "team") -> None:
    with database.transaction() as session:
        ticket = new_ticket(session, now, vendor="vpnco", assignee="morgan.lee@example.com")
        for _ in range(count):
            queue(session, ticket, template, role, now, writer)


def drain(database: Database, server: SmtpServer, clock: Clock, *, size: int = 2,
          tls: ssl.SSLContext | None = None, smtp: dict[str, Any] | None = None,
          **settings: Any) -> PassReport:
    """One `--once` pass with a fresh pool, closed afterwards."""
    async def once() -> PassReport:
        async with SmtpPool(smtp_settings(server, **(smtp or {})), size=size,
                            tls_context=tls) as pool:
            return await sender(database, pool, clock, **settings).run_once()
    return asyncio.run(once())


@pytest.fixture
def clock(now: datetime) -> Clock:
    return Clock(now)


@pytest.fixture
def warnings_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, logger="tierdesk.sender")
    yield caplog


def sender_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "tierdesk.sender"]


# ------------------------------------------------------------------ delivery

def test_every_template_is_delivered_as_built(database: Database, writer: MailWriter,
                                              smtp_server: SmtpServer, clock: Clock) -> None:
    with database.transaction() as session:
        ticket = new_ticket(session, clock.now, vendor="vpnco", assignee="morgan.lee@example.com")
        for template, role in TEMPLATE_ROLES:
            queue(session, ticket, template, role, clock.now, writer)
    report = drain(database, smtp_server, clock)
    assert (report.sent, report.handled) == (len(TEMPLATE_ROLES), len(TEMPLATE_ROLES))
    received = {r.message_id: r for r in smtp_server.wait_for(len(TEMPLATE_ROLES))}
    for row in rows(database):
        assert row.status == "sent" and row.sent_at == clock.now and row.attempts == 1
        got = received[header_id(row.message_id)]
        assert got.mail_from == ENVELOPE_FROM and got.rcpt_tos == (row.recipients,)
        assert got.data.replace(b"\r\n", b"\n") == (row.body or b"").replace(b"\r\n", b"\n")
        assert all_defects(got.message) == []


def test_pooled_connections_are_reused(database: Database, writer: MailWriter,
                                       smtp_server: SmtpServer, clock: Clock) -> None:
    fill(database, writer, clock.now, count=12)
    before = smtp_server.greetings
    assert drain(database, smtp_server, clock, size=1).sent == 12
    assert smtp_server.greetings - before == 1


def test_a_pass_reconnects_when_the_server_dropped_an_idle_connection(
        database: Database, writer: MailWriter, smtp_server: SmtpServer, clock: Clock) -> None:
    async def two_passes() -> tuple[PassReport, PassReport]:
        async with SmtpPool(smtp_settings(smtp_server), size=1) as pool:
            run = sender(database, pool, clock)
            first = await run.run_once()
            smtp_server.stop()
            smtp_server.start()
            fill(database, writer, clock.now, count=2)
            return first, await run.run_once()

    fill(database, writer, clock.now, count=2)
    first, second = asyncio.run(two_passes())
    assert (first.sent, second.sent, second.retried) == (2, 2, 0)
    assert len(smtp_server.wait_for(4)) == 4


# ------------------------------------------------------------------ retries and parking

def test_4xx_is_retried_after_a_backoff_then_sent(database: Database, writer: MailWriter,
                                                  smtp_server: SmtpServer, clock: Clock) -> None:
    fill(database, writer, clock.now)
    smtp_server.fail_next(1, 451, "4.7.1 Greylisted, try again")
    assert drain(database, smtp_server, clock).retried == 1
    [row] = rows(database)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at == clock.now + timedelta(minutes=1)  # rng() = 1.0: a full step
    assert "451 4.7.1 Greylisted" in (row.last_error or "")
    started = time.monotonic()
    assert drain(database, smtp_server, clock).handled == 0  # not due: --once does not wait
    assert time.monotonic() - started < 2
    clock.advance(timedelta(minutes=1))
    assert drain(database, smtp_server, clock).sent == 1
    [row] = rows(database)
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(smtp_server.received) == 1


def test_5xx_parks_the_mail_with_the_reason(database: Database, writer: MailWriter,
                                            smtp_server: SmtpServer, clock: Clock) -> None:
    fill(database, writer, clock.now)
    smtp_server.fail_next(1, 550, "5.1.1 No such mailbox")
    assert drain(database, smtp_server, clock).parked == 1
    [row] = rows(database)
    assert row.status == "parked" and row.last_error == "refused: 550 5.1.1 No such mailbox"
    [event] = events(database, "mail_parked")
    assert event.reason == row.last_error and event.data["message_id"] == row.message_id
    clock.advance(timedelta(days=1))
    assert drain(database, smtp_server, clock).handled == 0
    assert smtp_server.received == []


def test_repeated_4xx_parks_after_max_attempts(database: Database, writer: MailWriter,
                                               smtp_server: SmtpServer, clock: Clock) -> None:
    fill(database, writer, clock.now)
    smtp_server.fail_next(10, 452, "4.2.2 Mailbox full")
    for _ in range(3):
        drain(database, smtp_server, clock, max_attempts=3)
        clock.advance(timedelta(hours=1))
    [row] = rows(database)
    assert row.status == "parked" and row.attempts == 3
    assert row.last_error == "gave up after 3 attempts: 452 4.2.2 Mailbox full"


# ------------------------------------------------------------------ the server away

def test_server_down_then_back_loses_nothing(database: Database, writer: MailWriter,
                                             smtp_server: SmtpServer, clock: Clock,
                                             warnings_log: pytest.LogCaptureFixture) -> None:
    fill(database, writer, clock.now, count=5)
    smtp_server.stop()
    report = drain(database, smtp_server, clock)
    assert report.sent == 0 and report.retried + report.released == 5 and report.outage
    assert all(r.status == "pending" and r.next_attempt_at > clock.now for r in rows(database))
    [line] = sender_lines(warnings_log)
    assert line.levelno == logging.WARNING and line.exc_info is None
    message = line.getMessage()
    assert "cannot use SMTP server 127.0.0.1" in message and "5 mail(s) stay queued" in message
    assert "\n" not in message
    smtp_server.start()
    clock.advance(timedelta(hours=2))
    assert drain(database, smtp_server, clock).sent == 5
    received = smtp_server.wait_for(5)
    assert sorted(r.message_id for r in received) == sorted(
        header_id(r.message_id) for r in rows(database))
    assert all(r.status == "sent" for r in rows(database))


def test_connection_trouble_never_parks(database: Database, writer: MailWriter,
                                        smtp_server: SmtpServer, clock: Clock) -> None:
    fill(database, writer, clock.now)
    smtp_server.stop()
    for _ in range(12):
        drain(database, smtp_server, clock, max_attempts=3)
        clock.advance(timedelta(hours=2))
    [row] = rows(database)
    assert row.status == "pending" and row.attempts == 12


# ------------------------------------------------------------------ TLS and login

def test_implicit_tls(database: Database, writer: MailWriter, clock: Clock,
                      tmp_path: Path) -> None:
    tls = tls_contexts(tmp_path)
    fill(database, writer, clock.now)
    with SmtpServer(ssl_context=tls.server) as server:
        report = drain(database, server, clock, tls=tls.client, smtp={"security": "tls"})
        assert report.sent == 1 and len(server.wait_for(1)) == 1


def test_starttls_with_login(database: Database, writer: MailWriter, clock: Clock,
                             tmp_path: Path) -> None:
    tls = tls_contexts(tmp_path)
    fill(database, writer, clock.now)
    login = {"security": "starttls", "username": "tierdesk", "password": "s3cret"}
    with SmtpServer(starttls_context=tls.server, credentials=("tierdesk", "s3cret")) as server:
        assert drain(database, server, clock, tls=tls.client, smtp=login).sent == 1
        assert len(server.wait_for(1)) == 1


def test_a_server_without_starttls_is_an_error_not_a_downgrade(
        database: Database, writer: MailWriter, smtp_server: SmtpServer, clock: Clock,
        warnings_log: pytest.LogCaptureFixture) -> None:
    fill(database, writer, clock.now)
    report = drain(database, smtp_server, clock, smtp={"security": "starttls"})
    assert report.sent == 0 and report.outage is not None and "STARTTLS" in report.outage
    assert smtp_server.received == [] and rows(database)[0].status == "pending"
    assert len(sender_lines(warnings_log)) == 1


def test_a_wrong_password_keeps_the_mail_queued(
        database: Database, writer: MailWriter, clock: Clock, tmp_path: Path,
        warnings_log: pytest.LogCaptureFixture) -> None:
    tls = tls_contexts(tmp_path)
    fill(database, writer, clock.now)
    login = {"security": "starttls", "username": "tierdesk", "password": "wrong"}
    with SmtpServer(starttls_context=tls.server, credentials=("tierdesk", "s3cret")) as server:
        report = drain(database, server, clock, tls=tls.client, smtp=login)
        assert report.sent == 0 and server.received == []
    assert rows(database)[0].status == "pending"
    [line] = sender_lines(warnings_log)
    assert "535" in line.getMessage()


# ------------------------------------------------------------------ the daemon loop

def test_run_sends_what_arrives_after_a_wake_and_stops(
        database: Database, writer: MailWriter, smtp_server: SmtpServer, clock: Clock) -> None:
    async def daemon() -> None:
        stop = asyncio.Event()
        async with SmtpPool(smtp_settings(smtp_server), size=2) as pool:
            loop = sender(database, pool, clock, idle_poll=timedelta(seconds=30))
            task = asyncio.create_task(loop.run(stop))
            await asyncio.sleep(0.2)
            await asyncio.to_thread(fill, database, writer, clock.now, 3)
            loop.wake()
            await asyncio.to_thread(smtp_server.wait_for, 3, 10.0)
            stop.set()
            await asyncio.wait_for(task, 5)

    asyncio.run(daemon())
    assert len(smtp_server.received) == 3
    assert all(r.status == "sent" for r in rows(database))


def test_from_config_uses_the_configured_server_and_address(
        database: Database, smtp_server: SmtpServer, clock: Clock, config: Config,
        writer: MailWriter) -> None:
    smtp = smtp_settings(smtp_server)
    settings = config.settings.model_copy(update={"smtp": smtp})
    configured = replace(config, settings=settings)
    fill(database, writer, clock.now)

    async def once() -> PassReport:
        run = Sender.from_config(configured, database, connections=1, clock=clock)
        try:
            return await run.run_once()
        finally:
            await run.close()

    assert asyncio.run(once()).sent == 1
    [got] = smtp_server.wait_for(1)
    assert got.mail_from == "support@example.com"
