"""IMAP4rev1 wire syntax for the embedded server: parse commands, format responses. Pure.

A command reaches `parse_command` whole: its lines joined by CRLF with every literal's bytes
placed right after its `{n}` / `{n+}` marker, exactly as they travelled. Values come back as
`Atom` (atoms and NIL, text), `bytes` (quoted strings and literals) and lists for (...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_LITERAL_AT_END = re.compile(rb"\{(\d{1,12})(\+?)\}$")
_ATOM_STOP = frozenset(b' (){"\r\n')
_DATE_TIME = re.compile(
    r"\s?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)")
_QUOTED_SAFE = re.compile(rb"^[\x20-\x7e]*$")


class ParseError(ValueError):
    """A command that is not valid IMAP syntax; `tag` is set when it could be read."""

    def __init__(self, message: str, tag: str | None = None) -> None:
        super().__init__(message)
        self.tag = tag


class Atom(str):
    """An unquoted token: command names, flags, sequence sets, NIL, FETCH items."""

    __slots__ = ()


Value = Atom | bytes | list["Value"]


@dataclass(frozen=True)
class Command:
    tag: str
    name: str  # upper case; for "UID FETCH" the name is "FETCH" and uid is True
    args: list[Value]
    uid: bool = False


def literal_request(line: bytes) -> tuple[int, bool] | None:
    """(size, non-synchronizing) when a command line (without its CRLF) ends in a literal."""
    match = _LITERAL_AT_END.search(line)
    if match is None:
        return None
    return int(match[1]), match[2] == b"+"


# ---------------------------------------------------------------- lexer

class _Lexer:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def space(self) -> None:
        if self.at_end() or self.data[self.pos] != 0x20:
            raise ParseError(f"expected a space at offset {self.pos}")
        self.pos += 1

    def values(self, until: int | None = None) -> list[Value]:
        """Space-separated values up to the end, or up to the byte `until` (consumed)."""
        out: list[Value] = []
        while True:
            if until is not None and self._peek() == until:
                self.pos += 1
                return out
            if self.at_end():
                if until is not None:
                    raise ParseError("missing ')'")
                return out
            if out:
                self.space()
                if until is not None and self._peek() == until:
                    continue  # tolerate "(a )"
            out.append(self.value())

    def value(self) -> Value:
        first = self._peek()
        if first == 0x28:  # (
            self.pos += 1
            return self.values(until=0x29)
        if first == 0x22:  # "
            return self.quoted()
        if first == 0x7B:  # {
            return self.literal()
        return self.atom()

    def quoted(self) -> bytes:
        out = bytearray()
        self.pos += 1
        while not self.at_end():
            byte = self.data[self.pos]
            self.pos += 1
            if byte == 0x22:
                return bytes(out)
            if byte == 0x5C:  # backslash escapes only " and \
                if self.at_end() or self.data[self.pos] not in b'"\\':
                    raise ParseError("bad escape in quoted string")
                byte = self.data[self.pos]
                self.pos += 1
            elif byte in b"\r\n":
                raise ParseError("line break in quoted string")
            out.append(byte)
        raise ParseError("unterminated quoted string")

    def literal(self) -> bytes:
        end = self.data.find(b"}\r\n", self.pos)
        match = re.fullmatch(rb"\{(\d{1,12})\+?", self.data[self.pos:end]) if end > 0 else None
        if match is None:
            raise ParseError("bad literal; write {size}CRLF followed by the bytes")
        start = end + 3
        size = int(match[1])
        if start + size > len(self.data):
            raise ParseError("literal shorter than announced")
        self.pos = start + size
        return self.data[start:self.pos]

    def atom(self) -> Atom:
        start = self.pos
        while not self.at_end() and self.data[self.pos] not in _ATOM_STOP:
            if self.data[self.pos] == 0x5B:  # [ ... ] may hold spaces: BODY[HEADER.FIELDS (A B)]
                close = self.data.find(b"]", self.pos)
                if close < 0:
                    raise ParseError("missing ']'")
                self.pos = close
            elif self.data[self.pos] < 0x20 or self.data[self.pos] == 0x7F:
                raise ParseError("control character in atom")
            self.pos += 1
        if self.pos == start:
            raise ParseError(f"unexpected {self.data[start:start + 1]!r} at offset {start}")
        return Atom(self.data[start:self.pos].decode("utf-8", "replace"))

    def _peek(self) -> int | None:
        return None if self.at_end() else self.data[self.pos]


def parse_values(data: bytes) -> list[Value]:
    """Values separated by spaces, e.g. the inside of a section: `HEADER.FIELDS (FROM TO)`."""
    return _Lexer(data).values()


def parse_command(data: bytes) -> Command:
    """`tag SP name [SP args]` (a UID command folds its sub-command into name)."""
    lexer = _Lexer(data)
    try:
        tag = lexer.atom()
    except ParseError:
        raise ParseError("missing tag") from None
    if "+" in tag or "*" in tag:
        raise ParseError("a tag may not contain + or *")
    try:
        lexer.space()
        name = lexer.atom().upper()
        args = [] if lexer.at_end() else _rest(lexer)
    except ParseError as exc:
        raise ParseError(str(exc), tag) from None
    if name != "UID":
        return Command(tag, name, args)
    if not args or not isinstance(args[0], Atom):
        raise ParseError("UID needs a command: FETCH, SEARCH, STORE, COPY, MOVE or EXPUNGE", tag)
    return Command(tag, args[0].upper(), args[1:], uid=True)


def _rest(lexer: _Lexer) -> list[Value]:
    lexer.space()
    return lexer.values()


# ---------------------------------------------------------------- argument helpers

def text(value: Value, what: str = "argument") -> str:
    """An atom or string argument as text (UTF-8, as sent)."""
    if isinstance(value, Atom):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise ParseError(f"{what} must be an atom or a string, not a list")


def as_list(value: Value) -> list[Value]:
    return value if isinstance(value, list) else [value]


def parse_date_time(value: str) -> datetime:
    """An IMAP date-time, "27-Nov-2026 16:09:03 +0100" (day may be space-padded)."""
    match = _DATE_TIME.fullmatch(value)
    if match is None or match[2].title() not in MONTHS:
        raise ParseError(f"bad date-time {value!r}; write e.g. \"27-Nov-2026 16:09:03 +0100\"")
    offset = timedelta(hours=int(match[8]), minutes=int(match[9]))
    zone = timezone(-offset if match[7] == "-" else offset)
    return datetime(int(match[3]), MONTHS.index(match[2].title()) + 1, int(match[1]),
                    int(match[4]), int(match[5]), int(match[6]), tzinfo=zone)


def parse_date(value: str) -> datetime:
    """An IMAP search date, "27-Nov-2026", as midnight UTC."""
    match = re.fullmatch(r"(\d{1,2})-([A-Za-z]{3})-(\d{4})", value)
    if match is None or match[2].title() not in MONTHS:
        raise ParseError(f"bad date {value!r}; write e.g. 27-Nov-2026")
    return datetime(int(match[3]), MONTHS.index(match[2].title()) + 1, int(match[1]), tzinfo=UTC)


# ---------------------------------------------------------------- formatting

def format_date_time(moment: datetime) -> bytes:
    """An INTERNALDATE value, quoted: "27-Nov-2026 16:09:03 +0000"."""
    offset = moment.strftime("%z") or "+0000"
    month = MONTHS[moment.month - 1]
    return f'"{moment.day:02d}-{month}-{moment.year:04d} {moment:%H:%M:%S} {offset}"'.encode()


def string(value: bytes | str | None) -> bytes:
    """A value as NIL, a quoted string when that is safe, else a literal."""
    if value is None:
        return b"NIL"
    data = value.encode("utf-8") if isinstance(value, str) else value
    if _QUOTED_SAFE.match(data) and len(data) < 1024:
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return literal(data)


def literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


def paren(items: list[bytes]) -> bytes:
    return b"(" + b" ".join(items) + b")"
