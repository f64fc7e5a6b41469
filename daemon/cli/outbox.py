"""`tierdesk outbox [--json]` (pending, parked and recently sent mail) and
`tierdesk outbox retry ID` (a parked mail back into the queue)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.cli.common import UserError
from daemon.cli.store import open_existing, reading, table
from daemon.clock.now import utc_now
from daemon.config.settings import Settings
from daemon.outbound.outbox_queue import NotParked, requeue, rows_with_status
from daemon.store.models import Outbox, Ticket

SHOWN = 50  # rows per section
RECENT = timedelta(hours=24)
ERROR_WIDTH = 60


def outbox_main(settings: Settings, action: str | None, row_id: int | None,
                as_json: bool, now: datetime | None = None) -> int:
    if action is None:
        if row_id is not None:
            raise UserError(f"unexpected {row_id}; did you mean `outbox retry {row_id}`?")
        return outbox_command(settings, as_json, now)
    if row_id is None:
        raise UserError("`outbox retry` needs the ID of a parked mail (see `outbox`)")
    return retry_command(settings, row_id, now)


def outbox_command(settings: Settings, as_json: bool, now: datetime | None = None) -> int:
    now = now or utc_now()
    with reading(settings) as session:
        sections = overview(session, now)
    if as_json:
        print(json.dumps(sections, indent=2, ensure_ascii=False))
    else:
        print(render_sections(sections))
    return 0


def retry_command(settings: Settings, row_id: int, now: datetime | None = None) -> int:
    database = open_existing(settings.database.url)
    try:
        with database.transaction() as session:
            row = requeue(session, row_id, now or utc_now())
            line = f"outbox row {row.id} ({row.template} to {row.recipients or row.to_role}) " \
                   "is pending again"
    except NotParked as exc:
        raise UserError(str(exc)) from None
    finally:
        database.close()
    print(line)
    return 0


def overview(session: Session, now: datetime) -> dict[str, list[dict[str, Any]]]:
    """The three sections as JSON-ready rows."""
    pending = rows_with_status(session, ("pending", "sending"), limit=SHOWN)
    parked = rows_with_status(session, ("parked",), limit=SHOWN)
    sent = rows_with_status(session, ("sent",), limit=SHOWN, newest_first=True,
                            since=now - RECENT)
    refs = _refs(session, [*pending, *parked, *sent])
    return {name: [summary(row, refs) for row in rows]
            for name, rows in (("pending", pending), ("parked", parked), ("sent", sent))}


def _refs(session: Session, rows: Sequence[Outbox]) -> dict[int, str]:
    ids = {row.ticket_id for row in rows if row.ticket_id is not None}
    if not ids:
        return {}
    return dict(session.execute(select(Ticket.id, Ticket.ref).where(Ticket.id.in_(ids))).all())


def summary(row: Outbox, refs: dict[int, str]) -> dict[str, Any]:
    return {
        "id": row.id, "ticket": refs.get(row.ticket_id or -1), "template": row.template,
        "to_role": row.to_role, "recipients": row.recipients, "subject": row.subject,
        "message_id": row.message_id, "status": row.status, "attempts": row.attempts,
        "next_attempt_at": _iso(row.next_attempt_at), "last_error": row.last_error,
        "created_at": _iso(row.created_at), "sent_at": _iso(row.sent_at),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def render_sections(sections: dict[str, list[dict[str, Any]]]) -> str:
    parts = [
        _section("Pending", sections["pending"], "NEXT TRY", "next_attempt_at"),
        _section("Parked (`outbox retry ID` requeues one)", sections["parked"], "PARKED",
                 "next_attempt_at"),
        _section(f"Sent in the last {int(RECENT.total_seconds() // 3600)}h, newest first",
                 sections["sent"], "SENT", "sent_at"),
    ]
    return "\n\n".join(parts)


def _section(title: str, rows: list[dict[str, Any]], when_title: str, when_key: str) -> str:
    heading = f"{title}: {len(rows)}" + (f" (first {SHOWN})" if len(rows) >= SHOWN else "")
    if not rows:
        return heading
    header = ("ID", "TICKET", "TEMPLATE", "TO", "TRIES", when_title, "LAST ERROR")
    body = [(str(r["id"]), r["ticket"] or "-", r["template"], r["recipients"] or r["to_role"],
             str(r["attempts"]), _short_time(r[when_key]), _clip(r["last_error"] or ""))
            for r in rows]
    return heading + "\n" + table([header, *body])


def _short_time(value: str | None) -> str:
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= ERROR_WIDTH else text[: ERROR_WIDTH - 1] + "…"
