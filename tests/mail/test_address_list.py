"""The strict reading of address lists: what each shape gives, and which entries are not read
and why. Where the quick path answers the two agree (tests/mail/test_header_fields.py)."""

from __future__ import annotations

import pytest

from daemon.mail.addresses import read_addresses, strict_addresses

ALEX = "alex.chen@example.com"

READ = [
    # value, mailboxes (name as written, not decoded)
    ('"Chen, Alex @ IT" <alex.chen@example.com>', [("Chen, Alex @ IT", ALEX)]),
    ('"Doe\\, Jane \\"JD\\"" <a@b.example>', [('Doe, Jane "JD"', "a@b.example")]),
    ('"<x@y.example>" <a@b.example>', [("<x@y.example>", "a@b.example")]),
    ("=?utf-8?q?=3Cx=40y.example=3E?= <a@b.example>",
     [("=?utf-8?q?=3Cx=40y.example=3E?=", "a@b.example")]),
    # comments: the name of a bare address, ignored elsewhere
    ("alex.chen@example.com (Alex Chen)", [("Alex Chen", ALEX)]),
    ("Alex (tier 1) Chen <alex.chen@example.com> (work)", [("Alex Chen", ALEX)]),
    ("a@b.example (nested (comment) \\) here)", [("nested (comment) ) here", "a@b.example")]),
    ("(only a comment)", []),
    # groups
    ("undisclosed-recipients:;", []),
    ("Team: a@b.example, Ann <ann@b.example>;, c@d.example",
     [("", "a@b.example"), ("Ann", "ann@b.example"), ("", "c@d.example")]),
    ("Team: ;", []),
    # empty entries, spaces inside angle brackets and around '@' (RFC 5322 CFWS)
    ("a@b.example,, c@d.example,", [("", "a@b.example"), ("", "c@d.example")]),
    ("Name < a@b.example >", [("Name", "a@b.example")]),
    ("a @ b.example", [("", "a@b.example")]),
    ('"john doe"@example.com', [("", '"john doe"@example.com')]),
    ("a@[192.0.2.1]", [("", "a@[192.0.2.1]")]),
    ("", []),
    ("  ", []),
    # some mailers leave a "Last, First" name unquoted: words without an address
    ("Martens, Bob <bob.martens@example.com>", [("Martens, Bob", "bob.martens@example.com")]),
    ("=?utf-8?q?Sch=C3=A4fer?=, =?utf-8?q?G=C3=BCnther?= <g@example.de>",
     [("=?utf-8?q?Sch=C3=A4fer?=, =?utf-8?q?G=C3=BCnther?=", "g@example.de")]),
]

NOT_READ = [
    # value, mailboxes still read, why the other entry was not
    ("=?utf-8?q?x_=0A?=<alex.chen@example.com> <attacker@evil.test>", [],
     "2 addresses in angle brackets in one mailbox"),
    ("=?utf-8?q?Eve=0D=0ABcc:_evil2@evil.test?= <crlf3@customer.example>", [],
     "a group (':') that no ';' ends"),
    ("alex.chen@example.com <attacker@evil.test>", [], "an unquoted '@' in the display name"),
    ("Alex <x> <alex.chen@example.com>", [], "2 addresses in angle brackets"),
    ("a@b.example <c@d.example>, e@f.example", [("", "e@f.example")],
     "an unquoted '@' in the display name"),
    ("Ann <ann@b.example> trailing", [], "text after the address in angle brackets"),
    ("Ann <ann@b.example", [], "'<' without its '>'"),
    ("<a@b.example>>", [], "text after the address in angle brackets"),
    ("Name <noat>", [], "no address (no '@')"),
    ("noatsign", [], "'noatsign': no address"),
    ("a@b@c.example", [], "more than one '@'"),
    ("a b@c.example", [], "not one address"),
    ("a@b.example; c@d.example", [], "an unquoted ';' in the address"),
    ('"unclosed <a@b.example>, c@d.example', [], "without its closing '\"'"),
    ("(unclosed <a@b.example>", [], "a comment without its closing ')'"),
    ("Jane\\ Doe <a@b.example>", [], "a stray '\\\\'"),
    ("<@route.example:a@b.example>", [], "an unquoted ':' that starts no group"),
    ("a\xa0b@c.example", [], "holds characters no address may hold"),
    ("x\u202e@c.example", [], "holds characters no address may hold"),
    ("G: a@b.example, bad <<x@y.example>, c@d.example;", [("", "a@b.example"),
                                                        ("", "c@d.example")],
     "'bad <<x@y.example>': 2 addresses"),
    ("G: a@b.example, H: c@d.example;;", [], "a group inside a group"),
    ("Martens", [], "'Martens': no address"),
]


@pytest.mark.parametrize(("value", "mailboxes"), READ)
def test_what_the_strict_reading_reads(value: str, mailboxes: list[tuple[str, str]]) -> None:
    read = read_addresses(value)
    assert (list(read.mailboxes), read.problems) == (mailboxes, ())
    assert strict_addresses(value) == read


@pytest.mark.parametrize(("value", "mailboxes", "why"), NOT_READ)
def test_an_entry_not_read_is_a_problem_never_a_guess(value: str,
                                                      mailboxes: list[tuple[str, str]],
                                                      why: str) -> None:
    read = read_addresses(value)
    assert list(read.mailboxes) == mailboxes
    [problem] = read.problems
    assert why in problem


def test_a_problem_shows_the_entry_with_its_control_characters_escaped() -> None:
    [problem] = read_addresses("Eve\r\nBcc: x@evil.test <a@b.example> <c@d.example>").problems
    assert "\r" not in problem and "\n" not in problem and "\\r\\n" in problem


def test_an_encoded_word_is_one_word_of_a_name_and_never_an_address() -> None:
    """Encoded words are left as written: the caller decodes the name, never re-reads it."""
    value = "=?utf-8?b?PGF0dGFja2VyQGV2aWwudGVzdD4=?= <ann@example.org>"  # "<attacker@...>"
    assert read_addresses(value).mailboxes == (("=?utf-8?b?PGF0dGFja2VyQGV2aWwudGVzdD4=?=",
                                                "ann@example.org"),)
