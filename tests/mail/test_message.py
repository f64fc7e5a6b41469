"""Parsing raw mail into InboundMessage: headers, charsets, bodies, attachments, defects,
limits, and that no byte input raises anything but MailRejected."""

from __future__ import annotations

import dataclasses
import email.utils
import hashlib
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from daemon.mail.digest import is_redelivery
from daemon.mail.header_text import (
    _rfc5322_date,
    decode_header,
    header_date,
    message_ids,
    normalise_message_id,
    unfold,
)
from daemon.mail.message import MB, InboundMessage, MailRejected, ParseLimits, parse_message, unflow

MAILS = Path(__file__).parents[1] / "mails"
CORPUS = sorted(MAILS.glob("*.eml"))


def load(name: str, limits: ParseLimits | None = None) -> InboundMessage:
    return parse_message((MAILS / name).read_bytes(), limits)


# ------------------------------------------------------------------ headers

HEADERS = [
    # file, subject, from address, from name
    ("gmail_reply.eml", "Re: [TD-12] VPN drops every hour", "alice.nguyen@gmail.com",
     "Alice Nguyen"),
    ("german_outlook_reply.eml", "AW: [TD-7] Drucker druckt nicht",
     "guenther.schaefer@example.de", "Günther Schäfer"),
    ("german_gmail_reply.eml", "Re: [TD-8] Passwort zurücksetzen", "jana.becker@gmail.com",
     "Jana Becker"),
    ("french_iphone_reply.eml", "RE: [TD-9] Accès VPN", "helene.dubois@example.fr",
     "Hélène Dubois"),
    ("chinese_foxmail_reply.eml", "回复：[TD-11] 打印机无法连接", "li.wei@example.cn", "李伟"),
    ("new_ticket_latin1.eml", "Bildschirm flackert im Büro 3.17", "juergen.mueller@example.de",
     "Jürgen Müller"),
    ("new_ticket_attachments.eml", "Fehler beim Öffnen: Prüfbericht.pdf",
     "greta.holm@example.com", "Greta Holm"),
    ("eight_bit_headers.eml", "Skrivaren på plan 4 – fungerar inte", "zoe.angstrom@example.se",
     "Zoë Ångström"),
    ("unknown_charset.eml", "Café machine display broken", "kiosk7@example.com",
     "Kiosk Terminal"),
    ("missing_message_id.eml", "Backup job failed on nas01", "root@nas01.example.com",
     "Cron Daemon"),
    ("qmail_bounce.eml", "failure notice", "MAILER-DAEMON@mail.example.info", ""),
    ("exchange_ndr.eml", "Undeliverable: [TD-45] Your request was escalated",
     "MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@example.org", "Microsoft Outlook"),
    ("french_autoreply.eml", "Réponse automatique : [TD-9] Accès VPN",
     "amelie.martin@example.fr", "Amélie Martin"),
]


@pytest.mark.parametrize(("name", "subject", "address", "display"), HEADERS)
def test_headers_are_decoded(name: str, subject: str, address: str, display: str) -> None:
    message = load(name)
    assert (message.subject, message.from_addr, message.from_name) == (subject, address, display)


def test_identity_and_threading_headers() -> None:
    message = load("gmail_reply.eml")
    assert message.message_id == "CAF=k2Vw7zQx1mJ4n_R8bT5yLs0pE@mail.gmail.com"
    assert not message.message_id_generated
    assert message.in_reply_to == "td-out-12-2.d4e5f6@example.com"
    assert message.references == ("td-out-12-1.a1b2c3@example.com",
                                  "CAF=k2Vv1q8Jd8xHn0tY4uZ_p3QmE@mail.gmail.com",
                                  "td-out-12-2.d4e5f6@example.com")
    assert message.to == ("support@example.com",)
    assert message.delivered_to == ("support@example.com",)
    assert message.date == datetime(2026, 6, 3, 10, 13, 52, tzinfo=timezone(timedelta(hours=2)))
    assert "dmarc=pass" in (message.header("Authentication-Results") or "")


def test_messy_references_and_in_reply_to() -> None:
    message = load("messy_references.eml")
    assert message.in_reply_to == "td-out-12-2.d4e5f6@example.com"
    # commas, tabs, odd spacing inside <>, a comment; ids keep their case (a case variant
    # is another id), and a bare word between bracketed ids is no id
    assert message.references == ("td-out-12-1.a1b2c3@example.com",
                                  "CAF=k2Vv1q8Jd8xHn0tY4uZ_p3QmE@mail.gmail.com",
                                  "TD-OUT-12-1.A1B2C3@EXAMPLE.COM",
                                  "td-out-12-2.d4e5f6@example.com")
    assert message.message_id == "MessyRefs.4711@Client.Example.ORG"


# ------------------------------------------------------------------ addresses

def headers(**fields: str) -> InboundMessage:
    """A mail with these header fields (bytes as written: encoded words, CR LF ...)."""
    lines = [f"{name.replace('_', '-')}: {value}" for name, value in fields.items()]
    return parse_message(("\r\n".join(["Subject: x", *lines]) + "\r\n\r\nHello\r\n").encode())


NOBODY = [
    # From, what from_problem says
    ("=?utf-8?q?x_=0A?=<alex.chen@example.com> <attacker@evil.test>",
     "2 addresses in angle brackets in one mailbox"),
    ("=?utf-8?q?Eve=0D=0ABcc:_evil2@evil.test?= <crlf3@customer.example>",
     "a group (':') that no ';' ends"),
    ("alex.chen@example.com, attacker@evil.test",
     "From holds 2 addresses (alex.chen@example.com, attacker@evil.test): nobody can tell"),
    ("", "From holds no address"),
    ("undisclosed-recipients:;", "From holds no address"),
    ("Alex Chen", "'Alex Chen': no address"),
    ("alex.chen@example.com, <<x@evil.test>", "2 addresses in angle brackets"),
]


@pytest.mark.parametrize(("sender", "why"), NOBODY)
def test_a_from_that_is_not_one_mailbox_names_nobody(sender: str, why: str) -> None:
    message = headers(From=sender)
    assert (message.from_addr, message.from_name) == ("", "")
    assert message.from_problem is not None and why in message.from_problem
    assert "\n" not in message.from_problem and "\r" not in message.from_problem


def test_no_from_or_two_from_fields_name_nobody() -> None:
    assert parse_message(b"Subject: x\r\n\r\nHi\r\n").from_problem == "the mail has no From"
    two = parse_message(b"From: ann@example.org\r\nFrom: alex.chen@example.com\r\n\r\nHi\r\n")
    assert two.from_addr == "" and "From holds 2 addresses" in (two.from_problem or "")


@pytest.mark.parametrize(("sender", "address", "name"), [
    ('"Chen, Alex @ IT" <alex.chen@example.com>', "alex.chen@example.com", "Chen, Alex @ IT"),
    ("=?utf-8?b?PGF0dGFja2VyQGV2aWwudGVzdD4=?= <ann@example.org>", "ann@example.org",
     "<attacker@evil.test>"),
    ("ann@example.org (Ann Example)", "ann@example.org", "Ann Example"),
    ("Martens, Bob <bob.martens@example.com>", "bob.martens@example.com", "Martens, Bob"),
    # line breaks and other controls in a decoded name become spaces: no header from a name
    ("=?utf-8?q?Eve=0D=0ABcc=3A_x=40evil.test?= <crlf3@customer.example>",
     "crlf3@customer.example", "Eve  Bcc: x@evil.test"),
    ("=?utf-8?q?Eve=00=E2=80=A8Bcc=3A_x=C2=85y?= <a@example.org>", "a@example.org",
     "Eve  Bcc: x y"),
])
def test_one_mailbox_is_the_sender_and_its_name_only_text(sender: str, address: str,
                                                          name: str) -> None:
    message = headers(From=sender)
    assert (message.from_addr, message.from_name, message.from_problem) == (address, name, None)


def test_reply_to_to_and_cc_keep_only_the_entries_read_strictly() -> None:
    message = headers(From="ann@example.org",
                      Reply_To="=?utf-8?q?=3Cevil=40x.test=3E?= <ann@example.org>, a@b <c@d>",
                      To="support@example.com, =?utf-8?q?x?=<a@x.test> <b@x.test>",
                      Cc='Team: "Lee, Kim" <kim@example.org>, bad;, =?utf-8?q?=3Cz=40z?= <zed@x>')
    assert message.reply_to == ("ann@example.org",)
    assert message.to == ("support@example.com",)
    assert message.cc == ("kim@example.org", "zed@x")  # the group's member "bad" dropped
    assert headers(Reply_To="alex.chen@example.com <attacker@evil.test>").reply_to == ()


def test_outlook_names_of_the_corpus() -> None:
    assert (load("outlook_desktop_html_only_msonormal.eml").from_name,
            load("owa_german_html_only.eml").from_name) == ("Martens, Bob", "Schäfer, Günther")


def test_folded_message_id() -> None:
    message = load("exchange_ndr.eml")
    assert message.message_id == ("f0e1d2c3-b4a5-4968-8776-655443322110"
                                  "@AM0PR10MB3284.EURPRD10.PROD.OUTLOOK.COM")


def test_missing_message_id_is_the_content_digest() -> None:
    raw = (MAILS / "missing_message_id.eml").read_bytes()
    message = parse_message(raw)
    assert message.message_id == "sha256:" + message.digest
    assert message.message_id_generated
    # The same mail along another path (a trace line, CRLF line ends): the same id.
    relayed = b"Received: from mx2.example.com\n" + raw.replace(b"\n", b"\r\n")
    assert parse_message(relayed).message_id == message.message_id


def test_the_digest_tells_mails_under_one_id_apart() -> None:
    raw = (MAILS / "gmail_reply.eml").read_bytes()
    digest = parse_message(raw).digest
    assert len(digest) == 64
    assert parse_message(b"Received: by mx\r\nX-Spam: 0\r\n" + raw).digest == digest
    for changed in (raw.replace(b"Subject: ", b"Subject: x"), raw + b"One more line.\n",
                    raw.replace(b"From: ", b"From: Eve ", 1)):
        assert parse_message(changed).digest != digest
    assert is_redelivery(digest, {digest}) and is_redelivery(digest, {"", "other"})
    assert not is_redelivery(digest, {"other"}) and not is_redelivery(digest, set())


@pytest.mark.parametrize(("value", "ids"), [
    ("<A@B.example>", ["A@B.example"]),
    ("<q1 mailer.example@mailer.example>", ["q1 mailer.example@mailer.example"]),
    ("<a'; DROP x;--@customer.example>", ["a'; DROP x;--@customer.example"]),
    ("<a(b)@x>", ["a(b)@x"]),
    ("<a@b> <A@b>", ["a@b", "A@b"]),
    ("  < a@b >  ", ["a@b"]),
    ("<a@b> <c@d>,<e@f>\t<a@b>", ["a@b", "c@d", "e@f"]),
    ("<a@b> (comment <x@y>)", ["a@b"]),
    ("bare@id.example other@id.example", ["bare@id.example", "other@id.example"]),
    ("<no-at-sign>", ["no-at-sign"]),
    ("", []),
    ("<>", []),
    ("garbage without ids", []),
])
def test_message_ids(value: str, ids: list[str]) -> None:
    assert message_ids(value) == ids


def test_normalise_message_id() -> None:
    assert normalise_message_id(" <ABC.123@Example.COM> ") == "ABC.123@Example.COM"
    assert normalise_message_id("") is None


@pytest.mark.parametrize(("raw", "text"), [
    ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),
    ("=?utf-8?q?a?=\r\n =?utf-8?b?Yg==?=", "ab"),
    ("=?utf-8?q?a?= b", "a b"),
    ("=?iso-8859-1?q?caf=E9?=", "café"),
    ("=?ISO-8859-1?B?Y2Fm6Q==?=", "café"),
    ("=?nonsense?q?caf=C3=A9?=", "café"),
    ("=?utf-8?q?caf=E9?=", "café"),              # declared utf-8, really Latin-1
    ("=?UTF-8*en?Q?hello?=", "hello"),           # RFC 2231 language tag
    ("=?utf-8?b?aGk?=", "hi"),                   # missing base64 padding
    ("=?utf-8?q?line=0Abreak=0D?=", "line break"),  # never a CR or LF in a header
    ("plain\r\n folded", "plain folded"),
    ("=?utf-8?q?unterminated", "=?utf-8?q?unterminated"),
])
def test_decode_header(raw: str, text: str) -> None:
    assert decode_header(raw) == text


def test_dates() -> None:
    def date_of(value: str) -> datetime | None:
        return parse_message(f"Date: {value}\n\nbody\n".encode()).date

    assert date_of("Wed, 3 Jun 2026 10:00:00 -0000") == datetime(2026, 6, 3, 10, tzinfo=UTC)
    assert date_of("not a date") is None
    assert date_of("Wed, 3 Jun 99999 10:00:00 +0000") is None
    assert parse_message(b"Subject: x\n\nbody\n").date is None


def general_date(value: str) -> datetime | None:
    """header_date by parsedate_to_datetime alone (no quick path)."""
    if not value.strip():
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(unfold(value))
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def same_date(got: datetime | None, expected: datetime | None) -> None:
    assert got == expected
    assert repr(got) == repr(expected)  # the same offset, the same tzinfo


QUICK_DATES = ["Mon, 02 Mar 2026 07:30:58 +0000", "2 Mar 2026 07:30:58 +0100",
               "Wed, 03 Jun 2026 10:13:52 +0200", "Mon, 02 Mar 2026 07:30:58 -0530",
               "  Mon, 02 Mar 2026 07:30:58 +0000\t", "Sun, 31 Dec 9999 23:59:59 +0000",
               "Mon, 02 Mar 0100 07:30:58 +0000", "Mon, 02 Mar 2026 07:30:58 +0099",
               "Fri, 02 Mar 2026 07:30:58 +0000"]  # the wrong weekday is ignored
GENERAL_DATES = ["Mon, 02 Mar 2026 07:30:58 -0000", "Tue, 31 Feb 2026 10:00:00 +0000",
                 "Mon, 02 Mar 2026 24:00:00 +0000", "Mon, 02 Mar 2026 23:59:60 +0000",
                 "Mon, 02 Mar 0099 07:30:58 +0000", "Mon, 02 Mar 99 07:30:58 +0000",
                 "Mon, 02 mar 2026 07:30:58 +0000", "Mon, 02 Mar 2026 07:30:58 +9959",
                 "Mon, 02 Mar 2026 07:30:58 +0000 (UTC)", "Mon, 02 Mar 2026 07:30:58 GMT",
                 "Mon,  02 Mar 2026 07:30:58 +0000", "Mon, 02 Mar 2026 07:30 +0000",
                 "Xyz, 02 Mar 2026 07:30:58 +0000", "Mon, 00 Mar 2026 07:30:58 +0000",
                 "Mon,\r\n 02 Mar 2026 07:30:58 +0000", "Mon, 2 Mar 2026 7:30:58 +0000",
                 "02-Mar-2026 07:30:58 +0000", "Mon, 02 Mar 2026 07:30:58 +01:00", "", " ",
                 "Mon, 02 Mar 2026 07:30:58 +0000\x00", "Mon, 02 Mar 2026 07:30:58 EST"]


@pytest.mark.parametrize("value", QUICK_DATES + GENERAL_DATES)
def test_quick_dates_are_the_general_ones(value: str) -> None:
    if value in QUICK_DATES:
        assert _rfc5322_date(value) is not None
    else:
        assert _rfc5322_date(value) is None
    same_date(header_date(value), general_date(value))


def test_random_dates() -> None:
    rng = random.Random(3)
    for _ in range(3000):
        moment = datetime(rng.randint(1, 9999), rng.randint(1, 12), rng.randint(1, 28),
                          rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
                          tzinfo=timezone(timedelta(minutes=rng.randint(-1439, 1439))))
        value = email.utils.format_datetime(moment)
        if rng.random() < 0.3:
            value = value.replace("Mar", "mar").replace(" +", " -").replace(", 0", ", ")
        same_date(header_date(value), general_date(value))


# ------------------------------------------------------------------ bodies and charsets

def test_latin1_body() -> None:
    message = load("new_ticket_latin1.eml")
    assert "flackert der Bildschirm im Büro 3.17" in message.body_text
    assert message.html is None and message.defects == ()


def test_unknown_charset_falls_back() -> None:
    message = load("unknown_charset.eml")
    assert message.body_text.startswith("The café machine display shows garbage — please")
    assert message.defects == ("message: unknown charset 'x-unknown', read as utf-8",)


def test_misspelt_charset_with_cp1252_bytes() -> None:
    message = load("bad_charset_alias.eml")
    assert "prints 100 € as 100 ? and the customer’s name" in message.body_text
    assert message.defects == ("message: unknown charset 'utf-8lias', read as cp1252",)


def test_declared_charset_wrong_falls_back_to_cp1252() -> None:
    raw = b"Content-Type: text/plain; charset=utf-8\n\n100 \x80 and caf\xe9\n"
    message = parse_message(raw)
    assert message.body_text == "100 € and café\n"
    assert message.defects == ("message: text is not valid utf-8, read as cp1252",)


def test_gb18030_body() -> None:
    assert load("chinese_foxmail_reply.eml").body_text.startswith("打印机还是连不上。")


def test_alternative_prefers_plain_and_keeps_html() -> None:
    message = load("gmail_reply.eml")
    assert message.body_text.startswith("Hi,\n\nthe VPN dropped again")
    assert message.html is not None and 'class="gmail_quote' in message.html


def test_html_only_mail_gets_text_from_html() -> None:
    message = load("html_only_resolve.eml")
    assert message.body_text.startswith("#resolve replaced the docking station")
    assert "#reopen planted in the quote" in message.body_text  # the whole mail, quote too
    assert "#reopen" not in message.new_text
    assert message.reply_marker == "start of a quoted-history container in the HTML"


def test_empty_plain_alternative_uses_html() -> None:
    message = load("html_alternative_empty_plain.eml")
    assert message.body_text.startswith("The camera works after the driver update.")


def test_format_flowed_is_joined() -> None:
    message = load("thunderbird_reply.eml")
    assert "not on the desktop in room 2.14. Could someone" in message.body_text


@pytest.mark.parametrize(("text", "delsp", "joined"), [
    ("one \ntwo\n", False, "one two\n"),
    ("one \ntwo", True, "onetwo"),
    ("> quoted \n> more\nnew", False, "> quoted more\nnew"),
    ("> quoted \nnot quoted", False, "> quoted \nnot quoted"),
    ("text\n-- \nsig", False, "text\n-- \nsig"),
    (" >From stuffed", False, ">From stuffed"),
])
def test_unflow(text: str, delsp: bool, joined: str) -> None:
    assert unflow(text, delsp) == joined


# ------------------------------------------------------------------ attachments

def test_attachments_metadata_and_content() -> None:
    pdf, png = load("new_ticket_attachments.eml").attachments
    assert (pdf.filename, pdf.content_type, pdf.size) == ("Prüfbericht Juni.pdf",
                                                          "application/pdf", 90)
    assert pdf.sha256 == "7d4aa27f151c27aaf7aec01bc5235476f934d1480625f93a7a3663dd6e25ac7b"
    assert pdf.content.startswith(b"%PDF-1.4") and not pdf.inline
    assert (png.filename, png.content_type, png.size) == ("Bildschirmfoto über VPN.png",
                                                          "image/png", 67)
    assert png.sha256 == hashlib.sha256(png.content).hexdigest()
    assert png.inline and png.content_id == "part1.Ab3dE5fG.hI7jK9lM@example.com"
    assert "%PDF" not in repr(pdf)  # the bytes stay out of logs


def test_forwarded_mail_is_an_attachment_not_the_body() -> None:
    message = load("forwarded_as_attachment.eml")
    assert message.body_text.strip() == ("Is this mail genuine? It asks me to confirm my "
                                         "password.")
    (forwarded,) = message.attachments
    assert (forwarded.filename, forwarded.content_type) == ("Your mailbox is full.eml",
                                                            "message/rfc822")
    assert b"Subject: Your mailbox is full" in forwarded.content
    assert message.embedded_message_ids == ("phish-8f7e6d@examp1e-mail.com",)


def test_report_parts() -> None:
    message = load("postfix_bounce.eml")
    assert [a.content_type for a in message.attachments] == ["message/delivery-status",
                                                             "text/rfc822-headers"]
    assert b"Action: failed" in message.attachments[0].content
    assert message.embedded_message_ids == ("td-out-41.9f8e7d@example.com",)


def test_attachment_without_a_name_gets_one() -> None:
    raw = (b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n"
           b"hi\n--b\nContent-Type: application/octet-stream\n\n\x00\x01\n--b--\n")
    assert [a.filename for a in parse_message(raw).attachments] == ["part-2"]


# ------------------------------------------------------------------ malformed mail

def test_missing_closing_boundary_is_a_defect_not_a_rejection() -> None:
    message = load("malformed_no_close_boundary.eml")
    assert message.body_text.startswith("Here is the log from this morning.")
    assert [a.filename for a in message.attachments] == ["boot.log"]
    assert message.attachments[0].content.startswith(b"[    0.000000] Linux")
    assert message.defects == ("message: closing MIME boundary missing (mail may be cut off)",)


def test_bad_base64_is_decoded_as_far_as_possible() -> None:
    message = load("bad_base64.eml")
    assert message.body_text == "The scanner on 2F sends broken files."
    assert message.attachments[0].content.startswith(b"%PDF-1.4")
    assert "part 1: bad base64 (characters outside the alphabet)" in message.defects
    assert "part 2: bad base64 (wrong padding)" in message.defects


def test_multipart_without_boundary_is_read_as_text() -> None:
    message = load("no_boundary.eml")
    assert message.body_text.strip() == ("The nightly report could not be generated: "
                                         "database timeout.")
    assert "message: multipart without a boundary parameter" in message.defects


def test_deep_nesting_is_reported() -> None:
    depth = 30
    head = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i)
                    for i in range(depth))
    message = parse_message(head + b"Content-Type: text/plain\n\ndeep\n")
    assert any("nested deeper than" in d for d in message.defects)


# ------------------------------------------------------------------ limits

def test_size_limit() -> None:
    with pytest.raises(MailRejected) as caught:
        parse_message(b"x" * 41_234_567, ParseLimits(max_size=30 * MB))
    assert caught.value.reason == ("mail is 41.2 MB, over the 30 MB limit "
                                   "(settings: mail.max_size)")


def test_attachment_count_limit() -> None:
    with pytest.raises(MailRejected) as caught:
        load("new_ticket_attachments.eml", ParseLimits(max_attachments=1))
    assert caught.value.reason == ("mail has 2 attachments, over the limit of 1 "
                                   "(settings: mail.max_attachments)")


def test_attachment_size_limit() -> None:
    with pytest.raises(MailRejected) as caught:
        load("new_ticket_attachments.eml", ParseLimits(max_attachment_size=80))
    assert caught.value.reason == ("attachment 'Prüfbericht Juni.pdf' is 90 bytes, over the "
                                   "80 bytes limit (settings: mail.max_attachment_size)")


def test_a_30_mb_attachment_passes_the_default_limits() -> None:
    import base64

    payload = bytes(range(256)) * (30 * MB // 256)
    encoded = base64.encodebytes(payload)
    raw = (b"Message-ID: <big@example.com>\nContent-Type: multipart/mixed; boundary=B\n\n"
           b"--B\nContent-Type: text/plain\n\nsee attachment\n--B\n"
           b"Content-Type: application/zip; name=big.zip\nContent-Transfer-Encoding: base64\n\n"
           + encoded + b"--B--\n")
    (attachment,) = parse_message(raw).attachments
    assert attachment.size == len(payload)
    assert attachment.sha256 == hashlib.sha256(payload).hexdigest()


# ------------------------------------------------------------------ robustness

def test_line_endings_do_not_matter() -> None:
    for path in CORPUS:
        lf = parse_message(path.read_bytes())
        crlf = parse_message(path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        assert _summary(crlf) == _summary(lf), path.name


def _summary(message: InboundMessage) -> tuple[object, ...]:
    # Text attachments keep their own line ends, so compare their names, not their bytes.
    names = [(a.filename, a.content_type) for a in message.attachments]
    return (message.subject, message.new_text, message.references, names,
            message.embedded_message_ids, message.from_addr)


def test_message_is_frozen() -> None:
    message = load("gmail_reply.eml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.subject = "x"  # type: ignore[misc]


def _variants(raw: bytes, rng: random.Random) -> list[bytes]:
    """Truncations and garbling of one mail."""
    cuts = [raw[:rng.randrange(len(raw) + 1)] for _ in range(12)]
    garbled = []
    for _ in range(12):
        data = bytearray(raw)
        for _ in range(rng.randrange(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        garbled.append(bytes(data))
    swaps = [raw.replace(b"\n", b"\r"), raw.replace(b"=", b"=?"), raw.replace(b"--", b"-"),
             raw.replace(b"\n\n", b"\n", 1), raw.replace(b"base64", b"quoted-printable"),
             raw.replace(b"charset=", b"charset=\xff"), raw.replace(b":", b"", 3),
             raw + raw, raw[::-1]]
    return cuts + garbled + swaps


ODD_INPUTS = [
    b"", b"\x00" * 100, b"\n\n\n", b"From nobody\n", b":", b"Subject: =?\n\n",
    b"Content-Type: multipart/mixed; boundary=\"\"\n\n--\n--\n",
    b"Content-Type: message/rfc822\n\nnot a message",
    b"Content-Type: text/plain; charset=base64\n\nhello",
    b"Content-Type: text/plain; charset=utf-16\n\n\xff",
    b"Content-Type: text/plain; charset*=utf-8''%FF%FE\n\nx",
    b"Content-Transfer-Encoding: x-uuencode\n\nbegin 644 f\n#86)C\n`\nend\n",
    b"Subject: " + b"a" * 100_000 + b"\n\n",
    b"To: " + b"<a@b>," * 5000 + b"\n\n",
    b"Content-Type: multipart/mixed; boundary=x\n\n" + b"--x\n" * 2000,
]


def test_no_byte_input_raises_anything_but_mail_rejected() -> None:
    rng = random.Random(20260603)
    inputs = ODD_INPUTS + [v for path in CORPUS for v in _variants(path.read_bytes(), rng)]
    for raw in inputs:
        try:
            message = parse_message(raw)
        except MailRejected as exc:
            assert exc.reason
        else:
            assert isinstance(message.new_text, str) and message.message_id
