"""API structs of auto-pay mandates."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = ["MandateIn", "MandateView"]


class MandateIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A standing order to pay the bills of one saved customer code, confirmed with the payment PIN."""

    saved_code_id: uuid.UUID
    """The saved customer code (``GET /api/v1/me/customer-codes``) whose bills are paid."""
    days_before: Annotated[int, Meta(ge=0, le=30)] = 3
    """Pay this many days before the due date (0: on the due date)."""
    max_amount: Annotated[int, Meta(ge=1_000, le=100_000_000)]
    """A bill above this amount (đồng) is not paid: the citizen is told and pays it by hand."""
    pin: Annotated[str, Meta(min_length=4, max_length=12)]
    """The payment PIN: the mandate is the authority of every payment it makes."""


class MandateView(msgspec.Struct, kw_only=True):
    """An auto-pay mandate."""

    id: uuid.UUID
    """Opaque id; each payment made under it carries it."""
    saved_code_id: uuid.UUID
    """The saved customer code it pays."""
    biller_code: str
    """The biller."""
    customer_code: str
    """The customer code."""
    days_before: int
    """Days before the due date the bill is paid."""
    max_amount: int
    """Largest bill paid automatically (đồng)."""
    status: Literal["active", "cancelled"]
    """``active`` or ``cancelled``."""
    confirmed_at: datetime
    """When the citizen confirmed it with the PIN."""
    cancelled_at: datetime | None
    """When it was cancelled, if it was."""
