"""Attachments passed on: which stored files a mail carries, within what budget, and how the
sender puts them back into the mail.

Which files (chosen when the row is rendered, `Files.load` / `Files.choose`):
- a row whose context names `attach: {"mail": [message_id, digest]}` carries that stored
  mail's files (a technician's reply, passed on to the requester with its text), within
  `mail.reply_attachments_max`;
- `attach: {"from": "requester"}` carries the files of the requester's mails on the ticket
  (`#vendor NAME +attachments`), within `mail.handoff_attachments_max`;
- otherwise a template that lists `attachments` sent to one of ours (a team's handoff) gets
  the files of every inbound mail on the ticket, within `mail.handoff_attachments_max`. An
  outsider (requester, vendor) never gets files they were not explicitly given.
Files past the budget are listed (name, type, size, `attached: false`), not attached: they
stay on the ticket. Names are made safe (`mime.safe_filename`), content types kept.

References, not copies: the store keeps every inbound mail's raw bytes (messages.raw), so an
outbox row keeps its mail as a shell without the files (mime.build_shell) and `Ref`s to them
(outbox.attachments: messages.id, MIME part path, name, type, size). `complete` rebuilds the
files from the stored mail when the row is sent, byte-identical to what was received: a
handoff with a 10 MB screenshot costs the outbox kilobytes, not another 13 MB of base64.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.mail.message import InboundMessage, MailRejected, ParseLimits, parse_message
from daemon.mail.mime import Attachment, attach, safe_content_type, safe_filename
from daemon.outbound.history import parsed_mail
from daemon.store.models import Message, Ticket

ATTACH = "attach"  # the outbox row's context key: whose files the mail carries


class MissingAttachment(LookupError):
    """A referenced file is no longer in the store (its mail deleted or unreadable)."""


@dataclass(frozen=True)
class Ref:
    """One stored file: the inbound mail's row (messages.id) and its MIME part."""

    message: int
    part: str
    filename: str
    content_type: str
    size: int

    def as_json(self) -> dict[str, Any]:
        return {"message": self.message, "part": self.part, "filename": self.filename,
                "content_type": self.content_type, "size": self.size}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Ref:
        return cls(int(data["message"]), str(data["part"]), str(data["filename"]),
                   str(data["content_type"]), int(data["size"]))


@dataclass(frozen=True)
class Offered:
    """A file the mail may carry, with who sent it and when (the template lists them)."""

    ref: Ref
    sender: str
    at: datetime | None


@dataclass(frozen=True)
class Chosen:
    """What one mail carries (`attached`) and lists (`listed`, the template's
    `attachments`: every offered file, each saying whether it is attached)."""

    attached: tuple[Ref, ...] = ()
    listed: tuple[dict[str, Any], ...] = ()

    @property
    def size(self) -> int:
        return sum(ref.size for ref in self.attached)


def within(sizes: Sequence[int], budget: int) -> list[bool]:
    """Which files to attach, in order: each one that still fits in `budget` (a big file
    past it does not stop a small one after it)."""
    used = 0
    taken: list[bool] = []
    for size in sizes:
        fits = used + size <= budget
        used += size if fits else 0
        taken.append(fits)
    return taken


def choose(offered: Sequence[Offered], budget: int) -> Chosen:
    taken = within([o.ref.size for o in offered], budget)
    listed = tuple({"filename": o.ref.filename, "content_type": o.ref.content_type,
                    "size": o.ref.size, "sender": o.sender,
                    "at": o.at.isoformat() if o.at else "", "attached": take}
                   for o, take in zip(offered, taken, strict=True))
    return Chosen(tuple(o.ref for o, take in zip(offered, taken, strict=True) if take), listed)


def refs_of(row: Message, mail: InboundMessage) -> list[Offered]:
    """The files of one stored mail, named safely, in the order the mail holds them."""
    return [Offered(Ref(row.id, part.part, safe_filename(part.filename),
                        safe_content_type(part.content_type), part.size),
                    row.sender or "", row.received_at)
            for part in mail.attachments]


# ------------------------------------------------------------------ choosing, for a batch

@dataclass(frozen=True)
class Want:
    """What one row asks for: files of the whole ticket, of its requester, or of one mail."""

    scope: str  # "ticket", "requester" or "mail"
    budget: int
    mail: tuple[str, str] | None = None  # (Message-ID, digest) for "mail"


def wanted(context: Mapping[str, Any], lists_files: bool, external: bool,
           handoff_budget: int, reply_budget: int) -> Want | None:
    """What a row's mail carries, from its context and its recipient (see the module)."""
    asked = context.get(ATTACH)
    if isinstance(asked, Mapping):
        mail = asked.get("mail")
        if isinstance(mail, Sequence) and len(mail) == 2:
            return Want("mail", reply_budget, (str(mail[0]), str(mail[1])))
        if asked.get("from") == "requester":
            return Want("requester", handoff_budget)
    if lists_files and not external:
        return Want("ticket", handoff_budget)
    return None


@dataclass
class Files:
    """The inbound mails the batch's rows take files from, read in two queries at most,
    each parsed once (the parse cache of outbound/history.py first)."""

    session: Session
    by_ticket: dict[int, list[Message]] = field(default_factory=dict)
    by_id: dict[tuple[str, str], Message] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, wants: Iterable[tuple[Ticket | None, Want]]) -> Files:
        found = cls(session)
        tickets = sorted({t.id for t, w in wants if t is not None and w.scope != "mail"})
        mails = sorted({w.mail for _, w in wants if w.mail is not None})
        if tickets:
            found.by_ticket = {i: [] for i in tickets}
            for row in session.scalars(select(Message).where(Message.ticket_id.in_(tickets))
                                       .order_by(Message.id)):
                if row.direction == "in" and row.ticket_id is not None:
                    found.by_ticket[row.ticket_id].append(row)
        if mails:
            for row in session.scalars(select(Message).where(
                    Message.direction == "in",
                    Message.message_id.in_(sorted({m for m, _ in mails})))):
                found.by_id[(row.message_id, row.digest)] = row
        return found

    def choose(self, ticket: Ticket | None, want: Want) -> Chosen:
        if want.scope == "mail" and want.mail is not None:
            row = self.by_id.get(want.mail)
            rows = [row] if row is not None else []
        elif ticket is None:
            rows = []
        else:
            rows = self.by_ticket.get(ticket.id, [])
            if want.scope == "requester":
                rows = [r for r in rows if _same(r.sender, ticket.requester)]
        offered = [o for row in rows for o in self._offered(row)]
        return choose(offered, want.budget)

    def _offered(self, row: Message) -> list[Offered]:
        mail = parsed_mail(self.session, row)
        return refs_of(row, mail) if mail is not None else []


def _same(a: str | None, b: str) -> bool:
    return (a or "").strip().casefold() == b.strip().casefold()


# ------------------------------------------------------------------ sending

def complete(session: Session, shell: bytes, refs: Sequence[Mapping[str, Any]]) -> bytes:
    """The mail to send: `shell` with each referenced file read back from its stored mail.
    MissingAttachment when one is gone."""
    if not refs:
        return shell
    wanted_refs = [Ref.from_json(r) for r in refs]
    ids = sorted({r.message for r in wanted_refs})
    raws = {i: raw for i, raw in session.execute(
        select(Message.id, Message.raw).where(Message.id.in_(ids)))}
    parts: dict[tuple[int, str], bytes] = {}
    for message_id in ids:
        raw = raws.get(message_id)
        if not raw:
            raise MissingAttachment(f"stored mail #{message_id} is gone; its files cannot "
                                    "be attached")
        for part in _parse(raw, message_id).attachments:
            parts[(message_id, part.part)] = part.content
    files = []
    for ref in wanted_refs:
        content = parts.get((ref.message, ref.part))
        if content is None:
            raise MissingAttachment(f"part {ref.part} of stored mail #{ref.message} "
                                    f"({ref.filename}) is not there")
        files.append(Attachment(ref.filename, ref.content_type, content))
    return attach(shell, files)


def _parse(raw: bytes, message_id: int) -> InboundMessage:
    # The mail passed ingest's limits when it came in; today's may be lower: none here.
    unlimited = ParseLimits(max_size=len(raw) + 1, max_attachments=len(raw) + 1,
                            max_attachment_size=len(raw) + 1)
    try:
        return parse_message(raw, unlimited)
    except MailRejected as exc:
        raise MissingAttachment(f"stored mail #{message_id} cannot be read: {exc}") from exc
