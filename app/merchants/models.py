"""Tables of the merchants module: merchants, their stores, orders (dynamic QR), QR payments, refunds,
API keys, webhook events and daily payouts."""

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
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import TimestampedBase, utcnow

__all__ = [
    "MERCHANT_STATUSES",
    "Merchant",
    "MerchantApiKey",
    "MerchantOrder",
    "MerchantPayment",
    "MerchantPayout",
    "MerchantRefund",
    "MerchantStore",
    "MerchantWebhookEvent",
]

MERCHANT_STATUSES = ("pending", "approved", "rejected", "suspended")
JSONData = JSON().with_variant(JSONB(), "postgresql")


class Merchant(TimestampedBase):
    """A business that takes wallet payments by QR: a shop, a market stall, a parking attendant."""

    __tablename__ = "merchants"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'approved', 'rejected', 'suspended')", name="status_known"),
        CheckConstraint("mdr_bps >= 0 AND mdr_bps <= 10000", name="mdr_range"),
    )

    name: Mapped[str] = mapped_column(String(200))
    """Business name as registered (Vietnamese, with diacritics)."""
    tax_code: Mapped[str] = mapped_column(String(13), unique=True)
    """10 digits (company), 13 (branch), or the owner's 12-digit personal ID (household business)."""
    business_type: Mapped[str] = mapped_column(String(16))
    """``company``, ``branch`` or ``household`` (from the shape of ``tax_code``)."""
    mcc: Mapped[str] = mapped_column(String(4))
    """ISO 18245 merchant category code (field 52 of the QR)."""
    city: Mapped[str] = mapped_column(String(60), default="Hue")
    owner_id: Mapped[uuid.UUID] = mapped_column(index=True)
    """The owner (identity's user id, level 2 when registering)."""
    status: Mapped[str] = mapped_column(String(16), default="pending")
    account_number: Mapped[str] = mapped_column(String(19), unique=True)
    """The merchant's account number at the acquiring bank: what the QR names in field 38-01-01."""
    mdr_bps: Mapped[int] = mapped_column(Integer)
    """Merchant discount rate in basis points (100 = 1 %), fixed at approval, charged on every payment."""
    settlement_bank_bin: Mapped[str] = mapped_column(String(6))
    settlement_account_number: Mapped[str] = mapped_column(String(32))
    settlement_account_name: Mapped[str] = mapped_column(String(200))
    payable_account_id: Mapped[uuid.UUID]
    """The ledger account (``merchant_payable``) credited with each payment net of the fee."""
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    webhook_key_id: Mapped[str | None] = mapped_column(String(32))
    """Id of the ``WEBHOOK_KEYS`` key the merchant's signing secret is derived from (the secret itself is
    never stored: ``HMAC(key, merchant id)``, see ``webhooks.signing_secret``)."""
    decided_by: Mapped[uuid.UUID | None]
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MerchantStore(TimestampedBase):
    """An acceptance point of a merchant (a shop, a stall, a car park), with its own static QR."""

    __tablename__ = "merchant_stores"
    __table_args__ = (UniqueConstraint("merchant_id", "code", name="uq_merchant_stores_merchant_code"),)

    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"), index=True)
    code: Mapped[str] = mapped_column(String(20))
    """Short ASCII label put in field 62-03 of the QR (unique per merchant)."""
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(default=True)


class MerchantOrder(TimestampedBase):
    """One thing to pay, shown as a dynamic QR: an amount, a reference (field 62-05) and an expiry."""

    __tablename__ = "merchant_orders"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("status IN ('open', 'paid', 'cancelled')", name="status_known"),
        Index("ix_merchant_orders_merchant_created", "merchant_id", "created_at"),
    )

    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    store_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("merchant_stores.id"))
    reference: Mapped[str] = mapped_column(String(25), unique=True)
    """Ours (``HS`` + 16 characters), put in field 62-05."""
    external_ref: Mapped[str | None] = mapped_column(String(64))
    """The merchant's own order number, if it gave one."""
    amount: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(16), default="open")
    expires_at: Mapped[datetime]
    payment_id: Mapped[uuid.UUID | None]
    paid_at: Mapped[datetime | None]


class MerchantPayment(TimestampedBase):
    """One QR payment from a citizen's wallet to a merchant: ONE journal entry, fee split at that moment."""

    __tablename__ = "merchant_payments"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("fee >= 0 AND fee <= amount", name="fee_range"),
        CheckConstraint("refunded >= 0 AND refunded <= amount", name="refunded_range"),
        CheckConstraint("status IN ('paid', 'partially_refunded', 'refunded')", name="status_known"),
        Index("ix_merchant_payments_merchant_paid", "merchant_id", "paid_at"),
    )

    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    store_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("merchant_stores.id"))
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("merchant_orders.id"), unique=True)
    """The dynamic QR's order (at most one payment each); none for a static QR."""
    payer_id: Mapped[uuid.UUID] = mapped_column(index=True)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    """``MP`` + 20 characters: what the payer, the merchant and support quote."""
    amount: Mapped[int] = mapped_column(BigInteger)
    """đồng taken from the wallet."""
    fee: Mapped[int] = mapped_column(BigInteger)
    """MDR (đồng, rounded to the nearest, never above ``amount``) credited to fee revenue."""
    refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    """đồng given back so far (never above ``amount``)."""
    status: Mapped[str] = mapped_column(String(24), default="paid")
    entry_id: Mapped[uuid.UUID]
    paid_at: Mapped[datetime]


class MerchantRefund(TimestampedBase):
    """Money given back on a payment (full or partial), to the payer's wallet: one journal entry each."""

    __tablename__ = "merchant_refunds"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchant_payments.id"), index=True)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    fee_returned: Mapped[int] = mapped_column(BigInteger)
    """The share of the fee given back with it (pro rata), taken from fee revenue."""
    reason: Mapped[str] = mapped_column(String(200), default="")
    authority: Mapped[str] = mapped_column(String(120))
    """Who ordered it: ``user:<id>`` (merchant staff), ``api_key:<id>``, ``complaint:<id>``..."""
    entry_id: Mapped[uuid.UUID]


class MerchantApiKey(TimestampedBase):
    """A key for the merchant's own server: shown once, stored as a SHA-256 hash, scoped, revocable."""

    __tablename__ = "merchant_api_keys"

    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    """The first characters of the key (``mk_`` + 8), shown in lists and used to find the row."""
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSONData)
    created_by: Mapped[uuid.UUID]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class MerchantWebhookEvent(TimestampedBase):
    """An event told to the merchant's server by a signed webhook; its id is the receiver's dedup key."""

    __tablename__ = "merchant_webhook_events"
    __table_args__ = (Index("ix_merchant_webhook_events_merchant_created", "merchant_id", "created_at"),)

    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    type: Mapped[str] = mapped_column(String(40))
    """``payment.succeeded`` or ``refund.succeeded``."""
    payload: Mapped[dict[str, Any]] = mapped_column(JSONData)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """``pending``, ``delivered``, ``failed`` (gave up) or ``no_endpoint``."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(300))
    delivered_at: Mapped[datetime | None]
    resends: Mapped[int] = mapped_column(Integer, default=0)


class MerchantPayout(TimestampedBase):
    """One day's settlement of one merchant to its bank account (at most one per merchant per day)."""

    __tablename__ = "merchant_payouts"
    __table_args__ = (
        UniqueConstraint("merchant_id", "day", name="uq_merchant_payouts_merchant_day"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )

    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id"))
    day: Mapped[date] = mapped_column(Date)
    """The Asia/Ho_Chi_Minh business day settled."""
    amount: Mapped[int] = mapped_column(BigInteger)
    """The payable balance at the end of ``day`` (0: nothing to pay, a debt carried to the next day)."""
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    """Ours, stored before sending: the bank's deduplication key."""
    status: Mapped[str] = mapped_column(String(16))
    """``nothing`` (0 or less), ``sending``, ``succeeded``, ``failed`` (reversed) or ``unknown``."""
    entry_id: Mapped[uuid.UUID | None]
    reversal_entry_id: Mapped[uuid.UUID | None]
    bank_reference: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
