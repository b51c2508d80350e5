"""Tables of complaints: one complaint per payment, and its timeline."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import TimestampedBase, utcnow

__all__ = ["COMPLAINT_STATUSES", "Complaint", "ComplaintEvent"]

COMPLAINT_STATUSES = ("logged", "in_review", "resolved", "rejected")


class Complaint(TimestampedBase):
    """A citizen's dispute of one payment they made (a bill, a transfer, a merchant QR payment)."""

    __tablename__ = "complaints"
    __table_args__ = (
        UniqueConstraint("kind", "payment_ref", name="uq_complaints_kind_payment_ref"),
        CheckConstraint("status IN ('logged', 'in_review', 'resolved', 'rejected')", name="status_known"),
        CheckConstraint("disputed_amount > 0 AND disputed_amount <= paid_amount", name="disputed_in_range"),
        Index("ix_complaints_status_due_at", "status", "due_at"),
    )

    code: Mapped[str] = mapped_column(String(24), unique=True)
    """What the citizen and support quote, e.g. ``KN-261123-4F2A9C``."""
    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    """The citizen who made the payment and complains."""
    kind: Mapped[str] = mapped_column(String(32))
    """The payment kind of the registry: ``bill``, ``transfer``, ``merchant``."""
    payment_ref: Mapped[str] = mapped_column(String(64))
    """The payment's id in its owning module (a bill payment item, a transfer's entry, a QR payment)."""
    payee_name: Mapped[str] = mapped_column(String(200))
    paid_amount: Mapped[int] = mapped_column(BigInteger)
    disputed_amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(16), default="logged")
    due_at: Mapped[datetime]
    """The SLA: so many working days after logging (the offices' calendar)."""
    escalated_at: Mapped[datetime | None]
    hold_id: Mapped[uuid.UUID | None]
    """The payout hold on the payee's payable, while the complaint is open (none for transfers)."""
    refund_amount: Mapped[int | None] = mapped_column(BigInteger)
    resolution_note: Mapped[str | None] = mapped_column(String(2000))
    closed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ComplaintEvent(TimestampedBase):
    """One step of a complaint: logged, taken in review, escalated, resolved, rejected."""

    __tablename__ = "complaint_events"

    complaint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("complaints.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[uuid.UUID | None]
    """Who did it (none: the system, e.g. an escalation)."""
    note: Mapped[str | None] = mapped_column(String(2000))
