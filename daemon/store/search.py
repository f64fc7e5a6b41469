"""Full-text search over tickets: what a new report looks like among those of the last hours
(possible duplicates), and which resolved tickets it looks like (their fixes).

SQLite searches an FTS5 table (bm25 rank), PostgreSQL a tsvector column (ts_rank); both are
kept by the database itself from `ticket_search` rows (daemon/store/models.py, SEARCH_DDL),
which this module writes: the report when a ticket is opened, the `#resolve` summary when it
is resolved. The full-text index only finds candidates; they are scored here, the same way
on both backends (`similarity`), so a threshold means the same on either.

Queries are built from our own word list, each term quoted (FTS5 "term", tsquery 'term') and
passed as a bound parameter: a subject full of FTS5 or tsquery syntax (`NEAR(`, `"`, `*`,
`!`, `:`) is only words to us.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session

from daemon.store.deferred import current as deferred_rows
from daemon.store.models import (
    SEARCH_FTS,
    SEARCH_LANGUAGE,
    SEARCH_VECTOR,
    Ticket,
    TicketSearch,
    UTCDateTime,
)
from daemon.workflow.facts import EventRecord

REPORT_LINES = 8  # the report indexed: subject plus the mail's first lines
REPORT_CHARS = 1500
QUERY_TERMS = 16  # the new report's first distinct words are the query: bounded cost
CANDIDATES = 25  # the index's best matches, scored here, of which the best are kept
MIN_SHARED = 2  # one shared word ("printer") alone is no resemblance
RESOLVE_TRIGGER = "resolve"

_WORD = re.compile(r"[^\W_]+")
# Words that say nothing about the problem: function words and the usual mail phrases.
STOP_WORDS = frozenset("""
a about after again all am an and any are as at be been before being but by can cannot
could did do does doing don for from had has have having he her here hers him his how i if
in into is it its just me more my no nor not now of off on once only or other our out over
own same she should so some such than that the their them then there these they this those
through to too under until up very was we were what when where which while who whom why will
with would you your yours dear hi hello hey please thanks thank regards best cheers kind
sent iphone morning afternoon today yesterday since still also get got us re fw fwd aw wg sv
""".split())


# ------------------------------------------------------------------ words

def words(text: str) -> list[str]:
    """The distinct meaningful words of `text`, lower case, in order of first use."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.casefold()):
        # Numbers count from three digits on (error codes, ports), not as "2" or "10".
        wanted = len(word) > 2 if word.isdigit() else len(word) > 1 and word not in STOP_WORDS
        if wanted:
            seen.setdefault(word, None)
    return list(seen)


def _stem(word: str) -> str:
    """A light English stem, so "printers" and "printer" count as one word when scoring."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def stems(text: str) -> frozenset[str]:
    return frozenset(_stem(word) for word in words(text))


def similarity(query: frozenset[str], found: frozenset[str]) -> float:
    """Shared words over the shorter side's (the overlap coefficient): a short report is
    like a long one that says the same and more. 0 below MIN_SHARED words in common."""
    shared = len(query & found)
    if shared < MIN_SHARED:
        return 0.0
    return shared / min(len(query), len(found))


def fts5_query(terms: Sequence[str]) -> str:
    """An FTS5 MATCH expression that finds rows with any term; each term a quoted string,
    so no word is read as an operator, column filter or prefix."""
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)


def tsquery(terms: Sequence[str]) -> str:
    """A to_tsquery() text that finds rows with any term, each term a quoted lexeme."""
    return " | ".join("'" + term.replace("\\", "\\\\").replace("'", "''") + "'"
                      for term in terms)


def report_text(subject: str, body: str) -> str:
    """What is indexed of a new ticket: its subject and the first lines of its mail."""
    lines = [line.strip() for line in body.replace("\r\n", "\n").splitlines()]
    head = "\n".join(line for line in lines if line)
    head = "\n".join(head.splitlines()[:REPORT_LINES])[:REPORT_CHARS]
    return f"{subject}\n{head}".strip()


# ------------------------------------------------------------------ writing

def index_ticket(session: Session, ticket: Ticket, subject: str, body: str) -> None:
    """Index a new ticket's report, in the caller's transaction (a deferred batch writes it
    at its end, after the tickets)."""
    row = {"ticket_id": ticket.id, "opened_at": ticket.created_at,
           "report": report_text(subject, body), "resolution": None, "resolved_at": None,
           "resolved_by": None}
    buffer = deferred_rows(session)
    if buffer is not None and ticket.id in buffer.tickets:
        buffer.search.append(row)
        return
    row.pop("ticket_id")
    session.add(TicketSearch(ticket=ticket, **row))


def note_resolutions(session: Session, ticket: Ticket, events: Iterable[EventRecord],
                     now: datetime) -> None:
    """Record the summary of a person's `#resolve` among a decision's events; the latest
    resolve wins. The clock's resolve (no answer from the requester) fixed nothing."""
    for record in events:
        if (record.kind == "transition" and record.data.get("trigger") == RESOLVE_TRIGGER
                and record.reason.strip() and "@" in record.actor):
            record_resolution(session, ticket, record.reason.strip(), record.actor, now)


def record_resolution(session: Session, ticket: Ticket, summary: str, by: str,
                      at: datetime) -> None:
    values = {"resolution": summary, "resolved_at": at, "resolved_by": by}
    buffer = deferred_rows(session)
    if buffer is not None:
        for row in buffer.search:
            if row["ticket_id"] == ticket.id:  # opened by this batch: not written yet
                row.update(values)
                return
    for obj in session.new:
        if isinstance(obj, TicketSearch) and obj.ticket is ticket:
            for key, value in values.items():
                setattr(obj, key, value)
            return
    session.execute(update(TicketSearch).where(TicketSearch.ticket_id == ticket.id)
                    .values(**values).execution_options(synchronize_session=False))


# ------------------------------------------------------------------ searching

@dataclass(frozen=True)
class Found:
    """A ticket like the one searched for, with its score (0..1, see `similarity`)."""

    ref: str
    subject: str
    state: str
    opened_at: datetime
    score: float
    resolution: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "subject": self.subject, "state": self.state,
                "opened_at": self.opened_at.isoformat(), "score": round(self.score, 3),
                "resolution": self.resolution,
                "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
                "resolved_by": self.resolved_by}


def report_of(session: Session, ticket_id: int) -> str | None:
    return session.scalar(select(TicketSearch.report)
                          .where(TicketSearch.ticket_id == ticket_id))


def lookalikes(session: Session, ticket_id: int, report: str, *, since: datetime,
               limit: int, threshold: float) -> list[Found]:
    """Other tickets opened since `since` whose report is like `report`, best first."""
    if limit <= 0:
        return []
    return _search(session, report, ticket_id=ticket_id, since=since, resolved=False,
                   limit=limit, threshold=threshold)


def past_fixes(session: Session, report: str, *, limit: int, threshold: float,
               ticket_id: int | None = None) -> list[Found]:
    """Resolved tickets (other than `ticket_id`) like `report`, best first."""
    if limit <= 0:
        return []
    return _search(session, report, ticket_id=ticket_id, since=None, resolved=True,
                   limit=limit, threshold=threshold)


_COLUMNS = ("s.ticket_id, t.ref, t.subject, t.state, s.opened_at, s.report, s.resolution, "
            "s.resolved_at, s.resolved_by")


def _search(session: Session, report: str, *, ticket_id: int | None, since: datetime | None,
            resolved: bool, limit: int, threshold: float) -> list[Found]:
    terms = words(report)[:QUERY_TERMS]
    if len(terms) < MIN_SHARED:
        return []
    where = ["s.ticket_id <> :me"]
    params: dict[str, Any] = {"me": ticket_id or 0, "n": CANDIDATES}
    if resolved:
        where.append("s.resolution IS NOT NULL")
    if since is not None:
        where.append("s.opened_at >= :since")
        params["since"] = since
    if session.get_bind().dialect.name == "postgresql":
        params["q"] = tsquery(terms)
        sql = (f"SELECT {_COLUMNS} FROM ticket_search s JOIN tickets t ON t.id = s.ticket_id, "
               f"to_tsquery('{SEARCH_LANGUAGE}', :q) q WHERE s.{SEARCH_VECTOR} @@ q AND "
               + " AND ".join(where) + f" ORDER BY ts_rank(s.{SEARCH_VECTOR}, q) DESC, "
               "s.ticket_id DESC LIMIT :n")
    else:
        params["q"] = fts5_query(terms)
        if since is not None:
            # Ids grow with time: the FTS5 table walks only the window's rowids.
            where.append(f"{SEARCH_FTS}.rowid >= coalesce((SELECT min(ticket_id) FROM "
                         "ticket_search WHERE opened_at >= :since), 0)")
        sql = (f"SELECT {_COLUMNS} FROM {SEARCH_FTS} JOIN ticket_search s "
               f"ON s.ticket_id = {SEARCH_FTS}.rowid JOIN tickets t ON t.id = s.ticket_id "
               f"WHERE {SEARCH_FTS} MATCH :q AND " + " AND ".join(where)
               + f" ORDER BY {SEARCH_FTS}.rank, s.ticket_id DESC LIMIT :n")
    statement = text(sql)
    if since is not None:
        statement = statement.bindparams(bindparam("since", type_=UTCDateTime()))
    typed = statement.columns(opened_at=UTCDateTime(), resolved_at=UTCDateTime())
    query = stems(report)
    found: list[Found] = []
    for row in session.execute(typed, params):
        score = similarity(query, stems(f"{row.report}\n{row.resolution or ''}"))
        if score >= threshold:
            found.append(Found(row.ref, row.subject, row.state, row.opened_at, score,
                               row.resolution, row.resolved_at, row.resolved_by))
    # Best score first; among equals the index's order (its rank, then the newest).
    found.sort(key=lambda item: -item.score)
    return found[:limit]

