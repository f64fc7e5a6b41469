"""Loop protection for outgoing mail: addresses that sent us automatic mail, and an index for
counting the automatic mails each address got in the past hour.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Written out in full (see 0001): a migration is a frozen record of one schema version.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auto_senders",
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("address", name="pk_auto_senders"),
    )
    # The hourly limit counts an address's recent rows; without it, a scan of the outbox.
    op.create_index("ix_outbox_recipients_created_at", "outbox", ["recipients", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_recipients_created_at", table_name="outbox")
    op.drop_table("auto_senders")
