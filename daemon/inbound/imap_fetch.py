"""UID FETCH BODY.PEEK[] of a batch, read straight from imaplib's response.

Why: imapclient runs every FETCH response through its general lexer and parser, a sixth of
what fetching a batch costs us. Servers answer this one fetch in one shape: `n (UID u
BODY[] {size}` with the literal, then `)`. That shape is read by a regular expression;
any other (items in another order, an unsolicited FLAGS update among them, ...) goes to
imapclient's parser, so nothing a server may send is misread. `uid_set` writes the UID sets
of this and the adapter's other commands (daemon/inbound/imap.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from imapclient.response_parser import parse_fetch_response

_ONE_BODY = re.compile(rb"\d+ \(UID (\d+) BODY\[\] \{\d+\}")


def fetch_bodies(client: IMAPClient, uids: Sequence[int]) -> dict[int, bytes]:
    """The raw mails of `uids` still in the folder, by UID (never sets \\Seen)."""
    if not uids:
        return {}
    # imaplib's own UID command: the same request imapclient's fetch sends.
    typ, data = client._imap.uid("FETCH", uid_set(uids), "(BODY.PEEK[])")
    if typ != "OK":
        raise IMAPClientError(f"fetch failed: {data!r}")
    found = read_bodies(data)
    if found is None:
        parsed = parse_fetch_response(data, client.normalise_times, True)
        found = {uid: items[b"BODY[]"] for uid, items in parsed.items()
                 if isinstance(uid, int) and b"BODY[]" in items}
    wanted = set(uids)
    return {uid: raw for uid, raw in found.items() if uid in wanted}


def uid_set(uids: Iterable[int]) -> str:
    """An IMAP sequence set for UIDs with runs collapsed: [1, 2, 3, 7] -> "1:3,7"."""
    ordered = sorted(set(uids))
    if not ordered:
        raise ValueError("an IMAP UID set needs at least one UID")
    parts: list[str] = []
    start = prev = ordered[0]
    for uid in ordered[1:] + [0]:
        if uid != prev + 1:
            parts.append(str(start) if start == prev else f"{start}:{prev}")
            start = uid
        prev = uid
    return ",".join(parts)


def read_bodies(data: Sequence[Any]) -> dict[int, bytes] | None:
    """UID -> body when every response has the one expected shape, else None."""
    found: dict[int, bytes] = {}
    items = iter(data)
    for item in items:
        if item is None:  # imaplib's "no FETCH responses at all"
            continue
        if not isinstance(item, tuple) or len(item) != 2:
            return None
        match = _ONE_BODY.fullmatch(item[0])
        if match is None or next(items, None) != b")":
            return None
        found[int(match[1])] = item[1]
    return found
