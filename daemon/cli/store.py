"""The CLI's side of the store: opening the database and the `tickets` and `show` commands.

Every call into daemon.store from the command line is in this file, so a change of the
store's API is adjusted here only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from daemon.cli.common import UserError
from daemon.cli.sla import deadline_fields, deadlines, render_sla, time_left
from daemon.clock.now import utc_now
from daemon.config.settings import Settings
from daemon.service.health import span
from daemon.site.config import Config
from daemon.store import repository
from daemon.store.database import Database, StoreError, current_revision, open_database
from daemon.store.models import Message, Ticket
from daemon.tickets.sla import sla_of

SUBJECT_WIDTH = 48
_CREATE_HINT = "run `tierdesk run --once` (or `python run.py run --once`) to create it"


# ------------------------------------------------------------------ opening

def open_existing(url: str) -> Database:
    """Open a database for reading only: never create an empty SQLite file or a schema."""
    _require_sqlite_file(url)
    database = open_database(url)
    if current_revision(database) is None:
        database.close()
        raise StoreError(f"database {database.safe_url} has no tables yet; {_CREATE_HINT}")
    return database


def _require_sqlite_file(url: str) -> None:
    try:
        parsed = make_url(url)
    except Exception:  # an invalid URL is reported by open_database with its own words
        return
    name = parsed.database
    if parsed.get_backend_name() == "sqlite" and name not in (None, "", ":memory:"):
        if not Path(name).exists():
            raise StoreError(f"database file {Path(name).resolve()} does not exist; "
                             f"{_CREATE_HINT} (a relative SQLite path is relative to the "
                             "current directory)")


@contextmanager
def reading(settings: Settings) -> Iterator[Session]:
    database = open_existing(settings.database.url)
    try:
        with database.reading() as session:
            yield session
    finally:
        database.close()


# ------------------------------------------------------------------ tickets

def list_command(settings: Settings, state: str | None, as_json: bool,
                 now: datetime | None = None, known_states: Sequence[str] = ()) -> int:
    """`known_states`: the workflows' states; an empty one means they could not be read."""
    moment = now or utc_now()
    with reading(settings) as session:
        if state is not None and known_states:
            _check_state(session, state, known_states)
        tickets = repository.list_tickets(session, state=state)
        counts = inbound_counts(session, state)
        due = deadlines(session, state)
        parents, children = repository.incident_links(session)
        rows = [{**repository.ticket_summary(t, parents.get(t.id), children.get(t.id, ())),
                 "messages_in": counts.get(t.id, 0),
                 **deadline_fields(due.get(t.id), moment)} for t in tickets]
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    elif not rows:
        print("no tickets" + (f" in state {state}" if state else ""))
    else:
        print(ticket_table(rows, moment))
    return 0


def _check_state(session: Session, state: str, known: Sequence[str]) -> None:
    """A misspelt state would list nothing, as if no ticket were in it. A state some ticket
    is in stays valid even if a later workflow version dropped it."""
    if state in known:
        return
    stored = session.execute(select(Ticket.id).where(Ticket.state == state).limit(1)).first()
    if stored is None:
        raise UserError(f"no state {state!r} in the workflows; use one of {', '.join(known)}")


def inbound_counts(session: Session, state: str | None) -> dict[int, int]:
    """Inbound mails per ticket id, in one grouped query over the tickets being listed (a
    subquery, not a list of ids: thousands of tickets would overflow SQLite's parameters)."""
    stmt = (select(Message.ticket_id, func.count())
            .where(Message.direction == "in", Message.ticket_id.is_not(None))
            .group_by(Message.ticket_id))
    if state is not None:
        stmt = stmt.where(Message.ticket_id.in_(select(Ticket.id).where(Ticket.state == state)))
    return {ticket_id: n for ticket_id, n in session.execute(stmt) if ticket_id is not None}


def ticket_table(rows: Sequence[dict[str, Any]], now: datetime) -> str:
    header = ("REF", "STATE", "PRI", "TEAM", "ASSIGNEE", "LEFT", "REQUESTER", "SUBJECT", "AGE")
    body = [
        (row["ref"] + _incident_mark(row), row["state"], row["priority"], row["team"] or "-",
         row["assignee"] or "-",
         time_left(datetime.fromisoformat(row["deadline"]) if row["deadline"] else None, now),
         row["requester"], _clip(row["subject"], SUBJECT_WIDTH),
         age(datetime.fromisoformat(row["created_at"]), now))
        for row in rows
    ]
    return table([header, *body])


def _incident_mark(row: dict[str, Any]) -> str:
    """`TD-2 ↳TD-1`: a report of incident TD-1; `TD-1 (+2)`: an incident with two reports."""
    if row.get("parent"):
        return f" ↳{row['parent']}"
    children = row.get("children") or ()
    return f" (+{len(children)})" if children else ""


def table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart; the last column is not padded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]])
             for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def age(since: datetime, now: datetime) -> str:
    """The two largest units: 45s, 12m, 3h20m, 2d4h."""
    return span(now - since)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())  # a subject may hold folded whitespace
    return text if len(text) <= width else text[: width - 1] + "…"


# ------------------------------------------------------------------ show

def normalise_ref(text: str) -> str:
    """Accept TD-12, td-12, [TD-12] or 12."""
    ref = text.strip().strip("[]").upper()
    return f"{repository.REF_PREFIX}{ref}" if ref.isdigit() else ref


def stored_ticket(session: Session, ref_text: str) -> Ticket:
    """The ticket REF names (TD-12, td-12, 12), or the one-line error."""
    ref = normalise_ref(ref_text)
    ticket = repository.get_ticket(session, ref)
    if ticket is None:
        raise UserError(f"no ticket {ref} (`tierdesk tickets` lists them)")
    return ticket


def show_command(settings: Settings, ref_text: str, config: Config | None = None,
                 now: datetime | None = None) -> int:
    """One ticket: facts, SLA (when the config loads) and the whole timeline."""
    ref = normalise_ref(ref_text)
    with reading(settings) as session:
        ticket = repository.get_ticket(session, ref)
        if ticket is None:
            raise UserError(f"no ticket {ref} (`tierdesk tickets` lists them)")
        parent = repository.parent_of(ticket)
        children = [c.ref for c in repository.children_of(session, ticket)]
        summary = repository.ticket_summary(ticket, parent.ref if parent else None, children)
        timeline = repository.timeline(session, ticket)
        events = [_event_row(e) for e in timeline]
        sla = _sla_text(config, ticket, timeline, now or utc_now())
    print(ticket_header(summary))
    print()
    print(sla)
    print()
    print(f"Timeline ({_plural(len(events), 'event')}, times in UTC)")
    print(table([("TIME", "ACTOR", "KIND", "MOVE", "REASON"), *events]) if events else "  none")
    return 0


def _sla_text(config: Config | None, ticket: Any, timeline: Sequence[Any], now: datetime) -> str:
    if config is None:
        return "SLA: not shown, the configuration has problems (`tierdesk check` lists them)"
    try:
        return render_sla(sla_of(config, ticket, timeline, now))
    except LookupError as exc:
        return f"SLA: not shown, {exc}"


def ticket_header(s: dict[str, Any]) -> str:
    facts = [
        ("state", f"{s['state']} (since {_when(s.get('state_entered_at'))})"),
        ("priority", s["priority"]),
        ("team", s["team"] or "-"),
        ("assignee", s.get("assignee") or "-"),
        ("requester", s["requester"]),
        ("vendor", s.get("vendor") or ""),
        ("tiers", ", ".join(s.get("tiers_visited") or [])),
        ("bounces", f"{s.get('bounces', 0)}" + (" (flagged)" if s.get("flagged") else "")),
        ("linked", s.get("linked_ref") or ""),
        ("incident", f"a report of {s['parent']}" if s.get("parent") else ""),
        ("reports", _reports(s.get("children") or ())),
        ("workflow", f"{s.get('workflow', '?')} v{s.get('workflow_version', '?')}"),
        ("created", _when(s["created_at"])),
        ("updated", _when(s["updated_at"])),
    ]
    lines = [f"{s['ref']}  {' '.join(s['subject'].split())}"]
    lines += [f"  {key:<10} {value}" for key, value in facts if value]
    return "\n".join(lines)


def _reports(children: Sequence[str]) -> str:
    if not children:
        return ""
    return (f"{', '.join(children)} ({len(children) + 1} people affected, "
            "this ticket's included)")


def _event_row(event: Any) -> tuple[str, str, str, str, str]:
    return (_when(event.at), event.actor, event.kind,
            _move(event.from_state, event.to_state), " ".join((event.reason or "").split()))


def _move(source: str | None, dest: str | None) -> str:
    if source and dest and source != dest:
        return f"{source} → {dest}"
    if dest and not source:
        return f"→ {dest}"
    return source or dest or ""


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "?"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")
