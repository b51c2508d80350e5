"""Tables of settlements: one row per payee account and business day, with its remittance file."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import TimestampedBase

__all__ = ["SETTLEMENT_STATUSES", "Settlement", "SettlementItem"]

SETTLEMENT_STATUSES = ("no_payout", "sending", "unknown", "pending", "succeeded", "failed")


class Settlement(TimestampedBase):
    """What one payee (a biller, an agency's treasury account) was owed for one business day, and the payout
    that paid it. ``status``: ``no_payout`` (nothing, or a net debt carried to the next day), ``sending``
    (stored, ledger posted, not yet answered by the bank), ``unknown`` (the bank did not answer: ask its
    status), ``pending`` (accepted, not settled), ``succeeded``, ``failed`` (reversed, carried forward)."""

    __tablename__ = "settlements"
    __table_args__ = (
        UniqueConstraint("account_id", "business_day", name="uq_settlements_account_day"),
        CheckConstraint(
            "status IN ('no_payout', 'sending', 'unknown', 'pending', 'succeeded', 'failed')",
            name="status_known",
        ),
    )

    kind: Mapped[str] = mapped_column(String(16))
    """``biller`` or ``treasury``."""
    payee_code: Mapped[str] = mapped_column(String(40), index=True)
    """The biller's code, or the agency's code for the treasury."""
    account_id: Mapped[uuid.UUID]
    """The payable ledger account settled."""
    business_day: Mapped[date]
    """The Asia/Ho_Chi_Minh day whose movements this settles."""
    status: Mapped[str] = mapped_column(String(16))
    collected: Mapped[int] = mapped_column(BigInteger)
    """Sum of the day's movements of the payable (payments less refunds)."""
    held: Mapped[int] = mapped_column(BigInteger)
    """Net of complaint holds withheld (minus) and released holds paid back (plus), as a positive number
    when more was held than returned."""
    carried: Mapped[int] = mapped_column(BigInteger)
    """Net brought from earlier days (a debt left by refunds, a failed payout)."""
    amount: Mapped[int] = mapped_column(BigInteger)
    """What the file adds up to: ``collected - held + carried``; paid when positive."""
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    """Our payout reference, stored before sending: the bank's deduplication key."""
    bank_bin: Mapped[str] = mapped_column(String(6))
    account_number: Mapped[str] = mapped_column(String(32))
    account_name: Mapped[str] = mapped_column(String(200))
    entry_id: Mapped[uuid.UUID | None]
    """The journal entry of the payout (payable debited, guarantee bank mirror credited)."""
    reversal_entry_id: Mapped[uuid.UUID | None]
    bank_reference: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    carried_into: Mapped[uuid.UUID | None]
    """For a day not paid (debt, failure): the settlement that took its amount over."""
    lines: Mapped[int]
    file_name: Mapped[str] = mapped_column(String(120))
    file_csv: Mapped[str] = mapped_column(Text)
    """The remittance file (UTF-8 CSV): one line per bill paid or refunded, hold and carried amount."""
    sent_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class SettlementItem(TimestampedBase):
    """A movement (a bill paid, a refund) included in a settlement: each one in exactly one settlement, so a
    movement committed late (after its day was settled) is paid with the next day's."""

    __tablename__ = "settlement_items"
    __table_args__ = (UniqueConstraint("source_kind", "source_id", name="uq_settlement_items_source"),)

    settlement_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("settlements.id", ondelete="CASCADE"), index=True
    )
    source_kind: Mapped[str] = mapped_column(String(16))
    """``bill_payment`` (a payment item) or ``refund`` (a bill item refund)."""
    source_id: Mapped[uuid.UUID]
    amount: Mapped[int] = mapped_column(BigInteger)
