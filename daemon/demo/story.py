"""The demo's story: who writes what, when, and which mail they answer.

Two tickets told in one timeline, so the whole ladder shows: an outage the triage rules send
straight to tier 2, and a plain request no rule routes, which the helpdesk hears of and
routes to tier 1 by hand; tier 1 never answers, so the clock escalates it to tier 2.

Every actor writes as a person would. The requester writes a new mail, then answers the
resolution notice; technicians and the vendor answer the mail they received, to its
Reply-To (for a technician, their own signed reply address: that is what authenticates
their #tags), with In-Reply-To and References, and the original quoted below their text.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from zoneinfo import ZoneInfo

from daemon.demo.smtp_sink import Delivered

ZONE = ZoneInfo("Europe/Berlin")
START = datetime(2026, 11, 30, 9, 0, tzinfo=ZONE)  # a Monday morning
SUPPORT = "support@example.com"
DANA = "Dana Sales <dana.sales@example.org>"
MORGAN = "Morgan Lee <morgan.lee@example.com>"  # tier 2, config/teams.yaml
ROBIN = "Robin Okafor <robin.okafor@example.com>"  # tier 3
VPNCO = "Kim Park <support@vpnco.example>"  # vendor vpnco
PAT = "Pat Kowalski <pat.kowalski@example.org>"
SAM = "Sam Rivera <sam.rivera@example.com>"  # helpdesk
TAYLOR = "Taylor Brooks <taylor.brooks@example.com>"  # tier 2
PRINTER_SUBJECT = "Cannot print to the 3rd-floor printer"


@dataclass(frozen=True)
class Scene:
    after: timedelta  # since START
    title: str
    sender: str
    text: str
    subject: str = ""  # a new mail's subject
    answers: str = ""  # or: answer the newest mail to the sender whose subject has this


# The outage: routed by the triage rules, worked through tier 2, tier 3 and the vendor.
OUTAGE = (
    Scene(timedelta(0), "Dana reports an outage", DANA,
          "Hi,\n\nnobody in sales can connect to the VPN since 8:45. The client says\n"
          "'TLS handshake failed'. We are all in the Berlin office, Windows laptops.\n\n"
          "Dana", subject="VPN down for the whole sales team"),
    Scene(timedelta(minutes=10), "Tier 2 tried the usual, escalates", MORGAN,
          "#escalate Restarted the gateway service, checked the firewall rules and rolled "
          "one client back to 5.0.3: the TLS handshake still fails for everyone. The "
          "gateway certificate was renewed last night.\n\n-- \nMorgan Lee, Tier 2 Systems",
          answers="handed to Tier 2"),
    Scene(timedelta(hours=3, minutes=40), "Tier 3 asks the VPN vendor", ROBIN,
          "#vendor vpnco Since 08:45 every client fails with 'TLS handshake failed' "
          "against vpn-gw1 (firmware 7.2.1). Its certificate was renewed last night; the "
          "chain looks complete to us. Please advise urgently.\n\n-- \nRobin Okafor",
          answers="handed to Tier 3"),
    Scene(timedelta(hours=22, minutes=20), "The vendor answers", VPNCO,
          "Hello,\n\nfirmware 7.2.1 drops the intermediate certificate after a renewal.\n"
          "Import the chain again (System > Certificates > Import chain) and restart the\n"
          "TLS service. Firmware 7.2.2 fixes it for good.\n\nKind regards,\nKim, VPNCo Support",
          answers="Support request"),
    Scene(timedelta(hours=23, minutes=10), "Tier 3 applies the fix and resolves", ROBIN,
          "#resolve Imported the intermediate certificate on vpn-gw1 again and restarted the "
          "TLS service, as VPNCo advised; firmware 7.2.2 follows on Thursday.\n\n-- \n"
          "Robin Okafor",
          answers="replied"),
    Scene(timedelta(hours=23, minutes=25), "Dana says thanks", DANA,
          "Thank you, the VPN works again for all of us!\n\nDana",
          answers="VPN down"),
)

# The plain request: no triage rule matches, so it waits in triage for the helpdesk. Tier 1
# gets it and stays silent (its reminders go unanswered): the clock escalates it after 4
# business hours (P3), and tier 2 takes it. The story has no scene for tier 1 on purpose.
PRINTER = (
    Scene(timedelta(minutes=30), "Pat cannot print", PAT,
          "Hi,\n\nsince this morning I cannot print to the 3rd-floor printer (HP-3F-02).\n"
          "The print queue on my laptop says 'offline'; the others on the floor can print.\n\n"
          "Pat", subject=PRINTER_SUBJECT),
    Scene(timedelta(minutes=42), "The helpdesk routes it to tier 1", SAM,
          "#route tier1 One laptop cannot reach the floor printer: a queue or driver "
          "problem.\n\n-- \nSam Rivera, Service Desk",
          answers=f"New ticket, P3: {PRINTER_SUBJECT}"),
    Scene(timedelta(hours=5, minutes=20), "Tier 2 takes the escalated ticket", TAYLOR,
          "#take\nLooking at Pat's print queue now.\n\n-- \nTaylor Brooks, Tier 2 Systems",
          answers=f"handed to Tier 2 Systems: {PRINTER_SUBJECT}"),
    Scene(timedelta(hours=6, minutes=5), "Tier 2 fixes the queue and resolves", TAYLOR,
          "#resolve Removed the stale HP-3F-02 queue from Pat's laptop and added it again "
          "from the print server; a test page printed.\n\n-- \nTaylor Brooks",
          answers=f"handed to Tier 2 Systems: {PRINTER_SUBJECT}"),
)

# Both stories in one timeline, in the order things happen (ties keep their order).
STORY = tuple(sorted(OUTAGE + PRINTER, key=lambda scene: scene.after))


def compose(scene: Scene, received: list[Delivered], at: datetime) -> bytes:
    """The scene's mail: a new one to support, or an answer to a mail the sender got."""
    if not scene.answers:
        return _mail(scene.sender, SUPPORT, scene.subject, scene.text, at)
    original = _newest_to(parseaddr(scene.sender)[1], scene.answers, received)
    to = original["Reply-To"] or original["From"]
    msg_id = original["Message-ID"]
    subject = str(original["Subject"])
    references = " ".join(filter(None, [str(original["References"] or ""), msg_id]))
    quoted = "\n".join(f"> {line}".rstrip() for line in _text(original).splitlines())
    body = f"{scene.text}\n\nOn {original['Date']}, {original['From']} wrote:\n{quoted}\n"
    return _mail(scene.sender, str(to), f"Re: {subject}", body, at,
                 {"In-Reply-To": msg_id, "References": references})


def _newest_to(address: str, marker: str, received: list[Delivered]) -> EmailMessage:
    for mail in reversed(received):
        if address in mail.rcpt_tos:
            parsed = email.message_from_bytes(mail.data, policy=email.policy.default)
            if isinstance(parsed, EmailMessage) and marker in str(parsed["Subject"]):
                return parsed
    raise LookupError(f"no mail to {address} with {marker!r} in its subject was received")


def _text(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    return body.get_content() if isinstance(body, EmailMessage) else ""


def _mail(sender: str, to: str, subject: str, text: str, at: datetime,
          extra: dict[str, str] | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Date"] = format_datetime(at)
    msg["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2])
    for name, value in (extra or {}).items():
        msg[name] = value
    msg.set_content(text)
    return msg.as_bytes()
