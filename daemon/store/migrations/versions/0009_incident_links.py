"""Incidents (issue 19): a ticket may be a report of another (`#link TD-12`), its parent.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

Written out in full (see 0001): a migration is a frozen record of one schema version.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Not batch mode: recreating `tickets` on SQLite would fight the foreign keys of every
    # table that points at it (and its AUTOINCREMENT). SQLite adds a column with its
    # reference in place; Alembic will not say so, hence the statement written out.
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE tickets ADD COLUMN parent_id INTEGER "
                   "CONSTRAINT fk_tickets_parent_id_tickets REFERENCES tickets (id)")
    else:
        op.add_column("tickets", sa.Column(
            "parent_id", sa.Integer(),
            sa.ForeignKey("tickets.id", name="fk_tickets_parent_id_tickets"), nullable=True))
    op.create_index("ix_tickets_parent_id", "tickets", ["parent_id"])


def downgrade() -> None:
    op.drop_index("ix_tickets_parent_id", table_name="tickets")
    with op.batch_alter_table("tickets", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("parent_id")
