"""`run.py demo`: the story through real IMAP and SMTP servers, offline and fast."""

from __future__ import annotations

import email
import email.policy
import io
import json
import os
import re
import shlex
import signal
import smtplib
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid, parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient
from sqlalchemy import select

from daemon.cli.main import main
from daemon.demo.run import demo_world, play, wants_colour
from daemon.store.models import Event, Ticket

ROOT = Path(__file__).resolve().parents[2]
RUN = [sys.executable, str(ROOT / "run.py"), "demo", "--config", str(ROOT)]
READY = "  Commands on this demo's store and servers"  # the last line --keep prints
# Date headers and the store's times are to the second, the test's own readings are not.
SLACK = timedelta(seconds=2)


def test_the_story_ends_closed_after_every_tier_with_the_right_events() -> None:
    lines: list[str] = []
    started = time.monotonic()
    with demo_world(ROOT, lines.append) as world:
        play(world)
        with world.parts.database.reading() as session:
            tickets = {t.id: t for t in session.scalars(select(Ticket).order_by(Ticket.id))}
            events = session.scalars(select(Event).order_by(Event.id)).all()
            moves = {t.ref: [(e.from_state, e.to_state, e.actor, (e.data or {}).get("trigger"))
                             for e in events if e.kind == "transition" and e.ticket_id == i]
                     for i, t in tickets.items()}
            kinds = [e.kind for e in events]
            thanks = [e.reason for e in events if e.kind == "reply"]
            escalated = [e.reason for e in events if e.kind == "transition"
                         and e.actor == "clock" and e.from_state == "tier1"]
        received = [(rcpt, email.message_from_bytes(m.data, policy=email.policy.default))
                    for m in world.smtp.received for rcpt in m.rcpt_tos]
        mails = [(rcpt, str(msg["Subject"])) for rcpt, msg in received]
    assert time.monotonic() - started < 30
    assert [(t.ref, t.state, t.priority) for t in tickets.values()] == [
        ("TD-1", "closed", "P1"), ("TD-2", "closed", "P3")]
    # The story is over by now: nothing of it lies in the future of the real clock.
    assert max(e.at for e in events) <= datetime.now(UTC)
    assert moves["TD-1"] == [
        ("triage", "tier2", "triage", "route"),  # the shipped outage rule
        ("tier2", "tier3", "morgan.lee@example.com", "escalate"),  # by the technician
        ("tier3", "vendor", "robin.okafor@example.com", "to_vendor"),
        ("vendor", "tier3", "vendor", "vendor_replied"),
        ("tier3", "resolved", "robin.okafor@example.com", "resolve"),
        ("resolved", "closed", "clock", "close"),  # the auto-close
    ]
    assert moves["TD-2"] == [
        ("triage", "tier1", "sam.rivera@example.com", "route"),  # no rule: the helpdesk
        ("tier1", "tier2", "clock", "escalate"),  # tier 1 never answered
        ("tier2", "resolved", "taylor.brooks@example.com", "resolve"),
        ("resolved", "closed", "clock", "close"),
    ]
    assert escalated == ["no response in tier 1 within 4 business hours"]
    assert "vendor_reply" in kinds and "security" not in kinds and "refused" not in kinds
    assert thanks and "a thank-you does not reopen" in thanks[0]  # recorded, not reopened
    printer = "Cannot print to the 3rd-floor printer"
    for rcpt, subject in [
        ("dana.sales@example.org", "[TD-1] VPN down for the whole sales team"),  # ack
        ("morgan.lee@example.com", "[TD-1] P1 handed to Tier 2 Systems: VPN down"),
        ("robin.okafor@example.com", "[TD-1] P1 handed to Tier 3 Engineering: VPN down"),
        ("support@vpnco.example", "[TD-1] Support request: VPN down"),  # vendor handoff
        ("robin.okafor@example.com", "[TD-1] VPNCo Support replied: VPN down"),
        # The printer: the helpdesk's notice, each member on their own, then tier 1's ladder.
        ("sam.rivera@example.com", f"[TD-2] New ticket, P3: {printer}"),
        ("priya.natarajan@example.com", f"[TD-2] New ticket, P3: {printer}"),
        ("alex.chen@example.com", f"[TD-2] P3 handed to Tier 1 Support: {printer}"),
        ("jordan.blake@example.com", f"[TD-2] Reminder: P3 waiting in tier1: {printer}"),
        ("taylor.brooks@example.com", f"[TD-2] P3 handed to Tier 2 Systems: {printer}"),
        ("pat.kowalski@example.org", f"[TD-2] {printer}"),
    ]:
        assert any(r == rcpt and s.startswith(subject) for r, s in mails), (rcpt, subject)
    assert [s for r, s in mails if "New ticket" in s and r.startswith("sam")] == [
        f"[TD-2] New ticket, P3: {printer}"]  # the routed outage had no notice
    [handoff] = [m for r, m in received if r == "taylor.brooks@example.com"
                 and str(m["Subject"]).startswith("[TD-2] P3 handed to Tier 2")]
    assert "Reason:      no response in tier 1 within 4 business hours" in _text(handoff)
    reminders = [s for r, s in mails if r == "alex.chen@example.com"
                 and s.startswith("[TD-2] Reminder: P3 waiting in tier1")]
    assert len(reminders) == 2  # remind: {times: 2, every: 1h}, both unanswered
    out = "\n".join(lines)
    assert "we believe your request TD-1" in out  # the resolution notice, as received
    assert "we believe your request TD-2" in out
    assert "to their signed reply address" in out  # technicians authenticated by replying
    assert "resolved → closed" in out and "reminder" in out and "warning" in out


def _text(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    return body.get_content() if isinstance(body, EmailMessage) else ""


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
        # The printer: the notice, Sam's #route, the clock's escalation and its reason.
        "✉ out  Tierdesk → sam.rivera@example.com, priya.natarajan@example.com",
        "[TD-2] New ticket, P3: Cannot print to the 3rd-floor printer",
        "│ Triage: no triage rule matched",
        "✉ in   Sam Rivera <sam.rivera@example.com> → support+TD-2.",
        "TD-2 transition    triage → tier1     sam.rivera@example.com",
        "TD-2 reminder      tier1",
        "TD-2 transition    tier1 → tier2      clock: no response in tier 1 within 4 business "
        "hours",
        "│ Reason: no response in tier 1 within 4 business hours",
        "TD-2 take          tier2              taylor.brooks@example.com",
        "TD-2 transition    tier2 → resolved   taylor.brooks@example.com",
    ]:
        assert expected in out, f"missing {expected!r} in:\n{out}"
    summary = out.strip().splitlines()[-1]
    assert re.fullmatch(r"TD-1 closed \(triage → tier2 → tier3 → vendor → tier3 → resolved → "
                        r"closed\); TD-2 closed \(triage → tier1 → tier2 → resolved → closed\); "
                        r"2 tickets, 10 mails in, \d+ out; \d+\.\d s", summary), summary
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
        text = "\n".join(_lines_until(demo, READY))
        imap = re.search(r"IMAP +host (\S+) +port (\d+) +security none +user (\S+) +"
                         r"password (\S+)", text)
        smtp = re.search(r"SMTP +host (\S+) +port (\d+) +security none", text)
        address = re.search(r"Send to (\S+) from any address", text)
        assert imap is not None and smtp is not None and address is not None, text
        story = _subjects(imap)  # the story's mails, delivered by the SMTP server
        assert "[TD-1] Support request: VPN down for the whole sales team" in story
        _send(smtp[1], int(smtp[2]), address[1])  # as a mail client would
        deadline = time.monotonic() + 20
        # The story's tickets come first: this one gets the next number.
        while not any(re.match(r"\[TD-\d+\] Printer", s) for s in _subjects(imap)):
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


def test_keep_runs_a_daemon_status_sees_on_the_real_clock_until_sigterm() -> None:
    demo = subprocess.Popen([*RUN, "--keep"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "NO_COLOR": ""})
    try:
        text = "\n".join(_lines_until(demo, READY))
        command = re.search(r"^ +Commands on this demo's store and servers: (.+?)  \(or ",
                            text, re.MULTILINE)
        folder = re.search(r"store (\S+)/demo\.db,", text)
        imap = re.search(r"IMAP +host (\S+) +port (\d+) +security none +user (\S+) +"
                         r"password (\S+)", text)
        smtp = re.search(r"SMTP +host (\S+) +port (\d+) +security none", text)
        assert command and folder and imap and smtp, text
        assert Path(folder[1]).is_dir()

        # `status` as the demo tells the user to run it sees the kept daemon running.
        report = json.loads(_as_told(command[1], "--json"))
        running = [d["daemon"] for d in report["daemons"] if d["state"] == "running"]
        assert running == [f"{socket.gethostname()}:{demo.pid}"], report["daemons"]
        assert "no_daemon" not in [a["code"] for a in report["attention"]], report
        story = _ticket(command[1], "TD-1")
        assert _at(story["updated_at"]) <= datetime.now(UTC)  # the story ended by now

        # Mail after the story (its tickets are TD-1 and TD-2) is dated by the real clock,
        # in the store and in its headers.
        before = datetime.now(UTC)
        _send(smtp[1], int(smtp[2]), "support@example.com")
        ack = _wait_for_mail(imap, "[TD-3] Printer")
        after = datetime.now(UTC)
        assert before - SLACK <= parsedate_to_datetime(str(ack["Date"])) <= after + SLACK
        created = _at(_ticket(command[1], "TD-3")["created_at"])
        assert before - SLACK <= created <= after + SLACK

        demo.send_signal(signal.SIGTERM)  # as Ctrl-C: servers down, temporary folder gone
        out, err = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0, err
    assert "stopped: servers shut down, temporary store removed" in out
    assert "Traceback" not in err
    assert not Path(folder[1]).exists()


def _as_told(command: str, *flags: str) -> str:
    """The command line --keep printed, run by a shell with this checkout's `tierdesk`."""
    told = command.replace("tierdesk ", f"{shlex.quote(sys.executable)} run.py ", 1)
    done = subprocess.run(["bash", "-c", " ".join([told, *flags])], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1), done.stderr  # 1: something needs attention
    return done.stdout


def _ticket(command: str, ref: str) -> dict[str, Any]:
    tickets = json.loads(_as_told(command.replace(" status", " tickets", 1), "--json"))
    return next(t for t in tickets if t["ref"] == ref)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _wait_for_mail(imap: re.Match[str], subject: str) -> EmailMessage:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with IMAPClient(imap[1], int(imap[2]), ssl=False, timeout=10) as client:
            client.login(imap[3], imap[4])
            client.select_folder("INBOX", readonly=True)
            for data in client.fetch(client.search(), ["RFC822"]).values():
                msg = email.message_from_bytes(data[b"RFC822"], policy=email.policy.default)
                if isinstance(msg, EmailMessage) and str(msg["Subject"]).startswith(subject):
                    return msg
        time.sleep(0.3)
    raise AssertionError(f"no mail {subject!r} arrived")


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
