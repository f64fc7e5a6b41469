"""The content digest: what makes two copies of a mail the same mail.

Some mailers reuse one Message-ID for different mails; the digest tells them apart, while a
copy of the same mail that reached us along another path (other Received lines) keeps it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from daemon.mail.header_text import unfold

# What the writer wrote and relays leave alone: the fields of the content digest.
DIGEST_HEADERS = ("from", "to", "cc", "date", "subject", "content-type")


def content_digest(raw: bytes, headers: Mapping[str, list[str]]) -> str:
    """What makes two copies of a mail the same mail: hex SHA-256 of the header fields its
    writer's mail program wrote (DIGEST_HEADERS, unfolded and trimmed) and of the body
    (with CRLF line ends, as IMAP gives it; trailing blank space dropped). Trace fields
    that servers add on the way (Received, Return-Path, Delivered-To, signatures, spam
    scores) do not count, so a copy that came along another path is the same mail; one Cc
    more is another."""
    digest = hashlib.sha256()
    for name in DIGEST_HEADERS:
        value = " ".join(unfold(v).strip() for v in headers.get(name, ()))
        digest.update(value.encode("utf-8", "surrogateescape") + b"\0")
    start, stop = _body_span(raw)
    if raw.find(b"\r\n", start, stop) < 0:  # a file saved with LF line ends (IMAP: CRLF)
        digest.update(raw[start:stop].replace(b"\n", b"\r\n"))
    else:
        digest.update(memoryview(raw)[start:stop])  # no copy: this is every mail, in full
    return digest.hexdigest()


def is_redelivery(digest: str, stored: Iterable[str]) -> bool:
    """Whether a mail with this digest is one already stored under its Message-ID (whose
    digests are `stored`), rather than another mail reusing the id. '' is a digest not
    known (stored before digests were kept): the same mail, as then."""
    return any(known in (digest, "") for known in stored)


def _body_span(raw: bytes) -> tuple[int, int]:
    """Where the body lies: after the header block, trailing blank space left out (empty
    when there is no blank line)."""
    crlf = raw.find(b"\r\n\r\n")
    # An LF blank line only counts before the CRLF one; looked for there alone (a CRLF mail
    # has none, and a search of all of it was half the digest's time).
    lf = raw.find(b"\n\n", 0, crlf if crlf >= 0 else len(raw))
    if lf < 0 and crlf < 0:
        return len(raw), len(raw)
    start = lf + 2 if lf >= 0 else crlf + 4
    stop = len(raw)
    while stop > start and raw[stop - 1] in b" \t\r\n":
        stop -= 1
    return start, stop
