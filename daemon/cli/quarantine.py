"""`tierdesk quarantine [--json] [--all]`: mail that could not be processed, with the reason;
`quarantine show ID`: one mail's reason and raw headers; `quarantine retry ID`: process it again.

A retry runs the kept raw bytes through `process_mail` with the current configuration (the
daemon's own Parts), in one transaction. On success the row gets `retried_at` and leaves the
list (`--all` still shows it). If the mail fails again it stays quarantined under the same ID
with the new reason: process_mail sets it aside as a new row, which the retry folds back into
the old one, so an admin's ID never goes stale and a mail never shows up twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from daemon.cli.common import UserError, load_root
from daemon.cli.store import open_existing, reading, table
from daemon.clock.now import utc_now
from daemon.config.settings import Settings, load_settings
from daemon.inbound.ingest import Inbox, process_mail
from daemon.store.models import Quarantine

REASON_WIDTH = 60
SUBJECT_WIDTH = 40
MAX_HEADER_BYTES = 64 * 1024  # a crafted mail may have megabytes of "headers"
# Terminal control characters (ESC sequences, C1 controls) in a hostile mail's headers.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_LISTED = (Quarantine.id, Quarantine.received_at, Quarantine.reason, Quarantine.subject,
           Quarantine.sender, Quarantine.message_id, Quarantine.folder, Quarantine.uid,
           Quarantine.retried_at)


def quarantine_main(root: Path, environ: Mapping[str, str], action: str | None,
                    row_id: int | None, *, as_json: bool, include_retried: bool,
                    now: datetime | None = None) -> int:
    if action is None:
        return list_command(load_settings(root / "config", environ), as_json, include_retried)
    if row_id is None:
        raise UserError(f"`quarantine {action}` needs the ID of a quarantined mail "
                        "(`quarantine` lists them)")
    if action == "show":
        return show_command(load_settings(root / "config", environ), row_id, as_json)
    return retry_command(root, row_id, now)


# ------------------------------------------------------------------ list

def list_command(settings: Settings, as_json: bool, include_retried: bool) -> int:
    with reading(settings) as session:
        rows = listing(session, include_retried)
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    elif not rows:
        print("no quarantined mail")
    else:
        print(render(rows))
    return 0


def listing(session: Session, include_retried: bool = False) -> list[dict[str, Any]]:
    """JSON-ready rows, oldest first, without loading any raw mail (its size comes from SQL)."""
    stmt = select(*_LISTED, func.length(Quarantine.raw).label("size")).order_by(Quarantine.id)
    if not include_retried:
        stmt = stmt.where(Quarantine.retried_at.is_(None))
    return [_row(dict(found._mapping)) for found in session.execute(stmt)]


def _row(values: dict[str, Any]) -> dict[str, Any]:
    for key in ("received_at", "retried_at"):
        values[key] = values[key].isoformat() if values[key] else None
    return values


def render(rows: list[dict[str, Any]]) -> str:
    header = ("ID", "RECEIVED", "SENDER", "SUBJECT", "SIZE", "REASON")
    body = [(str(r["id"]), _short_time(r["received_at"]), _clip(r["sender"] or "-", 40),
             _clip(r["subject"] or "-", SUBJECT_WIDTH), _size(r["size"] or 0),
             _clip(r["reason"], REASON_WIDTH) + (" (retried)" if r["retried_at"] else ""))
            for r in rows]
    hint = "`quarantine show ID` prints a mail's headers; `quarantine retry ID` processes it again"
    return f"Quarantined: {len(rows)}\n{table([header, *body])}\n\n{hint}"


# ------------------------------------------------------------------ show

def show_command(settings: Settings, row_id: int, as_json: bool) -> int:
    with reading(settings) as session:
        row = _find(session, row_id)
        facts = _row({column.key: getattr(row, column.key) for column in _LISTED})
        facts.update(size=len(row.raw), headers=header_block(row.raw))
    if as_json:
        print(json.dumps(facts, indent=2, ensure_ascii=False))
        return 0
    where = f"folder {facts['folder']}, uid {facts['uid']}, " if facts["folder"] else ""
    print(f"quarantine #{row_id}, received {_short_time(facts['received_at'])} UTC "
          f"({where}{_size(facts['size'])})")
    print(f"reason: {_safe(facts['reason'])}")
    if facts["retried_at"]:
        print(f"retried: {_short_time(facts['retried_at'])} UTC")
    print()
    print(facts["headers"])
    return 0


def header_block(raw: bytes) -> str:
    """The mail's header section as text a terminal can show safely: up to the first empty
    line, at most MAX_HEADER_BYTES, control characters written as \\xNN."""
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0),
              default=len(raw))
    block = raw[:min(end, MAX_HEADER_BYTES)]
    text = _safe(block.decode("utf-8", "replace").replace("\r\n", "\n"))
    cut = min(end, len(raw)) - len(block)
    return text + (f"\n... ({cut} more bytes of headers)" if cut > 0 else "")


def _safe(text: str) -> str:
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


# ------------------------------------------------------------------ retry

@dataclass(frozen=True)
class Retried:
    ok: bool
    line: str


def retry_command(root: Path, row_id: int, now: datetime | None = None) -> int:
    from daemon.service.app import Parts  # lazy: listing needs neither workflows nor templates

    config = load_root(root)
    database = open_existing(config.settings.database.url)
    try:
        inbox = Parts.build(config, database).inbox
        with database.transaction() as session:
            result = retry(session, row_id, inbox, now or utc_now())
    finally:
        database.close()
    print(result.line)
    return 0 if result.ok else 1


def retry(session: Session, row_id: int, inbox: Inbox, now: datetime) -> Retried:
    """Process one quarantined mail again, in the caller's transaction."""
    row = _find(session, row_id, for_update=True)
    if row.retried_at is not None:
        raise UserError(f"quarantined mail {row_id} was already processed on retry at "
                        f"{_short_time(row.retried_at.isoformat())} UTC")
    with _rows_added(session) as added:
        outcome = process_mail(session, row.raw, inbox, now, folder=row.folder, uid=row.uid)
    if outcome.action == "quarantined":
        row.reason = _fold(session, row, added)
        return Retried(False, f"quarantine #{row_id} failed again and stays quarantined: "
                              f"{_safe(row.reason)}")
    row.retried_at = now
    ref = f" {outcome.ref}" if outcome.ref else ""
    return Retried(True, f"quarantine #{row_id} processed: {outcome.action}{ref} "
                         f"({_safe(outcome.detail)})")


@contextmanager
def _rows_added(session: Session) -> Iterator[list[Quarantine]]:
    """Quarantine rows added to the session meanwhile (held here: the session's identity map
    only keeps weak references)."""
    added: list[Quarantine] = []

    def collect(_session: Session, obj: object) -> None:
        if isinstance(obj, Quarantine):
            added.append(obj)

    event.listen(session, "transient_to_pending", collect)
    try:
        yield added
    finally:
        event.remove(session, "transient_to_pending", collect)


def _fold(session: Session, row: Quarantine, added: list[Quarantine]) -> str:
    """process_mail set the mail aside again as a new row: drop that row and return its
    reason, which becomes the old row's."""
    fresh = [obj for obj in added if obj in session]
    for obj in fresh:
        session.delete(obj)
    return fresh[-1].reason if fresh else row.reason


def _find(session: Session, row_id: int, for_update: bool = False) -> Quarantine:
    row = session.get(Quarantine, row_id, with_for_update=for_update)
    if row is None:
        raise UserError(f"no quarantined mail {row_id} (`tierdesk quarantine --all` lists them)")
    return row


# ------------------------------------------------------------------ formatting

def _short_time(value: str | None) -> str:
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _size(n: int) -> str:
    for unit, size in (("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _clip(text: str, width: int) -> str:
    text = _safe(" ".join(text.split()))
    return text if len(text) <= width else text[: width - 1] + "…"
