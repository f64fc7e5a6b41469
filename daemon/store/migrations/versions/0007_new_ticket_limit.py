"""Loop protection for new tickets: an index to count an address's tickets of the past hour,
and the releases an operator gave (`tierdesk release ADDRESS`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

Written out in full (see 0001): a migration is a frozen record of one schema version.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tickets_requester_created_at", "tickets", ["requester", "created_at"])
    op.create_table(
        "ticket_limit_releases",
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address", name="pk_ticket_limit_releases"),
    )


def downgrade() -> None:
    op.drop_table("ticket_limit_releases")
    op.drop_index("ix_tickets_requester_created_at", table_name="tickets")
