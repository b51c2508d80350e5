"""Telling billers about payments (outbox topic ``bills.confirm_payment``), and refunding what they refuse.

One message per (payment, biller), written in the payment's transaction. The handler asks the biller's
connector to confirm each of that biller's bills still in state ``paid``, outside any database transaction,
with a reference that never changes (``{payment reference}-{n}``, n the bill's place in the payment): a
redelivered message (at-least-once) is deduplicated by the biller on it.

- accepted: the item becomes ``confirmed`` with the biller's reference;
- refused (``accepted=False``, e.g. ``already_paid`` at a counter meanwhile): in one transaction, under the
  item's row lock, the amount goes back to the wallet through ``refund_to_wallet`` (one journal entry
  debiting the biller's payable), the item becomes ``refunded`` with the reason, the bill ``refunded``, the
  receipt ``cancelled``, and the payer gets an inbox notification. The lock and the state check make a
  second delivery a no-op: money goes back once;
- the biller is down or answers outside its contract: the handler raises and the outbox retries with backoff
  (then dead-letters for an admin).

The handler receives only the message, so the process installs what it needs (:func:`install`: the
database and the biller gateway; ``create_app`` does it). A worker process that did not build the app gets a
database and a gateway built from the environment's settings on first use.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import structlog
from sqlalchemy import select, update

from app.bills import service
from app.bills.connectors import PaymentConfirmation
from app.bills.gateway import BillerGateway
from app.bills.models import Bill, Biller, BillPayment, BillPaymentItem
from app.bills.payments import CONFIRM_TOPIC
from app.bills.receipts import money_vi
from app.bills.refunds import refund_paid_bill
from app.core.db import Database, utcnow
from app.core.outbox import Envelope, register_handler
from app.identity.inbox import post_notification

__all__ = ["Runtime", "confirm_payment", "install"]

log = structlog.get_logger("app.bills.confirmations")


@dataclass(slots=True)
class Runtime:
    db: Database
    gateway: BillerGateway


_runtime: Runtime | None = None


def install(db: Database, gateway: BillerGateway) -> None:
    """Make this process's confirmations use ``db`` and ``gateway``."""
    global _runtime
    _runtime = Runtime(db, gateway)


def _current() -> Runtime:
    global _runtime
    if _runtime is None:
        from app.bills.connectors import load_biller_secrets
        from app.core.settings import get_settings

        settings = get_settings()
        _runtime = Runtime(
            Database(settings),
            BillerGateway(allow_sandbox=not settings.is_production, secrets=load_biller_secrets()),
        )
    return _runtime


async def confirm_payment(envelope: Envelope) -> None:
    """Deliver one ``bills.confirm_payment`` message (see the module docstring)."""
    runtime = _current()
    payment_id = uuid.UUID(envelope.payload["payment_id"])
    biller_id = uuid.UUID(envelope.payload["biller_id"])
    async with runtime.db.read() as session:
        payment = await session.get(BillPayment, payment_id)
        biller = await session.get(Biller, biller_id)
        if payment is None or biller is None:
            log.warning("confirmation_for_unknown_payment", payment_id=str(payment_id))
            return
        all_items = (
            (
                await session.execute(
                    select(BillPaymentItem.id)
                    .where(BillPaymentItem.payment_id == payment_id)
                    .order_by(BillPaymentItem.id)
                )
            )
            .scalars()
            .all()
        )
        places = {item_id: index + 1 for index, item_id in enumerate(all_items)}
        rows = (
            await session.execute(
                select(BillPaymentItem, Bill)
                .join(Bill, Bill.id == BillPaymentItem.bill_id)
                .where(
                    BillPaymentItem.payment_id == payment_id,
                    BillPaymentItem.biller_id == biller_id,
                    BillPaymentItem.status == "paid",
                )
                .order_by(BillPaymentItem.id)
            )
        ).all()
        config = service.connector_config(biller)
    if not rows:
        return
    connector = runtime.gateway.connector(biller.code, config)
    for item, bill in rows:
        reference = f"{payment.reference}-{places[item.id]}"
        answer = await connector.confirm_payment(
            PaymentConfirmation(
                reference=reference,
                external_id=bill.external_id,
                customer_code=bill.customer_code,
                amount=item.amount,
                paid_at=payment.paid_at,
            )
        )
        if answer.accepted:
            async with runtime.db.transaction() as session:
                await session.execute(
                    update(BillPaymentItem)
                    .where(BillPaymentItem.id == item.id, BillPaymentItem.status == "paid")
                    .values(
                        status="confirmed", biller_reference=answer.biller_reference, confirmed_at=utcnow()
                    )
                )
            log.info("bill_payment_confirmed", payment=payment.reference, biller=biller.code)
        else:
            await _refund(runtime.db, payment, item.id, biller, reference, answer.reason or "refused")


async def _refund(
    db: Database, payment: BillPayment, item_id: uuid.UUID, biller: Biller, reference: str, reason: str
) -> None:
    async with db.transaction() as session:
        item = await session.get(BillPaymentItem, item_id)
        if item is None:
            return
        refunded = await refund_paid_bill(
            session,
            item.bill_id,
            reason=reason,
            reference=f"{reference}-R",
            description=f"Hoàn tiền hóa đơn {biller.name}: {reason}",
        )
        if refunded is None:
            return
        await post_notification(
            session,
            payment.payer_id,
            "bill_refunded",
            "Đã hoàn tiền hóa đơn",
            f"{biller.name} từ chối khoản thanh toán {money_vi(refunded.amount)} (lý do: {reason}); "
            "tiền đã được hoàn vào ví.",
            title_en="Bill payment refunded",
            body_en=f"{biller.name} refused the payment of {refunded.amount} VND ({reason}); "
            "the money is back in your wallet.",
            data={"payment_id": str(payment.id), "bill_id": str(item.bill_id), "reason": reason},
        )
    log.info("bill_payment_refunded", payment=payment.reference, biller=biller.code, reason=reason)


register_handler(CONFIRM_TOPIC, confirm_payment)
