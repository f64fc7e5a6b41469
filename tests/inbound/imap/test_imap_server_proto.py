"""The embedded server's layers tested with bytes alone: syntax, sequence sets, FETCH items,
sections, MIME structure and SEARCH."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from daemon.demo.imap_server.fetch import (
    FetchItem,
    in_set,
    parse_fetch_items,
    parse_sequence_set,
    render,
    resolve,
    section_bytes,
)
from daemon.demo.imap_server.mime import bodystructure, envelope, parse_part, split_message
from daemon.demo.imap_server.proto import (
    Atom,
    Command,
    ParseError,
    format_date_time,
    literal_request,
    parse_command,
    parse_date_time,
    string,
)
from daemon.demo.imap_server.search import Candidate, compile_search
from daemon.demo.imap_server.store import StoredMessage

# ---------------------------------------------------------------- commands


def test_simple_command() -> None:
    assert parse_command(b"a1 NOOP") == Command("a1", "NOOP", [])


def test_names_are_upper_cased_and_uid_folds() -> None:
    command = parse_command(b"7 uid fetch 1:* (FLAGS)")
    assert command == Command("7", "FETCH", [Atom("1:*"), [Atom("FLAGS")]], uid=True)


def test_quoted_strings_with_escapes() -> None:
    command = parse_command(b'a LOGIN "al\\"ice" "p\\\\w d"')
    assert command.args == [b'al"ice', b"p\\w d"]


def test_literal_is_taken_byte_exact() -> None:
    data = b"a APPEND INBOX (\\Seen) {11}\r\nhi\r\n\xff\x00there"
    command = parse_command(data)
    assert command.args == [Atom("INBOX"), [Atom("\\Seen")], b"hi\r\n\xff\x00there"]


def test_non_synchronizing_literal_and_more_after_it() -> None:
    command = parse_command(b"a LOGIN {5+}\r\nalice {2}\r\npw")
    assert command.args == [b"alice", b"pw"]


def test_section_atoms_keep_their_spaces() -> None:
    command = parse_command(b"a FETCH 1 (UID BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>)")
    assert command.args[1] == [Atom("UID"), Atom("BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>")]


def test_nested_lists_and_nil() -> None:
    assert parse_command(b"a X (1 (2 NIL) ())").args == [[Atom("1"), [Atom("2"), Atom("NIL")], []]]


@pytest.mark.parametrize(("data", "tag", "message"), [
    (b"", None, "missing tag"),
    (b"a", "a", "expected a space"),
    (b'a LOGIN "open', "a", "unterminated quoted string"),
    (b"a LOGIN {10}\r\nshort", "a", "literal shorter than announced"),
    (b"a FETCH 1 (FLAGS", "a", "missing ')'"),
    (b"a FETCH 1 BODY[", "a", "missing ']'"),
    (b'a LOGIN "bad \\x escape"', "a", "bad escape"),
    (b"a+ NOOP", None, "may not contain +"),
    (b"a UID", "a", "UID needs a command"),
])
def test_bad_syntax(data: bytes, tag: str | None, message: str) -> None:
    with pytest.raises(ParseError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        parse_command(data)
    assert info.value.tag == tag


@pytest.mark.parametrize(("line", "expected"), [
    (b"a APPEND INBOX {310}", (310, False)),
    (b"a APPEND INBOX {310+}", (310, True)),
    (b"a LOGIN x y", None),
    (b"a LOGIN {3}x", None),
])
def test_literal_request(line: bytes, expected: tuple[int, bool] | None) -> None:
    assert literal_request(line) == expected


# ---------------------------------------------------------------- formatting

def test_string_quotes_or_uses_a_literal() -> None:
    assert string(b'a "b" \\c') == b'"a \\"b\\" \\\\c"'
    assert string("héllo") == b"{6}\r\nh\xc3\xa9llo"
    assert string(b"line\r\nbreak") == b"{11}\r\nline\r\nbreak"
    assert string(None) == b"NIL"


def test_date_time_round_trip() -> None:
    moment = datetime(2026, 3, 2, 9, 5, 7, tzinfo=timezone(timedelta(hours=-5)))
    assert format_date_time(moment) == b'"02-Mar-2026 09:05:07 -0500"'
    assert parse_date_time(" 2-Mar-2026 09:05:07 -0500") == moment
    with pytest.raises(ParseError):
        parse_date_time("2026-03-02 09:05:07")


# ---------------------------------------------------------------- sequence sets

@pytest.mark.parametrize(("text", "star", "inside", "outside"), [
    ("1:3,7", 10, [1, 2, 3, 7], [4, 8]),
    ("5:*", 9, [5, 9], [4]),
    ("12:*", 9, [9], [8, 13]),  # unordered range: "12:*" with 9 the largest is 9:12
    ("*", 4, [4], [3]),
])
def test_sequence_sets(text: str, star: int, inside: list[int], outside: list[int]) -> None:
    ranges = parse_sequence_set(text)
    assert all(in_set(ranges, n, star) for n in inside)
    assert not any(in_set(ranges, n, star) for n in outside)


@pytest.mark.parametrize("text", ["", "0", "1:0", "a", "1,,2", "1:2:3"])
def test_bad_sequence_sets(text: str) -> None:
    with pytest.raises(ParseError):
        parse_sequence_set(text)


# ---------------------------------------------------------------- FETCH

MAIL = (b"From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: Printer\r\n"
        b"Message-ID: <1@example.com>\r\n\r\nIt is broken.\r\n")
MULTIPART = (
    b"From: a@example.com\r\nSubject: files\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
    b"preamble\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n"
    b"--XX\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
    b'Content-Disposition: attachment; filename="a.pdf"\r\n\r\nJVBERi0=\r\n--XX--\r\nepilogue\r\n'
)


def _message(raw: bytes, uid: int = 1, flags: set[str] | None = None) -> StoredMessage:
    return StoredMessage(uid, raw, flags or set(), datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


def test_fetch_macros_and_peek() -> None:
    assert [item.name for item in parse_fetch_items(Atom("FAST"))] == [
        "FLAGS", "INTERNALDATE", "RFC822.SIZE"]
    peek, body = parse_fetch_items([Atom("BODY.PEEK[]"), Atom("BODY[TEXT]<2.5>")])
    assert peek == FetchItem("BODY[]", "", peek=True)
    assert body == FetchItem("BODY[]", "TEXT", peek=False, partial=(2, 5))
    with pytest.raises(ParseError):
        parse_fetch_items(Atom("BODY[NOPE]"))


def test_render_body_items_as_literals() -> None:
    message = _message(MAIL, uid=9)
    assert render(FetchItem("UID"), message) == b"UID 9"
    assert render(FetchItem("BODY[]", ""), message) == b"BODY[] {%d}\r\n" % len(MAIL) + MAIL
    partial = FetchItem("BODY[]", "TEXT", partial=(3, 3))
    assert render(partial, message) == b"BODY[TEXT]<3> {3}\r\nis "
    date = b'INTERNALDATE "02-Mar-2026 09:00:00 +0000"'
    assert render(FetchItem("INTERNALDATE"), message) == date


def test_header_sections() -> None:
    assert section_bytes(MAIL, "HEADER") == split_message(MAIL)[0]
    assert section_bytes(MAIL, "HEADER.FIELDS (SUBJECT TO)") == (
        b"To: bob@example.com\r\nSubject: Printer\r\n\r\n")
    not_these = "HEADER.FIELDS.NOT (FROM TO MESSAGE-ID)"
    assert section_bytes(MAIL, not_these) == b"Subject: Printer\r\n\r\n"
    assert section_bytes(MAIL, "1") == b"It is broken.\r\n"


def test_multipart_sections() -> None:
    assert section_bytes(MULTIPART, "1") == b"hello"
    assert section_bytes(MULTIPART, "2") == b"JVBERi0="
    assert section_bytes(MULTIPART, "2.MIME").startswith(b"Content-Type: application/pdf")
    assert section_bytes(MULTIPART, "3") == b""


def test_bodystructure_of_a_multipart() -> None:
    structure = bodystructure(parse_part(MULTIPART))
    assert structure.startswith(b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 5 0')
    assert b'"APPLICATION" "PDF" NIL NIL NIL "BASE64" 8 NIL ("ATTACHMENT" ("FILENAME" "a.pdf"))' \
        in structure
    assert structure.endswith(b' "MIXED" ("BOUNDARY" "XX"))')


def test_envelope() -> None:
    assert envelope(split_message(MAIL)[0]) == (
        b'(NIL "Printer" (("Alice" NIL "alice" "example.com")) (("Alice" NIL "alice" '
        b'"example.com")) (("Alice" NIL "alice" "example.com")) ((NIL NIL "bob" "example.com")) '
        b'NIL NIL NIL "<1@example.com>")')


# ---------------------------------------------------------------- SEARCH

@pytest.mark.parametrize(("keys", "expected"), [
    ([Atom("ALL")], [1, 2, 3]),
    ([Atom("UNSEEN")], [2, 3]),
    ([Atom("SEEN")], [1]),
    ([Atom("UID"), Atom("2:*")], [2, 3]),
    ([Atom("2,3")], [2, 3]),
    ([Atom("NOT"), Atom("DELETED")], [1, 2]),
    ([Atom("OR"), Atom("SEEN"), Atom("DELETED")], [1, 3]),
    ([Atom("SUBJECT"), b"PRINTER"], [1, 2, 3]),
    ([Atom("FROM"), b"nobody"], []),
    ([Atom("CHARSET"), Atom("UTF-8"), Atom("BODY"), b"broken"], [1, 2, 3]),
    ([[Atom("SEEN"), Atom("UID"), Atom("1")]], [1]),
    ([Atom("LARGER"), Atom("1")], [1, 2, 3]),
])
def test_search(keys: list[object], expected: list[int]) -> None:
    messages = [_message(MAIL, 1, {"\\Seen"}), _message(MAIL, 2), _message(MAIL, 3, {"\\Deleted"})]
    predicate = compile_search(keys)  # type: ignore[arg-type]
    found = [m.uid for seq, m in enumerate(messages, 1)
             if predicate(Candidate(seq, m, len(messages), 3))]
    assert found == expected


@pytest.mark.parametrize("keys", [[], [Atom("BOGUS")], [Atom("NOT")], [Atom("LARGER"), Atom("x")]])
def test_bad_search(keys: list[object]) -> None:
    with pytest.raises(ParseError):
        compile_search(keys)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "uid", "expected"), [
    ("1:*", False, [0, 1, 2, 3]),
    ("2,4:9", False, [1, 3]),
    ("*", False, [3]),
    ("10:20", True, [1, 2]),
    ("15,40", True, [2, 3]),
    ("99:*", True, [3]),  # unordered: 40:99
    ("5", True, []),
])
def test_resolve_sequence_sets_against_a_view(text: str, uid: bool, expected: list[int]) -> None:
    view = [3, 10, 15, 40]  # UIDs in sequence order
    assert resolve(parse_sequence_set(text), view, uid) == expected
