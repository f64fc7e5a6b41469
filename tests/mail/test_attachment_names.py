"""Files we pass on, pure: safe names and types, RFC 2231 for non-ASCII and long names, and
a mail shell completed later is byte for byte the mail `build` writes."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from daemon.mail.mime import (
    Address,
    Attachment,
    Mail,
    attach,
    build,
    build_shell,
    safe_content_type,
    safe_filename,
)

WHEN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def mail(*files: Attachment) -> Mail:
    return Mail(Address("IT Support", "support@example.com"),
                (Address("Ann", "ann@example.org"),), "[TD-1] VPN", "td-1-abc@example.com",
                WHEN, "Hello", "<p>Hello</p>", attachments=files)


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.mark.parametrize(("given", "safe"), [
    ("shot.png", "shot.png"),
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\ann\\Desktop\\error.png", "error.png"),
    ("C:evil.txt", "evil.txt"),
    (".htaccess", "htaccess"),
    ("..", "attachment"),
    ("", "attachment"),
    ("a\r\nX-Evil: 1.txt", "a X-Evil: 1.txt"),
    ("tab\there\x00.png", "tab here .png"),
    ("Übersicht März.pdf", "Übersicht März.pdf"),
])
def test_safe_filename(given: str, safe: str) -> None:
    assert safe_filename(given) == safe


def test_a_long_name_keeps_its_extension() -> None:
    name = safe_filename("x" * 400 + ".png")
    assert len(name) == 150 and name.endswith(".png")


def test_content_types_are_kept_when_plain() -> None:
    assert safe_content_type("Image/PNG") == "image/png"
    assert safe_content_type("application/vnd.ms-excel") == "application/vnd.ms-excel"
    assert safe_content_type("text/plain\r\nX: y") == "application/octet-stream"


@pytest.mark.parametrize("name", ["Übersicht März.pdf", "日本語のファイル名" * 6 + ".png",
                                  "a-very-long-ascii-name-" * 5 + ".log"])
def test_names_come_back_as_written(name: str) -> None:
    data = build(mail(Attachment(name, "image/png", b"\x89PNG\r\n\x00\xff")))
    assert all(len(line) <= 78 for line in data.split(b"\r\n")[:200] if b"filename" in line)
    [part] = list(parse(data).iter_attachments())
    assert part.get_filename() == name and part.get_content() == b"\x89PNG\r\n\x00\xff"
    if not name.isascii():
        assert b"filename*" in data  # RFC 2231, never raw UTF-8 in a header


def test_a_completed_shell_is_the_mail_build_writes() -> None:
    files = (Attachment("a.png", "image/png", bytes(range(256)) * 30),
             Attachment("Überblick.pdf", "application/pdf", b"%PDF-1.4"))
    shell = build_shell(mail(*files))
    assert b"%PDF" not in shell and parse(shell).get_content_type() == "multipart/mixed"
    assert attach(shell, files) == build(mail(*files))


def test_a_name_holding_the_boundary_cannot_break_the_mail() -> None:
    shell = build_shell(mail())
    boundary = shell.split(b'multipart/mixed; boundary="', 1)[1].split(b'"', 1)[0].decode()
    evil = Attachment(f"--{boundary}--", "text/plain", b"hi")
    message = parse(attach(shell, [evil]))
    [part] = list(message.iter_attachments())
    assert part.get_filename() == f"--{boundary}--" and part.get_content() == "hi"


def test_attach_refuses_what_is_not_a_shell() -> None:
    with pytest.raises(ValueError, match="not a mail shell"):
        attach(b"From: x\r\n\r\nhello\r\n", [Attachment("a", "text/plain", b"x")])
