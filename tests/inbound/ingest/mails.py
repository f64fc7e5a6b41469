"""Raw mails for the ingest tests, built the way real clients write them."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

SUPPORT = "support@example.com"


def mail(subject: str = "Printer on floor 3 jams", body: str = "It jams on every page.",
         sender: str = "Ann Example <ann@example.org>", to: str = SUPPORT,
         message_id: str | None = None, in_reply_to: str | None = None,
         references: str | None = None, headers: dict[str, str] | None = None,
         attachment: bytes | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    msg["Message-ID"] = message_id or make_msgid(domain="example.org")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if attachment is not None:
        msg.add_attachment(attachment, maintype="application", subtype="octet-stream",
                           filename="dump.bin")
    return msg.as_bytes()


def bounce(original_message_id: str) -> bytes:
    """A Postfix-style delivery status notification quoting our mail's headers."""
    return (
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n"
        f"To: {SUPPORT}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <bounce-1@mx.example.org>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n--b1\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; gone@example.org\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n"
        "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {SUPPORT}\r\nTo: gone@example.org\r\nMessage-ID: <{original_message_id}>\r\n"
        "Subject: [TD-1] We received your request\r\n--b1--\r\n"
    ).encode()
