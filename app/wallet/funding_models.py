"""Tables of money in and out of the wallet: funding sources, card top-ups, withdrawals, gateway events."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TimestampedBase, utcnow

__all__ = ["FundingSource", "GatewayEvent", "WalletTopup", "WalletWithdrawal"]


class FundingSource(TimestampedBase):
    """The holder's own debit card or bank account, linked to the wallet after its issuer or bank confirmed
    the holder's personal ID number (DOMAIN.md: top-up only from it, withdrawal only back to it)."""

    __tablename__ = "wallet_funding_sources"
    __table_args__ = (
        CheckConstraint("kind IN ('card', 'bank_account')", name="kind"),
        CheckConstraint("status IN ('active', 'removed')", name="status"),
        UniqueConstraint("user_id", "fingerprint", name="uq_wallet_funding_sources_user_fingerprint"),
        Index("ix_wallet_funding_sources_user_id_status", "user_id", "status"),
    )

    user_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="active")
    fingerprint: Mapped[str] = mapped_column(String(100))
    """``card:{payment method}`` or ``bank:{bin}:{account number}``: one row per source and holder."""
    payment_method: Mapped[str | None] = mapped_column(String(100))
    """The gateway's ``pm_...`` of a card."""
    brand: Mapped[str | None] = mapped_column(String(32))
    last4: Mapped[str | None] = mapped_column(String(4))
    funding: Mapped[str | None] = mapped_column(String(16))
    """The card's funding type as the gateway reported it (only ``debit`` is ever linked)."""
    bank_bin: Mapped[str | None] = mapped_column(String(6))
    account_number: Mapped[str | None] = mapped_column(String(34))
    account_name: Mapped[str | None] = mapped_column(String(100))
    holder_verified_at: Mapped[datetime] = mapped_column(default=utcnow)
    """When the issuer or bank confirmed the holder's personal ID number."""


class WalletTopup(TimestampedBase):
    """A card top-up: a payment intent at the gateway; the wallet is credited once, when it succeeds."""

    __tablename__ = "wallet_topups"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("status IN ('pending', 'requires_action', 'succeeded', 'failed')", name="status"),
        Index("ix_wallet_topups_status_created_at", "status", "created_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    source_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallet_funding_sources.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    intent_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    next_action_url: Mapped[str | None] = mapped_column(String(500))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    fee: Mapped[int | None] = mapped_column(BigInteger)
    net: Mapped[int | None] = mapped_column(BigInteger)
    balance_transaction_id: Mapped[str | None] = mapped_column(String(100))
    charge_id: Mapped[str | None] = mapped_column(String(100))
    entry_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ledger_entries.id"), unique=True)
    """The ONE journal entry that credited the wallet (unique: a second credit cannot be recorded)."""
    credited_at: Mapped[datetime | None]
    checked_at: Mapped[datetime | None]
    """Last time the gateway was asked about it (poll job)."""


class WalletWithdrawal(TimestampedBase):
    """A withdrawal to the holder's linked bank account: held at request, paid out by bank transfer,
    captured on success, released on failure. ``reference`` is committed before the payout is sent."""

    __tablename__ = "wallet_withdrawals"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "status IN ('requested', 'unknown', 'pending', 'succeeded', 'failed')", name="status"
        ),
        Index("ix_wallet_withdrawals_status_created_at", "status", "created_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    source_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallet_funding_sources.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    hold_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_holds.id"))
    status: Mapped[str] = mapped_column(String(16), default="requested")
    sends: Mapped[int] = mapped_column(Integer, default=0)
    """How many times the order was handed to the bank (the bank deduplicates by ``reference``)."""
    bank_reference: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(String(64))
    entry_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ledger_entries.id"), unique=True)
    resolved_at: Mapped[datetime | None]


class GatewayEvent(Base):
    """A webhook event already processed (deduplication by the gateway's event id)."""

    __tablename__ = "wallet_gateway_events"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    intent_id: Mapped[str | None] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
