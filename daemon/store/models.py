"""The schema: SQLAlchemy 2 typed models. Alembic migrations must match them (a test checks)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Deterministic constraint names, so later migrations can name what they alter or drop.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# remind/warn/expire belong to the state the ticket is in; respond/resolve to the whole
# ticket (its first-response and resolution targets) and outlive its moves.
STATE_TIMER_KINDS = ("remind", "warn", "expire")
TIMER_KINDS = (*STATE_TIMER_KINDS, "respond", "resolve")
OUTBOX_STATUSES = ("pending", "sending", "sent", "parked", "bounced", "skipped")
DIRECTIONS = ("in", "out")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend; SQLite has no time zones, so it stores naive UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store needs aware (UTC) times")
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        convert = self.process_bind_param

        # SQLite's text form written in one step: SQLAlchemy's would convert, then format
        # with a %-dict, a tenth of a batch's insert time. The same string comes out
        # ("2026-03-02 09:00:00.000000", which its DATETIME reads back and sorts by).
        def process(value: datetime | None) -> str | None:
            naive = convert(value, dialect)
            return None if naive is None else naive.isoformat(" ", "microseconds")
        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


class Ticket(Base):
    __tablename__ = "tickets"
    # AUTOINCREMENT: SQLite would otherwise reuse the highest id after a delete, and so a ref.
    __table_args__ = (
        Index(None, "state"),
        # Loop protection counts each address's tickets of the past hour.
        Index(None, "requester", "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(32), unique=True)
    state: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(16))
    team: Mapped[str | None] = mapped_column(String(64))
    assignee: Mapped[str | None] = mapped_column(String(320))
    requester: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    state_entered_at: Mapped[datetime]
    return_state: Mapped[str | None] = mapped_column(String(64))
    tiers_visited: Mapped[list[str]] = mapped_column(default=list)
    bounces: Mapped[int] = mapped_column(default=0)
    flagged: Mapped[bool] = mapped_column(default=False)
    vendor: Mapped[str | None] = mapped_column(String(64))
    # When a technician first acted on the ticket (its first response).
    responded_at: Mapped[datetime | None]
    workflow_name: Mapped[str] = mapped_column(String(64))
    workflow_version: Mapped[int]
    linked_ref: Mapped[str | None] = mapped_column(String(32))
    # `#link TD-12`: this ticket is a report of incident TD-12, whose clock governs it.
    # Indexed: every update of the incident looks up its linked tickets.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)

    def __repr__(self) -> str:
        return f"<Ticket {self.ref} {self.state}>"


class Message(Base):
    """A mail seen (in) or sent (out); (direction, message_id, digest) is the dedup key:
    one Message-ID may stand for several mails (daemon/mail/message.py, `content_digest`)."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("direction", "message_id", "digest"),
        CheckConstraint(_in("direction", DIRECTIONS), name="direction"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    # Declared so one flush writes tickets before the rows that point at them.
    ticket: Mapped[Ticket | None] = relationship()
    direction: Mapped[str] = mapped_column(String(3))
    message_id: Mapped[str] = mapped_column(String(998), index=True)
    # '' when not known (rows stored before 0005, our own mail): the same as any digest.
    digest: Mapped[str] = mapped_column(String(64), default="", server_default="")
    in_reply_to: Mapped[str | None] = mapped_column(Text)
    references: Mapped[str | None] = mapped_column(Text)
    sender: Mapped[str | None] = mapped_column(Text)
    recipients: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    kind: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)


class Event(Base):
    """One line of a ticket's audit trail."""

    __tablename__ = "events"
    __table_args__ = (Index(None, "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    # Declared so one flush writes tickets before the rows that point at them.
    ticket: Mapped[Ticket] = relationship()
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(320))
    from_state: Mapped[str | None] = mapped_column(String(64))
    to_state: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Timer(Base):
    """A pending timer; the row is deleted once it fired or was cancelled."""

    __tablename__ = "timers"
    __table_args__ = (
        CheckConstraint(_in("kind", TIMER_KINDS), name="kind"),
        # Matches the clock's ORDER BY due_at, id: a LIMIT walks the index and stops, even
        # when the planner's statistics are stale after a bulk load.
        Index("ix_timers_due_at", "due_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(64))  # the workflow state it was set for
    seq: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None]

    ticket: Mapped[Ticket] = relationship()


class Outbox(Base):
    """A mail to send, written in the same transaction as the change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index(None, "status", "next_attempt_at"),
        # Loop protection counts each address's automatic mails of the past hour.
        Index(None, "recipients", "created_at"),
        CheckConstraint(_in("status", OUTBOX_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    # Declared so one flush writes tickets before the rows that point at them.
    ticket: Mapped[Ticket | None] = relationship()
    template: Mapped[str] = mapped_column(String(128))
    to_role: Mapped[str] = mapped_column(String(64))
    # Filled when the mail is rendered and its role resolved to addresses.
    recipients: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Files the mail carries, as references to stored inbound mail (messages.id and MIME
    # part, daemon/outbound/attachments.py), not copies: `body` is then the mail without
    # them, and the sender puts them back. Their size counts towards a claim's bytes.
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list,
                                                              server_default="[]")
    attachment_bytes: Mapped[int] = mapped_column(default=0, server_default="0")
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    # The process that took it for sending (daemon/store/liveness.py): a dead one's claims are
    # re-taken at once rather than when their lease runs out.
    claimed_by: Mapped[str | None] = mapped_column(String(200))


class AutoSender(Base):
    """An address that sent us automatic mail (auto-reply, bounce, list): loop protection
    sends it no automatic mail for a while (daemon/outbound/loop_guard.py). Ingest records them."""

    __tablename__ = "auto_senders"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)  # lower case
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    count: Mapped[int] = mapped_column(default=1)
    reason: Mapped[str] = mapped_column(Text, default="")


class TicketLimitRelease(Base):
    """An operator lifted the new-ticket limit for an address (`tierdesk release`): tickets
    it opened before then no longer count against mail.max_new_tickets_per_hour."""

    __tablename__ = "ticket_limit_releases"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)  # lower case
    released_at: Mapped[datetime]


class MailboxCursor(Base):
    """Where ingest stands in one IMAP folder; committed with the batch it covers."""

    __tablename__ = "mailbox_cursors"

    folder: Mapped[str] = mapped_column(String(512), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)


class MailboxClaim(Base):
    """A range of UIDs of a folder that one daemon is ingesting, so that several daemons
    share a mailbox instead of all reading the same mail. Ranges follow one another up from
    the cursor; a finished one stays, `done`, until every range below it is done and the
    cursor moves past it (daemon/store/claims.py)."""

    __tablename__ = "mailbox_claims"

    folder: Mapped[str] = mapped_column(String(512), primary_key=True)
    low_uid: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    high_uid: Mapped[int] = mapped_column(BigInteger)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    claimed_by: Mapped[str] = mapped_column(String(200))
    lease_until: Mapped[datetime]
    done: Mapped[bool] = mapped_column(default=False)


class Quarantine(Base):
    """A mail that could not be processed, kept raw with the reason, for a later retry."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    sender: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(998))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    folder: Mapped[str | None] = mapped_column(String(512))
    uid: Mapped[int | None] = mapped_column(BigInteger)
    retried_at: Mapped[datetime | None]


class LoopHeartbeat(Base):
    """One loop of one running daemon (`host:pid`): when it last ran, when it last did its
    work, and what went wrong since. `run.py status` reads these; several daemons on one
    PostgreSQL store each keep their own rows."""

    __tablename__ = "loop_heartbeats"

    loop: Mapped[str] = mapped_column(String(32), primary_key=True)  # ingest, clock, sender
    daemon: Mapped[str] = mapped_column(String(200), primary_key=True)
    started_at: Mapped[datetime]
    beat_at: Mapped[datetime]                 # the loop was alive
    ok_at: Mapped[datetime | None]            # its last pass that worked (poll, tick, send)
    error: Mapped[str | None] = mapped_column(Text)  # the last problem; cleared by a success
    error_at: Mapped[datetime | None]
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)  # e.g. {"waiting": 3}
    stopped_at: Mapped[datetime | None]       # a graceful stop; None while running


class TicketSearch(Base):
    """What full-text search knows of a ticket (daemon/store/search.py): its report (subject
    and first lines) from when it was opened, and the `#resolve` summary once resolved.

    A table of its own, not columns of tickets: the search index hangs on it (an FTS5 table
    kept in step by triggers on SQLite, a generated tsvector column with a GIN index on
    PostgreSQL; see SEARCH_DDL), and the ticket row, rewritten on every move, stays small."""

    __tablename__ = "ticket_search"
    # Look-alikes are searched among the tickets opened in the last hours.
    __table_args__ = (Index(None, "opened_at"),)

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    # Declared so one flush writes tickets before the rows that point at them.
    ticket: Mapped[Ticket] = relationship()
    opened_at: Mapped[datetime]
    report: Mapped[str] = mapped_column(Text)
    resolution: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(320))


# The search index itself, per backend, outside the models (neither an FTS5 virtual table
# nor a generated tsvector column is portable). The migration writes the same statements
# out in full; the schema comparison skips these names (`compared`).
SEARCH_FTS = "ticket_search_fts"
SEARCH_VECTOR = "search_vector"
SEARCH_VECTOR_INDEX = "ix_ticket_search_search_vector"
# Per SQLite connection, in its temp schema (daemon/store/database.py): the index's vocabulary
# (documents per term) and FTS3's porter tokenizer, which gives a word's term in it.
SEARCH_VOCAB = "ticket_search_vocab"
SEARCH_TOKENS = "ticket_search_tokens"
SEARCH_TEMP = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{SEARCH_VOCAB} "
    f"USING fts5vocab(main, {SEARCH_FTS}, 'row')",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{SEARCH_TOKENS} USING fts3tokenize(porter)",
)
SEARCH_LANGUAGE = "english"  # PostgreSQL's text search configuration (stems, stop words)
SEARCH_DDL: dict[str, tuple[str, ...]] = {
    "sqlite": (
        # External content: the text lives once, in ticket_search; the porter stemmer makes
        # "printers" find "printer" as PostgreSQL's english configuration does.
        f"CREATE VIRTUAL TABLE {SEARCH_FTS} USING fts5(report, resolution, "
        "content='ticket_search', content_rowid='ticket_id', "
        "tokenize='porter unicode61 remove_diacritics 2')",
        f"CREATE TRIGGER ticket_search_ai AFTER INSERT ON ticket_search BEGIN "
        f"INSERT INTO {SEARCH_FTS}(rowid, report, resolution) "
        "VALUES (new.ticket_id, new.report, new.resolution); END",
        f"CREATE TRIGGER ticket_search_ad AFTER DELETE ON ticket_search BEGIN "
        f"INSERT INTO {SEARCH_FTS}({SEARCH_FTS}, rowid, report, resolution) "
        "VALUES ('delete', old.ticket_id, old.report, old.resolution); END",
        f"CREATE TRIGGER ticket_search_au AFTER UPDATE ON ticket_search BEGIN "
        f"INSERT INTO {SEARCH_FTS}({SEARCH_FTS}, rowid, report, resolution) "
        "VALUES ('delete', old.ticket_id, old.report, old.resolution); "
        f"INSERT INTO {SEARCH_FTS}(rowid, report, resolution) "
        "VALUES (new.ticket_id, new.report, new.resolution); END",
    ),
    "postgresql": (
        # The report weighs more than the fix's words (A over B in ts_rank).
        f"ALTER TABLE ticket_search ADD COLUMN {SEARCH_VECTOR} tsvector GENERATED ALWAYS AS ("
        f"setweight(to_tsvector('{SEARCH_LANGUAGE}', coalesce(report, '')), 'A') || "
        f"setweight(to_tsvector('{SEARCH_LANGUAGE}', coalesce(resolution, '')), 'B')) STORED",
        f"CREATE INDEX {SEARCH_VECTOR_INDEX} ON ticket_search USING gin ({SEARCH_VECTOR})",
    ),
}
_SEARCH_NAMES = frozenset({SEARCH_VECTOR, SEARCH_VECTOR_INDEX})

for _dialect, _statements in SEARCH_DDL.items():
    for _sql in _statements:
        event.listen(TicketSearch.__table__, "after_create",
                     DDL(_sql).execute_if(dialect=_dialect))


def compared(name: str | None, type_: str, _parents: object = None) -> bool:
    """Alembic's include_name: the schema comparison leaves out the search index, which the
    models do not describe (FTS5's table and its shadow tables, the tsvector column)."""
    if type_ == "table" and name is not None and name.startswith(SEARCH_FTS):
        return False
    return not (type_ in ("column", "index") and name in _SEARCH_NAMES)
