"""What the settlement of a payable account needs from bills: each bill paid into it and each refund out of
it, in a time window, and the payees (billers and treasury accounts) with their bank accounts.

Amounts and times are the journal's: a payment item is created at its entry's time with the amount
credited to ``payable_account_id``; a refund row at its entry's time with the amount debited. So a window's
movements here add up to the ledger's postings of that account in the window (other than payouts).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.bills.autopay_models import BillItemRefund
from app.bills.models import Bill, Biller, BillPayment, BillPaymentItem
from app.bills.payments import payable_account

__all__ = ["Movement", "Payee", "payable_movements", "payees"]


@dataclass(frozen=True, slots=True)
class Payee:
    """One payable account to settle and where its money goes."""

    kind: str
    """``biller`` or ``treasury`` (public-service fees)."""
    code: str
    """The biller's code, or the agency's code for a treasury payable."""
    account_id: uuid.UUID
    bank_bin: str
    account_number: str
    account_name: str


@dataclass(frozen=True, slots=True)
class Movement:
    """One bill paid into the payable (``amount`` > 0) or one refund out of it (``amount`` < 0)."""

    kind: str
    """``bill_payment`` or ``refund``."""
    source_id: uuid.UUID
    at: datetime
    amount: int
    biller_code: str
    bill_id: uuid.UUID
    external_id: str
    customer_code: str
    period: str
    payment_reference: str


async def payees(session: AsyncSession) -> list[Payee]:
    """Every payable account of a biller, once (billers sharing a ref share the account), in code order;
    ``public_service_fee`` billers' payables are the treasury's."""
    found: dict[uuid.UUID, Payee] = {}
    for biller in await session.scalars(select(Biller).order_by(Biller.code)):
        account_id = await payable_account(session, biller)
        if account_id in found:
            continue
        treasury = (
            biller.payable_account_ref.startswith("treasury:") or biller.category == "public_service_fee"
        )
        found[account_id] = Payee(
            kind="treasury" if treasury else "biller",
            code=(biller.agency_code or biller.code) if treasury else biller.code,
            account_id=account_id,
            bank_bin=biller.settlement_bank_bin,
            account_number=biller.settlement_account_number,
            account_name=biller.settlement_account_name,
        )
    return list(found.values())


async def payable_movements(
    session: AsyncSession, account_id: uuid.UUID, start: datetime, end: datetime
) -> list[Movement]:
    """Bills paid into and refunds out of ``account_id`` with ``start <= time < end``, in time order."""
    paid = await session.execute(
        select(BillPaymentItem, BillPayment.reference, Bill, Biller.code)
        .join(BillPayment, BillPayment.id == BillPaymentItem.payment_id)
        .join(Bill, Bill.id == BillPaymentItem.bill_id)
        .join(Biller, Biller.id == BillPaymentItem.biller_id)
        .where(
            BillPaymentItem.payable_account_id == account_id,
            BillPaymentItem.created_at >= start,
            BillPaymentItem.created_at < end,
        )
    )
    refunded = await session.execute(
        select(BillItemRefund, BillPayment.reference, Bill, Biller.code)
        .join(BillPaymentItem, BillPaymentItem.id == BillItemRefund.item_id)
        .join(BillPayment, BillPayment.id == BillPaymentItem.payment_id)
        .join(Bill, Bill.id == BillPaymentItem.bill_id)
        .join(Biller, Biller.id == BillPaymentItem.biller_id)
        .where(
            BillItemRefund.payable_account_id == account_id,
            BillItemRefund.created_at >= start,
            BillItemRefund.created_at < end,
        )
    )
    moves = [
        Movement(
            "bill_payment",
            item.id,
            item.created_at,
            item.amount,
            code,
            bill.id,
            bill.external_id,
            bill.customer_code,
            bill.period,
            reference,
        )
        for item, reference, bill, code in paid.all()
    ] + [
        Movement(
            "refund",
            refund.id,
            refund.created_at,
            -refund.amount,
            code,
            bill.id,
            bill.external_id,
            bill.customer_code,
            bill.period,
            reference,
        )
        for refund, reference, bill, code in refunded.all()
    ]
    return sorted(moves, key=lambda m: (m.at, str(m.source_id)))
