"""Outbox rows name the process that claimed them for sending, so a restarted daemon re-takes
a dead process's claims at once instead of after their lease.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

Written out in full (see 0001): a migration is a frozen record of one schema version.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("claimed_by", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_by")
