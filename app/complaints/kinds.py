"""The payment kinds registered now: a paid bill (``bill``) and a wallet transfer (``transfer``).

``bill``: the citizen names the bill (``payment_id`` = the bill's id); the complaint is on its latest
payment item. The refund is :func:`app.bills.refunds.refund_bill_item` (capped at what was paid, under the
item's row lock); the biller's (or the treasury's) payable is held in its settlements.

``transfer``: the citizen names the transfer (``payment_id`` = the transfer's id, as the wallet API gives
it). The receiver is a citizen, whose wallet is never settled, so nothing is held. A refund takes the money
back from the receiver's wallet, up to what is available there (:func:`app.wallet.service.refund_transfer`);
it never comes from a suspense account (see the note: the platform would pay out pooled customer money for
a claim between two customers, and a colluding pair could drain it).

``merchant``: the citizen names the QR payment (``payment_id`` as the QR payment receipt gives it). The
refund is :func:`app.merchants.service.refund_merchant_payment` (capped at what was paid, under the
payment's row lock; ``refund_exceeds_paid`` otherwise); the merchant's payable is held in its daily
settlements (:func:`app.merchants.settlement.settle_day`).
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.bills.refunds import find_paid_item, refund_bill_item
from app.complaints.registry import PaidPayment, register_payment_kind
from app.identity.service import get_user_brief
from app.merchants.service import get_qr_payment, refund_merchant_payment
from app.wallet import service as wallet

__all__: list[str] = []


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def _load_bill(session: AsyncSession, given: str) -> PaidPayment | None:
    key = _uuid(given)
    if key is None:
        return None
    item = await find_paid_item(session, bill_id=key) or await find_paid_item(session, item_id=key)
    if item is None:
        return None
    return PaidPayment(
        ref=str(item.item_id),
        payer_id=item.payer_id,
        amount=item.amount,
        refundable=item.amount - item.refunded,
        paid_at=item.paid_at,
        payee_name=item.biller_name,
        hold_account_id=item.payable_account_id,
    )


async def _refund_bill(session: AsyncSession, ref: str, amount: int, authority: str) -> None:
    await refund_bill_item(
        session,
        uuid.UUID(ref),
        amount,
        reason="complaint",
        reference=authority,
        description="Hoàn tiền theo khiếu nại",
    )


async def _load_transfer(session: AsyncSession, given: str) -> PaidPayment | None:
    key = _uuid(given)
    facts = await wallet.load_transfer(session, key) if key is not None else None
    if facts is None:
        return None
    receiver = await get_user_brief(session, facts.recipient_id)
    return PaidPayment(
        ref=str(facts.id),
        payer_id=facts.payer_id,
        amount=facts.amount,
        refundable=facts.amount - facts.refunded,
        paid_at=facts.created_at,
        payee_name=wallet.mask_name((receiver.full_name or "") if receiver else ""),
        hold_account_id=None,
    )


async def _refund_transfer(session: AsyncSession, ref: str, amount: int, authority: str) -> None:
    await wallet.refund_transfer(session, uuid.UUID(ref), amount, reason="complaint", authority=authority)


async def _load_merchant(session: AsyncSession, given: str) -> PaidPayment | None:
    key = _uuid(given)
    facts = await get_qr_payment(session, key) if key is not None else None
    if facts is None:
        return None
    return PaidPayment(
        ref=str(facts.id),
        payer_id=facts.payer_id,
        amount=facts.amount,
        refundable=facts.amount - facts.refunded,
        paid_at=facts.paid_at,
        payee_name=facts.merchant_name,
        hold_account_id=facts.merchant_payable_account_id,
    )


async def _refund_merchant(session: AsyncSession, ref: str, amount: int, authority: str) -> None:
    await refund_merchant_payment(session, uuid.UUID(ref), amount, authority=authority, reason="complaint")


register_payment_kind("bill", load=_load_bill, refund=_refund_bill)
register_payment_kind("transfer", load=_load_transfer, refund=_refund_transfer)
register_payment_kind("merchant", load=_load_merchant, refund=_refund_merchant)
