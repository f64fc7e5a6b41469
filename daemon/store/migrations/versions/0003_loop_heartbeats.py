"""Heartbeats of the daemon's loops, for `run.py status`.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Written out in full (see 0001): a migration is a frozen record of one schema version.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loop_heartbeats",
        sa.Column("loop", sa.String(32), nullable=False),
        sa.Column("daemon", sa.String(200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("loop", "daemon", name="pk_loop_heartbeats"),
    )


def downgrade() -> None:
    op.drop_table("loop_heartbeats")
