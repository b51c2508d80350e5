"""Giving back what was paid for a bill: the one refund path every reason goes through.

A biller refusing a payment after the fact, a dossier withdrawn or stopped after its fee was paid: each
calls :func:`refund_paid_bill` in its own transaction. Under the payment item's row lock and only while the
item is still ``paid`` or ``confirmed``, one journal entry debits the payable account the payment credited
and credits the payer's wallet (``refund_to_wallet``); the item becomes ``refunded`` with the reason, the
bill ``refunded`` and its receipt ``cancelled``. A second call finds the item refunded and moves nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.bills.models import Bill, BillPayment, BillPaymentItem, Receipt
from app.wallet.service import refund_to_wallet

__all__ = ["Refunded", "cancel_unpaid_bill", "refund_paid_bill"]

REFUNDABLE = ("paid", "confirmed")


@dataclass(frozen=True, slots=True)
class Refunded:
    payer_id: uuid.UUID
    payment_id: uuid.UUID
    amount: int
    entry_id: uuid.UUID


async def refund_paid_bill(
    session: AsyncSession, bill_id: uuid.UUID, *, reason: str, reference: str, description: str
) -> Refunded | None:
    """Refund the payment of ``bill_id`` to its payer's wallet, in ``session``'s transaction; None when
    there is nothing (left) to refund."""
    item = await session.scalar(
        select(BillPaymentItem)
        .where(BillPaymentItem.bill_id == bill_id, BillPaymentItem.status.in_(REFUNDABLE))
        .with_for_update()
    )
    if item is None:
        return None
    payment = await session.get(BillPayment, item.payment_id)
    if payment is None:
        return None
    posted = await refund_to_wallet(
        session,
        user_id=payment.payer_id,
        debits=[(item.payable_account_id, item.amount)],
        kind="bill_refund",
        reference=reference,
        description=description,
        metadata={"payment_id": str(payment.id), "bill_id": str(bill_id), "reason": reason},
    )
    now = posted.created_at
    item.status = "refunded"
    item.refund_reason = reason[:64]
    item.refund_entry_id = posted.entry_id
    item.refunded_at = now
    await session.execute(update(Bill).where(Bill.id == bill_id).values(status="refunded", updated_at=now))
    await session.execute(update(Receipt).where(Receipt.item_id == item.id).values(status="cancelled"))
    await session.flush()
    return Refunded(payment.payer_id, payment.id, item.amount, posted.entry_id)


async def cancel_unpaid_bill(session: AsyncSession, bill_id: uuid.UUID) -> bool:
    """Withdraw a bill nobody has paid yet (a dossier withdrawn or stopped before its fee was paid), so it
    can no longer be paid; returns whether it was cancelled. A payment holding the bill's row lock finishes
    first; the bill is then paid and this changes nothing (the caller refunds instead)."""
    result = await session.execute(
        update(Bill)
        .where(Bill.id == bill_id, Bill.status == "unpaid")
        .values(status="cancelled")
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
