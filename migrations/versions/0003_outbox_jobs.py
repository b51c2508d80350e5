"""Outbox (messages and their delivery log) and the runs of scheduled jobs.

Revision ID: 0003_outbox_jobs
Revises: 0007_services_catalogue
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_outbox_jobs"
down_revision: str | Sequence[str] | None = "0007_services_catalogue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, DateTimeUTC(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        _time("created_at"),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _time("available_at"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("round_attempts", sa.Integer(), nullable=False),
        _time("claimed_at", nullable=True),
        _time("claimed_until", nullable=True),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claim_token", sa.Uuid(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _time("delivered_at", nullable=True),
        _time("dead_at", nullable=True),
        sa.Column("requeue_count", sa.Integer(), nullable=False),
        _time("last_requeued_at", nullable=True),
        sa.Column("last_requeued_by", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'dead')", name=op.f("ck_outbox_messages_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_messages")),
        sa.UniqueConstraint("topic", "key", name=op.f("uq_outbox_messages_topic_key")),
    )
    op.create_index("ix_outbox_messages_due", "outbox_messages", ["status", "available_at"])
    op.create_index("ix_outbox_messages_status_delivered_at", "outbox_messages", ["status", "delivered_at"])

    op.create_table(
        "outbox_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        _time("started_at"),
        _time("finished_at"),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('delivered', 'failed', 'abandoned', 'lease_lost')",
            name=op.f("ck_outbox_deliveries_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["outbox_messages.id"],
            name=op.f("fk_outbox_deliveries_message_id_outbox_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_deliveries")),
    )
    op.create_index("ix_outbox_deliveries_message_id", "outbox_deliveries", ["message_id"])

    op.create_table(
        "job_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_name", sa.String(length=100), nullable=False),
        sa.Column("period_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _time("scheduled_for"),
        _time("started_at"),
        _time("finished_at", nullable=True),
        sa.Column("runner", sa.String(length=100), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed', 'interrupted')", name=op.f("ck_job_runs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
        sa.UniqueConstraint("job_name", "period_key", name=op.f("uq_job_runs_job_name_period_key")),
    )


def downgrade() -> None:
    op.drop_table("job_runs")
    op.drop_index("ix_outbox_deliveries_message_id", table_name="outbox_deliveries")
    op.drop_table("outbox_deliveries")
    op.drop_index("ix_outbox_messages_status_delivered_at", table_name="outbox_messages")
    op.drop_index("ix_outbox_messages_due", table_name="outbox_messages")
    op.drop_table("outbox_messages")
