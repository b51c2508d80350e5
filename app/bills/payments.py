"""One-tap payment of bills: N bills, one PIN, ONE journal entry, all or nothing.

:func:`pay_bills` runs inside the caller's write transaction (the route opens it together with the
idempotency key, so the key, the money, the bills, the receipts, the event and the outbox messages commit as
one unit, or none of them does):

1. lock the bills in id order (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite writers are serialised by
   ``BEGIN IMMEDIATE``), so two devices paying the same bill queue on its row and the second one sees it paid;
2. check every bill is payable by this payer: unpaid, not withdrawn or expired, its biller active, a bill with
   an owner (a dossier fee) only by its owner, the amount allowed by the biller's amount rule; the first bill
   that is not makes the whole payment fail with an error that names it (``bill_id``);
3. one journal entry through the wallet (identity level 2, PIN, limits, funds): the wallet is debited once,
   each biller's payable account is credited with its bills' amounts;
4. every bill marked paid, a payment row with one item per bill, a signed e-receipt per bill;
5. :class:`~app.bills.events.BillsPaid` published in the transaction (services moves paid dossiers on);
6. one outbox message per biller (``bills.confirm_payment``) to tell it, one inbox notification.

On PostgreSQL the route pays on the driver instead (``app/bills/pay_pg.py``: the same rules through the
functions below, six round trips), unless a bill has an owner: those keep this path for its ``BillsPaid``.

A refused payment leaves nothing behind except its failure record: :func:`record_failure` writes one
``bill_payment_attempts`` row in a separate transaction after the rollback (the route calls it).

Limits: the wallet's API takes one limit category per payment. When all bills share a category, it is that
category with the biller's ``limit_exempt``. When they mix categories, the payment is checked and counted
as category ``bills_mixed`` (the table's default row) and is exempt only if every bill is: the exempt bills'
amounts are then counted against the monthly cap too. That can refuse a mixed payment a per-bill count would
allow, never the other way round (see /work/notes/payments.md).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.bills import receipts
from app.bills.errors import AMOUNT_NOT_ALLOWED, BILL_ALREADY_PAID, BILL_NOT_FOUND, BILL_NOT_PAYABLE
from app.bills.events import BillsPaid, PaidBill
from app.bills.models import Bill, Biller, BillPayment, BillPaymentItem, PaymentAttempt, Receipt
from app.bills.payment_schemas import PaymentItemView, PaymentView, ReceiptVerification, ReceiptView
from app.core.db import Database, new_id
from app.core.errors import AppError
from app.core.events import publish
from app.core.outbox import enqueue_many
from app.core.security import Caller
from app.core.settings import KeyRing
from app.identity.inbox import post_notification
from app.identity.service import full_name_of
from app.wallet import ledger
from app.wallet import service as wallet
from app.wallet.ledger import AccountType

__all__ = [
    "CONFIRM_TOPIC",
    "MIXED_CATEGORY",
    "BillFacts",
    "BillerFacts",
    "MandateAuthority",
    "PaidNotice",
    "PayItem",
    "checked_amounts",
    "confirm_messages",
    "get_payment",
    "get_receipt",
    "item_view",
    "limit_terms",
    "new_reference",
    "paid_notice",
    "pay_bills",
    "payable_account",
    "payable_key",
    "payable_owner",
    "receipt_content",
    "receipt_pdf",
    "record_failure",
    "verify_receipt",
    "wanted_bills",
]

log = structlog.get_logger("app.bills.payments")

CONFIRM_TOPIC = "bills.confirm_payment"
MIXED_CATEGORY = "bills_mixed"
_PAID_LIKE = frozenset({"paid", "pending", "refunded"})
_PAYABLE_NAMESPACE = uuid.UUID("5b0b7c1e-6f43-4c8e-9a49-3d1f0a7e2c11")


@dataclass(frozen=True, slots=True)
class MandateAuthority:
    """Who pays without a PIN: the payer of an auto-pay mandate they confirmed with the PIN."""

    payer_id: uuid.UUID
    mandate_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class PayItem:
    bill_id: uuid.UUID
    amount: int | None = None


class BillFacts(Protocol):
    """What the payment rules and the receipt read of a bill: a :class:`~app.bills.models.Bill`, or the
    driver path's row (``app/bills/pay_pg.py``), so both paths decide with the same functions."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def status(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def owner_user_id(self) -> uuid.UUID | None: ...
    @property
    def external_id(self) -> str: ...
    @property
    def customer_code(self) -> str: ...
    @property
    def customer_name(self) -> str | None: ...
    @property
    def period(self) -> str: ...
    @property
    def description(self) -> str | None: ...


class BillerFacts(Protocol):
    """What the payment rules and the receipt read of a biller (see :class:`BillFacts`)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def amount_rule(self) -> str: ...
    @property
    def active(self) -> bool: ...
    @property
    def limit_exempt(self) -> bool: ...
    @property
    def agency_code(self) -> str | None: ...
    @property
    def payable_account_ref(self) -> str: ...


_B = TypeVar("_B", bound=BillFacts)
_R = TypeVar("_R", bound=BillerFacts)


def new_reference() -> str:
    return "BP" + secrets.token_hex(10).upper()


def payable_owner(ref: str) -> tuple[AccountType, uuid.UUID]:
    """The ledger account type and owner id behind a biller's ``payable_account_ref``.

    ``treasury:...`` refs are treasury payables, anything else a biller payable; the owner id is derived
    from the ref itself (UUIDv5), so two billers sharing a ref share the account.
    """
    account_type = AccountType.TREASURY_PAYABLE if ref.startswith("treasury:") else AccountType.BILLER_PAYABLE
    return account_type, uuid.uuid5(_PAYABLE_NAMESPACE, ref)


def payable_key(ref: str) -> str:
    """The ledger key of the account behind ``ref`` (as :func:`app.wallet.ledger.ensure_account` names it)."""
    account_type, owner_id = payable_owner(ref)
    return f"{account_type.value}:{owner_id}"


async def payable_account(session: AsyncSession, biller: Biller) -> uuid.UUID:
    """The ledger account credited for ``biller``'s bills (see :func:`payable_owner`), created if new."""
    return await ledger.ensure_account(session, *payable_owner(biller.payable_account_ref))


def _check_amount(bill: BillFacts, biller: BillerFacts, amount: int | None) -> int:
    if amount is None or amount == bill.amount:
        return bill.amount
    rule = biller.amount_rule
    allowed = (rule == "at_least" and amount > bill.amount) or (
        rule == "partial_allowed" and 1 <= amount < bill.amount
    )
    if not allowed:
        raise AMOUNT_NOT_ALLOWED(
            f"Số tiền {amount} đ không phù hợp với hóa đơn (quy tắc: {rule}, hóa đơn: {bill.amount} đ)",
            f"{amount} is not allowed for this bill (rule {rule}, bill amount {bill.amount})",
            bill_id=str(bill.id),
            amount_rule=rule,
            bill_amount=bill.amount,
        )
    return amount


def _check_payable(bill: BillFacts, biller: BillerFacts, payer_id: uuid.UUID) -> None:
    if bill.owner_user_id is not None and bill.owner_user_id != payer_id:
        # Someone else's dossier fee: not even its existence is told.
        raise BILL_NOT_FOUND("Không tìm thấy hóa đơn", "Bill not found", bill_id=str(bill.id))
    if bill.status in _PAID_LIKE:
        raise BILL_ALREADY_PAID(
            "Hóa đơn này đã được thanh toán, không thu tiền lần nữa",
            "This bill is already paid; nothing was charged",
            bill_id=str(bill.id),
        )
    if bill.status != "unpaid" or not biller.active:
        status = bill.status if bill.status != "unpaid" else "biller_inactive"
        raise BILL_NOT_PAYABLE(
            "Hóa đơn này không còn thanh toán được",
            "This bill can no longer be paid",
            bill_id=str(bill.id),
            status=status,
        )


def wanted_bills(items: Sequence[PayItem]) -> dict[uuid.UUID, int | None]:
    """The asked amount (None: the bill's) of each bill, in the order asked; a bill asked twice refuses the
    payment (checked once the idempotency key is claimed, as every other refusal)."""
    if not items:
        raise ValueError("a payment needs at least one bill")
    wanted: dict[uuid.UUID, int | None] = {}
    for asked in items:
        if asked.bill_id in wanted:
            raise BILL_NOT_PAYABLE(
                "Một hóa đơn chỉ được chọn một lần",
                "A bill may appear only once in a payment",
                bill_id=str(asked.bill_id),
                status="duplicate",
            )
        wanted[asked.bill_id] = asked.amount
    return wanted


def checked_amounts(
    wanted: Mapping[uuid.UUID, int | None],
    rows: Mapping[uuid.UUID, tuple[_B, _R]],
    payer_id: uuid.UUID,
) -> dict[uuid.UUID, int]:
    """The amount paid for each wanted bill, or the refusal of the first bill (in the order asked) that
    ``payer_id`` cannot pay; ``rows``: the locked bills found, with their billers."""
    amounts: dict[uuid.UUID, int] = {}
    for bill_id, amount in wanted.items():
        found = rows.get(bill_id)
        if found is None:
            raise BILL_NOT_FOUND("Không tìm thấy hóa đơn", "Bill not found", bill_id=str(bill_id))
        bill, biller = found
        _check_payable(bill, biller, payer_id)
        amounts[bill_id] = _check_amount(bill, biller, amount)
    return amounts


def limit_terms(billers: Iterable[BillerFacts]) -> tuple[str, bool]:
    """The wallet limit category of a payment of these billers' bills and whether it is exempt (see the
    module docstring)."""
    listed = list(billers)
    categories = {biller.category for biller in listed}
    category = next(iter(categories)) if len(categories) == 1 else MIXED_CATEGORY
    return category, all(biller.limit_exempt for biller in listed)


def receipt_content(
    *,
    series: str,
    number: int,
    receipt_id: uuid.UUID,
    bill: BillFacts,
    biller: BillerFacts,
    payer_id: uuid.UUID,
    payer_name: str | None,
    amount: int,
    paid_at: datetime,
    reference: str,
) -> dict[str, Any]:
    """The signed content of one bill's receipt."""
    return receipts.new_receipt_content(
        series=series,
        number=number,
        receipt_id=receipt_id,
        issuer={"code": biller.code, "name": biller.name, "agency_code": biller.agency_code},
        payer={"user_id": str(payer_id), "name": payer_name},
        bill={
            "bill_id": str(bill.id),
            "external_id": bill.external_id,
            "customer_code": bill.customer_code,
            "customer_name": bill.customer_name,
            "period": bill.period,
            "description": bill.description or biller.name,
            "category": biller.category,
        },
        amount=amount,
        paid_at=paid_at,
        payment_reference=reference,
    )


def confirm_messages(
    payment_id: uuid.UUID, biller_ids: Iterable[uuid.UUID]
) -> list[tuple[dict[str, str], str]]:
    """The ``bills.confirm_payment`` outbox messages of a payment, one per biller (payload, dedup key)."""
    return [
        ({"payment_id": str(payment_id), "biller_id": str(biller_id)}, f"{payment_id}:{biller_id}")
        for biller_id in dict.fromkeys(biller_ids)
    ]


@dataclass(frozen=True, slots=True)
class PaidNotice:
    """The payer's inbox notification of a payment."""

    kind: str
    title_vi: str
    body_vi: str
    title_en: str
    body_en: str
    data: dict[str, Any]


def paid_notice(payment_id: uuid.UUID, count: int, total: int, reference: str) -> PaidNotice:
    return PaidNotice(
        kind="bills_paid",
        title_vi="Thanh toán hóa đơn thành công",
        body_vi=f"Đã thanh toán {count} hóa đơn, tổng {receipts.money_vi(total)} (mã {reference}).",
        title_en="Bills paid",
        body_en=f"Paid {count} bill(s), {total:,} VND in total (reference {reference}).",
        data={"payment_id": str(payment_id)},
    )


async def pay_bills(
    session: AsyncSession,
    *,
    caller: Caller | None,
    items: Sequence[PayItem],
    pin: str | None,
    receipt_keys: KeyRing,
    mandate: MandateAuthority | None = None,
) -> PaymentView:
    """Pay ``items`` from ``caller``'s wallet in ``session``'s transaction (see the module docstring).

    With ``mandate`` (and no caller, no PIN) the payment is made on an auto-pay mandate's authority: the
    payment row and the journal entry carry the mandate id instead of a PIN check."""
    if mandate is not None:
        payer_id, session_id, authority = mandate.payer_id, None, f"mandate:{mandate.mandate_id}"
    elif caller is not None and pin is not None:
        payer_id, session_id, authority = caller.user_id, caller.session_id, None
    else:
        raise ValueError("a payment needs the caller and PIN, or a mandate")
    wanted = wanted_bills(items)
    statement = (
        select(Bill, Biller)
        .join(Biller, Biller.id == Bill.biller_id)
        .where(Bill.id.in_(list(wanted)))
        .order_by(Bill.id)
        .with_for_update(of=Bill)
    )
    rows = {bill.id: (bill, biller) for bill, biller in (await session.execute(statement)).all()}
    amounts = checked_amounts(wanted, rows, payer_id)

    # In the order of their refs, so that concurrent first payments creating the same payable accounts
    # wait for each other instead of deadlocking.
    payable: dict[uuid.UUID, uuid.UUID] = {}
    for _bill, biller in sorted(rows.values(), key=lambda row: row[1].payable_account_ref):
        if biller.id not in payable:
            payable[biller.id] = await payable_account(session, biller)
    ordered = [rows[bill_id] for bill_id in wanted]
    credits = [(payable[biller.id], amounts[bill.id]) for bill, biller in ordered]
    category, limit_exempt = limit_terms(biller for _bill, biller in ordered)
    payment_id = new_id()
    reference = new_reference()
    total = sum(amounts.values())
    posted = await wallet.pay_from_wallet(
        session,
        payer_id=payer_id,
        session_id=session_id,
        pin=pin,
        authority=authority,
        category=category,
        limit_exempt=limit_exempt,
        credits=credits,
        kind="bill_payment",
        reference=reference,
        description=f"Thanh toán {len(ordered)} hóa đơn",
        metadata={"payment_id": str(payment_id), "bills": [str(bill.id) for bill, _ in ordered]},
    )
    paid_at = posted.created_at
    session.add(
        BillPayment(
            id=payment_id,
            created_at=paid_at,
            payer_id=payer_id,
            reference=reference,
            total=total,
            entry_id=posted.entry_id,
            paid_at=paid_at,
            mandate_id=mandate.mandate_id if mandate is not None else None,
        )
    )
    await session.execute(
        update(Bill)
        .where(Bill.id.in_(list(wanted)))
        .values(status="paid", paid_at=paid_at, updated_at=paid_at)
        .execution_options(synchronize_session=False)
    )
    payer_name = await full_name_of(session, payer_id)  # read with the level check: no query
    series = receipts.series_for(paid_at)
    numbers = await receipts.next_numbers(session, series, len(ordered))
    views: list[PaymentItemView] = []
    item_rows: list[BillPaymentItem] = []
    receipt_rows: list[Receipt] = []
    for (bill, biller), number in zip(ordered, numbers, strict=True):
        item = BillPaymentItem(
            id=new_id(),
            created_at=paid_at,
            payment_id=payment_id,
            bill_id=bill.id,
            biller_id=biller.id,
            amount=amounts[bill.id],
            payable_account_id=payable[biller.id],
            status="paid",
        )
        item_rows.append(item)
        receipt_id = new_id()
        content = receipt_content(
            series=series,
            number=number,
            receipt_id=receipt_id,
            bill=bill,
            biller=biller,
            payer_id=payer_id,
            payer_name=payer_name,
            amount=amounts[bill.id],
            paid_at=paid_at,
            reference=reference,
        )
        key_id, signature = receipts.sign(receipt_keys, content)
        receipt_rows.append(
            Receipt(
                id=receipt_id,
                created_at=paid_at,
                item_id=item.id,
                payer_id=payer_id,
                series=series,
                number=number,
                content=content,
                key_id=key_id,
                signature=signature,
                status="valid",
            )
        )
        views.append(_item_view(item, bill, biller, receipt_id))
    session.add_all(item_rows)
    await session.flush()
    session.add_all(receipt_rows)
    await session.flush()
    if any(bill.owner_user_id is not None for bill, _biller in ordered):  # the same rule as pay_pg's
        await publish(
            session,
            BillsPaid(
                payment_id=payment_id,
                payer_id=payer_id,
                paid_at=paid_at,
                bills=tuple(
                    PaidBill(bill.id, biller.code, bill.external_id, amounts[bill.id])
                    for bill, biller in ordered
                ),
            ),
        )
    await enqueue_many(  # one message per biller, all in one statement
        session, CONFIRM_TOPIC, confirm_messages(payment_id, (biller.id for _bill, biller in ordered))
    )
    notice = paid_notice(payment_id, len(ordered), total, reference)
    await post_notification(
        session,
        payer_id,
        notice.kind,
        notice.title_vi,
        notice.body_vi,
        title_en=notice.title_en,
        body_en=notice.body_en,
        data=notice.data,
    )
    return PaymentView(id=payment_id, reference=reference, total=total, paid_at=paid_at, items=views)


def item_view(
    bill: BillFacts,
    biller: BillerFacts,
    *,
    amount: int,
    receipt_id: uuid.UUID,
    status: str = "paid",
    refund_reason: str | None = None,
) -> PaymentItemView:
    """A paid bill as the payment's answer shows it."""
    return PaymentItemView(
        bill_id=bill.id,
        biller_code=biller.code,
        biller_name=biller.name,
        customer_code=bill.customer_code,
        period=bill.period,
        amount=amount,
        status=status,  # type: ignore[arg-type]
        refund_reason=refund_reason,
        receipt_id=receipt_id,
    )


def _item_view(item: BillPaymentItem, bill: Bill, biller: Biller, receipt_id: uuid.UUID) -> PaymentItemView:
    return item_view(
        bill,
        biller,
        amount=item.amount,
        receipt_id=receipt_id,
        status=item.status,
        refund_reason=item.refund_reason,
    )


async def record_failure(
    db: Database, *, payer_id: uuid.UUID, items: Sequence[PayItem], error: AppError
) -> None:
    """The failure record of a refused payment, in its own transaction (never the PIN)."""
    bill_id = error.extra.get("bill_id")
    try:
        async with db.transaction() as session:
            session.add(
                PaymentAttempt(
                    payer_id=payer_id,
                    bill_ids=[str(item.bill_id) for item in items],
                    total=sum(item.amount or 0 for item in items),
                    error_code=error.kind.code,
                    bill_id=uuid.UUID(str(bill_id)) if bill_id else None,
                )
            )
    except Exception:  # the refusal is what the payer must see; a lost failure record is only logged
        log.exception("payment_attempt_not_recorded", error_code=error.kind.code)


# --- reading ----------------------------------------------------------------------------------------------


async def get_payment(
    session: AsyncSession, payer_id: uuid.UUID, payment_id: uuid.UUID
) -> PaymentView | None:
    """The payer's own payment (None for anyone else's: 404 at the edge)."""
    payment = await session.get(BillPayment, payment_id)
    if payment is None or payment.payer_id != payer_id:
        return None
    statement = (
        select(BillPaymentItem, Bill, Biller, Receipt.id)
        .join(Bill, Bill.id == BillPaymentItem.bill_id)
        .join(Biller, Biller.id == BillPaymentItem.biller_id)
        .join(Receipt, Receipt.item_id == BillPaymentItem.id)
        .where(BillPaymentItem.payment_id == payment_id)
        .order_by(BillPaymentItem.id)
    )
    items = [
        _item_view(item, bill, biller, receipt_id)
        for item, bill, biller, receipt_id in (await session.execute(statement)).all()
    ]
    return PaymentView(
        id=payment.id, reference=payment.reference, total=payment.total, paid_at=payment.paid_at, items=items
    )


def _receipt_view(receipt: Receipt, ring: KeyRing) -> ReceiptView:
    content: dict[str, Any] = receipt.content
    return ReceiptView(
        id=receipt.id,
        code=receipts.receipt_code(receipt.series, receipt.number),
        series=receipt.series,
        number=receipt.number,
        status=receipt.status,  # type: ignore[arg-type]
        issuer_name=content["issuer"]["name"],
        issuer_code=content["issuer"]["code"],
        payer_name=content["payer"]["name"],
        amount=int(content["amount"]),
        amount_in_words=content["amount_in_words"],
        paid_at=datetime.fromisoformat(content["paid_at"]),
        content=content,
        key_id=receipt.key_id,
        signature=receipt.signature,
        public_key=receipts.public_key_b64(ring, receipt.key_id) or "",
        check_code=receipts.check_code(receipt.signature),
        pdf_url=f"/api/v1/me/receipts/{receipt.id}/pdf",
    )


async def get_receipt(
    session: AsyncSession, payer_id: uuid.UUID, receipt_id: uuid.UUID, ring: KeyRing
) -> ReceiptView | None:
    """The payer's own receipt (None for anyone else's)."""
    receipt = await session.get(Receipt, receipt_id)
    if receipt is None or receipt.payer_id != payer_id:
        return None
    return _receipt_view(receipt, ring)


async def receipt_pdf(
    session: AsyncSession, payer_id: uuid.UUID, receipt_id: uuid.UUID
) -> tuple[str, bytes] | None:
    """``(file name, PDF bytes)`` of the payer's own receipt (None for anyone else's)."""
    receipt = await session.get(Receipt, receipt_id)
    if receipt is None or receipt.payer_id != payer_id:
        return None
    pdf = receipts.render_pdf(
        receipt.content, key_id=receipt.key_id, signature=receipt.signature, status=receipt.status
    )
    return f"bien-lai-{receipts.receipt_code(receipt.series, receipt.number)}.pdf", pdf


async def verify_receipt(
    session: AsyncSession, code: str, check: str, ring: KeyRing
) -> ReceiptVerification | None:
    """Public check of a receipt by its code and look-up code (both printed on it); None if they do not match
    a stored receipt, so receipt numbers cannot be enumerated."""
    series, _, number_text = code.rpartition("-")
    if not series or not number_text.isdigit():
        return None
    receipt = await session.scalar(
        select(Receipt).where(Receipt.series == series, Receipt.number == int(number_text))
    )
    if receipt is None or not secrets.compare_digest(receipts.check_code(receipt.signature), check):
        return None
    content: dict[str, Any] = receipt.content
    return ReceiptVerification(
        code=receipts.receipt_code(receipt.series, receipt.number),
        valid=receipts.verify(ring, content, receipt.key_id, receipt.signature),
        status=receipt.status,  # type: ignore[arg-type]
        issuer_name=content["issuer"]["name"],
        amount=int(content["amount"]),
        paid_at=datetime.fromisoformat(content["paid_at"]),
        key_id=receipt.key_id,
        public_key=receipts.public_key_b64(ring, receipt.key_id) or "",
    )
