"""`tierdesk explain FILE [--json] [--store]`: what Tierdesk makes of one raw mail, for
admins asking "why did this mail do that?". Reads the file and the settings only: no server,
and no store unless `--store` asks whether the mail was processed already (the caller looks
it up and passes `stored`). Prints the classification and its reasons, the thread keys, the
command tags, the new text of the reply (and what ended it), attachments and defects;
for a directory member's mail, each proof of the sender in order and which one counted.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from daemon.mail.classify import Classification, classify
from daemon.mail.digest import is_redelivery
from daemon.mail.message import InboundMessage, MailRejected, ParseLimits, parse_message
from daemon.mail.thread_keys import ThreadKeys, thread_keys
from daemon.workflow.tags import TagScan, find_tags

if TYPE_CHECKING:
    from daemon.config.settings import Settings

PROG = "tierdesk"


@dataclass(frozen=True)
class Explanation:
    message: InboundMessage
    classification: Classification
    keys: ThreadKeys
    tags: TagScan


def explain_mail(raw: bytes, *, support_address: str, own_addresses: Iterable[str] = (),
                 domains: Iterable[str] = (), limits: ParseLimits | None = None) -> Explanation:
    """Everything the ingest loop would decide about `raw`, without acting on it.
    Raises MailRejected like parse_message."""
    message = parse_message(raw, limits)
    own = (support_address, *own_addresses)
    return Explanation(message, classify(message, own),
                       thread_keys(message, support_address, domains),
                       find_tags(message.new_text))


class AuthReport(Protocol):
    """The authentication section (cli/explain_auth.py), as this module prints it."""

    def as_json(self) -> dict[str, Any]: ...

    def as_text(self) -> str: ...


# The authentication part, judged by the caller (cli/explain_auth.py: it needs the
# directory and the DKIM verifier, which a plain `explain` of a customer's mail does not).
AuthJudge = Callable[["Explanation", bytes], AuthReport | None]


# What the store holds under a Message-ID: (digest, ticket ref or None) of each stored mail.
Stored = Sequence[tuple[str, str | None]]
StoreLookup = Callable[[str], Stored]


def explain_command(settings: Settings, path: Path, *, as_json: bool,
                    lookup: StoreLookup | None = None,
                    judge: AuthJudge | None = None) -> int:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return _fail(f"cannot read {path}: {exc.strerror or exc}")
    try:
        mail = settings.mail
        limits = ParseLimits(mail.max_size, mail.max_attachments, mail.max_attachment_size)
        result = explain_mail(raw, support_address=mail.address,
                              domains=(settings.site.domain,), limits=limits)
    except MailRejected as exc:
        return _fail(f"{path}: mail rejected: {exc.reason}")
    seen = None if lookup is None else store_verdict(result.message, lookup(
        result.message.message_id))
    data = to_json(result)
    if seen is not None:
        data["store"] = seen
    auth = judge(result, raw) if judge is not None else None
    if auth is not None:
        data["authentication"] = auth.as_json()
    print(json.dumps(data, ensure_ascii=False, indent=2) if as_json
          else to_text(result, str(path), seen, auth))
    return 0


def store_verdict(msg: InboundMessage, stored: Stored) -> dict[str, Any]:
    """What ingest would make of this mail given what is stored under its Message-ID."""
    refs = sorted({ref for _, ref in stored if ref})
    where = f" (on {', '.join(refs)})" if refs else ""
    if is_redelivery(msg.digest, [digest for digest, _ in stored]):
        verdict, why = "duplicate", ("this mail is stored already" + where +
                                     ": same Message-ID and content, recorded as a duplicate")
    elif stored:
        verdict, why = "reused_message_id", (
            f"its Message-ID is stored for {len(stored)} other mail(s){where} with other "
            "content: processed as a mail of its own")
    else:
        verdict, why = "new", "not stored yet: processed as a new mail"
    return {"verdict": verdict, "why": why, "tickets": refs}


def _fail(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return 1


# ------------------------------------------------------------------ JSON

def to_json(result: Explanation) -> dict[str, Any]:
    msg, verdict = result.message, result.classification
    return {
        "kind": verdict.kind,
        "reason": verdict.reason,
        "reasons": list(verdict.reasons),
        "bounced_message_ids": list(verdict.bounced_message_ids),
        "author": verdict.author,
        "new_text": msg.new_text,
        "reply_marker": msg.reply_marker,
        "thread_keys": _keys_json(result.keys),
        "commands": [{"name": c.name, "argument_text": c.argument_text, "line_no": c.line_no}
                     for c in result.tags.commands],
        "text_without_commands": result.tags.text,
        **_message_json(msg),
    }


def _keys_json(keys: ThreadKeys) -> dict[str, Any]:
    return {
        "message_ids": list(keys.message_ids),
        "subject_refs": list(keys.subject_refs),
        "plus_refs": [{"ref": p.ref, "token": p.token, "address": p.address}
                      for p in keys.plus_refs],
    }


def _message_json(msg: InboundMessage) -> dict[str, Any]:
    return {
        "message_id": msg.message_id,
        "message_id_generated": msg.message_id_generated,
        "digest": msg.digest,
        "subject": msg.subject,
        "from": {"address": msg.from_addr, "name": msg.from_name, "problem": msg.from_problem},
        "reply_to": list(msg.reply_to),
        "to": list(msg.to),
        "cc": list(msg.cc),
        "delivered_to": list(msg.delivered_to),
        "date": msg.date.isoformat() if msg.date else None,
        "in_reply_to": msg.in_reply_to,
        "references": list(msg.references),
        "attachments": [{"filename": a.filename, "content_type": a.content_type,
                         "size": a.size, "sha256": a.sha256} for a in msg.attachments],
        "defects": list(msg.defects),
        "size": msg.size,
    }


# ------------------------------------------------------------------ text

def to_text(result: Explanation, name: str, seen: dict[str, Any] | None = None,
            auth: AuthReport | None = None) -> str:
    summary = _summary(result, name) + (f"\nstore:       {seen['why']}" if seen else "")
    sections = [summary, _keys_text(result.keys), _commands_text(result.tags),
                *([auth.as_text()] if auth is not None else []),
                _new_text(result.message), _attachments_text(result.message),
                _defects_text(result.message)]
    return "\n\n".join(sections)


def _summary(result: Explanation, name: str) -> str:
    msg, verdict = result.message, result.classification
    sender = f"{msg.from_name} <{msg.from_addr}>" if msg.from_name else msg.from_addr
    generated = " (none in the mail: its content digest)" if msg.message_id_generated else ""
    lines = [name,
             f"kind:        {verdict.kind}",
             f"reason:      {verdict.reason}",
             *(f"also:        {r}" for r in verdict.reasons[1:]),
             *(f"bounced:     {i}" for i in verdict.bounced_message_ids),
             f"from:        {sender or msg.from_problem or '(none)'}",
             *([f"written by:  {verdict.author} (our own group passed it on under its From)"]
               if verdict.author else []),
             f"subject:     {msg.subject or '(none)'}",
             f"date:        {msg.date.isoformat() if msg.date else '(none or unreadable)'}",
             f"message-id:  {msg.message_id}{generated}",
             f"digest:      {msg.digest}",
             "             (of From, To, Cc, Date, Subject, Content-Type and the body: a copy "
             "with the same Message-ID and digest is a redelivery; another digest under the "
             "same Message-ID, a mail of its own)"]
    return "\n".join(lines)


def _keys_text(keys: ThreadKeys) -> str:
    plus = [f"{p.ref}" + (f" (signed, token {p.token})" if p.token else "") + f" via {p.address}"
            for p in keys.plus_refs]
    return "\n".join([
        "thread keys, tried in this order:",
        f"  1. replied-to message ids: {', '.join(keys.message_ids) or '(none)'}",
        f"  2. subject tags:           {', '.join(keys.subject_refs) or '(none)'}",
        f"  3. plus addresses:         {'; '.join(plus) or '(none)'}",
    ])


def _commands_text(tags: TagScan) -> str:
    if not tags.commands:
        return "commands: (none in the new text)"
    lines = [f"  line {c.line_no}: #{c.name}" + (f" {c.argument_text}" if c.argument_text else "")
             for c in tags.commands]
    return "\n".join(["commands:", *lines])


def _new_text(msg: InboundMessage) -> str:
    ended = f"ended by {msg.reply_marker}" if msg.reply_marker else "nothing quoted found"
    body = [f"  | {line}" for line in msg.new_text.split("\n")] if msg.new_text else ["  (empty)"]
    return "\n".join([f"new text ({ended}):", *body])


def _attachments_text(msg: InboundMessage) -> str:
    if not msg.attachments:
        return "attachments: (none)"
    lines = [f"  {a.filename}  {a.content_type}  {a.size} bytes  sha256 {a.sha256[:16]}"
             for a in msg.attachments]
    return "\n".join(["attachments:", *lines])


def _defects_text(msg: InboundMessage) -> str:
    if not msg.defects:
        return "defects: (none)"
    return "\n".join(["defects:", *(f"  {d}" for d in msg.defects)])
