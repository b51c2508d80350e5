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
    """One payment settled these bills, among them at least one with an owner (a dossier fee, a result's
    postage: what services acts on); published in the payment's transaction, before commit, by
    :func:`app.bills.payments.pay_bills`. A payment of owner-less bills only publishes nothing, on either
    database: on PostgreSQL it is made on the driver (``app/bills/pay_pg.py``), which has no session to
    publish in, and the ORM path follows the same rule so both databases behave alike."""

    payment_id: uuid.UUID
    payer_id: uuid.UUID
    paid_at: datetime
    bills: tuple[PaidBill, ...]
