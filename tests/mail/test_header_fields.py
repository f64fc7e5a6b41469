"""The quick readings of address lists and MIME parameters give exactly what the stdlib's
general parsers give, or hand the value over (None).

Held on every such header of the real-world corpus and of generated mail, on values built to
be awkward, and on random values made of the characters that matter to the syntax.
"""

from __future__ import annotations

import email
import random
import sys
from email.message import Message
from email.utils import getaddresses
from pathlib import Path

import pytest

from daemon.mail.addresses import AddressList, read_addresses, strict_addresses
from daemon.mail.header_fields import (
    boundary,
    filename,
    header_params,
    mime_params,
    simple_addresses,
)

MAILS = Path(__file__).parents[1] / "mails"
sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
from mailgen import generate  # noqa: E402

ADDRESS_HEADERS = ("from", "to", "cc", "reply-to", "sender", "delivered-to", "x-original-to")


def corpus_headers() -> tuple[list[str], list[Message]]:
    """Address header values, and every part (as the stdlib parses it), of the corpus and
    of generated mail."""
    raws = [p.read_bytes() for p in sorted(MAILS.glob("*.eml"))]
    raws += [m.raw for m in generate(400, seed=11)]
    values, parts = [], []
    for raw in raws:
        root = email.message_from_bytes(raw)
        values += [v for name, v in root.raw_items() if name.lower() in ADDRESS_HEADERS]
        parts += list(root.walk())
    return values, parts


VALUES, PARTS = corpus_headers()


def message(**headers: str) -> Message:
    msg = Message()
    for name, value in headers.items():
        msg.set_raw(name.replace("_", "-"), value)
    return msg


# ------------------------------------------------------------------ MIME parameters

QUICK_PARAMS = [
    "text/plain",
    'text/plain; charset="utf-8"',
    "TEXT/PLAIN; CHARSET=UTF-8; Format=Flowed",
    "text/plain;charset=utf-8;format=flowed;delsp=yes",
    'multipart/alternative;\r\n\tboundary="_000_AM4PR07MB7031_"',
    'multipart/related; type="multipart/alternative";\n boundary="b1"',
    "text/plain; charset=<utf-8>",
    "text/plain; ; charset=utf-8;",
    "text/plain; format",
    "text/plain; =x",
    "text/plain; charset=utf-8 (comment)",
    'text/plain; charset = "utf-8" ',
    'application/pdf; name="a=b.pdf"',
    'application/pdf; name=""',
    'application/pdf; name="a""b"',
    'application/pdf; name="<x>"',
    "inline",
    'attachment; filename="Report June.pdf"; size=1234',
    "",
    "; x=y",
    "charset=utf-8",
    "text/plain; x=\"\x1f\"\x0b",
    "text/plain; BOUNDARY=abc; boundary=def",
]
GENERAL_PARAMS = [
    'multipart/mixed; boundary="a;b"',            # ';' inside quotes
    'multipart/mixed; boundary="a\\"b"',          # quoted pair
    "attachment; filename*=utf-8''%C3%A9t%C3%A9.pdf",  # RFC 2231 charset
    'attachment; filename*0="a"; filename*1="b.pdf"',  # RFC 2231 continuations
    'text/plain; charset="utf-8',                # unterminated quote
    'text/plain; name="""',
    "text/plain; charset=caf\udce9",            # raw 8-bit byte (a Header to compat32)
    "text/plain; name=a\\b",
]


@pytest.mark.parametrize("value", QUICK_PARAMS)
def test_simple_parameters_are_read_as_the_stdlib_reads_them(value: str) -> None:
    assert mime_params(value) == message(content_type=value).get_params()


@pytest.mark.parametrize("value", GENERAL_PARAMS)
def test_unusual_parameters_go_to_the_stdlib(value: str) -> None:
    assert mime_params(value) is None
    msg = message(content_type=value, content_disposition=value)
    assert header_params(msg) == msg.get_params()
    assert header_params(msg, "content-disposition") == msg.get_params(
        header="content-disposition")


def same_as_stdlib(msg: Message) -> None:
    assert header_params(msg) == msg.get_params()
    assert header_params(msg, "content-disposition") == msg.get_params(
        header="content-disposition")
    assert boundary(msg) == msg.get_boundary()
    assert filename(msg) == msg.get_filename()


def test_every_part_of_the_corpus_reads_the_same() -> None:
    quick = 0
    for part in PARTS:
        same_as_stdlib(part)
        value = part.get("content-type")
        quick += isinstance(value, str) and mime_params(value) is not None
    assert quick >= 0.9 * sum(part.get("content-type") is not None for part in PARTS)


def test_filename_and_boundary_edge_cases() -> None:
    cases = [
        {"content_disposition": 'attachment; filename="  spaced.pdf  "'},
        {"content_disposition": 'attachment; filename="<angled.pdf>"'},
        {"content_disposition": "attachment", "content_type": "image/png; name=shot.png"},
        {"content_disposition": 'attachment; filename=""', "content_type": "a/b; name=n"},
        {"content_type": "image/png; NAME=UPPER.PNG"},
        {"content_disposition": "attachment; filename*=utf-8''%E2%82%AC.txt"},
        {"content_disposition": "attachment; filename*=bogus''%E2%82%AC.txt"},
        {"content_type": 'multipart/mixed; boundary="  padded  "'},
        {"content_type": "multipart/mixed; boundary=<b1>"},
        {"content_type": 'multipart/mixed; boundary="b1"; boundary="b2"'},
        {"content_type": "multipart/mixed; boundary*=us-ascii''b%31"},
        {"content_type": "multipart/mixed"},
        {},
    ]
    for headers in cases:
        same_as_stdlib(message(**headers))


PARAM_TOKENS = ["text/plain", "multipart/mixed", ";", ";", " ", "\t", "\r\n ", "charset",
                "name", "filename", "boundary", "=", "=", '"', '"', "utf-8", "a b", "<", ">",
                "\\", "*", "*0", "'", "%41", "X", "\udce9", "(", ")", ",", "\x0b", "\x1c"]


def test_random_parameter_values() -> None:
    rng = random.Random(7)
    quick = 0
    for _ in range(5000):
        value = "".join(rng.choice(PARAM_TOKENS) for _ in range(rng.randint(0, 14)))
        msg = message(content_type=value, content_disposition=value)
        fast = mime_params(value)
        if fast is not None:
            quick += 1
            assert fast == msg.get_params(), value
        same_as_stdlib(msg)
    assert quick > 1000  # the quick path is exercised, not only the fallback


# ------------------------------------------------------------------ address lists

QUICK_ADDRESSES = [
    "a@b.c",
    "Jane Doe <jane@example.org>",
    '"Doe, Jane" <jane@example.org>',
    "<jane@example.org>",
    "jane@example.org, John <john@x.example>",
    "jane@example.org,john@x.example",
    "=?utf-8?B?UmHDumwgR8OzbWV6?= <raul@example.org>",
    "=?iso-8859-1?Q?J=FCrgen_M=FCller?= <j@example.de>",
    "J. R. R. Tolkien <t@example.org>",
    "Name   With \t Spaces <a@b>",
    "\tName\t<a@b>\t",
    'A"B"C <a@b>',
    '"" <a@b>',
    '"a" "b" <a@b>',
    '"Quoted (not a comment) <x@y>" <a@b>',
    "Zoë Ångström <zoe@example.se>",
    "a.b.c@d.e.f",
    ".odd.@x.",
    "MAILER-DAEMON@mx.example.org",
    "IT Support <support@example.com>, Other <o@example.com>",
    "Name<a@b>",
    "a\xa0b <a@b>",
]
GENERAL_ADDRESSES = [
    "Jane (comment) <a@b>",
    "a@b (Jane)",
    "group: a@b, c@d;",
    "undisclosed-recipients:;",
    '"Doe\\, Jane" <a@b>',
    "<@route.example:a@b>",
    "a@b,",
    ", a@b",
    "a@b,,c@d",
    "a b@c",
    '"quoted"@x.y',
    "a@[192.0.2.1]",
    "Name <a@b> trailing",
    "a@b@c",
    "Name <a@b",
    "<a@b>>",
    "a@b c",
    "",
    " ",
    "noatsign",
    "Name <noat>",
    '"unterminated <a@b>',
    "Name < a@b >",
    "a @ b",
    "a@b\r\n c@d",
    "Jane\\ Doe <a@b>",
]


@pytest.mark.parametrize("value", QUICK_ADDRESSES)
def test_plain_mailboxes_are_read_as_the_stdlib_reads_them(value: str) -> None:
    assert simple_addresses(value) == getaddresses([value])


@pytest.mark.parametrize("value", GENERAL_ADDRESSES)
def test_unusual_address_lists_go_to_the_strict_reading(value: str) -> None:
    """(tests/mail/test_address_list.py says what that reading gives.)"""
    assert simple_addresses(value) is None
    assert read_addresses(value) == strict_addresses(value)


def same_when_quick(value: str) -> bool:
    """The quick path gives what the stdlib gives, and what the strict reading gives."""
    fast = simple_addresses(value)
    if fast is None:
        return False
    assert fast == getaddresses([value]), value
    assert strict_addresses(value) == AddressList(tuple(fast)), value
    return True


def test_every_address_header_of_the_corpus_reads_the_same() -> None:
    quick = sum(same_when_quick(value) for value in VALUES)
    assert quick >= 0.8 * len(VALUES)


PHRASE_TOKENS = ["Jane", "Doe", "J.", " ", " ", "\t", '"Doe, Jane"', '""', "=?utf-8?q?x?=", "é",
                 "\xa0", "."]
ADDR_TOKENS = ["a@b.c", "x.y@z", ".a.@b", "a@b.c", "x.y@z", "@b", "a@", "a@b@c", "", "é@b",
               "a\xa0@b"]
NOISE_TOKENS = [",", '"', "<", ">", "@", "(", ")", "(c)", ":", ";", "\\", "[", "]", "\r\n", " ",
                "\t", ",,"]


def random_address_list(rng: random.Random) -> str:
    """Mostly well-formed lists of mailboxes, some with a stray character of syntax."""
    mailboxes = []
    for _ in range(rng.randint(1, 3)):
        address = rng.choice(ADDR_TOKENS)
        if rng.random() < 0.6:
            phrase = "".join(rng.choice(PHRASE_TOKENS) for _ in range(rng.randint(0, 4)))
            address = f"{phrase}<{address}>"
        mailboxes.append(rng.choice(["", " ", "\t"]) + address + rng.choice(["", " ", "\t"]))
    value = rng.choice([",", ", ", " ,"]).join(mailboxes)
    for _ in range(rng.choice([0, 0, 1, 2])):
        at = rng.randint(0, len(value))
        value = value[:at] + rng.choice(NOISE_TOKENS) + value[at:]
    return value


def test_random_address_lists() -> None:
    rng = random.Random(11)
    quick = 0
    for _ in range(10000):
        quick += same_when_quick(random_address_list(rng))
    assert quick > 1000  # the quick path is exercised, not only the fallback


def test_long_runs_stay_linear() -> None:
    import time

    started = time.perf_counter()
    for value in ["a" * 200_000, "a " * 100_000 + "x", '"' * 100_000, "a@" * 100_000,
                  "<a@b>," * 50_000 + "x", "(" * 100_000, "a:" * 100_000, "<" * 100_000]:
        read_addresses(value)
    assert time.perf_counter() - started < 5
