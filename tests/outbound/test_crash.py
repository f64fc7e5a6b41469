"""A sender killed after the SMTP server accepted a mail but before it recorded that: the mail
is sent again by the next pass on this machine (its claimer is gone; elsewhere, once the
claim's lease runs out), at most once more, with the same Message-ID."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.outbound.sender import SenderSettings
from daemon.outbound.smtp import SmtpPool
from daemon.outbound.writer import MailWriter
from daemon.store.database import Database
from tests.outbound.helpers import (
    Clock,
    header_id,
    new_ticket,
    queue,
    rows,
    sender,
    smtp_settings,
)
from tests.outbound.smtp_server import SmtpServer
from tests.processes import pythonpath

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)
SCRIPT = Path(__file__).with_name("crash_sender.py")
ROOT = Path(__file__).resolve().parents[2]


def kill_after_acceptance(url: str, port: int) -> None:
    env = {**os.environ, "PYTHONPATH": pythonpath(ROOT)}
    with subprocess.Popen([sys.executable, str(SCRIPT), url, str(port)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        try:
            assert child.stdout is not None
            line = child.stdout.readline()  # "accepted": the server has the mail
            assert line.strip() == b"accepted", child.stderr.read() if child.stderr else line
        finally:
            child.kill()
            child.communicate(timeout=10)


def test_crash_between_send_and_mark_gives_at_most_one_duplicate(
        database: Database, writer: MailWriter, smtp_server: SmtpServer) -> None:
    now = datetime.now(UTC)
    with database.transaction() as session:
        queue(session, new_ticket(session, now), "reminder", "team", now, writer)
    kill_after_acceptance(database.url.render_as_string(hide_password=False), smtp_server.port)

    [first] = smtp_server.wait_for(1)
    [row] = rows(database)
    assert row.status == "sending"  # taken, sent, never recorded
    clock = Clock(datetime.now(UTC))

    async def resume() -> None:
        async with SmtpPool(smtp_settings(smtp_server), size=1) as pool:
            run = sender(database, pool, clock)
            assert (await run.run_once()).sent == 1  # within the lease: its process is gone
            assert (await run.run_once()).handled == 0
            clock.advance(SenderSettings().lease)
            assert (await run.run_once()).handled == 0  # sent and recorded: never again

    asyncio.run(resume())
    received = smtp_server.wait_for(2)
    assert len(received) == 2
    assert received[0].message_id == received[1].message_id == header_id(row.message_id)
    assert received[0].data == received[1].data  # byte-identical: recognisable as a resend
    assert rows(database)[0].status == "sent"
