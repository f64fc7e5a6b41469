"""The demo's outage story (daemon/demo/story.py OUTAGE) played through real mail against
`run.py run`. The demo's second ticket waits hours of business time for the clock to
escalate it: the demo's virtual clock plays that (tests/demo), a real clock here cannot.

Each scene's mail is written by the demo's own `compose`, from what the SMTP server received
(so technicians answer their own signed Reply-To), and APPENDed to the daemon's INBOX, as an
MTA would deliver it. After each scene the player waits, with a deadline, for what that scene
must lead to: a mail received by SMTP or a ticket state in the store. Never a fixed sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr

from sqlalchemy import select

from daemon.demo.smtp_sink import Delivered
from daemon.demo.story import OUTAGE, ZONE, Scene, compose
from daemon.store.models import Event, Ticket
from tests.outbound.smtp_server import Received
from tests.service.conftest import Site

DANA = "dana.sales@example.org"
MORGAN = "morgan.lee@example.com"
ROBIN = "robin.okafor@example.com"
VPNCO = "support@vpnco.example"
SECRET = "acceptance-secret-" + "x" * 32  # TIERDESK_AUTH_SECRET: signs reply addresses

# What each scene of OUTAGE must lead to: (recipient, subject start) of a mail the daemon sends.
OUTCOMES: tuple[tuple[str, str], ...] = (
    (MORGAN, "[TD-1] P1 handed to Tier 2 Systems: VPN down"),
    (ROBIN, "[TD-1] P1 handed to Tier 3 Engineering: VPN down"),
    (VPNCO, "[TD-1] Support request: VPN down"),
    (ROBIN, "[TD-1] VPNCo Support replied: VPN down"),
    ("", ""),  # the resolution notice: see resolution_notice()
    ("", ""),  # the thank-you: a reply event, no mail
)

TEAM = ("tier2", "tier3", "vendor")
# The store's trail after the whole story (kind, from state, to state, actor), as an
# uninterrupted `run.py run` writes it.
EVENTS = [
    ("mail_in", "triage", "triage", DANA),
    ("created", None, "triage", "requester"),
    ("transition", "triage", "tier2", "triage"),
    ("mail_in", "tier2", "tier2", MORGAN),
    ("transition", "tier2", "tier3", MORGAN),
    ("mail_in", "tier3", "tier3", ROBIN),
    ("transition", "tier3", "vendor", ROBIN),
    ("mail_in", "vendor", "vendor", VPNCO),
    ("vendor_reply", "vendor", "vendor", VPNCO),
    ("transition", "vendor", "tier3", "vendor"),
    ("mail_in", "tier3", "tier3", ROBIN),
    ("transition", "tier3", "resolved", ROBIN),
    ("mail_in", "resolved", "resolved", DANA),
    ("reply", "resolved", "resolved", "requester"),
]
SUBJECT = "VPN down for the whole sales team"
# Every mail the daemon sends in the story: (recipient, subject), in the order sent.
MAILS = [
    (DANA, f"[TD-1] {SUBJECT}"),  # the acknowledgement
    (MORGAN, f"[TD-1] P1 handed to Tier 2 Systems: {SUBJECT}"),
    ("taylor.brooks@example.com", f"[TD-1] P1 handed to Tier 2 Systems: {SUBJECT}"),
    (DANA, f"[TD-1] {SUBJECT}"),  # told: now with tier 3
    (ROBIN, f"[TD-1] P1 handed to Tier 3 Engineering: {SUBJECT}"),
    (MORGAN, f"[TD-1] Done: #escalate: {SUBJECT}"),
    (VPNCO, f"[TD-1] Support request: {SUBJECT}"),  # the vendor handoff
    (DANA, f"[TD-1] {SUBJECT}"),  # told: waiting for the vendor
    (ROBIN, f"[TD-1] Done: #vendor: {SUBJECT}"),
    (ROBIN, f"[TD-1] VPNCo Support replied: {SUBJECT}"),
    (DANA, f"[TD-1] {SUBJECT}"),  # the resolution notice
    (ROBIN, f"[TD-1] Done: #resolve: {SUBJECT}"),
    ("sam.rivera@example.com", f"[TD-1] The requester wrote: {SUBJECT}"),
    ("priya.natarajan@example.com", f"[TD-1] The requester wrote: {SUBJECT}"),
]


@dataclass(frozen=True)
class Snapshot:
    tickets: list[tuple[str, str, str]]  # ref, state, priority
    events: list[tuple[str, str | None, str | None, str]]  # kind, from, to, actor


def delivered(received: list[Received]) -> list[Delivered]:
    return [Delivered(r.mail_from, r.rcpt_tos, r.data) for r in received]


def subjects(site: Site) -> list[tuple[str, str]]:
    return [(rcpt, str(r.message["Subject"])) for r in site.smtp.received for rcpt in r.rcpt_tos]


def outbox_drained(site: Site) -> bool:
    """Every queued mail sent, and received by the SMTP server."""
    rows = site.outbox()
    ids = {r.message_id for r in site.smtp.received}
    return bool(rows) and all(r.status == "sent" for r in rows) and len(ids) >= len(rows)


def got(site: Site, rcpt: str, subject: str) -> bool:
    return any(r == rcpt and s.startswith(subject) for r, s in subjects(site))


def resolution_notice(site: Site) -> list[Received]:
    """Mails to the requester that tell them their request was resolved."""
    return [r for r in site.smtp.received if DANA in r.rcpt_tos
            and "we believe your request TD-1" in _text(r)]


def _text(r: Received) -> str:
    body = r.message.get_body(("plain",))
    return body.get_content() if body is not None else ""  # type: ignore[union-attr]


def wait(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.05)


def snapshot(site: Site) -> Snapshot:
    database = site.store()
    try:
        with database.reading() as session:
            tickets = [(t.ref, t.state, t.priority)
                       for t in session.scalars(select(Ticket).order_by(Ticket.id))]
            events = [(e.kind, e.from_state, e.to_state, e.actor)
                      for e in session.scalars(select(Event).order_by(Event.id))]
    finally:
        database.close()
    return Snapshot(tickets, events)


def state(site: Site) -> str | None:
    tickets = snapshot(site).tickets
    return tickets[0][1] if tickets else None


def done(site: Site, index: int) -> bool:
    """Has scene `index` had its effect?"""
    if index == 4:
        return state(site) == "resolved" and bool(resolution_notice(site))
    if index == 5:
        return any(e[0] == "reply" for e in snapshot(site).events)
    rcpt, subject = OUTCOMES[index]
    done_mail = got(site, rcpt, subject)
    if index == 0:
        return done_mail and got(site, DANA, "[TD-1] VPN down for the whole sales team")
    return done_mail


def mail_for(scene: Scene, site: Site) -> bytes:
    return compose(scene, delivered(site.smtp.received), datetime.now(ZONE))


def play_scene(site: Site, index: int, timeout: float = 20.0) -> None:
    site.append(mail_for(OUTAGE[index], site))
    wait(lambda: done(site, index), f"scene {index}: {OUTAGE[index].title}", timeout)


def play(site: Site, scenes: range = range(len(OUTAGE))) -> None:
    for index in scenes:
        play_scene(site, index)


def address(raw: str) -> str:
    return parseaddr(raw)[1]
