"""What the bills module announces to the rest of the app (see :mod:`app.core.events`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

__all__ = ["BillsPaid", "PaidBill"]


@dataclass(frozen=True, slots=True)
class PaidBill:
    bill_id: uuid.UUID
    biller_code: str
    external_id: str
    """The biller's own id of the bill (for a dossier fee: the id the services module issued it with)."""
    amount: int
    """What was paid, in đồng."""


@dataclass(frozen=True, slots=True)
class BillsPaid:
    """One payment settled these bills; published in the payment's transaction, before commit.

    Published by :func:`app.bills.payments.pay_bills` (the ORM path): every payment on SQLite, auto-pay
    runs, and on PostgreSQL every payment with a bill that has an owner (a dossier fee, a result's postage).
    A PostgreSQL payment of owner-less bills only is made on the driver (``app/bills/pay_pg.py``) and
    publishes nothing, so a subscriber acts on owned bills only; one that must see other bills moves that
    line in ``pay_pg``."""

    payment_id: uuid.UUID
    payer_id: uuid.UUID
    paid_at: datetime
    bills: tuple[PaidBill, ...]
