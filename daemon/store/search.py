"""Full-text search over tickets: what a new report looks like among those of the last hours
(possible duplicates), and which resolved tickets it looks like (their fixes).

This module writes `ticket_search` rows: the report when a ticket is opened, the `#resolve`
summary when it is resolved. Look-alikes are the window's rows read by time and scored in
pure code (daemon/mail/similarity.py). Past fixes come from the full-text index (an FTS5
table on SQLite, bm25; a tsvector column on PostgreSQL, ts_rank; both kept by the database,
see SEARCH_DDL in daemon/store/models.py), asked for a few rare terms only; its candidates
are scored by the same pure code, so a threshold means the same on either backend.

Queries are built from our own word list, each term quoted (FTS5 "term", tsquery 'term') and
passed as a bound parameter: a subject full of FTS5 or tsquery syntax (`NEAR(`, `"`, `*`,
`!`, `:`) is only words to us.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, bindparam, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from daemon.mail import similarity as scoring

# The scoring is pure code; these names stay importable from here (CLI, bench, tests).
from daemon.mail.similarity import MIN_SHARED, report_text, stems, words
from daemon.mail.similarity import similarity as similarity
from daemon.store.deferred import current as deferred_rows
from daemon.store.models import (
    SEARCH_FTS,
    SEARCH_LANGUAGE,
    SEARCH_TOKENS,
    SEARCH_VECTOR,
    SEARCH_VOCAB,
    Ticket,
    TicketSearch,
    UTCDateTime,
)
from daemon.workflow.facts import EventRecord

QUERY_TERMS = 16  # the new report's first distinct words are weighed for a query: bounded
CANDIDATES = 25  # the index's best matches, scored here, of which the best are kept
WINDOW_CAP = 500  # the newest tickets of the window scored for look-alikes; a burst bigger
#                   than this is one incident whose newest reports say enough
RESOLVE_TRIGGER = "resolve"

def fts5_query(terms: Sequence[str], *, any_of: bool = True) -> str:
    """An FTS5 MATCH expression that finds rows with any (or all) terms; each term a quoted
    string, so no word is read as an operator, column filter or prefix."""
    return (" OR " if any_of else " AND ").join('"' + term.replace('"', '""') + '"'
                                                for term in terms)


def tsquery(terms: Sequence[str], *, any_of: bool = True) -> str:
    """A tsquery text that finds rows with any (or all) terms, each term a quoted lexeme."""
    return (" | " if any_of else " & ").join(
        "'" + term.replace("\\", "\\\\").replace("'", "''") + "'" for term in terms)


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


def add_to_incident(session: Session, incident: Ticket, report: Ticket) -> None:
    """A report linked to an incident (#link) adds its subject to the incident's indexed
    text: the many ways people described one outage are what a later report of it will
    resemble, and the incident is the ticket that lists the fix (past_fixes)."""
    session.execute(update(TicketSearch).where(TicketSearch.ticket_id == incident.id)
                    .values(report=TicketSearch.report + "\n" + report.subject)
                    .execution_options(synchronize_session=False))


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
               limit: int, threshold: float, windows: Windows | None = None) -> list[Found]:
    """Other tickets opened since `since` whose report is like `report`, best first.

    No full-text index: a query ORing a report's words matches nearly every ticket and
    ranks them all. The window holds a few hundred tickets at most; they are read by the
    opened_at index, newest first, and scored in pure code (daemon/mail/similarity.py).
    `windows` shares one read among the tickets of a batch."""
    if limit <= 0:
        return []
    query = stems(report)
    if len(query) < MIN_SHARED:
        return []
    windows = windows or Windows()
    windows.load(session, since)
    # The shared-word counts come with the candidates: the overlap score without a second
    # set intersection per ticket (scoring.similarity computes the same).
    scored = [(score, item) for item, shared in windows.sharing(query, since)
              if item.ticket_id != ticket_id
              and (score := shared / min(len(query), len(item.stems))) >= threshold]
    scored.sort(key=lambda pair: -pair[0])  # stable: equals stay newest first
    return [replace(item.found, score=score) for score, item in scored[:limit]]


def alike_ids(session: Session, ticket_id: int, report: str, *, since: datetime,
              limit: int, threshold: float, windows: Windows | None = None
              ) -> list[tuple[int, float]]:
    """(ticket id, score) of the tickets opened since `since` like `report`, best first, for
    ingest (a triage rule's `looks_like_open`): as `lookalikes`, plus the new tickets of the
    batch in hand, which are not written yet (store/deferred.py)."""
    query = stems(report)
    if limit <= 0 or len(query) < MIN_SHARED:
        return []
    recent = [*(windows or Windows()).since(session, since), *_pending(session, since)]
    others = (item for item in recent if item.ticket_id != ticket_id)
    return [(item.ticket_id, score) for score, item in scoring.best(
        query, others, lambda item: item.stems, threshold=threshold, limit=limit)]


def _pending(session: Session, since: datetime) -> list[Recent]:
    buffer = deferred_rows(session)
    if buffer is None:
        return []
    found: list[Recent] = []
    for row in buffer.search:
        ticket = buffer.tickets.get(row["ticket_id"])
        if ticket is not None and row["opened_at"] >= since:
            found.append(Recent(ticket.id, Found(ticket.ref, ticket.subject, ticket.state,
                                                 row["opened_at"], 0.0), stems(row["report"])))
    return found


@dataclass(frozen=True)
class Recent:
    """A ticket of the window, with the stems of its report (computed once per batch)."""

    ticket_id: int
    found: Found
    stems: frozenset[str]
    report: str = ""


@dataclass
class Windows:
    """The window's tickets, read once for all the tickets whose mails one transaction
    renders (the writer keeps one per materialize call). A batch's tickets are flushed
    before its mails are rendered, so the one read holds the whole batch: a burst of 30
    reports costs one query, and each report is compared with the others."""

    read_since: datetime | None = None
    rows: list[Recent] = field(default_factory=list)
    # stem -> positions in `rows`: a report is scored only against the window's tickets
    # that share at least MIN_SHARED of its words, not against all few hundred of them.
    postings: dict[str, list[int]] = field(default_factory=dict)

    reports: dict[int, str] = field(default_factory=dict)  # ticket id -> its report

    def load(self, session: Session, since: datetime) -> None:
        """Read the window since `since`, unless a read since then or earlier is held."""
        if self.read_since is None or since < self.read_since:
            self.rows, self.read_since = _window(session, since), since
            self.postings, self.reports = {}, {}
            for n, row in enumerate(self.rows):
                self.reports[row.ticket_id] = row.report
                for word in row.stems:
                    self.postings.setdefault(word, []).append(n)

    def since(self, session: Session, since: datetime) -> list[Recent]:
        self.load(session, since)
        # Newest first and capped: the newest of a wider read are the newest of this one.
        return [row for row in self.rows if row.found.opened_at >= since]

    def sharing(self, query: frozenset[str], since: datetime) -> list[tuple[Recent, int]]:
        """The window's tickets since `since` with MIN_SHARED or more of `query`'s words,
        and how many they share, newest first (call `load` first)."""
        shared: dict[int, int] = {}
        for word in query:
            for n in self.postings.get(word, ()):
                shared[n] = shared.get(n, 0) + 1
        return [(self.rows[n], count) for n, count in sorted(shared.items())
                if count >= MIN_SHARED and self.rows[n].found.opened_at >= since]

    def report(self, ticket_id: int) -> str | None:
        """A ticket's indexed report, when the window read holds it (a new ticket's does)."""
        return self.reports.get(ticket_id)


def _window(session: Session, since: datetime) -> list[Recent]:
    statement = text(
        f"SELECT {_COLUMNS} FROM ticket_search s JOIN tickets t ON t.id = s.ticket_id "
        "WHERE s.opened_at >= :since ORDER BY s.opened_at DESC, s.ticket_id DESC LIMIT :n"
    ).bindparams(bindparam("since", type_=UTCDateTime()))
    typed = statement.columns(opened_at=UTCDateTime(), resolved_at=UTCDateTime())
    return [Recent(row.ticket_id, _found(row, 0.0), stems(row.report), row.report)
            for row in session.execute(typed, {"since": since, "n": WINDOW_CAP})]


def past_fixes(session: Session, report: str, *, limit: int, threshold: float,
               ticket_id: int | None = None) -> list[Found]:
    """Resolved tickets (other than `ticket_id`) like `report`, best first. A report linked
    to an incident (#link) is left out: it was resolved with the incident's fix, which the
    incident itself lists once, instead of once per person who reported it.

    The full-text index is asked for the few most telling terms only (`query_plan`), so it
    matches and ranks a few documents, not the whole table; its best CANDIDATES are scored
    here. A later query of the plan runs only when an earlier one found nothing."""
    if limit <= 0:
        return []
    query = stems(report)
    if len(query) < MIN_SHARED:
        return []
    postgres = session.get_bind().dialect.name == "postgresql"
    for plan in query_plan(session, report):
        rows = (_ranked_pg if postgres else _ranked_sqlite)(session, plan, ticket_id or 0)
        if rows:
            found = scoring.best(query, rows, _row_stems, threshold=threshold, limit=limit)
            return [_found(row, score) for score, row in found]
    return []


def query_plan(session: Session, report: str) -> list[scoring.TermQuery]:
    """The terms of `report` to query the index with, by how many documents hold each."""
    terms = words(report)[:QUERY_TERMS]
    if len(terms) < MIN_SHARED:
        return []
    shares = (_pg_shares if session.get_bind().dialect.name == "postgresql"
              else _sqlite_shares)
    return scoring.query_terms(*shares(session, terms))


_COLUMNS = ("s.ticket_id, t.ref, t.subject, t.state, s.opened_at, s.report, s.resolution, "
            "s.resolved_at, s.resolved_by")
POOL = 4 * CANDIDATES  # the index's best, of which open tickets (few) are left out


Shares = tuple[list[tuple[str, float | None]], float]  # (term, share of documents), documents


def _sqlite_shares(session: Session, terms: list[str]) -> Shares:
    """Each word's share of the documents, from FTS5's own vocabulary (an fts5vocab table:
    the index's document count per term, one b-tree lookup each; nothing to keep in step).

    The vocabulary holds porter stems; FTS3's porter tokenizer (fts3tokenize) gives the
    same stem of a word, both in SQL (daemon/store/database.py makes the two temp tables
    on each connection). Words with digits are kept as they are by FTS5's stemmer but not
    by FTS3's, so those are looked up as they are. The number of documents is taken as the
    highest ticket id (ids are dense and every ticket has its row): count(*) would read
    the whole table. A word the index does not hold (share 0) is dropped by the plan."""
    counts = _COUNTS.setdefault(session.get_bind().engine, _Counts())
    missing = [term for term in terms if counts.get(term) is None]
    try:
        total, found = _sqlite_counts(session, missing)
    except OperationalError:  # an SQLite without FTS3's tokenizer: no counts, first words
        return [(term, None) for term in terms], 0
    counts.keep(found)
    docs = {**{term: counts.get(term) or 0 for term in terms}, **found}
    total = max(total, 1)
    return [(term, docs[term] / total) for term in terms], total


def _sqlite_counts(session: Session, terms: list[str]) -> tuple[int, dict[str, int]]:
    """The highest ticket id and each term's documents (0: not in the index)."""
    if not terms:
        return session.scalar(text("SELECT max(ticket_id) FROM ticket_search")) or 0, {}
    values = ", ".join(f"(:n{n}, :w{n}, :d{n})" for n in range(len(terms)))
    params: dict[str, Any] = {}
    for n, term in enumerate(terms):
        plain = _plain(term)
        params |= {f"n{n}": n, f"w{n}": plain, f"d{n}": any(c.isdigit() for c in plain)}
    rows = session.execute(text(
        f"WITH q(n, word, digits) AS (VALUES {values}) "
        "SELECT q.n, v.doc, (SELECT max(ticket_id) FROM ticket_search) AS total "
        f"FROM q JOIN temp.{SEARCH_TOKENS} k ON k.input = q.word "
        f"LEFT JOIN temp.{SEARCH_VOCAB} v "
        "ON v.term = CASE WHEN q.digits THEN q.word ELSE k.token END ORDER BY q.n"),
        params).all()
    docs: dict[int, int] = {}
    for n, doc, _total in rows:
        docs.setdefault(n, doc or 0)  # a word of two tokens counts by its first
    total = (rows[0].total or 0) if rows else 0
    return total, {term: docs.get(n, 0) for n, term in enumerate(terms)}


class _Counts:
    """Document counts of common terms, per database, for COUNT_TTL. fts5vocab counts a
    term by reading its whole document list: ~2 ms for a term in 20,000 documents, while a
    rare one costs microseconds. A common term's share moves slowly, so its count is kept;
    rare ones (at most CHEAP_DOCS) are always counted afresh, so a new word (a new outage's
    product name) is never taken as absent after its first fixes are indexed."""

    def __init__(self) -> None:
        self.counts: dict[str, tuple[int, float]] = {}

    def get(self, term: str) -> int | None:
        kept = self.counts.get(term)
        if kept is None or time.monotonic() - kept[1] > COUNT_TTL:
            return None
        return kept[0]

    def keep(self, found: dict[str, int]) -> None:
        if len(self.counts) > COUNT_TERMS:
            self.counts.clear()  # crude but bounded: the common terms come back at once
        now = time.monotonic()
        for term, docs in found.items():
            if docs > scoring.CHEAP_DOCS:
                self.counts[term] = (docs, now)


COUNT_TTL = 600.0  # seconds a common term's count is trusted
COUNT_TERMS = 20_000
_COUNTS: WeakKeyDictionary[Engine, _Counts] = WeakKeyDictionary()


def _plain(word: str) -> str:
    """The word as FTS5's unicode61 tokenizer (remove_diacritics) sees it: café, cafe."""
    return "".join(c for c in unicodedata.normalize("NFKD", word)
                   if not unicodedata.combining(c))


def _pg_shares(session: Session, terms: list[str]) -> Shares:
    """Each word's lexeme and its share of the documents, from the planner's statistics
    (pg_stats.most_common_elems of the tsvector column, which ANALYZE keeps: the ~1,000
    commonest lexemes with the share of rows holding each). Nothing is written at index time
    and the lookup is one small query; a lexeme not listed there is rarer than every listed
    one (None: rare, not counted). A term→count table kept in step would cost every ingest
    and resolve a write to hot rows; AND-first guessing cannot tell "error" from "0x80070005".
    The lexemes come from to_tsvector itself (the stemmer the index used), in report order;
    the number of documents is the planner's too (pg_class.reltuples)."""
    rows = session.execute(text(
        f"WITH q AS (SELECT lexeme, positions[1] AS pos FROM unnest(to_tsvector("
        f"'{SEARCH_LANGUAGE}', :words))), "
        "st AS (SELECT x.e, x.f FROM pg_stats p, unnest(p.most_common_elems::text::text[], "
        "p.most_common_elem_freqs) AS x(e, f) WHERE p.schemaname = current_schema() "
        f"AND p.tablename = 'ticket_search' AND p.attname = '{SEARCH_VECTOR}') "
        "SELECT q.lexeme, st.f, (SELECT reltuples FROM pg_class "
        "WHERE oid = to_regclass('ticket_search')) AS total "
        "FROM q LEFT JOIN st ON st.e = q.lexeme ORDER BY q.pos"),
        {"words": " ".join(terms)}).all()
    total = max(float(rows[0].total or 0), 0.0) if rows else 0.0  # -1: never analysed
    return [(lexeme, None if share is None else float(share))
            for lexeme, share, _total in rows], total


def _ranked_sqlite(session: Session, plan: scoring.TermQuery, me: int) -> list[Any]:
    # The FTS5 subquery ranks only what the plan's terms match and keeps its best POOL
    # (bm25 in C, ORDER BY rank LIMIT inside FTS5); only those are joined to the tables.
    statement = text(
        f"SELECT {_COLUMNS} FROM (SELECT rowid AS id, rank AS r FROM {SEARCH_FTS} "
        f"WHERE {SEARCH_FTS} MATCH :q ORDER BY rank LIMIT :pool) m "
        "JOIN ticket_search s ON s.ticket_id = m.id JOIN tickets t ON t.id = s.ticket_id "
        "WHERE s.resolution IS NOT NULL AND s.ticket_id <> :me AND t.parent_id IS NULL "
        "ORDER BY m.r, s.ticket_id DESC LIMIT :n")
    typed = statement.columns(opened_at=UTCDateTime(), resolved_at=UTCDateTime())
    params = {"q": fts5_query(plan.terms, any_of=plan.any_of), "pool": POOL, "me": me,
              "n": CANDIDATES}
    return list(session.execute(typed, params))


def _ranked_pg(session: Session, plan: scoring.TermQuery, me: int) -> list[Any]:
    # The terms are lexemes already (to_tsvector's): cast, not parsed again by to_tsquery.
    statement = text(
        f"SELECT {_COLUMNS} FROM ticket_search s JOIN tickets t ON t.id = s.ticket_id, "
        f"CAST(:q AS tsquery) q WHERE s.{SEARCH_VECTOR} @@ q "
        "AND s.resolution IS NOT NULL AND s.ticket_id <> :me AND t.parent_id IS NULL "
        f"ORDER BY ts_rank(s.{SEARCH_VECTOR}, q) DESC, s.ticket_id DESC LIMIT :n")
    typed = statement.columns(opened_at=UTCDateTime(), resolved_at=UTCDateTime())
    params = {"q": tsquery(plan.terms, any_of=plan.any_of), "me": me, "n": CANDIDATES}
    return list(session.execute(typed, params))


def _row_stems(row: Any) -> frozenset[str]:
    return stems(f"{row.report}\n{row.resolution or ''}")


def _found(row: Any, score: float) -> Found:
    return Found(row.ref, row.subject, row.state, row.opened_at, score, row.resolution,
                 row.resolved_at, row.resolved_by)
