"""Raw-bytes MIME for the embedded IMAP server: header fields, body parts by IMAP section
number, BODYSTRUCTURE and ENVELOPE. Pure; works on the bytes as stored, never re-encodes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from daemon.demo.imap_server.proto import paren, string

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FIELD_START = re.compile(rb"^[^\s:]+:", re.MULTILINE)


def split_message(raw: bytes) -> tuple[bytes, bytes]:
    """(header including the blank line that ends it, body)."""
    if raw.startswith((b"\r\n", b"\n")):
        size = 2 if raw.startswith(b"\r\n") else 1
        return raw[:size], raw[size:]
    match = _HEADER_END.search(raw)
    if match is None:
        return raw, b""
    return raw[:match.end()], raw[match.end():]


def header_fields(header: bytes) -> list[tuple[str, bytes]]:
    """Each field as (lower-case name, its raw bytes with continuation lines and line end)."""
    starts = [m.start() for m in _FIELD_START.finditer(header)]
    fields = []
    for start, end in zip(starts, starts[1:] + [len(header)], strict=True):
        raw = header[start:end]
        if raw.strip() == b"":
            continue
        name = raw.split(b":", 1)[0].decode("ascii", "replace").lower()
        fields.append((name, raw.rstrip(b"\r\n") + b"\r\n"))
    return fields


def select_fields(header: bytes, names: list[str], exclude: bool) -> bytes:
    """HEADER.FIELDS (or .NOT when exclude): the chosen fields, then the blank line."""
    wanted = {name.lower() for name in names}
    kept = [raw for name, raw in header_fields(header) if (name in wanted) != exclude]
    return b"".join(kept) + b"\r\n"


def parsed_header(header: bytes) -> Message:
    return BytesHeaderParser().parsebytes(header)


# ---------------------------------------------------------------- parts

@dataclass
class Part:
    header: bytes
    body: bytes
    content_type: tuple[str, str] = ("text", "plain")
    params: dict[str, str] = field(default_factory=dict)
    children: list[Part] = field(default_factory=list)  # multipart parts, or the message

    @property
    def is_multipart(self) -> bool:
        return self.content_type[0] == "multipart"

    @property
    def is_message(self) -> bool:
        return self.content_type == ("message", "rfc822")


def parse_part(raw: bytes, default: tuple[str, str] = ("text", "plain")) -> Part:
    header, body = split_message(raw)
    message = parsed_header(header)
    content_type = default
    if message.get("content-type"):
        main, _, sub = message.get_content_type().partition("/")
        content_type = (main, sub)
    params = {k.lower(): str(v) for k, v in (message.get_params() or [])[1:]}
    part = Part(header, body, content_type, params)
    if part.is_multipart and params.get("boundary"):
        digest = part.content_type[1] == "digest"
        child_default = ("message", "rfc822") if digest else ("text", "plain")
        part.children = [parse_part(chunk, child_default)
                         for chunk in split_multipart(body, params["boundary"])]
    elif part.is_message:
        part.children = [parse_part(body)]
    return part


def split_multipart(body: bytes, boundary: str) -> list[bytes]:
    """The parts between the delimiter lines of a multipart body (preamble/epilogue dropped)."""
    delimiter = re.compile(rb"(?:^|\r?\n)--" + re.escape(boundary.encode()) + rb"(--)?[ \t]*\r?\n?")
    chunks: list[bytes] = []
    last = None
    for match in delimiter.finditer(body):
        if last is not None:
            chunks.append(body[last:match.start()])
        if match[1]:
            return chunks
        last = match.end()
    if last is not None:
        chunks.append(body[last:])
    return chunks


def find_part(root: Part, numbers: list[int]) -> Part | None:
    """The part with IMAP section number numbers (e.g. [1, 2] for "1.2")."""
    part = root
    for number in numbers:
        if part.is_message:
            part = part.children[0]
        if not part.is_multipart:
            if number != 1:
                return None
            continue  # a single-part body is its own part 1
        if not 1 <= number <= len(part.children):
            return None
        part = part.children[number - 1]
    return part


# ---------------------------------------------------------------- structure

def bodystructure(part: Part, extended: bool = True) -> bytes:
    if part.is_multipart:
        inner = b"".join(bodystructure(child, extended) for child in part.children) \
            or bodystructure(Part(b"", b""), extended)
        items = [inner + b" " + string(part.content_type[1].upper())]
        if extended:
            items.append(_params(part.params))
        return b"(" + b" ".join(items) + b")"
    return _single(part, extended)


def _single(part: Part, extended: bool) -> bytes:
    message = parsed_header(part.header)
    main, sub = part.content_type
    encoding = str(message.get("content-transfer-encoding", "7BIT")).strip().upper()
    items = [
        string(main.upper()), string(sub.upper()), _params(part.params),
        string(_value(message, "content-id")), string(_value(message, "content-description")),
        string(encoding), str(len(part.body)).encode(),
    ]
    if part.is_message and part.children:
        inner = part.children[0]
        items += [envelope(inner.header), bodystructure(inner, extended),
                  str(part.body.count(b"\n")).encode()]
    elif main == "text":
        items.append(str(part.body.count(b"\n")).encode())
    if extended:
        items += [b"NIL", _disposition(message)]
    return paren(items)


def _params(params: dict[str, str]) -> bytes:
    items = [string(k.upper()) + b" " + string(v) for k, v in params.items() if k != "boundary"]
    if "boundary" in params:
        items.append(b'"BOUNDARY" ' + string(params["boundary"]))
    return paren(items) if items else b"NIL"


def _disposition(message: Message) -> bytes:
    value = message.get_content_disposition()
    if value is None:
        return b"NIL"
    pairs = message.get_params(header="content-disposition") or []
    params = {k.lower(): str(v) for k, v in pairs[1:]}
    return paren([string(value.upper()), _params(params)])


def _value(message: Message, name: str) -> str | None:
    value = message.get(name)
    return None if value is None else " ".join(str(value).split())


def envelope(header: bytes) -> bytes:
    message = parsed_header(header)
    sender = _addresses(message, "from")
    return paren([
        string(_value(message, "date")), string(_value(message, "subject")), sender,
        _addresses(message, "sender", sender), _addresses(message, "reply-to", sender),
        _addresses(message, "to"), _addresses(message, "cc"), _addresses(message, "bcc"),
        string(_value(message, "in-reply-to")), string(_value(message, "message-id")),
    ])


def _addresses(message: Message, name: str, fallback: bytes = b"NIL") -> bytes:
    values = message.get_all(name)
    if not values:
        return fallback
    items = []
    for display, address in getaddresses([" ".join(str(v).split()) for v in values]):
        local, _, host = address.rpartition("@") if "@" in address else (address, "", "")
        items.append(paren([string(display or None), b"NIL", string(local or None),
                            string(host or None)]))
    return paren(items) if items else b"NIL"
