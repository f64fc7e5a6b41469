"""Full-text search over tickets (possible duplicates, past fixes): a ticket_search row per
ticket, indexed by an FTS5 table (SQLite) or a generated tsvector column with a GIN index
(PostgreSQL), and the rows of the tickets stored before, filled in.

Backfill: each existing ticket is indexed by its subject (the mail's first lines would mean
parsing every stored mail again inside the migration) and, when a person resolved it, by its
latest `#resolve` summary, its author and time from the timeline.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

Written out in full (see 0001): a migration is a frozen record of one schema version.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

FTS = "ticket_search_fts"
SQLITE = (
    f"CREATE VIRTUAL TABLE {FTS} USING fts5(report, resolution, "
    "content='ticket_search', content_rowid='ticket_id', "
    "tokenize='porter unicode61 remove_diacritics 2')",
    f"CREATE TRIGGER ticket_search_ai AFTER INSERT ON ticket_search BEGIN "
    f"INSERT INTO {FTS}(rowid, report, resolution) "
    "VALUES (new.ticket_id, new.report, new.resolution); END",
    f"CREATE TRIGGER ticket_search_ad AFTER DELETE ON ticket_search BEGIN "
    f"INSERT INTO {FTS}({FTS}, rowid, report, resolution) "
    "VALUES ('delete', old.ticket_id, old.report, old.resolution); END",
    f"CREATE TRIGGER ticket_search_au AFTER UPDATE ON ticket_search BEGIN "
    f"INSERT INTO {FTS}({FTS}, rowid, report, resolution) "
    "VALUES ('delete', old.ticket_id, old.report, old.resolution); "
    f"INSERT INTO {FTS}(rowid, report, resolution) "
    "VALUES (new.ticket_id, new.report, new.resolution); END",
)
POSTGRESQL = (
    "ALTER TABLE ticket_search ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('english', coalesce(report, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(resolution, '')), 'B')) STORED",
    "CREATE INDEX ix_ticket_search_search_vector ON ticket_search USING gin (search_vector)",
)
BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "ticket_search",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(320), nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name="fk_ticket_search_ticket_id_tickets"),
        sa.PrimaryKeyConstraint("ticket_id", name="pk_ticket_search"),
    )
    op.create_index("ix_ticket_search_opened_at", "ticket_search", ["opened_at"])
    bind = op.get_bind()
    for statement in SQLITE if bind.dialect.name == "sqlite" else POSTGRESQL:
        op.execute(statement)
    _backfill(bind)


def _backfill(bind: sa.Connection) -> None:
    """Every ticket's row, in batches; the triggers (SQLite) or the generated column
    (PostgreSQL) index them as they are inserted."""
    search = sa.table("ticket_search", sa.column("ticket_id"), sa.column("opened_at"),
                      sa.column("report"), sa.column("resolution"), sa.column("resolved_at"),
                      sa.column("resolved_by"))
    fixes = _resolutions(bind)
    rows: list[dict[str, Any]] = []
    for ticket_id, subject, created_at in bind.execute(sa.text(
            "SELECT id, subject, created_at FROM tickets ORDER BY id")):
        summary, at, by = fixes.get(ticket_id, (None, None, None))
        rows.append({"ticket_id": ticket_id, "opened_at": created_at, "report": subject,
                     "resolution": summary, "resolved_at": at, "resolved_by": by})
        if len(rows) >= BATCH:
            bind.execute(search.insert(), rows)
            rows = []
    if rows:
        bind.execute(search.insert(), rows)


def _resolutions(bind: sa.Connection) -> dict[int, tuple[str, Any, str]]:
    """The latest resolve by a person per ticket: a transition whose data names the trigger."""
    found: dict[int, tuple[str, Any, str]] = {}
    result = bind.execute(sa.text(
        "SELECT ticket_id, at, actor, reason, data FROM events WHERE kind = 'transition' "
        "ORDER BY id"))
    for ticket_id, at, actor, reason, data in result:
        if isinstance(data, str):  # SQLite's JSON column comes back as text here
            data = json.loads(data)
        if (data or {}).get("trigger") == "resolve" and (reason or "").strip() \
                and "@" in (actor or ""):
            found[ticket_id] = (reason.strip(), at, actor)
    return found


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("ticket_search_ai", "ticket_search_ad", "ticket_search_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute(f"DROP TABLE IF EXISTS {FTS}")
    op.drop_index("ix_ticket_search_opened_at", table_name="ticket_search")
    op.drop_table("ticket_search")
