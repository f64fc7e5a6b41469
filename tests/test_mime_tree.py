"""The quick MIME splitter reads every mail exactly as the stdlib parser does, or hands it over.

Held on the corpus of real-world mail (tests/mails), on generated mail in every format
bench/mailgen.py writes, and on broken structures each of which must fall back.
"""

from __future__ import annotations

import email
import sys
from pathlib import Path

import pytest

from daemon.message import InboundMessage, ParseLimits, _parse
from daemon.mime_tree import split_tree

MAILS = Path(__file__).parent / "mails"
sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))
from mailgen import generate  # noqa: E402


def stdlib(raw: bytes) -> InboundMessage:
    return _parse(raw, ParseLimits(), email.message_from_bytes)


def quick(raw: bytes) -> InboundMessage:
    tree = split_tree(raw)
    assert tree is not None, "expected the quick path"
    return _parse(raw, ParseLimits(), lambda _: tree)


def same(a: InboundMessage, b: InboundMessage) -> None:
    assert a == b
    assert dict(a.headers) == dict(b.headers)  # not part of ==


@pytest.mark.parametrize("path", sorted(MAILS.glob("*.eml")), ids=lambda p: p.stem)
def test_real_world_mail_reads_the_same_either_way(path: Path) -> None:
    raw = path.read_bytes()
    expected = stdlib(raw)
    if split_tree(raw) is None:
        return  # handed to the stdlib: the same by construction (checked below for some)
    same(quick(raw), expected)


def test_generated_mail_takes_the_quick_path_and_reads_the_same() -> None:
    mails = list(generate(600, seed=7))
    quick_ones = 0
    for mail in mails:
        if split_tree(mail.raw) is not None:
            quick_ones += 1
            same(quick(mail.raw), stdlib(mail.raw))
    # Only bounces (message/* parts, which the stdlib parses further) may be handed over.
    assert quick_ones >= len(mails) - sum(m.kind == "bounce" for m in mails)


def test_most_of_the_real_world_corpus_takes_the_quick_path() -> None:
    raws = [path.read_bytes() for path in MAILS.glob("*.eml")]
    assert sum(split_tree(raw) is not None for raw in raws) >= len(raws) * 0.6


HEAD = b"From: a@example.org\r\nTo: support@example.com\r\nSubject: s\r\n"
MULTI = HEAD + b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n'


@pytest.mark.parametrize("raw", [
    pytest.param(MULTI + b"--b1\r\n\r\nno close\r\n", id="closing delimiter missing"),
    pytest.param(MULTI + b"just text, no delimiter at all\r\n", id="start delimiter missing"),
    pytest.param(HEAD + b"Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\na\r\n--x--\r\n",
                 id="multipart without boundary"),
    pytest.param(HEAD + b"this is not a header\r\n\r\nbody\r\n", id="body line among headers"),
    pytest.param(b" folded first\r\n" + HEAD + b"\r\nbody", id="first line a continuation"),
    pytest.param(HEAD + b"no blank line before the end", id="no header-body separator"),
    pytest.param(HEAD + b"\r\nline one\rline two\r\n", id="bare CR line ends"),
    pytest.param(b"From someone Mon Jan  1 00:00:00 2026\r\n" + HEAD + b"\r\nbody\r\n",
                 id="mbox envelope line"),
    pytest.param(MULTI + b"--b1\r\nContent-Type: message/rfc822\r\n\r\n" + HEAD +
                 b"\r\ninner\r\n--b1--\r\n", id="message/rfc822 part"),
    pytest.param(MULTI + b"--b1--\r\n", id="closed before any part"),
    pytest.param(HEAD + b"Content-Type: multipart/mixed; boundary=b1\r\n"
                 b"Content-Transfer-Encoding: base64\r\n\r\n--b1\r\n\r\nx\r\n--b1--\r\n",
                 id="multipart with a transfer encoding"),
])
def test_what_the_quick_path_is_not_sure_of_goes_to_the_stdlib(raw: bytes) -> None:
    assert split_tree(raw) is None
    assert email.message_from_bytes(raw) is not None


@pytest.mark.parametrize("raw", [
    pytest.param(MULTI + b"preamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\none\r\n"
                 b"--b1 \t\r\n\r\ntwo, headerless\r\n--b1--  \r\nepilogue\r\n",
                 id="preamble, padding after delimiters, epilogue"),
    pytest.param(MULTI + b"--b1\r\nContent-Type: text/plain\r\n\r\n--b1x is no delimiter\r\n"
                 b" --b1 neither\r\n--b1--\r\n", id="delimiter-like lines inside a part"),
    pytest.param(MULTI.replace(b"\r\n", b"\n") + b"--b1\nContent-Type: text/plain\n\nunix\n"
                 b"--b1--\n", id="LF line ends"),
    pytest.param(MULTI + b"--b1\r\n--b1\r\nContent-Type: text/plain\r\n\r\nx\r\n--b1--",
                 id="consecutive delimiters, no final line end"),
    pytest.param(HEAD + b"X-Long: a\r\n\tfolded\r\n  twice\r\nX-8bit: caf\xe9\r\n\r\nbody\r\n",
                 id="folded and 8-bit header values"),
    pytest.param(MULTI + b"--b1\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n"
                 b"--b2\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 b"Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe\r\n"
                 b"--b2\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--b2--\r\n"
                 b"--b1\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\n"
                 b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0x\r\n--b1--\r\n",
                 id="nested alternative and an attachment"),
])
def test_edge_cases_it_does_read_come_out_as_the_stdlib_reads_them(raw: bytes) -> None:
    same(quick(raw), stdlib(raw))
