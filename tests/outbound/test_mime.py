"""The hand-rolled MIME writer: what it writes parses cleanly with the stdlib parser, and no
user text can add a header."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime

import pytest

from daemon.mail.mime import (
    Address,
    Attachment,
    HeaderError,
    Mail,
    build,
    check_message_id,
    clean,
    encode_header,
    safe_message_ids,
)
from tests.outbound.helpers import all_defects, parse, text_of

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SENDER = Address("IT Support", "support@example.com")


def mail(**changes: object) -> Mail:
    values: dict[str, object] = {
        "sender": SENDER, "to": (Address("Ann Example", "ann@example.org"),),
        "subject": "[TD-7] VPN drops", "message_id": "<td-7-abc@example.com>", "date": NOW,
        "text": "Hello,\n\nyour ticket.\n", "html": "<p>Hello,</p><p>your ticket.</p>",
    }
    values.update(changes)
    return Mail(**values)  # type: ignore[arg-type]


def header_names(data: bytes) -> list[str]:
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return [line.split(":", 1)[0] for line in head.split("\r\n") if not line[:1].isspace()]


def test_alternative_of_text_and_html_parses_without_defects() -> None:
    message = parse(build(mail(in_reply_to="<a@b>", references=("<root@x>", "<a@b>"))))
    assert all_defects(message) == []
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert text_of(parts[0]) == "Hello,\n\nyour ticket.\n"
    assert text_of(parts[1]) == "<p>Hello,</p><p>your ticket.</p>"
    assert message["In-Reply-To"] == "<a@b>"
    assert message["References"].split() == ["<root@x>", "<a@b>"]
    assert message["MIME-Version"] == "1.0"
    assert message["Date"].datetime == NOW


def test_crlf_everywhere_and_lines_short() -> None:
    data = build(mail(text="x" * 3000 + "\n" + "ü" * 500, subject="word " * 80))
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    head = data.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 78


def test_non_ascii_subject_and_names_are_rfc2047_and_decode_back() -> None:
    data = build(mail(subject="[TD-7] Drucker im 3. Stock druckt nur Hieroglyphen: ☃ Grüße",
                      sender=Address("IT-Support Köln", "support@example.com"),
                      to=(Address("Jörg Müller, Jr.", "joerg@example.org"),)))
    assert data.isascii()
    message = parse(data)
    assert all_defects(message) == []
    assert message["Subject"] == "[TD-7] Drucker im 3. Stock druckt nur Hieroglyphen: ☃ Grüße"
    assert message["From"].addresses[0].display_name == "IT-Support Köln"
    assert message["To"].addresses[0].display_name == "Jörg Müller, Jr."
    assert message["To"].addresses[0].addr_spec == "joerg@example.org"


def test_text_is_7bit_when_plain_and_quoted_printable_otherwise() -> None:
    plain = build(mail(text="just ascii\n"))
    assert b"Content-Transfer-Encoding: 7bit" in plain
    fancy = parse(build(mail(text="Grüße\n" + "long " * 400 + "\n\x00nul\n")))
    body = fancy.get_body(("plain",))
    assert body is not None and body["Content-Transfer-Encoding"] == "quoted-printable"
    assert text_of(body) == "Grüße\n" + "long " * 400 + "\n\x00nul\n"


def test_boundary_text_in_a_7bit_body_cannot_break_the_structure() -> None:
    first = build(mail())
    boundary = first.split(b'boundary="', 1)[1].split(b'"', 1)[0].decode()
    evil = f"--{boundary}\nContent-Type: text/html\n\n<script>x</script>\n--{boundary}--\n"
    message = parse(build(mail(text=evil)))
    assert all_defects(message) == []
    parts = list(message.iter_parts())
    assert len(parts) == 2 and text_of(parts[0]) == evil


def test_attachments_make_a_mixed_message() -> None:
    files = (Attachment("screenshot.png", "image/png", bytes(range(256)) * 40),
             Attachment("Übersicht März.pdf", "application/pdf", b"%PDF-1.4 ..."),
             Attachment('a"b\r\nX-Evil: 1.txt', "text/plain\r\nX: y", b"hi"))
    message = parse(build(mail(attachments=files)))
    assert all_defects(message) == []
    assert message.get_content_type() == "multipart/mixed"
    first, *attached = list(message.iter_parts())
    assert first.get_content_type() == "multipart/alternative"
    assert [a.get_filename() for a in attached] == [
        "screenshot.png", "Übersicht März.pdf", 'a"b X-Evil: 1.txt']
    assert attached[0].get_content() == bytes(range(256)) * 40
    assert attached[2].get_content_type() == "application/octet-stream"
    assert "X-Evil" not in message and "X" not in message


@pytest.mark.parametrize("subject", [
    "hi\r\nBcc: victim@example.org",
    "hi\nBcc: victim@example.org",
    "hi\rBcc: victim@example.org",
    "hi\u2028Bcc: victim@example.org",
    "hi\x85Bcc: victim@example.org",
    "Grüße\r\nBcc: victim@example.org",
])
def test_line_breaks_in_subjects_never_start_a_header(subject: str) -> None:
    data = build(mail(subject=subject))
    assert "Bcc" not in header_names(data)
    message = parse(data)
    assert message["Bcc"] is None
    assert "Bcc: victim@example.org" in message["Subject"]


def test_line_breaks_in_names_never_start_a_header() -> None:
    data = build(mail(to=(Address("Ann\r\nBcc: victim@example.org", "ann@example.org"),),
                      sender=Address("IT\nX-Evil: 1", "support@example.com")))
    assert {"Bcc", "X-Evil"}.isdisjoint(header_names(data))
    assert parse(data)["To"].addresses[0].addr_spec == "ann@example.org"


@pytest.mark.parametrize("address", [
    "ann@example.org\r\nBcc: victim@example.org", "ann@example.org>, victim@example.org",
    "Ann <ann@example.org>", "ann@@example.org", "ann@exa mple.org", "", "ann", "jörg@example.org",
])
def test_malformed_addresses_are_refused(address: str) -> None:
    with pytest.raises(HeaderError):
        Address("x", address)


def test_message_ids_are_checked_and_bad_references_dropped() -> None:
    with pytest.raises(HeaderError):
        check_message_id("<a@b>\r\nBcc: victim@example.org")
    assert safe_message_ids(["<a@b>", "<bad>", None, "<c@d>\r\nX: y", "<a@b>", "<e@f>"]) == (
        "<a@b>", "<e@f>")
    with pytest.raises(HeaderError):
        build(mail(in_reply_to="<x@y>\nBcc: v@example.org"))


def test_clean_and_encode_header() -> None:
    assert clean(" a\r\n\tb\x00c  ") == "a b c"
    assert clean("x" * 400, 10) == "x" * 9 + "…"
    assert encode_header("Subject", "a\r\nb") == "Subject: a b"
    with pytest.raises(HeaderError):
        encode_header("Bad Name", "x")


def test_clean_follows_its_rules_on_any_text() -> None:
    """Control characters become spaces, runs of white space one space, ends stripped."""
    rng = random.Random(3)
    pieces = ["a", "é", "✓", " ", "  ", "\t", "\r\n", "\x00", "\x7f", "\x85", "\xa0", "\u2028",
              "\u3000", "\u200b", "\x1c", "\U0001f600"]
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        no_control = re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+", " ", text)
        assert clean(text) == re.sub(r"\s+", " ", no_control).strip(), repr(text)


def test_bare_message_ids_from_the_store_get_their_brackets() -> None:
    assert check_message_id("td-1-abc@example.com") == "<td-1-abc@example.com>"
    assert safe_message_ids(["a@b", "<a@b>", "c@d"]) == ("<a@b>", "<c@d>")
    message = parse(build(mail(message_id="td-7-abc@example.com", in_reply_to="x@y")))
    assert message["Message-ID"] == "<td-7-abc@example.com>" and message["In-Reply-To"] == "<x@y>"


@pytest.mark.parametrize("subject", [
    "é", "Grüße aus Köln – VPN fällt aus " * 5, "日本語のテキスト" * 12, "emoji 🙂🚀 " * 9,
    "Mostly ASCII with one ñ at the end of a rather long subject line that folds ñ",
])
def test_non_ascii_headers_are_short_encoded_words_any_reader_decodes(subject: str) -> None:
    line = encode_header("Subject", subject)
    assert all(len(physical) <= 78 for physical in line.split("\r\n"))
    assert all(len(word) <= 75 for word in line.removeprefix("Subject: ").split("\r\n "))
    message = parse(build(mail(subject=subject)))
    assert str(message["subject"]) == subject.strip()  # the stdlib's reading (policy.default)
