"""SEARCH for the embedded IMAP server: search keys compiled to a predicate. Pure."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from daemon.demo.imap_server.fetch import in_set, parse_sequence_set
from daemon.demo.imap_server.mime import header_fields, split_message
from daemon.demo.imap_server.proto import Atom, ParseError, Value, parse_date, text
from daemon.demo.imap_server.store import StoredMessage


@dataclass(frozen=True)
class Candidate:
    seq: int
    message: StoredMessage
    max_seq: int
    max_uid: int


Predicate = Callable[[Candidate], bool]

_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True), "UNANSWERED": ("\\Answered", False),
    "DELETED": ("\\Deleted", True), "UNDELETED": ("\\Deleted", False),
    "FLAGGED": ("\\Flagged", True), "UNFLAGGED": ("\\Flagged", False),
    "SEEN": ("\\Seen", True), "UNSEEN": ("\\Seen", False),
    "DRAFT": ("\\Draft", True), "UNDRAFT": ("\\Draft", False),
    "RECENT": ("\\Recent", True), "OLD": ("\\Recent", False), "NEW": ("\\Recent", True),
}
_HEADER_KEYS = ("SUBJECT", "FROM", "TO", "CC", "BCC")


def compile_search(args: list[Value]) -> Predicate:
    """All keys must match (IMAP ANDs them). A leading CHARSET x is accepted and ignored:
    matching works on the raw bytes, case-insensitively for ASCII."""
    tokens = iter(args)
    if args and isinstance(args[0], Atom) and args[0].upper() == "CHARSET":
        next(tokens)
        next(tokens, None)
    keys = list(_keys(tokens))
    if not keys:
        raise ParseError("SEARCH needs at least one key, e.g. ALL")
    return lambda c: all(key(c) for key in keys)


def _keys(tokens: Iterator[Value]) -> Iterator[Predicate]:
    for token in tokens:
        yield _key(token, tokens)


def _key(token: Value, tokens: Iterator[Value]) -> Predicate:
    if isinstance(token, list):
        group = list(_keys(iter(token)))
        return lambda c: all(key(c) for key in group)
    word = text(token).upper()
    if word == "ALL":
        return lambda c: True
    if word in _FLAG_KEYS:
        flag, wanted = _FLAG_KEYS[word]
        return lambda c: (flag in c.message.flags) == wanted
    if word == "NOT":
        inner = _key(_next(tokens, word), tokens)
        return lambda c: not inner(c)
    if word == "OR":
        left = _key(_next(tokens, word), tokens)
        right = _key(_next(tokens, word), tokens)
        return lambda c: left(c) or right(c)
    return _key_with_argument(word, token, tokens)


def _key_with_argument(word: str, token: Value, tokens: Iterator[Value]) -> Predicate:
    if word in ("KEYWORD", "UNKEYWORD"):
        flag, wanted = text(_next(tokens, word)), word == "KEYWORD"
        return lambda c: (flag in c.message.flags) == wanted
    if word in ("LARGER", "SMALLER"):
        size = _number(_next(tokens, word))
        if word == "LARGER":
            return lambda c: len(c.message.raw) > size
        return lambda c: len(c.message.raw) < size
    if word in ("BEFORE", "ON", "SINCE"):
        return _date_key(word, text(_next(tokens, word)))
    if word in _HEADER_KEYS:
        return _header_key(word.lower(), _bytes(_next(tokens, word)))
    if word == "HEADER":
        name = text(_next(tokens, word)).lower()
        return _header_key(name, _bytes(_next(tokens, word)))
    if word in ("BODY", "TEXT"):
        return _body_key(word, _bytes(_next(tokens, word)))
    if word == "UID":
        ranges = parse_sequence_set(text(_next(tokens, word)))
        return lambda c: in_set(ranges, c.message.uid, c.max_uid)
    if word[:1].isdigit() or word[:1] == "*":
        ranges = parse_sequence_set(word)
        return lambda c: in_set(ranges, c.seq, c.max_seq)
    raise ParseError(f"unknown search key {word}")


def _next(tokens: Iterator[Value], word: str) -> Value:
    value = next(tokens, None)
    if value is None:
        raise ParseError(f"search key {word} needs an argument")
    return value


def _number(value: Value) -> int:
    word = text(value)
    if not word.isdigit():
        raise ParseError(f"expected a number, not {word!r}")
    return int(word)


def _bytes(value: Value) -> bytes:
    return (value if isinstance(value, bytes) else text(value).encode()).lower()


def _date_key(word: str, value: str) -> Predicate:
    day = parse_date(value).date()
    if word == "BEFORE":
        return lambda c: c.message.internaldate.date() < day
    if word == "ON":
        return lambda c: c.message.internaldate.date() == day
    return lambda c: c.message.internaldate.date() >= day


def _header_key(name: str, needle: bytes) -> Predicate:
    def match(c: Candidate) -> bool:
        header = split_message(c.message.raw)[0]
        return any(field_name == name and needle in raw.split(b":", 1)[1].lower()
                   for field_name, raw in header_fields(header))
    return match


def _body_key(word: str, needle: bytes) -> Predicate:
    def match(c: Candidate) -> bool:
        raw = c.message.raw if word == "TEXT" else split_message(c.message.raw)[1]
        return needle in raw.lower()
    return match
