"""API structs of settlements."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import msgspec

__all__ = ["SettlementView"]


class SettlementView(msgspec.Struct, kw_only=True):
    """One payee's settlement of one business day."""

    id: uuid.UUID
    """Opaque id."""
    kind: str
    """``biller`` or ``treasury``."""
    payee_code: str
    """The biller's code or the agency's code."""
    business_day: date
    """The Asia/Ho_Chi_Minh day settled."""
    status: str
    """``no_payout``, ``sending``, ``unknown``, ``pending``, ``succeeded`` or ``failed``."""
    collected: int
    """Bills paid less refunds that day (đồng)."""
    held: int
    """Complaint holds withheld less holds returned (đồng)."""
    carried: int
    """Brought from earlier days (a debt, a failed payout) (đồng)."""
    amount: int
    """What the file adds up to; paid when positive (đồng)."""
    reference: str
    """The payout reference given to the bank."""
    bank_bin: str
    """The receiving bank's BIN."""
    account_number: str
    """The receiving account."""
    bank_reference: str | None
    """The bank's transaction id, once known."""
    failure_reason: str | None
    """Why the payout failed, if it did."""
    lines: int
    """Lines in the file."""
    file_name: str
    """Name of the remittance file."""
    created_at: datetime
    """When it was prepared."""
    finished_at: datetime | None
    """When the bank's outcome became final."""
