"""Tables of the wallet module: the double-entry ledger.

Sign convention: a posting's ``amount`` is positive for a credit and negative for a debit, so the postings of
an entry sum to zero and an account's raw balance is the sum of its postings. A credit-normal account (a
wallet, a payable, revenue) shows that raw balance; a debit-normal account (the bank mirror, clearing,
expenses) shows its negation.

Two kinds of account keep their balance differently:
- accounts that may not go negative (``allow_negative`` false: citizens' wallets) keep it in their row,
  which a posting locks, checks and updates; each of their postings records ``balance_after``.
- accounts that may go negative (receive-only payables and system accounts) are never locked by a payment:
  a posting appends a row to ``ledger_balance_deltas``, and a background fold moves committed deltas into the
  account row. Their balance is the row plus the deltas not yet folded.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TimestampedBase, utcnow

__all__ = [
    "LedgerAccount",
    "LedgerBalanceDelta",
    "LedgerEntry",
    "LedgerHold",
    "LedgerPosting",
    "WalletLimit",
    "WalletUsage",
]

_BigId = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit auto-increment key (SQLite needs INTEGER to alias the rowid)."""
_Json = JSON().with_variant(JSONB(), "postgresql")


class LedgerAccount(TimestampedBase):
    """An account of the ledger: a citizen's wallet, a payable to a biller, the bank mirror, ..."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint("allow_negative OR balance >= held", name="covered"),
        CheckConstraint("held >= 0", name="held_not_negative"),
        CheckConstraint("normal_side IN ('debit', 'credit')", name="normal_side"),
    )

    key: Mapped[str] = mapped_column(String(100), unique=True)
    """Stable name: ``{type}`` for a system account, ``{type}:{owner_id}`` for an owner's account."""
    type: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    currency: Mapped[str] = mapped_column(String(3), default="VND")
    normal_side: Mapped[str] = mapped_column(String(6))
    allow_negative: Mapped[bool]
    """False for wallets: locked, checked and never below zero. True for receive-only and system accounts."""
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    """Raw (credit-positive) balance; for ``allow_negative`` accounts, excluding unfolded deltas."""
    held: Mapped[int] = mapped_column(BigInteger, default=0)
    """Sum of active holds; available = balance - held."""


class LedgerEntry(TimestampedBase):
    """A journal entry: two or more postings summing to zero. Never updated, never deleted."""

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_created_at", "created_at"),)
    """By time: a day's journal (reconciliation, its seal, reports) is read by ``created_at``."""

    kind: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(128), index=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    details: Mapped[dict[str, Any]] = mapped_column("metadata", _Json, default=dict)
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ledger_entries.id"), unique=True)
    """For a reversal: the entry it cancels (at most one reversal per entry)."""


class LedgerPosting(Base):
    """One line of an entry: a signed amount (credit positive) on one account."""

    __tablename__ = "ledger_postings"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="nonzero"),
        Index("ix_ledger_postings_account_id_id", "account_id", "id"),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_entries.id"), index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int | None] = mapped_column(BigInteger)
    """The account's raw balance after this posting (accounts that may not go negative only)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerBalanceDelta(Base):
    """A credit or debit to an ``allow_negative`` account, not yet folded into the account's row."""

    __tablename__ = "ledger_balance_deltas"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)


class LedgerHold(TimestampedBase):
    """A pending amount reserved on a wallet: captured by an entry, or released."""

    __tablename__ = "ledger_holds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="positive"),
        CheckConstraint("status IN ('active', 'captured', 'released')", name="status"),
        Index("ix_ledger_holds_status_expires_at", "status", "expires_at"),
    )

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="active")
    kind: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(128))
    expires_at: Mapped[datetime | None]
    entry_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ledger_entries.id"))
    """The entry that captured it."""
    resolved_at: Mapped[datetime | None]


class WalletLimit(Base):
    """How much a customer of one identity level may pay in one payment category (đồng; NULL = no limit).

    Rows with a category starting with ``_`` are not categories: ``_monthly_cap`` holds the provider-wide
    monthly cap on payments and transfers that are not exempt (Circular 40/2024 Art. 26: 100,000,000 đồng),
    ``_new_device`` the lower limits during a device's first 24 hours, ``*`` the limits of a category that
    has no row of its own. Days and months are Asia/Ho_Chi_Minh days and months.
    """

    __tablename__ = "wallet_limits"

    identity_level: Mapped[int] = mapped_column(Integer, primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    per_transaction: Mapped[int | None] = mapped_column(BigInteger)
    per_day: Mapped[int | None] = mapped_column(BigInteger)
    per_month: Mapped[int | None] = mapped_column(BigInteger)


class WalletUsage(Base):
    """What a customer has paid in one period and bucket, kept in the payment's own transaction.

    ``bucket`` is ``d:YYYY-MM-DD:{category}``, ``m:YYYY-MM:{category}``, ``d:YYYY-MM-DD:_all`` (every
    category, for the new-device limit) or ``m:YYYY-MM:_cap`` (payments counted by the monthly cap). A
    payment adds its amount with one upsert that locks the payer's rows, so two concurrent payments of one
    customer are counted one after the other and a limit can never be overrun by a race.
    """

    __tablename__ = "wallet_usage"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    bucket: Mapped[str] = mapped_column(String(48), primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
