"""Tables of the bills module: the biller registry, presented bills, and citizens' saved customer codes."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import TimestampedBase, utcnow

__all__ = [
    "BILL_STATUSES",
    "Bill",
    "BillPayment",
    "BillPaymentItem",
    "Biller",
    "PaymentAttempt",
    "Receipt",
    "SavedCustomerCode",
]

BILL_STATUSES = ("unpaid", "pending", "paid", "cancelled", "refunded", "expired")
"""``pending``: a payment is in flight; ``cancelled``: withdrawn by the biller; ``expired``: not payable."""

JSONData = JSON().with_variant(JSONB(), "postgresql")


class Biller(TimestampedBase):
    """Who can be paid through bills: a power company, a water company, a school, an agency's fees."""

    __tablename__ = "billers"

    code: Mapped[str] = mapped_column(String(32), unique=True)
    """Stable identifier used in APIs and batch files, e.g. ``EVN_CPC_HUE``."""
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(32))
    presentment: Mapped[str] = mapped_column(String(16))
    """``fetch`` (asked by customer code), ``batch`` (monthly file) or ``adhoc`` (payer sets the amount)."""
    amount_rule: Mapped[str] = mapped_column(String(16))
    """``exact``, ``at_least`` or ``partial_allowed``."""
    customer_input: Mapped[dict[str, Any]] = mapped_column(JSONData)
    """How a customer is identified: label, pattern, length, example, hint (``schemas.CustomerInput``)."""
    limit_exempt: Mapped[bool]
    settlement_bank_bin: Mapped[str] = mapped_column(String(6))
    settlement_account_number: Mapped[str] = mapped_column(String(32))
    settlement_account_name: Mapped[str] = mapped_column(String(200))
    connector: Mapped[dict[str, Any] | None] = mapped_column(JSONData)
    """How to reach the biller (``schemas.HttpConnector`` or ``schemas.SandboxConnector``); none for batch."""
    payable_account_ref: Mapped[str] = mapped_column(String(64))
    """The ledger account credited when a bill of this biller is paid, by reference (ledger resolves it)."""
    agency_code: Mapped[str | None] = mapped_column(String(32))
    """For public-service fee billers: the agency whose state-treasury payable receives the fees."""
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Bill(TimestampedBase):
    """One amount a biller asks of one customer for one period."""

    __tablename__ = "bills"
    __table_args__ = (
        UniqueConstraint("biller_id", "external_id", name="uq_bills_biller_external_id"),
        Index("ix_bills_biller_customer", "biller_id", "customer_code"),
        Index(
            "ix_bills_owner_user_id",
            "owner_user_id",
            postgresql_where=text("owner_user_id IS NOT NULL"),
            sqlite_where=text("owner_user_id IS NOT NULL"),
        ),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "status IN ('unpaid', 'pending', 'paid', 'cancelled', 'refunded', 'expired')", name="status_known"
        ),
    )

    biller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("billers.id"))
    customer_code: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(64))
    """The biller's own id of the bill, unique per biller: what makes re-imports and re-fetches idempotent."""
    period: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    """đồng."""
    due_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="unpaid")
    customer_name: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(16))
    """How the bill arrived: ``fetch``, ``batch`` or ``issued`` (by another module, e.g. a dossier fee)."""
    owner_user_id: Mapped[uuid.UUID | None]
    """Set for bills only one person may see and pay (a dossier fee: its applicant); none for households."""
    paid_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SavedCustomerCode(TimestampedBase):
    """A customer code a citizen keeps, with a nickname ("Nhà bố mẹ"), to see its bills in the inbox."""

    __tablename__ = "saved_customer_codes"
    __table_args__ = (
        UniqueConstraint("user_id", "biller_id", "customer_code", name="uq_saved_customer_codes_user_code"),
    )

    user_id: Mapped[uuid.UUID]
    """The citizen (identity's user id; no foreign key: identity owns users)."""
    biller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("billers.id"))
    customer_code: Mapped[str] = mapped_column(String(32))
    nickname: Mapped[str] = mapped_column(String(60))


class BillPayment(TimestampedBase):
    """One tap: one payer paid one or more bills with ONE journal entry."""

    __tablename__ = "bill_payments"
    __table_args__ = (CheckConstraint("total > 0", name="total_positive"),)

    payer_id: Mapped[uuid.UUID] = mapped_column(index=True)
    """The citizen who paid (identity's user id; no foreign key: identity owns users)."""
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    """What the payer, the billers and support quote: ``BP`` + 20 characters."""
    total: Mapped[int] = mapped_column(BigInteger)
    """đồng, the sum of the items."""
    entry_id: Mapped[uuid.UUID]
    """The journal entry that moved the money (ledger's ``ledger_entries.id``)."""
    paid_at: Mapped[datetime]
    mandate_id: Mapped[uuid.UUID | None]
    """Set when an auto-pay mandate was the authority of this payment (instead of the payer's PIN)."""


class BillPaymentItem(TimestampedBase):
    """One bill of a payment, and what its biller said about it."""

    __tablename__ = "bill_payment_items"
    __table_args__ = (
        UniqueConstraint("payment_id", "bill_id", name="uq_bill_payment_items_payment_bill"),
        Index("ix_bill_payment_items_account_created", "payable_account_id", "created_at"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "status IN ('paid', 'confirmed', 'refunded')",
            name="status_known",
        ),
    )

    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bill_payments.id"), index=True)
    bill_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bills.id"), index=True)
    biller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("billers.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    """đồng paid for this bill."""
    payable_account_id: Mapped[uuid.UUID]
    """The ledger account credited (the biller's or the treasury's payable): a refund debits it."""
    status: Mapped[str] = mapped_column(String(16), default="paid")
    """``paid`` (biller not told yet), ``confirmed`` (biller accepted) or ``refunded`` (biller refused)."""
    biller_reference: Mapped[str | None] = mapped_column(String(64))
    confirmed_at: Mapped[datetime | None]
    refund_reason: Mapped[str | None] = mapped_column(String(64))
    refund_entry_id: Mapped[uuid.UUID | None]
    refunded_at: Mapped[datetime | None]


class Receipt(TimestampedBase):
    """The e-receipt (biên lai điện tử) of one paid bill, signed by the issuer (Decree 123/2020 fields)."""

    __tablename__ = "bill_receipts"
    __table_args__ = (UniqueConstraint("series", "number", name="uq_bill_receipts_series_number"),)

    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bill_payment_items.id"), unique=True)
    payer_id: Mapped[uuid.UUID] = mapped_column(index=True)
    series: Mapped[str] = mapped_column(String(16))
    """Ký hiệu, e.g. ``C26THU`` (year 2026)."""
    number: Mapped[int] = mapped_column(BigInteger)
    """Số: increasing within a series."""
    content: Mapped[dict[str, Any]] = mapped_column(JSONData)
    """The signed fields (``receipts.ReceiptContent``), exactly as signed."""
    key_id: Mapped[str] = mapped_column(String(32))
    signature: Mapped[str] = mapped_column(String(128))
    """Ed25519 over the canonical JSON of ``content``, base64url."""
    status: Mapped[str] = mapped_column(String(16), default="valid")
    """``valid``, or ``cancelled`` when the payment was refunded."""


class PaymentAttempt(TimestampedBase):
    """The failure record of a refused one-tap payment, written in its own transaction after the rollback.

    A refused payment leaves nothing else behind: no entry, no bill change, no receipt, no message.
    """

    __tablename__ = "bill_payment_attempts"

    payer_id: Mapped[uuid.UUID] = mapped_column(index=True)
    bill_ids: Mapped[list[str]] = mapped_column(JSONData)
    total: Mapped[int] = mapped_column(BigInteger)
    """The total asked for (đồng)."""
    error_code: Mapped[str] = mapped_column(String(64))
    bill_id: Mapped[uuid.UUID | None]
    """The bill the refusal names, if it names one."""
