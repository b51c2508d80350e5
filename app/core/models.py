"""Tables owned by core. Each platform mechanism (idempotency, outbox, jobs, audit) adds its own here."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, new_id, utcnow

__all__ = ["JobRun", "OutboxDelivery", "OutboxMessage"]


# ---------------------------------------------------------------------------------------------------------
# Outbox and scheduled jobs (app/core/outbox.py, app/core/scheduler.py)
# ---------------------------------------------------------------------------------------------------------

OUTBOX_STATUSES = ("pending", "delivered", "dead")
DELIVERY_OUTCOMES = ("delivered", "failed", "abandoned", "lease_lost")
JOB_RUN_STATUSES = ("running", "succeeded", "failed", "interrupted")


class OutboxMessage(Base):
    """A message that must leave the process, written in the transaction of the change it reports.

    ``id`` is the message id receivers deduplicate on: it never changes, however often the row is
    delivered. A row is due when it is ``pending``, ``available_at`` has passed and no live lease holds it
    (``claimed_until`` empty or past): a worker that dies mid-delivery leaves a lease that simply expires.
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (
        UniqueConstraint("topic", "key"),
        CheckConstraint(f"status IN {OUTBOX_STATUSES!r}", name="status"),
        Index("ix_outbox_messages_due", "status", "available_at"),
        Index("ix_outbox_messages_status_delivered_at", "status", "delivered_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    topic: Mapped[str] = mapped_column(String(100))
    key: Mapped[str | None] = mapped_column(String(200))
    """The producer's deduplication key: one message per (topic, key); None means no deduplication."""
    payload: Mapped[dict[str, object]] = mapped_column(JSON().with_variant(JSONB(), "postgresql"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    """Every attempt ever started (numbers the delivery log)."""
    round_attempts: Mapped[int] = mapped_column(default=0)
    """Attempts since the message was enqueued or last retried by an admin (drives backoff and death)."""
    claimed_at: Mapped[datetime | None] = mapped_column()
    claimed_until: Mapped[datetime | None] = mapped_column()
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claim_token: Mapped[uuid.UUID | None] = mapped_column()
    """Fences a worker whose lease expired: its late result no longer matches and is not applied."""
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column()
    dead_at: Mapped[datetime | None] = mapped_column()
    requeue_count: Mapped[int] = mapped_column(default=0)
    last_requeued_at: Mapped[datetime | None] = mapped_column()
    last_requeued_by: Mapped[uuid.UUID | None] = mapped_column()


class OutboxDelivery(Base):
    """One delivery attempt of an outbox message: the delivery log support reads."""

    __tablename__ = "outbox_deliveries"
    __table_args__ = (CheckConstraint(f"outcome IN {DELIVERY_OUTCOMES!r}", name="outcome"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("outbox_messages.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column()
    started_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime] = mapped_column()
    outcome: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str] = mapped_column(String(100))


class JobRun(Base):
    """One run of a scheduled job for one period, inserted (and committed) before the job runs.

    The unique (job_name, period_key) row is what makes a period run at most once, whatever the number of
    schedulers, restarts or takeovers.
    """

    __tablename__ = "job_runs"
    __table_args__ = (
        UniqueConstraint("job_name", "period_key"),
        CheckConstraint(f"status IN {JOB_RUN_STATUSES!r}", name="status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    job_name: Mapped[str] = mapped_column(String(100))
    period_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="running")
    scheduled_for: Mapped[datetime] = mapped_column()
    started_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    runner: Mapped[str] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text)


# ---------------------------------------------------------------------------------------------------------
# end of outbox and scheduled jobs
# ---------------------------------------------------------------------------------------------------------
