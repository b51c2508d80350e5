"""Payment kinds a citizen may complain about, each owned by the module that took the payment.

A kind is three things the owning module already has: a loader of the payment the citizen made (who paid,
how much, how much is still refundable, who was paid), a refund function (so the owning module's caps hold:
never more than was paid, never twice), and the payee account whose settlements must hold the disputed
amount while the complaint is open (none when the payee is not settled, e.g. a citizen's wallet).

Registering a kind is a few lines (see ``kinds.py`` and docs/engineering-notes/afterpay.md)::

    register_payment_kind("merchant", load=load_merchant_payment, refund=refund_merchant)
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["PaidPayment", "PaymentKind", "kinds", "payment_kind", "register_payment_kind"]


@dataclass(frozen=True, slots=True)
class PaidPayment:
    """A payment as a complaint needs it."""

    ref: str
    """The payment's canonical id in its owning module (what the refund function takes)."""
    payer_id: uuid.UUID
    amount: int
    """Đồng paid."""
    refundable: int
    """Đồng still refundable (paid less what was already given back)."""
    paid_at: datetime
    payee_name: str
    hold_account_id: uuid.UUID | None
    """The payee's payable ledger account whose settlements hold the disputed amount; None: nothing to
    hold (the money is not waiting for a settlement)."""


Loader = Callable[[AsyncSession, str], Awaitable[PaidPayment | None]]
"""``(session, id the citizen gave)`` -> the payment, or None if there is no such payment."""
Refunder = Callable[[AsyncSession, str, int, str], Awaitable[None]]
"""``(session, PaidPayment.ref, amount, authority)``: give ``amount`` back to the payer in the caller's
transaction, or raise the owning module's ``AppError`` (caps, funds) having moved nothing."""


@dataclass(frozen=True, slots=True)
class PaymentKind:
    name: str
    load: Loader
    refund: Refunder


_KINDS: dict[str, PaymentKind] = {}


def register_payment_kind(name: str, *, load: Loader, refund: Refunder) -> None:
    """Declare a payment kind (at import of the module that owns it; registering it again replaces it)."""
    if not name or len(name) > 32:
        raise ValueError("a payment kind is 1-32 characters")
    _KINDS[name] = PaymentKind(name, load, refund)


def payment_kind(name: str) -> PaymentKind | None:
    return _KINDS.get(name)


def kinds() -> list[str]:
    """The registered kinds, sorted."""
    return sorted(_KINDS)
