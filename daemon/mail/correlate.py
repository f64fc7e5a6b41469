"""Which ticket a mail belongs to, from its thread keys, in a fixed order of trust.

Pure: the ingest loop looks the keys up in the store and passes what it found. Headers come
first (In-Reply-To, then References newest first, against every Message-ID we stored or
sent; then our per-ticket thread root), then the `[TD-n]` subject tag, then a
`support+TD-n@` plus-address. Headers win
because subject tags are easy to copy into a new conversation by hand.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from daemon.mail.thread_keys import ThreadKeys


@dataclass(frozen=True)
class Match:
    ref: str | None
    how: str


NO_MATCH = Match(None, "no known Message-ID, subject tag or plus-address: a new ticket")
# The per-ticket thread root every mail of ours references (outbox.MailWriter.thread_root).
_ROOT = re.compile(r"^td-(\d+)\.ticket@")


def root_refs(keys: ThreadKeys) -> tuple[str, ...]:
    """Tickets named by our thread root in the reply's headers (kept even when the mail it
    answers is not in the store, e.g. trimmed from References by a client)."""
    found = (_ROOT.match(mid) for mid in keys.message_ids)
    return tuple(dict.fromkeys(f"TD-{int(m[1])}" for m in found if m))


def refs_to_check(keys: ThreadKeys) -> tuple[str, ...]:
    """The ticket refs the store must confirm exist (thread roots, subject tags and
    plus-addresses)."""
    return tuple(dict.fromkeys((*root_refs(keys), *keys.subject_refs,
                                *(p.ref for p in keys.plus_refs))))


def correlate(keys: ThreadKeys, known_ids: Mapping[str, str],
              existing_refs: Collection[str]) -> Match:
    """`known_ids`: Message-ID -> ref for the ids of `keys` found in the store;
    `existing_refs`: which of `refs_to_check(keys)` name a ticket."""
    for message_id in keys.message_ids:
        if message_id in known_ids:
            return Match(known_ids[message_id], f"replies to <{message_id}>")
    for ref in root_refs(keys):
        if ref in existing_refs:
            return Match(ref, f"references the thread of {ref}")
    for ref in keys.subject_refs:
        if ref in existing_refs:
            return Match(ref, f"subject tag [{ref}]")
    for plus in keys.plus_refs:
        if plus.ref in existing_refs:
            return Match(plus.ref, f"sent to {plus.address}")
    return NO_MATCH
