"""Merchant rules: onboarding, staff, QR codes, pay by scan, refunds, API keys.

For other modules (inside the caller's ``Database.transaction()`` session):

    await refund_merchant_payment(session, payment_id, amount, *, authority="complaint:<id>", reason="...")
        -> RefundOut; amount None = all that is left. Raises merchant_payment_not_found (404),
        refund_exceeds_paid (422). Safe when two run at once: the payment row is locked (PostgreSQL
        ``FOR UPDATE``; SQLite writers are serialised by ``BEGIN IMMEDIATE``) and a CHECK keeps
        ``refunded <= amount`` as a last line.

Money: a payment is ONE journal entry (``pay_from_wallet``): the wallet is debited ``amount``, the
merchant's payable credited ``amount - fee`` and fee revenue ``fee`` (MDR, rounded half up to the đồng,
never above the amount). Both credited accounts only receive: the ledger never locks them (their changes
go to ``ledger_balance_deltas``), so 64 payers to one merchant do not queue behind one row. A refund is ONE
entry back: payable ``-(amount - fee share)``, fee revenue ``-fee share``, wallet ``+amount``.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import msgspec
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.audit import record as audit
from app.core.db import new_id, utcnow
from app.core.errors import FORBIDDEN, VALIDATION_FAILED, AppError
from app.core.outbox import enqueue
from app.core.security import Caller
from app.core.settings import Settings
from app.identity.models import UserRole
from app.identity.service import (
    find_user_id_by_phone,
    get_user_brief,
    grant_role,
    identity_level,
    revoke_role,
)
from app.merchants import vietqr
from app.merchants.errors import (
    MERCHANT_NOT_ACCEPTING,
    MERCHANT_NOT_FOUND,
    MERCHANT_STATE,
    MERCHANT_TAX_CODE_TAKEN,
    ORDER_EXPIRED,
    ORDER_NOT_FOUND,
    ORDER_NOT_PAYABLE,
    PAYMENT_NOT_FOUND,
    QR_AMOUNT_REQUIRED,
    QR_INVALID,
    QR_UNKNOWN_MERCHANT,
    REFUND_EXCEEDS_PAID,
    STORE_NOT_FOUND,
)
from app.merchants.models import (
    Merchant,
    MerchantApiKey,
    MerchantOrder,
    MerchantPayment,
    MerchantRefund,
    MerchantStore,
    MerchantWebhookEvent,
)
from app.merchants.schemas import (
    ApiKeyOut,
    MerchantIn,
    MerchantOut,
    OrderOut,
    PaymentOut,
    QrPreview,
    RefundOut,
    StaffOut,
    StoreIn,
    StoreOut,
)
from app.wallet import ledger
from app.wallet import service as wallet
from app.wallet.errors import IDENTITY_LEVEL_REQUIRED
from app.wallet.ledger import AccountType
from app.wallet.service import mask_name

__all__ = [
    "MCC_LABELS",
    "PAY_CATEGORY",
    "WEBHOOK_TOPIC",
    "OrderFacts",
    "Payee",
    "QrCharge",
    "WebhookEvent",
    "add_cashier",
    "add_store",
    "business_type_of",
    "charged_amount",
    "check_order",
    "create_api_key",
    "create_order",
    "decide",
    "event_data",
    "fee_of",
    "find_api_key",
    "find_merchants",
    "get_merchant",
    "get_qr_payment",
    "list_merchants_by_status",
    "merchant_view",
    "new_payment_reference",
    "new_webhook_event",
    "order_view",
    "pay_by_qr",
    "payment_view",
    "preview_qr",
    "qr_charge",
    "read_qr",
    "refund_merchant_payment",
    "register_merchant",
    "require_accepting",
    "require_dynamic_fields",
    "store_qr_payload",
    "webhook_message_key",
]

PAY_CATEGORY = "merchant_qr"
"""The wallet limit category of QR payments (the level's ``*`` row unless an admin sets one)."""
WEBHOOK_TOPIC = "merchants.webhook"
OWNER_LEVEL = 2

MCC_LABELS: dict[str, str] = {
    "4121": "Taxi, xe ôm",
    "5411": "Tạp hóa, siêu thị",
    "5499": "Thực phẩm (chợ, sạp)",
    "5812": "Nhà hàng, quán ăn",
    "5814": "Đồ ăn nhanh, quán nước",
    "5912": "Nhà thuốc",
    "5941": "Đồ thể thao",
    "5945": "Đồ chơi, quà lưu niệm",
    "5999": "Bán lẻ khác",
    "7011": "Khách sạn, nhà nghỉ",
    "7523": "Bãi giữ xe",
    "7230": "Cắt tóc, làm đẹp",
    "7991": "Tham quan, di tích",
    "8211": "Trường học",
    "8062": "Bệnh viện, phòng khám",
}
"""The categories Hue-S accepts (ISO 18245 codes; Vietnamese labels shown to payers)."""


# --- pure rules -------------------------------------------------------------------------------------------


def business_type_of(tax_code: str) -> tuple[str, str]:
    """``(normalised code, business type)``: 10 digits = company, 13 (or ``10-3``) = branch, 12 = household
    (the owner's personal ID number, DOMAIN.md). Anything else is ``validation_failed``."""
    code = tax_code.strip().replace("-", "")
    if code.isdigit() and code.isascii():
        if len(code) == 10:
            return code, "company"
        if len(code) == 13:
            return code, "branch"
        if len(code) == 12:
            return code, "household"
    raise VALIDATION_FAILED(
        "Mã số thuế gồm 10 chữ số (doanh nghiệp), 13 chữ số (chi nhánh) hoặc số định danh cá nhân 12 chữ số "
        "của chủ hộ kinh doanh",
        "A tax code is 10 digits (company), 13 (branch) or the owner's 12-digit personal ID (household)",
        field="tax_code",
    )


def fee_of(amount: int, mdr_bps: int) -> int:
    """The MDR on ``amount``: ``amount * bps / 10000`` rounded half up to the đồng, never above ``amount``."""
    return min(amount, (amount * mdr_bps * 2 + 10_000) // 20_000)


def _reference(prefix: str, size: int) -> str:
    return prefix + secrets.token_hex(size).upper()


# --- views ------------------------------------------------------------------------------------------------


def merchant_view(merchant: Merchant, stores: list[MerchantStore]) -> MerchantOut:
    return MerchantOut(
        id=merchant.id,
        name=merchant.name,
        tax_code=merchant.tax_code,
        business_type=merchant.business_type,  # type: ignore[arg-type]
        mcc=merchant.mcc,
        mcc_label=MCC_LABELS.get(merchant.mcc, ""),
        city=merchant.city,
        status=merchant.status,  # type: ignore[arg-type]
        owner_id=merchant.owner_id,
        account_number=merchant.account_number,
        mdr_bps=merchant.mdr_bps,
        settlement_bank_bin=merchant.settlement_bank_bin,
        settlement_account_number=merchant.settlement_account_number,
        settlement_account_name=merchant.settlement_account_name,
        webhook_url=merchant.webhook_url,
        decision_reason=merchant.decision_reason,
        stores=[store_view(s) for s in stores],
        created_at=merchant.created_at,
    )


def store_view(store: MerchantStore) -> StoreOut:
    return StoreOut(id=store.id, code=store.code, name=store.name, address=store.address, active=store.active)


class Payee(Protocol):
    """The merchant as a payment's view names it (a :class:`Merchant`, or what the PostgreSQL path read)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def name(self) -> str: ...


def payment_view(
    payment: MerchantPayment,
    merchant: Payee,
    *,
    order_reference: str | None = None,
    payer: str | None = None,
) -> PaymentOut:
    return PaymentOut(
        id=payment.id,
        reference=payment.reference,
        merchant_id=merchant.id,
        merchant_name=merchant.name,
        store_id=payment.store_id,
        order_id=payment.order_id,
        order_reference=order_reference,
        amount=payment.amount,
        fee=payment.fee,
        net=payment.amount - payment.fee,
        refunded=payment.refunded,
        status=payment.status,  # type: ignore[arg-type]
        paid_at=payment.paid_at,
        payer_name=payer,
    )


def order_view(order: MerchantOrder, payload: str, *, now: datetime | None = None) -> OrderOut:
    status = order.status
    if status == "open" and order.expires_at <= (now or utcnow()):
        status = "expired"
    return OrderOut(
        id=order.id,
        reference=order.reference,
        amount=order.amount,
        description=order.description,
        external_ref=order.external_ref,
        status=status,  # type: ignore[arg-type]
        expires_at=order.expires_at,
        payment_id=order.payment_id,
        qr_payload=payload,
        qr_png_url=f"/api/v1/merchants/{order.merchant_id}/orders/{order.id}/qr/png",
        qr_svg_url=f"/api/v1/merchants/{order.merchant_id}/orders/{order.id}/qr/svg",
    )


# --- onboarding -------------------------------------------------------------------------------------------


async def _stores(session: AsyncSession, merchant_id: uuid.UUID) -> list[MerchantStore]:
    rows = await session.scalars(
        select(MerchantStore).where(MerchantStore.merchant_id == merchant_id).order_by(MerchantStore.code)
    )
    return list(rows)


async def get_merchant(session: AsyncSession, merchant_id: uuid.UUID) -> Merchant:
    merchant = await session.get(Merchant, merchant_id)
    if merchant is None:
        raise MERCHANT_NOT_FOUND()
    return merchant


async def merchant_out(session: AsyncSession, merchant: Merchant) -> MerchantOut:
    return merchant_view(merchant, await _stores(session, merchant.id))


async def _new_account_number(session: AsyncSession) -> str:
    while True:
        number = "96" + "".join(secrets.choice("0123456789") for _ in range(10))
        if await session.scalar(select(Merchant.id).where(Merchant.account_number == number)) is None:
            return number


async def register_merchant(
    session: AsyncSession, owner: Caller, data: MerchantIn, settings: Settings
) -> MerchantOut:
    """Register a merchant for review (``pending``); its owner must be verified (identity level 2)."""
    level = await identity_level(session, owner.user_id)
    if level < OWNER_LEVEL:
        raise IDENTITY_LEVEL_REQUIRED(
            "Chủ đơn vị phải xác thực danh tính mức 2",
            "The owner must have a verified identity (level 2)",
            required=OWNER_LEVEL,
            current=level,
        )
    tax_code, business_type = business_type_of(data.tax_code)
    if data.mcc not in MCC_LABELS:
        raise VALIDATION_FAILED(
            f"Mã ngành {data.mcc} chưa được chấp nhận",
            f"Category code {data.mcc} is not accepted",
            field="mcc",
        )
    if len({s.code for s in data.stores}) != len(data.stores):
        raise VALIDATION_FAILED("Mã điểm bán bị trùng", "Store codes must be unique", field="stores")
    if await session.scalar(select(Merchant.id).where(Merchant.tax_code == tax_code)) is not None:
        raise MERCHANT_TAX_CODE_TAKEN()
    merchant_id = new_id()
    merchant = Merchant(
        id=merchant_id,
        name=data.name.strip(),
        tax_code=tax_code,
        business_type=business_type,
        mcc=data.mcc,
        city=data.city.strip(),
        owner_id=owner.user_id,
        status="pending",
        account_number=await _new_account_number(session),
        mdr_bps=settings.merchant_mdr_bps,
        settlement_bank_bin=data.settlement_bank_bin,
        settlement_account_number=data.settlement_account_number,
        settlement_account_name=data.settlement_account_name.strip(),
        payable_account_id=await ledger.ensure_account(session, AccountType.MERCHANT_PAYABLE, merchant_id),
    )
    session.add(merchant)
    await session.flush()
    stores = [
        MerchantStore(merchant_id=merchant_id, code=s.code, name=s.name.strip(), address=s.address.strip())
        for s in data.stores
    ]
    session.add_all(stores)
    await session.flush()
    return merchant_view(merchant, sorted(stores, key=lambda s: s.code))


_TRANSITIONS = {
    "approve": ({"pending"}, "approved"),
    "reject": ({"pending"}, "rejected"),
    "suspend": ({"approved"}, "suspended"),
    "reinstate": ({"suspended"}, "approved"),
}


async def decide(
    session: AsyncSession,
    admin: Caller,
    merchant_id: uuid.UUID,
    action: str,
    reason: str,
    mdr_bps: int | None,
) -> MerchantOut:
    """An admin approves, rejects, suspends or reinstates a merchant (audited). Approval makes the owner
    ``merchant_owner`` of it (scope = the merchant's id)."""
    merchant = await session.get(Merchant, merchant_id, with_for_update=True)
    if merchant is None:
        raise MERCHANT_NOT_FOUND()
    allowed, target = _TRANSITIONS[action]
    if merchant.status not in allowed:
        raise MERCHANT_STATE(
            f"Không thể {action} đơn vị đang ở trạng thái {merchant.status}",
            f"Cannot {action} a merchant that is {merchant.status}",
            status=merchant.status,
        )
    if action in ("reject", "suspend") and not reason.strip():
        raise VALIDATION_FAILED("Hãy ghi lý do", "A reason is required", field="reason")
    if action == "approve":
        if mdr_bps is not None:
            merchant.mdr_bps = mdr_bps
        await grant_role(
            session, merchant.owner_id, "merchant_owner", scope=merchant.id, granted_by=admin.user_id
        )
    merchant.status = target
    merchant.decided_by = admin.user_id
    merchant.decided_at = utcnow()
    merchant.decision_reason = reason.strip() or None
    await audit(
        session,
        actor=admin,
        action=f"merchants.{action}",
        object_type="merchant",
        object_id=merchant.id,
        details={"status": target, "mdr_bps": merchant.mdr_bps},
    )
    await session.flush()
    return await merchant_out(session, merchant)


async def list_merchants_by_status(session: AsyncSession, status: str, *, limit: int) -> list[Merchant]:
    """Merchants in one state, oldest first (the admin API's review list and the console's)."""
    return list(
        await session.scalars(
            select(Merchant).where(Merchant.status == status).order_by(Merchant.created_at).limit(limit)
        )
    )


async def find_merchants(session: AsyncSession, query: str) -> list[Merchant]:
    """The merchant with this id or tax code (any accepted shape: ``3300101234-001`` = ``3300101234001``)."""
    query = query.strip()
    try:
        merchant_id: uuid.UUID | None = uuid.UUID(query)
    except ValueError:
        merchant_id = None
    if merchant_id is not None:
        found = await session.get(Merchant, merchant_id)
        return [found] if found is not None else []
    try:
        tax_code = business_type_of(query)[0]
    except AppError:
        return []
    return list(await session.scalars(select(Merchant).where(Merchant.tax_code == tax_code)))


async def add_store(session: AsyncSession, merchant: Merchant, data: StoreIn) -> StoreOut:
    if await session.scalar(
        select(MerchantStore.id).where(
            MerchantStore.merchant_id == merchant.id, MerchantStore.code == data.code
        )
    ):
        raise VALIDATION_FAILED("Mã điểm bán đã có", "This store code is taken", field="code")
    store = MerchantStore(merchant_id=merchant.id, code=data.code, name=data.name, address=data.address)
    session.add(store)
    await session.flush()
    return store_view(store)


async def list_staff(session: AsyncSession, merchant_id: uuid.UUID) -> list[StaffOut]:
    rows = await session.execute(
        select(UserRole.user_id, UserRole.role)
        .where(UserRole.scope == str(merchant_id), UserRole.role.in_(("merchant_owner", "merchant_cashier")))
        .order_by(UserRole.role.desc(), UserRole.created_at)
    )
    staff: list[StaffOut] = []
    for user_id, role in rows:
        brief = await get_user_brief(session, user_id)
        staff.append(
            StaffOut(user_id=user_id, role=role, full_name=brief.full_name if brief else None)  # type: ignore[arg-type]
        )
    return staff


async def add_cashier(session: AsyncSession, owner: Caller, merchant: Merchant, phone: str) -> StaffOut:
    """The owner makes the holder of ``phone`` a cashier of the merchant (they sign in again to use it)."""
    user_id = await find_user_id_by_phone(session, phone)
    if user_id is None:
        raise VALIDATION_FAILED("Số điện thoại chưa có tài khoản Hue-S", "No Hue-S account for this phone")
    await grant_role(session, user_id, "merchant_cashier", scope=merchant.id, granted_by=owner.user_id)
    brief = await get_user_brief(session, user_id)
    return StaffOut(user_id=user_id, role="merchant_cashier", full_name=brief.full_name if brief else None)


async def remove_cashier(session: AsyncSession, merchant: Merchant, user_id: uuid.UUID) -> bool:
    return await revoke_role(session, user_id, "merchant_cashier", scope=merchant.id)


# --- QR codes ---------------------------------------------------------------------------------------------


def store_qr_payload(merchant: Merchant, store: MerchantStore, settings: Settings) -> str:
    """The static VietQR of a store: no amount, the store's code in 62-03."""
    return vietqr.build(
        vietqr.VietQr(
            bank_bin=settings.vietqr_acquirer_bin,
            account=merchant.account_number,
            mcc=merchant.mcc,
            name=merchant.name,
            city=merchant.city,
            store=store.code,
        )
    )


def order_payload(
    merchant: Merchant, order: MerchantOrder, store: MerchantStore | None, settings: Settings
) -> str:
    """The dynamic VietQR of an order: its amount, its reference in 62-05, its description in 62-08."""
    return vietqr.build(
        vietqr.VietQr(
            bank_bin=settings.vietqr_acquirer_bin,
            account=merchant.account_number,
            dynamic=True,
            amount=order.amount,
            mcc=merchant.mcc,
            name=merchant.name,
            city=merchant.city,
            store=store.code if store else None,
            reference=order.reference,
            purpose=order.description or None,
        )
    )


def require_accepting(status: str) -> None:
    """Only an approved merchant takes orders and payments (pending, rejected and suspended ones do not)."""
    if status != "approved":
        raise MERCHANT_NOT_ACCEPTING(status=status)


async def create_order(
    session: AsyncSession,
    merchant: Merchant,
    *,
    amount: int,
    store_id: uuid.UUID | None,
    description: str,
    external_ref: str | None,
    settings: Settings,
) -> OrderOut:
    """An order payable by a dynamic QR until ``now + merchant_order_ttl_seconds``."""
    require_accepting(merchant.status)
    store = None
    if store_id is not None:
        store = await session.get(MerchantStore, store_id)
        if store is None or store.merchant_id != merchant.id:
            raise STORE_NOT_FOUND()
    now = utcnow()
    order = MerchantOrder(
        merchant_id=merchant.id,
        store_id=store_id,
        reference=_reference("HS", 8),
        external_ref=external_ref,
        amount=amount,
        description=vietqr.ascii_text(description, 25) if description else "",
        status="open",
        expires_at=now + timedelta(seconds=settings.merchant_order_ttl_seconds),
        created_at=now,
    )
    session.add(order)
    await session.flush()
    return order_view(order, order_payload(merchant, order, store, settings), now=now)


async def get_order(
    session: AsyncSession, merchant: Merchant, order_id: uuid.UUID, settings: Settings
) -> tuple[MerchantOrder, OrderOut]:
    order = await session.get(MerchantOrder, order_id)
    if order is None or order.merchant_id != merchant.id:
        raise ORDER_NOT_FOUND()
    store = await session.get(MerchantStore, order.store_id) if order.store_id else None
    return order, order_view(order, order_payload(merchant, order, store, settings))


@dataclass(frozen=True, slots=True)
class Resolved:
    merchant: Merchant
    store: MerchantStore | None
    order: MerchantOrder | None
    qr: vietqr.VietQr


def read_qr(payload: str, settings: Settings) -> vietqr.VietQr:
    """The scanned text as a VietQR of our acquirer: read strictly (a wrong CRC or length is ``qr_invalid``)
    before anything is looked up, so a mistyped or foreign code never reaches the database's rules."""
    try:
        qr = vietqr.parse(payload)
    except vietqr.QrInvalidError as exc:
        raise QR_INVALID(None, str(exc), reason=exc.reason) from exc
    if qr.bank_bin != settings.vietqr_acquirer_bin:
        raise QR_UNKNOWN_MERCHANT()
    return qr


def require_dynamic_fields(qr: vietqr.VietQr) -> None:
    """A dynamic QR names its order by reference and fixes its amount; without both it pays nothing."""
    if not qr.reference or qr.amount is None:
        raise QR_INVALID(None, "a dynamic QR needs an amount and a reference", reason="not_vietqr")


class OrderFacts(Protocol):
    """What deciding whether an order can be paid needs (a :class:`MerchantOrder`, or the row the
    PostgreSQL path read)."""

    @property
    def merchant_id(self) -> uuid.UUID: ...
    @property
    def amount(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def expires_at(self) -> datetime: ...


def check_order(order: OrderFacts | None, merchant_id: uuid.UUID, qr: vietqr.VietQr) -> None:
    """The dynamic QR's order (read, locked, by its reference) is this merchant's, for the QR's amount,
    open and not expired; an order of another merchant is as unknown as a missing one."""
    if order is None or order.merchant_id != merchant_id:
        raise ORDER_NOT_FOUND()
    if order.amount != qr.amount:
        raise QR_INVALID(None, "the QR's amount is not the order's", reason="amount_mismatch")
    if order.status != "open":
        raise ORDER_NOT_PAYABLE(status=order.status)
    if order.expires_at <= utcnow():
        raise ORDER_EXPIRED(expires_at=order.expires_at.isoformat())


async def _resolve(session: AsyncSession, payload: str, settings: Settings, *, lock: bool) -> Resolved:
    qr = read_qr(payload, settings)
    merchant = await session.scalar(select(Merchant).where(Merchant.account_number == qr.account))
    if merchant is None:
        raise QR_UNKNOWN_MERCHANT()
    require_accepting(merchant.status)
    order = None
    if qr.dynamic:
        require_dynamic_fields(qr)
        statement = select(MerchantOrder).where(MerchantOrder.reference == qr.reference)
        order = await session.scalar(statement.with_for_update() if lock else statement)
        check_order(order, merchant.id, qr)
    store = None
    if order is not None and order.store_id is not None:
        store = await session.get(MerchantStore, order.store_id)
    elif qr.store:
        store = await session.scalar(
            select(MerchantStore).where(
                MerchantStore.merchant_id == merchant.id, MerchantStore.code == qr.store
            )
        )
        if store is None or not store.active:
            raise STORE_NOT_FOUND()
    return Resolved(merchant, store, order, qr)


async def preview_qr(session: AsyncSession, payload: str, settings: Settings) -> QrPreview:
    """Who a scanned QR pays and how much (nothing is charged)."""
    found = await _resolve(session, payload, settings, lock=False)
    return QrPreview(
        merchant_id=found.merchant.id,
        merchant_name=found.merchant.name,
        mcc_label=MCC_LABELS.get(found.merchant.mcc, ""),
        store_name=found.store.name if found.store else None,
        dynamic=found.order is not None,
        amount=found.order.amount if found.order else None,
        order_reference=found.order.reference if found.order else None,
        description=found.order.description or None if found.order else None,
        expires_at=found.order.expires_at if found.order else None,
    )


# --- paying -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Paid:
    view: PaymentOut
    merchant_id: uuid.UUID
    event: dict[str, Any]


def charged_amount(order_amount: int | None, amount: int | None) -> int:
    """What the payer pays: a dynamic QR's order fixes it (a typed amount must agree); a static QR has
    none, so the payer must type it."""
    if order_amount is not None:
        if amount is not None and amount != order_amount:
            raise QR_INVALID(None, "the amount is fixed by the QR", reason="amount_mismatch")
        return order_amount
    if amount is None:
        raise QR_AMOUNT_REQUIRED()
    return amount


@dataclass(frozen=True, slots=True)
class QrCharge:
    """The journal entry of a QR payment, as :func:`app.wallet.service.pay_from_wallet` takes it."""

    fee: int
    credits: list[tuple[uuid.UUID, int]]
    description: str
    metadata: dict[str, Any]


def qr_charge(
    *,
    payment_id: uuid.UUID,
    merchant_id: uuid.UUID,
    merchant_name: str,
    payable_account_id: uuid.UUID,
    mdr_bps: int,
    amount: int,
) -> QrCharge:
    """Split ``amount`` between the merchant's payable (net) and fee revenue (the MDR); a zero leg is left
    out because the ledger refuses empty postings."""
    fee = fee_of(amount, mdr_bps)
    credits = []
    if amount - fee > 0:
        credits.append((payable_account_id, amount - fee))
    if fee > 0:
        credits.append((ledger.system_account(AccountType.FEE_REVENUE), fee))
    return QrCharge(
        fee=fee,
        credits=credits,
        description=vietqr.ascii_text(merchant_name, 100) or "QR",
        metadata={"payment_id": str(payment_id), "merchant_id": str(merchant_id), "fee": fee},
    )


def new_payment_reference() -> str:
    return _reference("MP", 10)


async def pay_by_qr(
    session: AsyncSession, caller: Caller, *, payload: str, amount: int | None, pin: str, settings: Settings
) -> Paid:
    """Pay the merchant of ``payload`` from the caller's wallet in ``session``'s transaction (see the module
    docstring). A dynamic QR's order is locked, so it is paid at most once. PostgreSQL takes the same rules
    through the driver: ``app/merchants/pay_pg.py``."""
    found = await _resolve(session, payload, settings, lock=True)
    merchant, order = found.merchant, found.order
    amount = charged_amount(order.amount if order is not None else None, amount)
    payment_id = new_id()
    reference = new_payment_reference()
    charge = qr_charge(
        payment_id=payment_id,
        merchant_id=merchant.id,
        merchant_name=merchant.name,
        payable_account_id=merchant.payable_account_id,
        mdr_bps=merchant.mdr_bps,
        amount=amount,
    )
    posted = await wallet.pay_from_wallet(
        session,
        payer_id=caller.user_id,
        session_id=caller.session_id,
        pin=pin,
        category=PAY_CATEGORY,
        limit_exempt=False,
        credits=charge.credits,
        kind="merchant_payment",
        reference=reference,
        description=charge.description,
        metadata=charge.metadata,
    )
    payment = MerchantPayment(
        id=payment_id,
        created_at=posted.created_at,
        merchant_id=merchant.id,
        store_id=found.store.id if found.store else None,
        order_id=order.id if order else None,
        payer_id=caller.user_id,
        reference=reference,
        amount=amount,
        fee=charge.fee,
        refunded=0,
        status="paid",
        entry_id=posted.entry_id,
        paid_at=posted.created_at,
    )
    session.add(payment)
    if order is not None:
        order.status = "paid"
        order.payment_id = payment_id
        order.paid_at = posted.created_at
    view = payment_view(payment, merchant, order_reference=order.reference if order else None)
    event = await _webhook_event(
        session, merchant, "payment.succeeded", event_data(view, order.external_ref if order else None)
    )
    return Paid(view, merchant.id, event)


def event_data(view: PaymentOut, external_ref: str | None) -> dict[str, Any]:
    """A payment as its webhook event tells it, with the merchant's own order number when it gave one."""
    data: dict[str, Any] = msgspec.to_builtins(view)
    if external_ref:
        data["external_ref"] = external_ref
    return data


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    id: uuid.UUID
    created_at: datetime
    body: dict[str, Any]
    """What the merchant's server receives (signed) and the real-time stream shows."""


def new_webhook_event(kind: str, data: dict[str, Any]) -> WebhookEvent:
    event_id = new_id()
    now = utcnow()
    return WebhookEvent(
        event_id, now, {"id": str(event_id), "type": kind, "created": int(now.timestamp()), "data": data}
    )


def webhook_message_key(event_id: uuid.UUID) -> str:
    """The outbox key of an event's first delivery (a resend is a later round)."""
    return f"{event_id}:0"


async def _webhook_event(
    session: AsyncSession, merchant: Merchant, kind: str, data: dict[str, Any]
) -> dict[str, Any]:
    """Record the event and, when the merchant has an endpoint, enqueue its signed delivery (outbox)."""
    event = new_webhook_event(kind, data)
    session.add(
        MerchantWebhookEvent(
            id=event.id,
            created_at=event.created_at,
            merchant_id=merchant.id,
            type=kind,
            payload=event.body,
            status="pending" if merchant.webhook_url else "no_endpoint",
        )
    )
    if merchant.webhook_url:
        await enqueue(session, WEBHOOK_TOPIC, {"event_id": str(event.id)}, key=webhook_message_key(event.id))
    return event.body


# --- reading payments -------------------------------------------------------------------------------------


async def get_payment_for(session: AsyncSession, caller: Caller, payment_id: uuid.UUID) -> PaymentOut:
    """The payer's own payment, or one of the merchant's for its staff (404 for anyone else)."""
    payment = await session.get(MerchantPayment, payment_id)
    if payment is None:
        raise PAYMENT_NOT_FOUND()
    merchant = await get_merchant(session, payment.merchant_id)
    from app.core.access import is_visible

    if not is_visible(caller, owner_id=payment.payer_id, merchant_id=merchant.id, admin_duties=("support",)):
        raise PAYMENT_NOT_FOUND()
    return payment_view(payment, merchant)


async def list_payments(
    session: AsyncSession, merchant: Merchant, *, limit: int, cursor: str | None
) -> tuple[list[PaymentOut], str | None]:
    """The merchant's payments, newest first (cursor: the last payment id of the previous page)."""
    statement = select(MerchantPayment).where(MerchantPayment.merchant_id == merchant.id)
    if cursor:
        try:
            statement = statement.where(MerchantPayment.id < uuid.UUID(cursor))
        except ValueError as exc:
            raise VALIDATION_FAILED("Con trỏ không hợp lệ", "Bad cursor", field="cursor") from exc
    rows = list(await session.scalars(statement.order_by(MerchantPayment.id.desc()).limit(limit + 1)))
    items: list[PaymentOut] = []
    names: dict[uuid.UUID, str | None] = {}  # one identity look-up per payer on the page
    for payment in rows[:limit]:
        if payment.payer_id not in names:
            brief = await get_user_brief(session, payment.payer_id)
            names[payment.payer_id] = mask_name(brief.full_name) if brief and brief.full_name else None
        items.append(payment_view(payment, merchant, payer=names[payment.payer_id]))
    return items, (str(rows[limit - 1].id) if len(rows) > limit else None)


@dataclass(frozen=True, slots=True)
class QrPaymentFacts:
    """A QR payment as another module (complaints) needs it: who paid whom, how much, how much is left."""

    id: uuid.UUID
    payer_id: uuid.UUID
    merchant_id: uuid.UUID
    amount: int
    refunded: int
    paid_at: datetime
    merchant_name: str
    merchant_payable_account_id: uuid.UUID


async def get_qr_payment(session: AsyncSession, payment_id: uuid.UUID) -> QrPaymentFacts | None:
    """The facts of one merchant payment by id (no access check: the caller checks ``payer_id``)."""
    row = (
        await session.execute(
            select(MerchantPayment, Merchant.name, Merchant.payable_account_id)
            .join(Merchant, Merchant.id == MerchantPayment.merchant_id)
            .where(MerchantPayment.id == payment_id)
        )
    ).first()
    if row is None:
        return None
    payment, name, payable = row
    return QrPaymentFacts(
        id=payment.id,
        payer_id=payment.payer_id,
        merchant_id=payment.merchant_id,
        amount=payment.amount,
        refunded=payment.refunded,
        paid_at=payment.paid_at,
        merchant_name=name,
        merchant_payable_account_id=payable,
    )


# --- refunds ----------------------------------------------------------------------------------------------


async def refund_merchant_payment(
    session: AsyncSession,
    payment_id: uuid.UUID,
    amount: int | None,
    *,
    authority: str,
    reason: str = "",
) -> RefundOut:
    """Give ``amount`` đồng (None: all that is left) of a merchant payment back to its payer's wallet, in
    ``session``'s transaction: ONE journal entry (payable and fee revenue pro rata -> wallet). Several
    partial refunds may follow each other up to the amount paid; two at once queue on the payment's row and
    the second sees what the first refunded. ``authority`` records who ordered it (``user:<id>``,
    ``api_key:<id>``, ``complaint:<id>``)."""
    payment = await session.scalar(
        select(MerchantPayment).where(MerchantPayment.id == payment_id).with_for_update()
    )
    if payment is None:
        raise PAYMENT_NOT_FOUND()
    left = payment.amount - payment.refunded
    amount = left if amount is None else amount
    if amount <= 0 or amount > left:
        raise REFUND_EXCEEDS_PAID(refundable=left)
    merchant = await get_merchant(session, payment.merchant_id)
    # The fee given back is the fee of everything refunded so far minus what earlier refunds gave back,
    # so that a full refund in any number of parts returns exactly the fee taken.
    total_after = payment.refunded + amount
    fee_after = (
        payment.fee if total_after == payment.amount else (payment.fee * total_after) // payment.amount
    )
    fee_before = (
        payment.fee
        if payment.refunded == payment.amount
        else (payment.fee * payment.refunded) // payment.amount
    )
    fee_share = fee_after - fee_before
    debits = []
    if amount - fee_share > 0:
        debits.append((merchant.payable_account_id, amount - fee_share))
    if fee_share > 0:
        debits.append((ledger.system_account(AccountType.FEE_REVENUE), fee_share))
    # The row lock makes the read above current; the conditional increment is the last line against a lost
    # update should a caller ever reach here without it (measured: without the lock, two 40,000 refunds of a
    # 60,000 payment both passed a plain assignment on PostgreSQL).
    new_status = "refunded" if total_after == payment.amount else "partially_refunded"
    moved = await session.execute(
        update(MerchantPayment)
        .where(MerchantPayment.id == payment.id, MerchantPayment.refunded + amount <= MerchantPayment.amount)
        .values(refunded=MerchantPayment.refunded + amount, status=new_status)
        .execution_options(synchronize_session=False)
    )
    if not moved.rowcount:  # type: ignore[attr-defined]
        raise REFUND_EXCEEDS_PAID(refundable=left)
    refund_id = new_id()
    posted = await wallet.refund_to_wallet(
        session,
        user_id=payment.payer_id,
        debits=debits,
        kind="merchant_refund",
        reference=str(refund_id),
        description=f"Hoàn tiền {payment.reference}",
        metadata={"payment_id": str(payment.id), "merchant_id": str(merchant.id), "authority": authority},
    )
    refund = MerchantRefund(
        id=refund_id,
        created_at=posted.created_at,
        payment_id=payment.id,
        merchant_id=merchant.id,
        amount=amount,
        fee_returned=fee_share,
        reason=reason[:200],
        authority=authority[:120],
        entry_id=posted.entry_id,
    )
    session.add(refund)
    await session.flush()
    out = RefundOut(
        id=refund_id,
        payment_id=payment.id,
        amount=amount,
        fee_returned=fee_share,
        refunded_total=total_after,
        payment_status=new_status,  # type: ignore[arg-type]
        created_at=posted.created_at,
    )
    await _webhook_event(session, merchant, "refund.succeeded", msgspec.to_builtins(out))
    return out


async def refund_for_merchant(
    session: AsyncSession,
    merchant: Merchant,
    payment_id: uuid.UUID,
    amount: int | None,
    *,
    authority: str,
    reason: str,
) -> RefundOut:
    """A refund asked by the merchant (staff or API key): only of its own payments."""
    owner = await session.scalar(select(MerchantPayment.merchant_id).where(MerchantPayment.id == payment_id))
    if owner != merchant.id:
        raise PAYMENT_NOT_FOUND()
    return await refund_merchant_payment(session, payment_id, amount, authority=authority, reason=reason)


# --- API keys ---------------------------------------------------------------------------------------------


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_view(key: MerchantApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        scopes=list(key.scopes),
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
    )


async def create_api_key(
    session: AsyncSession, caller: Caller, merchant: Merchant, name: str, scopes: list[str]
) -> tuple[ApiKeyOut, str]:
    """A new server key: ``mk_<8 hex>_<secret>``; only its SHA-256 is stored."""
    if not caller.has_role("merchant_owner"):
        raise FORBIDDEN("Chỉ chủ đơn vị được tạo khóa API", "Only the owner may create API keys")
    prefix = "mk_" + secrets.token_hex(4)
    secret = f"{prefix}_{secrets.token_urlsafe(32)}"
    key = MerchantApiKey(
        merchant_id=merchant.id,
        name=name,
        prefix=prefix,
        secret_hash=_hash_secret(secret),
        scopes=sorted(set(scopes)),
        created_by=caller.user_id,
    )
    session.add(key)
    await session.flush()
    await audit(
        session,
        actor=caller,
        action="merchants.api_key_created",
        object_type="merchant_api_key",
        object_id=key.id,
        details={"merchant_id": str(merchant.id), "scopes": key.scopes},
    )
    return api_key_view(key), secret


async def find_api_key(session: AsyncSession, secret: str) -> MerchantApiKey | None:
    """The live key whose secret this is (constant-time compare of the hashes), or None."""
    prefix = secret[:11]
    if not prefix.startswith("mk_"):
        return None
    key = await session.scalar(select(MerchantApiKey).where(MerchantApiKey.prefix == prefix))
    if key is None or key.revoked_at is not None:
        return None
    if not secrets.compare_digest(key.secret_hash, _hash_secret(secret)):
        return None
    return key


async def count_payments(session: AsyncSession, merchant_id: uuid.UUID) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(MerchantPayment)
            .where(MerchantPayment.merchant_id == merchant_id)
        )
        or 0
    )
