"""Attachments pass on (issue 19, point 4), through real mail: APPENDed to the private
Dovecot, read by `run.py run`, sent to aiosmtpd. A technician's PNG reaches the requester
byte for byte; the requester's screenshot reaches tier 2's handoff; a file over
mail.handoff_attachments_max is listed, not attached; `#vendor vpnco +attachments` carries the
requester's files and `#vendor vpnco` does not."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.utils import make_msgid

from tests.acceptance.story import wait
from tests.outbound.smtp_server import Received
from tests.service.conftest import Site

SECRET = "acceptance-secret-" + "x" * 32
SUPPORT = "support@example.com"
ANN, BOB = "ann@example.org", "bob@example.org"
SAM, MORGAN = "sam.rivera@example.com", "morgan.lee@example.com"
VENDOR = "support@vpnco.example"
# Our receiving server vouches for the technicians' mail (as in tests/inbound/commands).
DMARC = "mx.example.com; dkim=pass header.d=example.com; dmarc=pass header.from=example.com"
BUDGET = 100_000  # mail.handoff_attachments_max for this run


def png(seed: str, size: int) -> bytes:
    """PNG-looking bytes that no encoding could leave unchanged by accident (every byte)."""
    body = b"".join(hashlib.sha256(f"{seed}{i}".encode()).digest() for i in range(size // 32))
    return b"\x89PNG\r\n\x1a\n" + body


def mail(sender: str, subject: str, text: str, files: dict[str, bytes] | None = None,
         technician: bool = False) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, SUPPORT, subject
    msg["Message-ID"] = make_msgid(domain="client.example")
    msg.set_content(text)
    for name, data in (files or {}).items():
        msg.add_attachment(data, maintype="image", subtype="png", filename=name)
    raw = msg.as_bytes()
    return f"Authentication-Results: {DMARC}\r\n".encode() + raw if technician else raw


def received(site: Site, rcpt: str, subject_part: str) -> list[Received]:
    return [r for r in site.smtp.received
            if rcpt in r.rcpt_tos and subject_part in str(r.message["Subject"])]


def files_of(r: Received) -> dict[str, bytes]:
    return {str(part.get_filename()): part.get_content() for part in r.message.iter_attachments()}


def arrive(site: Site, rcpt: str, subject_part: str, count: int = 1) -> Received:
    wait(lambda: len(received(site, rcpt, subject_part)) >= count,
         f"mail to {rcpt} about {subject_part!r}", timeout=30)
    return received(site, rcpt, subject_part)[count - 1]


def test_attachments_pass_on_through_real_mail(site: Site) -> None:
    site.start(TIERDESK_AUTH_SECRET=SECRET, TIERDESK_AUTH_TRUSTED_AUTHSERV_IDS="mx.example.com",
               TIERDESK_MAIL_HANDOFF_ATTACHMENTS_MAX=str(BUDGET))
    screenshot = png("screenshot", 4_000)
    huge = png("huge", 3 * BUDGET)
    settings = png("settings", 2_000)

    # Ann's screenshot goes with the handoff to tier 2, attached.
    site.append(mail(ANN, "VPN error 809", "The VPN says error 809.",
                     {"error 809.png": screenshot}))
    arrive(site, ANN, "[TD-1]")
    site.append(mail(SAM, "Re: [TD-1] VPN error 809", "#route tier2", technician=True))
    handoff = arrive(site, MORGAN, "[TD-1] P")
    assert files_of(handoff) == {"error 809.png": screenshot}
    assert "error 809.png (image/png" in handoff.message.get_body(("plain",)).get_content()

    # Morgan's reply with a PNG reaches Ann, the PNG byte for byte, the tag line not at all.
    site.append(mail(MORGAN, "Re: [TD-1] VPN error 809",
                     "#take\nPlease import the attached settings.", {"settings.png": settings},
                     technician=True))
    wait(lambda: any(files_of(r) for r in received(site, ANN, "[TD-1]")), "the update to Ann",
         timeout=30)
    [update] = [r for r in received(site, ANN, "[TD-1]") if files_of(r)]
    assert files_of(update) == {"settings.png": settings}
    text = update.message.get_body(("plain",)).get_content()
    assert "Please import the attached settings." in text and "#take" not in text

    # #vendor vpnco +attachments: the vendor gets Ann's screenshot (only hers), and no "+".
    site.append(mail(MORGAN, "Re: [TD-1] VPN error 809",
                     "#vendor vpnco +attachments Is client 5.1 affected?", technician=True))
    to_vendor = arrive(site, VENDOR, "[TD-1]")
    assert files_of(to_vendor) == {"error 809.png": screenshot}
    vendor_text = to_vendor.message.get_body(("plain",)).get_content()
    assert "Is client 5.1 affected?" in vendor_text and "+attachments" not in vendor_text

    # Bob's file is over the budget: tier 2's handoff lists it, does not attach it.
    site.append(mail(BOB, "Cannot print", "See the capture.", {"capture.png": huge}))
    arrive(site, BOB, "[TD-2]")
    site.append(mail(SAM, "Re: [TD-2] Cannot print", "#route tier2", technician=True))
    listed = arrive(site, MORGAN, "[TD-2] P")
    assert files_of(listed) == {}
    listing = " ".join(listed.message.get_body(("plain",)).get_content().split())
    assert "capture.png (image/png" in listing and "not attached" in listing
    assert "kept on ticket TD-2" in listing

    # #vendor vpnco without the option: the vendor gets no file.
    site.append(mail(MORGAN, "Re: [TD-2] Cannot print", "#vendor vpnco Known issue?",
                     technician=True))
    plain_vendor = arrive(site, VENDOR, "[TD-2]")
    assert files_of(plain_vendor) == {}
    assert "capture.png" not in plain_vendor.message.get_body(("plain",)).get_content()
