"""Initial schema: tickets, messages, events, timers, outbox, mailbox cursors, quarantine.

Revision ID: 0001
Revises:
Create Date: 2026-11-27

Written out in full rather than importing daemon.store.models: a migration is a frozen record
of one schema version, and must not change when the models do.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column[datetime]:
    """Timestamps are stored in UTC (naive on SQLite, timestamptz on PostgreSQL)."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _ticket_fk(table: str) -> sa.ForeignKeyConstraint:
    name = f"fk_{table}_ticket_id_tickets"
    return sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=name)


def upgrade() -> None:
    _create_tickets()
    _create_messages()
    _create_events()
    _create_timers()
    _create_outbox()
    _create_mailbox_cursors()
    _create_quarantine()


def _create_tickets() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(32), nullable=False),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("team", sa.String(64), nullable=True),
        sa.Column("assignee", sa.String(320), nullable=True),
        sa.Column("requester", sa.String(320), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        _at("state_entered_at"),
        sa.Column("return_state", sa.String(64), nullable=True),
        sa.Column("tiers_visited", sa.JSON(), nullable=False),
        sa.Column("bounces", sa.Integer(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("vendor", sa.String(64), nullable=True),
        _at("responded_at", nullable=True),
        sa.Column("workflow_name", sa.String(64), nullable=False),
        sa.Column("workflow_version", sa.Integer(), nullable=False),
        sa.Column("linked_ref", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tickets"),
        sa.UniqueConstraint("ref", name="uq_tickets_ref"),
        # Never reuse an id on SQLite, so a ref stays unique forever.
        sqlite_autoincrement=True,
    )
    op.create_index("ix_tickets_state", "tickets", ["state"])


def _create_messages() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("message_id", sa.String(998), nullable=False),
        sa.Column("in_reply_to", sa.Text(), nullable=True),
        sa.Column("references", sa.Text(), nullable=True),
        sa.Column("sender", sa.Text(), nullable=True),
        sa.Column("recipients", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        _at("received_at", nullable=True),
        _at("sent_at", nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("kind", sa.String(32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint("direction IN ('in', 'out')", name="ck_messages_direction"),
        _ticket_fk("messages"),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.UniqueConstraint("direction", "message_id", name="uq_messages_direction_message_id"),
    )
    op.create_index("ix_messages_message_id", "messages", ["message_id"])
    op.create_index("ix_messages_ticket_id", "messages", ["ticket_id"])


def _create_events() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        _at("at"),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("from_state", sa.String(64), nullable=True),
        sa.Column("to_state", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        _ticket_fk("events"),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_ticket_id_id", "events", ["ticket_id", "id"])


def _create_timers() -> None:
    op.create_table(
        "timers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        _at("due_at"),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        _at("claimed_until", nullable=True),
        sa.CheckConstraint("kind IN ('remind', 'warn', 'expire', 'respond', 'resolve')",
                           name="ck_timers_kind"),
        _ticket_fk("timers"),
        sa.PrimaryKeyConstraint("id", name="pk_timers"),
    )
    # The clock's query walks this index: its cost follows due timers, not open tickets.
    op.create_index("ix_timers_due_at", "timers", ["due_at", "id"])
    op.create_index("ix_timers_ticket_id", "timers", ["ticket_id"])


def _create_outbox() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("template", sa.String(128), nullable=False),
        sa.Column("to_role", sa.String(64), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(998), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("next_attempt_at"),
        sa.Column("last_error", sa.Text(), nullable=True),
        _at("created_at"),
        _at("sent_at", nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'parked', 'bounced', 'skipped')",
            name="ck_outbox_status",
        ),
        _ticket_fk("outbox"),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("message_id", name="uq_outbox_message_id"),
    )
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_ticket_id", "outbox", ["ticket_id"])


def _create_mailbox_cursors() -> None:
    op.create_table(
        "mailbox_cursors",
        sa.Column("folder", sa.String(512), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("folder", name="pk_mailbox_cursors"),
    )


def _create_quarantine() -> None:
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        _at("received_at"),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("sender", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(998), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("folder", sa.String(512), nullable=True),
        sa.Column("uid", sa.BigInteger(), nullable=True),
        _at("retried_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_quarantine"),
    )


def downgrade() -> None:
    # Children before tickets, which they reference.
    for table in ("quarantine", "mailbox_cursors", "outbox", "timers", "events", "messages",
                  "tickets"):
        op.drop_table(table)
