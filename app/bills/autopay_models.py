"""Tables of auto-pay and what follows a payment in the bills module: mandates, their runs, due-soon
reminders, and the (partial) refunds of a paid bill."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import TimestampedBase, utcnow

__all__ = ["AutopayMandate", "AutopayRun", "BillItemRefund", "BillReminder"]


class AutopayMandate(TimestampedBase):
    """A citizen's standing order on one saved customer code: pay its bills ``days_before`` the due date,
    each up to ``max_amount``; confirmed once with the PIN, then the authority of every run."""

    __tablename__ = "autopay_mandates"
    __table_args__ = (
        UniqueConstraint("saved_code_id", name="uq_autopay_mandates_saved_code_id"),
        CheckConstraint("max_amount > 0", name="max_amount_positive"),
        CheckConstraint("days_before >= 0 AND days_before <= 30", name="days_before_range"),
        CheckConstraint("status IN ('active', 'cancelled')", name="status_known"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    """The citizen whose wallet pays (identity's user id)."""
    saved_code_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("saved_customer_codes.id", ondelete="CASCADE")
    )
    biller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("billers.id"))
    customer_code: Mapped[str] = mapped_column(String(32))
    days_before: Mapped[int]
    max_amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="active")
    confirmed_at: Mapped[datetime] = mapped_column(default=utcnow)
    """When the citizen confirmed it with the PIN (the last time, for an edited mandate)."""
    cancelled_at: Mapped[datetime | None]


class AutopayRun(TimestampedBase):
    """One bill handled under one mandate: paid or failed, exactly once (the unique pair is the claim that
    keeps several workers from paying a bill twice or notifying a failure twice)."""

    __tablename__ = "autopay_runs"
    __table_args__ = (
        UniqueConstraint("mandate_id", "bill_id", name="uq_autopay_runs_mandate_bill"),
        CheckConstraint("status IN ('paid', 'failed', 'skipped')", name="status_known"),
    )

    mandate_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("autopay_mandates.id", ondelete="CASCADE"))
    bill_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bills.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    payment_id: Mapped[uuid.UUID | None]
    error_code: Mapped[str | None] = mapped_column(String(64))


class BillReminder(TimestampedBase):
    """A due-soon reminder sent to one citizen for one bill: at most one each."""

    __tablename__ = "bill_reminders"
    __table_args__ = (UniqueConstraint("user_id", "bill_id", name="uq_bill_reminders_user_bill"),)

    user_id: Mapped[uuid.UUID]
    bill_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bills.id"), index=True)


class BillItemRefund(TimestampedBase):
    """Money given back for one paid bill (all of it or a part): one journal entry debiting the payable the
    payment credited. The refunds of an item never exceed its amount (checked under the item's row lock)."""

    __tablename__ = "bill_item_refunds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_bill_item_refunds_account_created", "payable_account_id", "created_at"),
    )

    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bill_payment_items.id"), index=True)
    payable_account_id: Mapped[uuid.UUID]
    amount: Mapped[int] = mapped_column(BigInteger)
    entry_id: Mapped[uuid.UUID]
    reason: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(String(80))
