"""Stopping `run.py run` in the middle of work, and reloading its configuration."""

from __future__ import annotations

import asyncio
import re
import signal
from collections import Counter

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from daemon.cli.main import main
from tests.inbound.imap.servers import client
from tests.inbound.ingest.mails import mail
from tests.outbound.smtp_server import RecordingHandler
from tests.service.conftest import Site

MAILS = 300


class SlowHandler(RecordingHandler):
    """Takes 20 ms a mail, so sending is surely in progress when the signal comes."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(0.02)
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.parametrize("imap_server", ["dovecot"], indirect=True)
def test_sigterm_in_the_middle_loses_nothing_and_doubles_nothing(
        site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    site.smtp.stop()
    site.smtp.handler = SlowHandler()
    site.smtp.start()
    with client(site.imap, site.account) as imap:
        for n in range(MAILS):
            imap.append("INBOX", mail(subject=f"Problem {n}", sender=f"user{n}@example.org",
                                      message_id=f"<problem-{n}@example.org>"))
    daemon = site.start()
    daemon.wait_for(lambda m: m.startswith("sent <"), timeout=30)
    assert daemon.stop() == 0
    daemon.no_traceback()
    statuses = Counter(row.status for row in site.outbox())
    assert "sending" not in statuses  # untried claims went back to the queue
    assert statuses["pending"] > 0, statuses  # the stop came in the middle of sending
    assert main(["run", "--once", "--config", str(site.root)]) == 0  # the rest
    capsys.readouterr()
    tickets = site.tickets()
    assert sorted(t.subject for t in tickets) == sorted(f"Problem {n}" for n in range(MAILS))
    # Each ticket's acknowledgement and its new-ticket notice to the helpdesk, once each.
    assert [r.status for r in site.outbox()] == ["sent"] * MAILS * 2
    sent = Counter(r.message_id for r in site.smtp.received)
    assert len(sent) == MAILS * 2 and set(sent.values()) == {1}


def _bump_version(site: Site) -> tuple[int, int]:
    path = site.root / "workflows" / "it-support.yaml"
    text = path.read_text()
    old = int(re.search(r"^version: (\d+)", text, re.M)[1])  # type: ignore[index]
    path.write_text(re.sub(r"^version: \d+", f"version: {old + 1}", text, flags=re.M))
    return old, old + 1


@pytest.mark.parametrize("imap_server", ["embedded"], indirect=True)
def test_sighup_reloads_a_valid_change_and_refuses_a_broken_one(site: Site) -> None:
    daemon = site.start(TIERDESK_DAEMON_RELOAD_CHECK="1h")  # only the signal reloads
    old, new = _bump_version(site)
    daemon.send(signal.SIGHUP)
    [line] = daemon.wait_for(lambda m: m.startswith("reloaded (SIGHUP)"))
    assert f"workflow it-support v{old} -> v{new}" in line
    path = site.root / "workflows" / "it-support.yaml"
    text = path.read_text()
    path.write_text(text.replace("initial: triage", "initial: nowhere", 1))
    daemon.send(signal.SIGHUP)
    problems = daemon.wait_for(lambda m: m.startswith("reload refused: "))
    assert re.search(r"workflows/it-support\.yaml:\d+: .*nowhere", problems[0]), problems
    daemon.wait_for(lambda m: m.startswith("reload refused (") and
                    m.endswith(f"still running workflow it-support v{new}"))
    site.append(mail())  # still at work, on the last good workflow
    site.smtp.wait_for(1)
    assert daemon.stop() == 0
    [ticket] = site.tickets()
    assert ticket.workflow_version == new
    daemon.no_traceback()


@pytest.mark.parametrize("imap_server", ["embedded"], indirect=True)
def test_a_saved_file_reloads_without_a_signal(site: Site) -> None:
    daemon = site.start(TIERDESK_DAEMON_RELOAD_CHECK="100ms")
    old, new = _bump_version(site)
    [line] = daemon.wait_for(lambda m: m.startswith("reloaded (files changed)"))
    assert f"v{old} -> v{new}" in line and "workflows/it-support.yaml" in line
    assert daemon.stop() == 0


@pytest.mark.parametrize("imap_server", ["embedded"], indirect=True)
def test_run_once_leaves_heartbeats(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    site.append(mail())
    assert main(["run", "--once", "--config", str(site.root)]) == 0
    capsys.readouterr()
    beats = {b.loop: b for b in site.heartbeats()}
    assert set(beats) == {"ingest", "clock", "sender"}
    assert all(b.daemon.endswith(":once") and b.stopped_at is not None for b in beats.values())
    assert beats["ingest"].detail == {"folder": "INBOX", "waiting": 0, "processed": 1}
    assert beats["sender"].detail["sent"] == 2  # the acknowledgement and the notice
