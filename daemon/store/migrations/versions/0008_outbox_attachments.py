"""Outbox rows carry their files as references to stored inbound mail (messages.id and MIME
part), not copies: the sender puts them back into the mail (daemon/outbound/attachments.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

Written out in full (see 0001): a migration is a frozen record of one schema version.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("attachments", sa.JSON(), nullable=False,
                                   server_default="[]"))
        batch.add_column(sa.Column("attachment_bytes", sa.Integer(), nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("attachment_bytes")
        batch.drop_column("attachments")
