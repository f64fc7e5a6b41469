"""`run.py run` end to end against a real IMAP server (the private Dovecot and the embedded
one), a real aiosmtpd server and SQLite: mail in, ticket and acknowledgement out, while it
runs; stopping by signal; logs; heartbeats."""

from __future__ import annotations

import json
import re
import signal

import pytest

from tests.inbound.ingest.mails import mail
from tests.outbound.smtp_server import Received
from tests.service.conftest import Site

# Each of these mails opens a ticket no triage rule routes: its acknowledgement, and the
# front line's new-ticket notice (to the helpdesk's address: these daemons have no secret).
PER_TICKET = 2


def acks(received: list[Received]) -> list[Received]:
    return [r for r in received if r.rcpt_tos == ("ann@example.org",)]


def test_mail_arriving_while_it_runs_gets_a_ticket_and_an_acknowledgement(site: Site) -> None:
    daemon = site.start()
    site.append(mail(message_id="<printer@example.org>"))
    [ack] = acks(site.smtp.wait_for(PER_TICKET))
    assert "[TD-1]" in str(ack.message["Subject"])
    site.append(mail(subject="VPN drops", message_id="<vpn@example.org>",
                     sender="bob@example.org"))
    assert len(site.smtp.wait_for(2 * PER_TICKET)) == 2 * PER_TICKET
    daemon.wait_for(lambda m: m.startswith("sent <td-2-"))
    assert daemon.stop() == 0
    entries = daemon.entries  # every line is one JSON object
    assert all({"ts", "level", "logger", "msg"} <= set(e) for e in entries)
    opened = [e for e in entries if e["msg"].startswith("opened")]
    assert [(e["ref"], e["loop"]) for e in opened] == [("TD-1", "ingest"), ("TD-2", "ingest")]
    assert entries[-1]["msg"] == "tierdesk stopped"
    assert [t.subject for t in site.tickets()] == ["Printer on floor 3 jams", "VPN drops"]
    assert [r.status for r in site.outbox()] == ["sent"] * 2 * PER_TICKET
    beats = {b.loop: b for b in site.heartbeats()}
    assert set(beats) == {"ingest", "clock", "sender"}
    assert all(b.stopped_at is not None and b.error is None for b in beats.values())
    assert beats["ingest"].detail["folder"] == "INBOX"
    assert beats["ingest"].detail["processed"] == 2
    daemon.no_traceback()


@pytest.mark.parametrize("imap_server", ["embedded"], indirect=True)
def test_human_log_lines_and_the_start_up_line(site: Site) -> None:
    daemon = site.start(log_format="human")
    first = daemon.lines[0]
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z INFO +"
    expected = (rf"^{stamp}tierdesk started: imap 127\.0\.0\.1:{site.imap.port} \(none\) "
                rf"INBOX, smtp 127\.0\.0\.1:{site.smtp.port} \(none\), database "
                rf"{re.escape(site.database_url)}, workflow it-support v\d+ \(daemon .+:\d+\)$")
    assert re.match(expected, first), first
    site.append(mail())
    daemon.wait_for(lambda m: re.search(r"INFO +sent <td-1-", m) is not None)
    assert daemon.stop(signal.SIGINT) == 0
    assert re.search(rf"{stamp}opened TD-1: new ticket", "\n".join(daemon.lines))
    assert site.account.password not in "\n".join(daemon.lines)
    with pytest.raises(json.JSONDecodeError):
        json.loads(first)
    daemon.no_traceback()


@pytest.mark.parametrize("imap_server", ["embedded"], indirect=True)
def test_a_missing_smtp_server_is_two_lines_and_the_mail_goes_later(site: Site) -> None:
    site.smtp.stop()
    daemon = site.start()
    site.append(mail())
    daemon.wait_for(lambda m: m.startswith("smtp unavailable: cannot use SMTP server"))
    rows = site.outbox()
    assert len(rows) == PER_TICKET
    assert all(r.status == "pending" and r.attempts == 0 for r in rows)  # not parked, no try
    site.smtp.start()
    [ack] = acks(site.smtp.wait_for(PER_TICKET, timeout=15))
    assert "[TD-1]" in str(ack.message["Subject"])
    daemon.wait_for(lambda m: m.startswith("smtp available again after"))
    assert daemon.stop() == 0
    down = [m for m in daemon.messages() if "unavailable" in m]
    assert len(down) == 1, down
    assert [(r.status, r.attempts) for r in site.outbox()] == [("sent", 1)] * PER_TICKET
    daemon.no_traceback()


def test_imap_server_restarted_it_reconnects_and_carries_on(site: Site) -> None:
    daemon = site.start()
    site.append(mail(message_id="<one@example.org>"))
    site.smtp.wait_for(PER_TICKET)
    site.imap.restart()
    daemon.wait_for(lambda m: m.startswith("imap unavailable:"))
    site.append(mail(subject="Second problem", message_id="<two@example.org>"))
    assert len(site.smtp.wait_for(2 * PER_TICKET, timeout=20)) == 2 * PER_TICKET
    daemon.wait_for(lambda m: m.startswith("imap available again after"))
    assert daemon.stop() == 0
    assert len([m for m in daemon.messages() if m.startswith("imap unavailable")]) == 1
    assert len(site.tickets()) == 2
    daemon.no_traceback()
