"""FETCH for the embedded IMAP server: sequence sets, fetch items, and their responses. Pure."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from daemon.demo.imap_server.mime import (
    bodystructure,
    envelope,
    find_part,
    parse_part,
    select_fields,
    split_message,
)
from daemon.demo.imap_server.proto import Atom, ParseError, Value, format_date_time, literal, paren
from daemon.demo.imap_server.store import StoredMessage

MACROS = {
    "ALL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"],
    "FAST": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"],
    "FULL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"],
}
SIMPLE = frozenset({"UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "RFC822", "RFC822.HEADER",
                    "RFC822.TEXT", "ENVELOPE", "BODYSTRUCTURE", "BODY"})
_SECTION_ITEM = re.compile(r"^(BODY(?:\.PEEK)?)\[([^\]]*)\](?:<(\d+)\.(\d+)>)?$", re.IGNORECASE)
_SECTION = re.compile(r"^((?:\d+\.)*\d+)?\.?(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)?"
                      r"(?:\s+\((.*)\))?$", re.IGNORECASE)
_SEQUENCE = re.compile(r"^(\d+|\*)(?::(\d+|\*))?$")


# ---------------------------------------------------------------- sequence sets

Range = tuple[int | None, int | None]  # None stands for "*"


def parse_sequence_set(text: str) -> list[Range]:
    """ "1:3,7,9:*" -> [(1, 3), (7, 7), (9, None)]."""
    ranges: list[Range] = []
    for piece in text.split(","):
        match = _SEQUENCE.match(piece)
        if match is None:
            raise ParseError(f"bad sequence set {text!r}; write e.g. 1:3,7,9:*")
        low = None if match[1] == "*" else int(match[1])
        high = low if match[2] is None else (None if match[2] == "*" else int(match[2]))
        if low == 0 or high == 0:
            raise ParseError("0 is not a message number or UID")
        ranges.append((low, high))
    return ranges


def resolve(ranges: list[Range], view: list[int], uid: bool) -> list[int]:
    """Ascending indexes into view (the UIDs in sequence order) of the messages a sequence
    set names; by UID when uid. Works range by range, so it stays fast on big folders."""
    if not view:
        return []
    star = view[-1] if uid else len(view)
    picked: set[int] = set()
    for low, high in ranges:
        a = star if low is None else low
        b = star if high is None else high
        a, b = min(a, b), max(a, b)
        if uid:
            picked.update(range(bisect_left(view, a), bisect_right(view, b)))
        else:
            picked.update(range(a - 1, min(b, len(view))))
    return sorted(picked)


def in_set(ranges: list[Range], number: int, star: int) -> bool:
    """Whether number is in the set, "*" being star (the largest number in use).
    A range is unordered: with star 5, "9:*" means 5:9."""
    for low, high in ranges:
        a = star if low is None else low
        b = star if high is None else high
        if min(a, b) <= number <= max(a, b):
            return True
    return False


# ---------------------------------------------------------------- items

@dataclass(frozen=True)
class FetchItem:
    name: str  # UID, FLAGS, ..., or BODY[] for every section item
    section: str = ""  # e.g. "", "HEADER", "1.2", "HEADER.FIELDS (FROM TO)"
    peek: bool = True
    partial: tuple[int, int] | None = None

    @property
    def sets_seen(self) -> bool:
        return not self.peek


def parse_fetch_items(value: Value) -> list[FetchItem]:
    if isinstance(value, Atom) and value.upper() in MACROS:
        return [FetchItem(name) for name in MACROS[value.upper()]]
    items = value if isinstance(value, list) else [value]
    return [parse_fetch_item(item) for item in items]


def parse_fetch_item(value: Value) -> FetchItem:
    if not isinstance(value, Atom):
        raise ParseError("FETCH items are atoms such as FLAGS or BODY.PEEK[]")
    name = value.upper()
    if name in SIMPLE:
        return FetchItem(name, peek=name not in ("RFC822", "RFC822.TEXT"))
    match = _SECTION_ITEM.match(value)
    if match is None:
        raise ParseError(f"unknown FETCH item {value}")
    section = _normal_section(match[2])
    partial = None if match[3] is None else (int(match[3]), int(match[4]))
    return FetchItem("BODY[]", section, match[1].upper() == "BODY.PEEK", partial)


def _normal_section(section: str) -> str:
    match = _SECTION.match(section.strip())
    if match is None:
        raise ParseError(f"bad section [{section}]")
    numbers, spec, fields = match[1], (match[2] or "").upper(), match[3]
    if spec.startswith("HEADER.FIELDS") != (fields is not None):
        raise ParseError(f"bad section [{section}]: HEADER.FIELDS takes a list of names")
    if spec == "MIME" and not numbers:
        raise ParseError("MIME needs a part number, e.g. [1.MIME]")
    text = ".".join(filter(None, [numbers, spec]))
    return f"{text} ({' '.join(fields.upper().split())})" if fields is not None else text


# ---------------------------------------------------------------- responses

def render(item: FetchItem, message: StoredMessage) -> bytes:
    """`NAME value` for one item of one message."""
    if item.name == "BODY[]":
        data = section_bytes(message.raw, item.section)
        origin = ""
        if item.partial is not None:
            start, count = item.partial
            data, origin = data[start:start + count], f"<{start}>"
        return f"BODY[{item.section}]{origin} ".encode() + literal(data)
    return item.name.encode() + b" " + _simple(item.name, message)


def _simple(name: str, message: StoredMessage) -> bytes:
    raw = message.raw
    if name == "UID":
        return str(message.uid).encode()
    if name == "FLAGS":
        return flag_list(message.flags)
    if name == "INTERNALDATE":
        return format_date_time(message.internaldate)
    if name == "RFC822.SIZE":
        return str(len(raw)).encode()
    if name == "RFC822":
        return literal(raw)
    if name == "RFC822.HEADER":
        return literal(split_message(raw)[0])
    if name == "RFC822.TEXT":
        return literal(split_message(raw)[1])
    if name == "ENVELOPE":
        return envelope(split_message(raw)[0])
    return bodystructure(parse_part(raw), extended=name == "BODYSTRUCTURE")


def flag_list(flags: set[str]) -> bytes:
    return paren([flag.encode() for flag in sorted(flags)])


def section_bytes(raw: bytes, section: str) -> bytes:
    """The bytes of BODY[section] of a raw message."""
    if section == "":
        return raw
    spec, _, fields = section.partition(" (")
    numbers, _, rest = spec.partition(".") if spec[:1].isdigit() else ("", "", spec)
    while rest[:1].isdigit():  # "1.2.HEADER": peel every number off
        more, _, rest = rest.partition(".")
        numbers += "." + more
    if not numbers:
        return _text_section(raw, rest, fields)
    part = find_part(parse_part(raw), [int(n) for n in numbers.split(".")])
    if part is None:
        return b""
    if rest == "MIME":
        return part.header
    if rest == "":
        return part.body
    if not part.is_message:
        return b""
    return _text_section(part.body, rest, fields)


def _text_section(raw: bytes, spec: str, fields: str) -> bytes:
    header, body = split_message(raw)
    if spec == "TEXT":
        return body
    if spec == "HEADER":
        return header
    names = fields.rstrip(")").split()
    return select_fields(header, names, exclude=spec == "HEADER.FIELDS.NOT")
