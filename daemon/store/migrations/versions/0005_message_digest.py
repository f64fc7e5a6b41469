"""Inbound mail is told apart by Message-ID and content digest: some mailers reuse one
Message-ID for different mails, and the second was dropped as a duplicate.

Rows stored before keep the digest '' ("not known"): such a row counts as the same mail as
any later one under its Message-ID, as before.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

Written out in full (see 0001): a migration is a frozen record of one schema version.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("digest", sa.String(64), nullable=False, server_default=""))
        batch.drop_constraint("uq_messages_direction_message_id", type_="unique")
        batch.create_unique_constraint("uq_messages_direction_message_id_digest",
                                       ["direction", "message_id", "digest"])


def downgrade() -> None:
    # Only one row per (direction, Message-ID) can stay: the first stored.
    op.execute("DELETE FROM messages WHERE id NOT IN "
               "(SELECT MIN(id) FROM messages GROUP BY direction, message_id)")
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint("uq_messages_direction_message_id_digest", type_="unique")
        batch.create_unique_constraint("uq_messages_direction_message_id",
                                       ["direction", "message_id"])
        batch.drop_column("digest")
