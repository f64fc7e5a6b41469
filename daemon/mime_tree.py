"""Raw mail bytes to the stdlib's compat32 Message tree, without feeding every line through it.

`email.message_from_bytes` reads a mail line by line in Python, attachments included, and
compiles a regular expression for every multipart boundary: most of the time Tierdesk spent
on a mail went there. `split_tree` builds the same tree from the outside in: headers are
parsed by the compat32 policy's own `header_source_parse`, multipart bodies are cut at their
boundary lines with `bytes.find`, and each leaf keeps its body as one string, exactly as the
stdlib would have set it, so `get_payload(decode=True)` decodes it the same way.

It handles the mail a well-behaved client writes. Anything it is not sure to read exactly as
the stdlib does (a header line that is not a header, a missing boundary, bare CR line
endings, message/* parts the stdlib parses further, nesting deeper than the limit) returns
None, and the caller parses that mail with the stdlib. tests/test_mime_tree.py holds the
two to the same result over a corpus of real-world and generated mail.
"""

from __future__ import annotations

import re
from email import policy
from email.message import Message

MAX_DEPTH = 20
_COMPAT32 = policy.compat32
# The stdlib's header line (feedparser.headerRE, less what it flags as a defect): a name of
# printable ASCII other than space and colon, then a colon.
_FIELD = re.compile(r"[\x21-\x39\x3b-\x7e]+:")
# Multiparts whose transfer encoding the stdlib flags as a defect.
_PLAIN_CTE = frozenset({"", "7bit", "8bit", "binary"})


def split_tree(raw: bytes) -> Message | None:
    """The compat32 tree of `raw`, or None when the stdlib parser must read it."""
    if raw.count(b"\r") != raw.count(b"\r\n"):  # bare CR line ends: the stdlib's business
        return None
    return _part(raw, 0, root=True)


def _part(data: bytes, depth: int, root: bool = False) -> Message | None:
    split = _split_head(data)
    if split is None:
        return None
    head, body = split
    msg = _headers(head, root)
    if msg is None:
        return None
    ctype = msg.get_content_type()
    maintype = ctype.split("/", 1)[0]
    if maintype == "message" or ctype == "multipart/digest":  # parsed further by the stdlib
        return None
    if maintype != "multipart":
        msg.set_payload(body.decode("ascii", "surrogateescape"))
        return msg
    if depth >= MAX_DEPTH or str(msg.get("content-transfer-encoding", "")).strip().lower() \
            not in _PLAIN_CTE:
        return None
    boundary = msg.get_boundary()
    if not boundary:
        return None
    chunks = _between_boundaries(body, boundary.encode("ascii", "surrogateescape"))
    if not chunks:
        return None
    children = []
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
    bare = data.find(b"\n\n")
    if bare != -1 and (end == -1 or bare < end):
        return data[:bare + 1], data[bare + 2:]
    if end == -1:
        return None
    return data[:end + 1], data[end + 3:]


def _headers(head: bytes, root: bool) -> Message | None:
    """A Message holding the header block's fields, parsed as compat32 parses them."""
    msg = Message()
    if not head:
        return msg
    text = head.decode("ascii", "surrogateescape")
    if root and text.startswith("From "):  # an mbox envelope line: the stdlib's business
        return None
    lines = text.split("\n")
    lines.pop()  # the block ends with a line end
    current: list[str] = []
    for line in lines:
        line += "\n"
        first = line[0]
        if first in " \t":
            if not current:
                return None  # a first line that is a continuation
            current.append(line)
            continue
        if not _FIELD.match(line):
            return None
        if current:
            msg.set_raw(*_COMPAT32.header_source_parse(current))
        current = [line]
    if current:
        msg.set_raw(*_COMPAT32.header_source_parse(current))
    return msg


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
