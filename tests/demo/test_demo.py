"""`run.py demo`: the story through real IMAP and SMTP servers, offline and fast."""

from __future__ import annotations

import email
import email.policy
import io
import os
import re
import signal
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from imapclient import IMAPClient
from sqlalchemy import select

from daemon.cli.main import main
from daemon.demo.run import demo_world, play, wants_colour
from daemon.store.models import Event, Ticket

ROOT = Path(__file__).resolve().parents[2]
RUN = [sys.executable, str(ROOT / "run.py"), "demo", "--config", str(ROOT)]


def test_the_story_ends_closed_after_every_tier_with_the_right_events() -> None:
    lines: list[str] = []
    started = time.monotonic()
    with demo_world(ROOT, lines.append) as world:
        play(world)
        with world.parts.database.reading() as session:
            ticket = session.scalars(select(Ticket)).one()
            events = session.scalars(select(Event).order_by(Event.id)).all()
            moves = [(e.from_state, e.to_state, e.actor, (e.data or {}).get("trigger"))
                     for e in events if e.kind == "transition"]
            kinds = [e.kind for e in events]
            thanks = [e.reason for e in events if e.kind == "reply"]
        mails = [(rcpt, str(email.message_from_bytes(m.data, policy=email.policy.default)
                            ["Subject"])) for m in world.smtp.received for rcpt in m.rcpt_tos]
    assert time.monotonic() - started < 30
    assert (ticket.ref, ticket.state, ticket.priority) == ("TD-1", "closed", "P1")
    assert moves == [
        ("triage", "tier2", "triage", "route"),  # the shipped outage rule
        ("tier2", "tier3", "morgan.lee@example.com", "escalate"),  # by the technician
        ("tier3", "vendor", "robin.okafor@example.com", "to_vendor"),
        ("vendor", "tier3", "vendor", "vendor_replied"),
        ("tier3", "resolved", "robin.okafor@example.com", "resolve"),
        ("resolved", "closed", "clock", "close"),  # the auto-close
    ]
    assert "vendor_reply" in kinds and "security" not in kinds and "refused" not in kinds
    assert thanks and "a thank-you does not reopen" in thanks[0]  # recorded, not reopened
    for rcpt, subject in [
        ("dana.sales@example.org", "[TD-1] VPN down for the whole sales team"),  # ack
        ("morgan.lee@example.com", "[TD-1] P1 handed to Tier 2 Systems: VPN down"),
        ("robin.okafor@example.com", "[TD-1] P1 handed to Tier 3 Engineering: VPN down"),
        ("support@vpnco.example", "[TD-1] Support request: VPN down"),  # vendor handoff
        ("robin.okafor@example.com", "[TD-1] VPNCo Support replied: VPN down"),
    ]:
        assert any(r == rcpt and s.startswith(subject) for r, s in mails), (rcpt, subject)
    out = "\n".join(lines)
    assert "we believe your request TD-1" in out  # the resolution notice, as received
    assert "to their signed reply address" in out  # technicians authenticated by replying
    assert "resolved → closed" in out and "reminder" in out and "warning" in out


def test_run_py_demo_tells_the_story_and_sums_it_up() -> None:
    started = time.monotonic()
    done = subprocess.run(RUN, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "NO_COLOR": ""})
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 30
    out = done.stdout
    for expected in [
        "TD-1 transition    triage → tier2",
        "✉ in   Morgan Lee <morgan.lee@example.com> → support+TD-1.",
        "✉ out  Tierdesk → support@vpnco.example",
        "TD-1 vendor_reply",
        "TD-1 transition    tier3 → resolved",
        "TD-1 reply         resolved",
        "TD-1 transition    resolved → closed  clock: resolved and quiet for 5d",
    ]:
        assert expected in out, f"missing {expected!r} in:\n{out}"
    summary = out.strip().splitlines()[-1]
    assert re.fullmatch(r"TD-1 closed \(triage → tier2 → tier3 → vendor → tier3 → resolved → "
                        r"closed\); 6 mails in, \d+ out; \d+\.\d s", summary), summary
    assert "Traceback" not in out + done.stderr and "\033[" not in out  # a pipe: no colour


def test_the_cli_runs_the_demo_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--config", str(ROOT)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("TD-1 closed")


@pytest.mark.parametrize(("tty", "environ", "colour"), [
    (True, {}, True), (True, {"NO_COLOR": "1"}, False), (True, {"NO_COLOR": ""}, True),
    (False, {}, False),
])
def test_colour_only_on_a_terminal_without_no_color(tty: bool, environ: dict[str, str],
                                                    colour: bool) -> None:
    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return tty

    assert wants_colour(Stream(), environ) is colour


def test_keep_leaves_servers_a_mail_client_can_use_until_ctrl_c() -> None:
    demo = subprocess.Popen([*RUN, "--keep"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        text = "\n".join(_lines_until(demo, "  The daemon's own mailbox"))
        imap = re.search(r"IMAP +host (\S+) +port (\d+) +security none +user (\S+) +"
                         r"password (\S+)", text)
        smtp = re.search(r"SMTP +host (\S+) +port (\d+) +security none", text)
        address = re.search(r"Send to (\S+) from any address", text)
        assert imap is not None and smtp is not None and address is not None, text
        story = _subjects(imap)  # the story's mails, delivered by the SMTP server
        assert "[TD-1] Support request: VPN down for the whole sales team" in story
        _send(smtp[1], int(smtp[2]), address[1])  # as a mail client would
        deadline = time.monotonic() + 20
        while not any(s.startswith("[TD-2] Printer") for s in _subjects(imap)):
            assert time.monotonic() < deadline, "no acknowledgement for the mail sent"
            time.sleep(0.3)
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=20)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


def _subjects(imap: re.Match[str]) -> list[str]:
    with IMAPClient(imap[1], int(imap[2]), ssl=False, timeout=10) as client:
        client.login(imap[3], imap[4])
        client.select_folder("INBOX", readonly=True)
        return [m[b"ENVELOPE"].subject.decode() for m in
                client.fetch(client.search(), ["ENVELOPE"]).values()]


def _send(host: str, port: int, to: str) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "pat@example.org", to, "Printer on floor 3 jams"
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg.set_content("It jams on every second page.\n\nPat")
    with smtplib.SMTP(host, port, timeout=10) as client:
        client.send_message(msg)


def _lines_until(process: subprocess.Popen[str], marker: str) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith(marker):
            return lines
    raise AssertionError(f"no {marker!r} line; got:\n" + "\n".join(lines))
