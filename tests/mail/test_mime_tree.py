"""The quick MIME splitter reads every mail exactly as the stdlib parser does, or hands it over.

Held on the corpus of real-world mail (tests/mails), on generated mail in every format
bench/mailgen.py writes, and on broken structures each of which must fall back. Its Parts
answer what Tierdesk asks of a part (header values, content type, decoded body and the
defects decoding finds) as the stdlib's Messages do.
"""

from __future__ import annotations

import email
import sys
from email.message import Message
from pathlib import Path

import pytest

from daemon.mail.message import InboundMessage, ParseLimits, _parse
from daemon.mail.mime_tree import Part, split_tree

MAILS = Path(__file__).parents[1] / "mails"
sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
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
    assert a.date is None or a.date.utcoffset() == b.date.utcoffset()  # nor is the offset


ASKED = ("content-type", "content-transfer-encoding", "content-disposition", "content-id",
         "from", "to", "subject", "message-id", "x-not-there")


def same_parts(quick: Message, stdlib: Message) -> None:
    """Part by part, the quick tree answers as the stdlib's does."""
    assert isinstance(quick, Part)
    assert list(quick.raw_items()) == list(stdlib.raw_items())
    assert quick.get_content_type() == stdlib.get_content_type()
    for name in ASKED + tuple(name for name, _ in stdlib.raw_items()):
        assert str(quick.get(name, "-")) == str(stdlib.get(name, "-"))
        assert type(quick.get(name)) is type(stdlib.get(name))
    assert quick.is_multipart() == stdlib.is_multipart()
    if stdlib.is_multipart():
        children = stdlib.get_payload()
        assert len(quick.get_payload()) == len(children)
        for mine, theirs in zip(quick.get_payload(), children, strict=True):
            same_parts(mine, theirs)
    else:
        assert quick.get_payload() == stdlib.get_payload()
    assert quick.decoded() == stdlib.get_payload(decode=True)
    assert [type(d) for d in quick.defects] == [type(d) for d in stdlib.defects]


@pytest.mark.parametrize("path", sorted(MAILS.glob("*.eml")), ids=lambda p: p.stem)
def test_real_world_mail_reads_the_same_either_way(path: Path) -> None:
    raw = path.read_bytes()
    expected = stdlib(raw)
    tree = split_tree(raw)
    if tree is None:
        return  # handed to the stdlib: the same by construction (checked below for some)
    same(quick(raw), expected)
    same_parts(tree, email.message_from_bytes(raw))


def test_generated_mail_takes_the_quick_path_and_reads_the_same() -> None:
    mails = list(generate(600, seed=7))
    quick_ones = 0
    for mail in mails:
        tree = split_tree(mail.raw)
        if tree is not None:
            quick_ones += 1
            same(quick(mail.raw), stdlib(mail.raw))
            same_parts(tree, email.message_from_bytes(mail.raw))
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
    pytest.param(HEAD + b"Name : value\r\n\r\nbody\r\n", id="space before a header colon"),
    pytest.param(MULTI + b"--b1\r\nContent-Type: text/plain\r\nnot a header\r\n\r\nx\r\n"
                 b"--b1--\r\n", id="a part's line that is no header"),
    pytest.param(HEAD + b"\r\nbody\r\n" + b"bare CR\rin the body\r\n", id="bare CR in a body"),
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
    same_parts(split_tree(raw), email.message_from_bytes(raw))


def leaf(headers: bytes, body: bytes) -> bytes:
    return HEAD + b"MIME-Version: 1.0\r\n" + headers + b"\r\n" + body


@pytest.mark.parametrize("raw", [
    pytest.param(HEAD + b"X-A:no space\r\nX-B:   \r\n\tcontinued only\r\nX-C:\r\n"
                 b"X-D: \r\nX-E:\t\tvalue\t \r\n x\r\n\r\nbody\r\n", id="header spacing"),
    pytest.param(HEAD.replace(b"\r\n", b"\n") + b"X-B:  \n continued\nX-C:\n\nbody\n",
                 id="header spacing, LF"),
    pytest.param(HEAD + b"x-lower: v\r\nX-Dup: 1\r\nx-dup: 2\r\nX-Odd!#$%&'*+-.^_`|~: v\r\n"
                 b"\r\nbody\r\n", id="names: case, duplicates, odd characters"),
    pytest.param(leaf(b"Content-Type: TEXT/PLAIN; CHARSET=ISO-8859-1\r\n", b"caf\xe9\r\n"),
                 id="uppercase content type"),
    pytest.param(leaf(b"Content-Type: text\r\n", b"x"), id="content type without a slash"),
    pytest.param(leaf(b"Content-Type: a/b/c\r\n", b"x"), id="content type with two slashes"),
    pytest.param(leaf(b"Content-Type: text/plain; name=caf\xe9.txt\r\n", b"x"),
                 id="8-bit content type"),
    pytest.param(leaf(b"Content-Transfer-Encoding: base64\xe9\r\n", b"YWJj\r\n"),
                 id="8-bit transfer encoding"),
    pytest.param(leaf(b"Content-Transfer-Encoding: BASE64\r\n", b"YWJj\r\nZGVm\r\n"),
                 id="uppercase base64"),
    pytest.param(leaf(b"Content-Transfer-Encoding: base64 \r\n", b"YWJj\r\n"),
                 id="base64 with a trailing blank (not decoded)"),
    pytest.param(leaf(b"Content-Transfer-Encoding: base64\r\n", b"YWJj\r\nZA\r\n"),
                 id="base64 padding missing"),
    pytest.param(leaf(b"Content-Transfer-Encoding: base64\r\n", b"YW*Jj\r\nZGVm\r\n"),
                 id="base64 with a stray character"),
    pytest.param(leaf(b"Content-Transfer-Encoding: base64\r\n", b"YW*Jj\r\nZA\r\n"),
                 id="base64 stray character and no padding"),
    pytest.param(leaf(b"Content-Transfer-Encoding: base64\r\n", b"YWJjZ\r\n"),
                 id="base64 of impossible length"),
    pytest.param(leaf(b"Content-Transfer-Encoding: base64\r\n", b"YQ==YQ==\r\n"),
                 id="base64 data after padding"),
    pytest.param(leaf(b"Content-Transfer-Encoding: base64\r\n", b"\r\n\r\n"),
                 id="base64 empty"),
    pytest.param(leaf(b"Content-Transfer-Encoding: base64\r\n", b"w6k=\xe9\r\n"),
                 id="base64 with an 8-bit byte"),
    pytest.param(leaf(b"Content-Transfer-Encoding: Quoted-Printable\r\n",
                      b"caf=C3=A9 =\r\nsoft=3D\r\n=ZZ bad\r\n\xe9\r\n"), id="quoted-printable"),
    pytest.param(leaf(b"Content-Transfer-Encoding: x-uuencode\r\n",
                      b"begin 644 f\r\n#86)C\r\n`\r\nend\r\n"), id="uuencode"),
    pytest.param(leaf(b"Content-Transfer-Encoding: x-uuencode\r\n", b"garbage\r\n"),
                 id="uuencode garbage"),
    pytest.param(leaf(b"Content-Transfer-Encoding: 8bit\r\n", b"caf\xc3\xa9\r\n"),
                 id="8bit body"),
    pytest.param(leaf(b"Content-Transfer-Encoding: 7BIT\r\n", b"plain\r\n"), id="7BIT"),
    pytest.param(MULTI + b"--b1\r\n\r\nno headers at all\r\n--b1\r\n"
                 b"Content-Transfer-Encoding: base64\r\n\r\nYWJj\r\nZA\r\n--b1--\r\n",
                 id="parts without a content type, one with a base64 defect"),
])
def test_parts_answer_as_the_stdlib_messages_do(raw: bytes) -> None:
    tree = split_tree(raw)
    assert tree is not None, "expected the quick path"
    same_parts(tree, email.message_from_bytes(raw))
    same(quick(raw), stdlib(raw))


@pytest.mark.parametrize("head", [b"A: b\rc\r\n", b"A: b\r\n\tc\rd\r\n", b"A: b\r\r\n",
                                  b" A: b\r\n", b"A b\r\n", b"A: b\r\nno colon\r\n"])
def test_header_blocks_it_cannot_read_as_compat32_does(head: bytes) -> None:
    from daemon.mail.mime_tree import _headers

    assert _headers(head) is None
