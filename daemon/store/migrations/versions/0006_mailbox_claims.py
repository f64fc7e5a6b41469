"""Several daemons share one mailbox: each claims a range of UIDs to ingest.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

Written out in full (see 0001): a migration is a frozen record of one schema version.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailbox_claims",
        sa.Column("folder", sa.String(512), nullable=False),
        sa.Column("low_uid", sa.BigInteger(), nullable=False),
        sa.Column("high_uid", sa.BigInteger(), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("claimed_by", sa.String(200), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("folder", "low_uid", name="pk_mailbox_claims"),
    )


def downgrade() -> None:
    op.drop_table("mailbox_claims")
