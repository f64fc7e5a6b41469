"""Which keys a mail offers for threading it onto a ticket. Pure: the ingest loop looks
them up in the store, in this order (DESIGN "Mail facts"):

1. `message_ids`: In-Reply-To first, then References newest to oldest (the header lists
   oldest first), each once, exactly as written (see `reply_ids` for the domain's case);
2. `subject_refs`: `[TD-n]` tags in the subject, wherever they stand, so reply prefixes
   in any language (Re:, AW:, SV:, VS:, Réf:, 回复:) do not matter;
3. `plus_refs`: plus-addresses of the support mailbox (`support+TD-n@domain`, and the
   signed form `support+TD-n.<token>@domain` of issue 5) in To, Cc, Delivered-To,
   X-Original-To and Envelope-To.

Refs are normalised to "TD-<n>" (upper case, no leading zeros).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from daemon.mail.message import InboundMessage

REF_PREFIX = "TD-"
_SUBJECT_TAG = re.compile(r"[\[［]\s*TD-0*(\d{1,12})\s*[\]］]", re.IGNORECASE)
_PLUS_TAG = re.compile(r"^TD-0*(\d{1,12})(?:\.([A-Za-z0-9_-]{1,128}))?$", re.IGNORECASE)
# Reply and forward prefixes of many clients and languages, for `base_subject`.
_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|sv|vs|antw|antwort|odp|r|rif|ref|réf|rép|res|fw|fwd|wg|tr|rv|enc|"
    r"vb|vl|doorst|ynt|πρθ|на|отв|回复|回覆|答复|转发|轉寄)(?:\s*\[\d+\])?\s*[:：]\s*)+",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class PlusRef:
    ref: str              # "TD-21"
    token: str | None     # the signature of a signed reply address, as written
    address: str          # the address it was found in


@dataclass(frozen=True)
class ThreadKeys:
    message_ids: tuple[str, ...]
    subject_refs: tuple[str, ...]
    plus_refs: tuple[PlusRef, ...]

    @property
    def empty(self) -> bool:
        return not (self.message_ids or self.subject_refs or self.plus_refs)


def thread_keys(msg: InboundMessage, support_address: str,
                domains: Iterable[str] = ()) -> ThreadKeys:
    """Keys of one mail. Plus-addresses count on the support address's domain and on
    any of `domains` (e.g. settings.site.domain)."""
    return ThreadKeys(
        message_ids=reply_ids(msg),
        subject_refs=subject_refs(msg.subject),
        plus_refs=plus_refs(msg, support_address, domains),
    )


def reply_ids(msg: InboundMessage) -> tuple[str, ...]:
    """Each id as written, then (when it differs) with its domain in lower case: the local
    part of a Message-ID is case-sensitive, its domain is not, and some mailers change it."""
    ids = ([msg.in_reply_to] if msg.in_reply_to else []) + list(reversed(msg.references))
    return tuple(dict.fromkeys(
        variant for i in ids if i != msg.message_id for variant in (i, _domain_lowered(i))))


def _domain_lowered(message_id: str) -> str:
    left, at, right = message_id.rpartition("@")
    return f"{left}{at}{right.lower()}" if at else message_id


def subject_refs(subject: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f"{REF_PREFIX}{int(n)}" for n in _SUBJECT_TAG.findall(subject)))


def plus_refs(msg: InboundMessage, support_address: str,
              domains: Iterable[str] = ()) -> tuple[PlusRef, ...]:
    local, _, domain = support_address.strip().casefold().rpartition("@")
    accepted = {domain, *(d.strip().casefold() for d in domains)}
    found: dict[tuple[str, str | None], PlusRef] = {}
    for address in (*msg.to, *msg.cc, *msg.delivered_to):
        ref = _plus_ref(address, local, accepted)
        if ref is not None:
            found.setdefault((ref.ref, ref.token and ref.token.casefold()), ref)
    return tuple(found.values())


def _plus_ref(address: str, local: str, domains: set[str]) -> PlusRef | None:
    box, _, domain = address.strip().rpartition("@")
    base, plus, tag = box.partition("+")
    if not plus or base.casefold() != local or domain.casefold() not in domains:
        return None
    match = _PLUS_TAG.match(tag)
    if match is None:
        return None
    return PlusRef(f"{REF_PREFIX}{int(match[1])}", match[2], address.strip())


def base_subject(subject: str) -> str:
    """The subject without reply/forward prefixes and ticket tags, for a new ticket."""
    previous = None
    while previous != subject:
        previous = subject
        subject = _SUBJECT_TAG.sub(" ", _PREFIX.sub("", subject)).strip()
    return re.sub(r"\s{2,}", " ", subject)
