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
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.bills.autopay_models import BillItemRefund
from app.bills.models import Bill, Biller, BillPayment, BillPaymentItem, Receipt
from app.wallet.errors import REFUND_EXCEEDS_PAYMENT
from app.wallet.service import refund_to_wallet

__all__ = [
    "PaidBillItem",
    "Refunded",
    "cancel_unpaid_bill",
    "find_paid_item",
    "refund_bill_item",
    "refund_paid_bill",
    "refunded_amount",
]

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
    """Refund what is left of the payment of ``bill_id`` to its payer's wallet, in ``session``'s
    transaction; None when there is nothing (left) to refund."""
    item = await session.scalar(
        select(BillPaymentItem)
        .where(BillPaymentItem.bill_id == bill_id, BillPaymentItem.status.in_(REFUNDABLE))
        .with_for_update()
    )
    if item is None:
        return None
    left = item.amount - await _refunded_so_far(session, item.id)
    if left <= 0:
        return None
    return await _refund(session, item, left, reason=reason, reference=reference, description=description)


async def refund_bill_item(
    session: AsyncSession,
    item_id: uuid.UUID,
    amount: int,
    *,
    reason: str,
    reference: str,
    description: str,
) -> Refunded:
    """Refund ``amount`` đồng (all or part) of one paid bill of a payment, in ``session``'s transaction.

    The cap holds under the item's row lock: the refunds of an item never add up to more than it was paid
    (``refund_exceeds_payment`` 422 otherwise, extra ``refundable``). Refunding the rest marks the item,
    the bill and the receipt refunded; a partial refund leaves them as they are.
    """
    item = await session.scalar(
        select(BillPaymentItem).where(BillPaymentItem.id == item_id).with_for_update()
    )
    refundable = 0
    if item is not None and item.status in REFUNDABLE:
        refundable = item.amount - await _refunded_so_far(session, item.id)
    if item is None or type(amount) is not int or amount <= 0 or amount > refundable:
        raise REFUND_EXCEEDS_PAYMENT(
            f"Chỉ có thể hoàn tối đa {refundable} đ cho khoản thanh toán này",
            f"At most {refundable} VND can be refunded for this payment",
            refundable=refundable,
        )
    return await _refund(session, item, amount, reason=reason, reference=reference, description=description)


async def refunded_amount(session: AsyncSession, item_id: uuid.UUID) -> int:
    """Đồng already given back for one paid bill."""
    return await _refunded_so_far(session, item_id)


async def _refunded_so_far(session: AsyncSession, item_id: uuid.UUID) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(BillItemRefund.amount), 0)).where(BillItemRefund.item_id == item_id)
    )
    return int(total or 0)


async def _refund(
    session: AsyncSession,
    item: BillPaymentItem,
    amount: int,
    *,
    reason: str,
    reference: str,
    description: str,
) -> Refunded:
    already = await _refunded_so_far(session, item.id)
    payment = await session.get(BillPayment, item.payment_id)
    if payment is None:  # pragma: no cover - an item always has its payment (foreign key)
        raise LookupError(item.payment_id)
    posted = await refund_to_wallet(
        session,
        user_id=payment.payer_id,
        debits=[(item.payable_account_id, amount)],
        kind="bill_refund",
        reference=reference,
        description=description,
        metadata={"payment_id": str(payment.id), "bill_id": str(item.bill_id), "reason": reason},
    )
    now = posted.created_at
    session.add(
        BillItemRefund(
            created_at=now,
            item_id=item.id,
            payable_account_id=item.payable_account_id,
            amount=amount,
            entry_id=posted.entry_id,
            reason=reason[:64],
            reference=reference[:80],
        )
    )
    if already + amount >= item.amount:
        item.status = "refunded"
        item.refund_reason = reason[:64]
        item.refund_entry_id = posted.entry_id
        item.refunded_at = now
        await session.execute(
            update(Bill).where(Bill.id == item.bill_id).values(status="refunded", updated_at=now)
        )
        await session.execute(update(Receipt).where(Receipt.item_id == item.id).values(status="cancelled"))
    await session.flush()
    return Refunded(payment.payer_id, payment.id, amount, posted.entry_id)


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


@dataclass(frozen=True, slots=True)
class PaidBillItem:
    """A paid bill as another module (complaints) may know it."""

    item_id: uuid.UUID
    bill_id: uuid.UUID
    payer_id: uuid.UUID
    amount: int
    refunded: int
    paid_at: datetime
    biller_code: str
    biller_name: str
    payable_account_id: uuid.UUID
    """The payable the payment credited: its settlements hold what a complaint disputes."""


async def find_paid_item(
    session: AsyncSession, *, bill_id: uuid.UUID | None = None, item_id: uuid.UUID | None = None
) -> PaidBillItem | None:
    """The latest payment of ``bill_id`` (or the item ``item_id``) that can still be refunded, if any."""
    query = (
        select(BillPaymentItem, BillPayment, Biller)
        .join(BillPayment, BillPayment.id == BillPaymentItem.payment_id)
        .join(Biller, Biller.id == BillPaymentItem.biller_id)
        .order_by(BillPaymentItem.created_at.desc())
        .limit(1)
    )
    if item_id is not None:
        query = query.where(BillPaymentItem.id == item_id)
    elif bill_id is not None:
        query = query.where(BillPaymentItem.bill_id == bill_id)
    else:
        return None
    row = (await session.execute(query)).first()
    if row is None:
        return None
    item, payment, biller = row
    return PaidBillItem(
        item_id=item.id,
        bill_id=item.bill_id,
        payer_id=payment.payer_id,
        amount=item.amount,
        refunded=await _refunded_so_far(session, item.id) if item.status in REFUNDABLE else item.amount,
        paid_at=payment.paid_at,
        biller_code=biller.code,
        biller_name=biller.name,
        payable_account_id=item.payable_account_id,
    )
