"""Raw mail bytes to the stdlib's compat32 Message tree, without feeding every line through it.

`email.message_from_bytes` reads a mail line by line in Python, attachments included, and
compiles a regular expression for every multipart boundary: most of the time Tierdesk spent
on a mail went there. `split_tree` builds the same tree from the outside in: a header block
is read by two regular expressions into the fields compat32's `header_source_parse` would
give, multipart bodies are cut at their boundary lines with `bytes.find`, and each leaf keeps
its body as one string, exactly as the stdlib would have set it, so `get_payload(decode=True)`
decodes it the same way. The tree's nodes are `Part`s, Messages that also answer the
questions Tierdesk asks of every part (header values, content type, decoded body) without
the stdlib's per-call work.

It handles the mail a well-behaved client writes. Anything it is not sure to read exactly as
the stdlib does (a header line that is not a header, a missing boundary, bare CR line
endings, message/* parts the stdlib parses further, nesting deeper than the limit) returns
None, and the caller parses that mail with the stdlib. tests/mail/test_mime_tree.py holds the
two to the same result over a corpus of real-world and generated mail.
"""

from __future__ import annotations

import base64
import binascii
import re
from email.message import Message

from daemon.mail.header_fields import boundary as get_boundary

MAX_DEPTH = 20
# A header block as the stdlib reads it without a defect: fields of a name (printable ASCII
# other than space and colon: feedparser.headerRE) and a colon, each followed by its
# continuation lines (starting with a space or tab), lines ending in LF or CRLF. _FIELD
# captures a field's name and its value as Compat32.header_source_parse gives it: the line
# ends inside kept, the blanks after the colon and the last line end dropped.
_BLOCK = re.compile(r"(?:[\x21-\x39\x3b-\x7e]+:[^\r\n]*+\r?\n(?:[ \t][^\r\n]*+\r?\n)*+)*+")
_FIELD = re.compile(
    r"([\x21-\x39\x3b-\x7e]+):[ \t]*+([^\r\n]*+(?:\r?\n[ \t][^\r\n]*+)*+)\r?\n")
_BARE_CR = re.compile(rb"\r(?!\n)")
# Multiparts whose transfer encoding the stdlib flags as a defect.
_PLAIN_CTE = frozenset({"", "7bit", "8bit", "binary"})


class Part(Message):
    """A compat32 Message as the stdlib parser builds it, plus what makes reading it cheap:
    headers indexed by lower-case name (Message.get compares every name on each call), the
    content type worked out once, and a leaf's body kept as the bytes it was cut from.
    Read it, don't change it: the index and the content type are not kept up to date
    (Tierdesk never changes a parsed mail)."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        super().__init__()
        self._headers = fields
        table: dict[str, list[str]] = {}
        for name, value in fields:
            table.setdefault(name.lower(), []).append(value)
        self.table = table  # lower-case name: raw values in order, as Tierdesk reads them
        self.body = b""
        self._content_type = self._read_content_type()

    def get(self, name: str, failobj: object = None) -> object:  # type: ignore[override]
        values = self.table.get(name.lower())
        if values is None:
            return failobj
        if values[0].isascii():
            return values[0]
        return super().get(name, failobj)  # raw 8-bit bytes: compat32 makes it a Header

    def _read_content_type(self) -> str:
        values = self.table.get("content-type")
        if values is None:
            return self.get_default_type()
        if not values[0].isascii():
            return super().get_content_type()
        ctype = values[0].partition(";")[0].strip().lower()  # Message.get_content_type
        return ctype if ctype.count("/") == 1 else "text/plain"

    def get_content_type(self) -> str:
        return self._content_type

    def decoded(self) -> bytes | None:
        """get_payload(decode=True), from the body bytes for base64 and quoted-printable
        bodies the stdlib would decode without a defect; the stdlib for the rest."""
        cte = self.get("content-transfer-encoding", "")
        if not isinstance(cte, str) or self.is_multipart():
            return self.get_payload(decode=True)  # type: ignore[no-any-return]
        cte = cte.lower()
        if cte == "base64":
            data = self.body.translate(None, b"\r\n")  # b"".join(body.splitlines())
            if len(data) % 4 == 0:  # else a padding defect: the stdlib records it
                try:
                    return base64.b64decode(data, validate=True)  # decode_b's first try
                except binascii.Error:
                    pass
            return self.get_payload(decode=True)  # type: ignore[no-any-return]
        if cte == "quoted-printable":
            return binascii.a2b_qp(self.body)  # quopri.decodestring
        if cte in ("x-uuencode", "uuencode", "uue", "x-uue"):
            return self.get_payload(decode=True)  # type: ignore[no-any-return]
        return self.body


def split_tree(raw: bytes) -> Part | None:
    """The compat32 tree of `raw`, or None when the stdlib parser must read it."""
    if _BARE_CR.search(raw):  # bare CR line ends: the stdlib's business
        return None
    return _part(raw, 0)


def _part(data: bytes, depth: int) -> Part | None:
    split = _split_head(data)
    if split is None:
        return None
    head, body = split
    msg = _headers(head)
    if msg is None:
        return None
    ctype = msg.get_content_type()
    maintype = ctype.split("/", 1)[0]
    if maintype == "message" or ctype == "multipart/digest":  # parsed further by the stdlib
        return None
    if maintype != "multipart":
        msg.body = body
        msg.set_payload(body.decode("ascii", "surrogateescape"))
        return msg
    if depth >= MAX_DEPTH or str(msg.get("content-transfer-encoding", "")).strip().lower() \
            not in _PLAIN_CTE:
        return None
    separator = get_boundary(msg)
    if not separator:
        return None
    chunks = _between_boundaries(body, separator.encode("ascii", "surrogateescape"))
    if not chunks:
        return None
    children: list[Message] = []
    for chunk in chunks:
        child = _part(chunk, depth + 1)
        if child is None:
            return None
        children.append(child)
    msg.set_payload(children)
    return msg


def _split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """Header block (with its line ends) and body; None without a blank line after the
    headers (the stdlib then guesses where the body starts)."""
    if data.startswith(b"\n") or data.startswith(b"\r\n"):
        return b"", data[data.index(b"\n") + 1:]
    end = data.find(b"\n\r\n")
    # Only a "\n\n" starting before that counts: don't scan the whole body for one.
    bare = data.find(b"\n\n", 0, len(data) if end == -1 else end + 1)
    if bare != -1:
        return data[:bare + 1], data[bare + 2:]
    if end == -1:
        return None
    return data[:end + 1], data[end + 3:]


def _headers(head: bytes) -> Part | None:
    """A Part holding the header block's fields, parsed as compat32 parses them; None when a
    line is not a header line (a first line that is a continuation, text without a colon,
    an mbox "From " line): the stdlib notes a defect there."""
    text = head.decode("ascii", "surrogateescape")
    if not _BLOCK.fullmatch(text):
        return None
    return Part(_FIELD.findall(text))


def _between_boundaries(body: bytes, boundary: bytes) -> list[bytes] | None:
    """The parts of a multipart body: what lies between its delimiter lines (RFC 2046), the
    line end before each delimiter belonging to the delimiter. None when the first or the
    closing delimiter is missing."""
    marker = b"--" + boundary
    starts: list[tuple[int, int, bool]] = []  # (line start, line end + 1, is the close)
    at = 0
    while True:
        at = body.find(marker, at)
        if at == -1:
            return None  # no closing delimiter
        if at == 0 or body[at - 1] == 0x0A:
            line_end = body.find(b"\n", at)
            rest = body[at + len(marker): len(body) if line_end == -1 else line_end]
            closing = rest.startswith(b"--")
            if closing:
                rest = rest[2:]
            if not rest.rstrip(b"\r").strip(b" \t"):
                stop = len(body) if line_end == -1 else line_end + 1
                starts.append((at, stop, closing))
                if closing:
                    break
                at = stop
                continue
        at += len(marker)
    if starts[0][2]:
        return None  # closed before any part: the stdlib reports a defect
    parts = []
    for (_, begin, _), (end, _, _) in zip(starts, starts[1:], strict=False):
        if end == begin:
            continue  # delimiters on consecutive lines: the stdlib skips the empty part
        parts.append(_strip_line_end(body[begin:end]))
    return parts


def _strip_line_end(chunk: bytes) -> bytes:
    if chunk.endswith(b"\r\n"):
        return chunk[:-2]
    return chunk[:-1] if chunk.endswith(b"\n") else chunk
