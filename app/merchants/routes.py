"""HTTP routes of merchants: registration and admin decisions, staff and stores, QR codes, pay by scan,
refunds, the real-time stream, webhooks, API keys and settlements, and the merchant server API."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.access import is_visible
from app.core.db import Database, utcnow
from app.core.deps import AUTHENTICATED
from app.core.errors import FORBIDDEN, NOT_FOUND, SERVICE_UNAVAILABLE, VALIDATION_FAILED
from app.core.idempotency import (
    IDEMPOTENCY_ERRORS,
    IdempotencyKey,
    idempotent,
    idempotent_response,
    request_fingerprint,
    scope_of,
)
from app.core.ratelimit import rate_limit
from app.core.security import Caller, require_duty, require_roles
from app.core.settings import Settings
from app.identity.errors import PIN_INVALID, PIN_LOCKED, PIN_NOT_SET
from app.identity.inbox import pubsub_of
from app.merchants import pay_pg, service, settlement, vietqr, webhooks
from app.merchants.errors import (
    API_KEY_INVALID,
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
from app.merchants.models import Merchant, MerchantApiKey, MerchantPayout, MerchantStore, MerchantWebhookEvent
from app.merchants.schemas import (
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyOut,
    CashierIn,
    DecisionIn,
    MerchantIn,
    MerchantOut,
    OrderIn,
    OrderOut,
    PaymentOut,
    PaymentPage,
    PayoutOut,
    QrPayIn,
    QrPreview,
    QrScanIn,
    RefundIn,
    RefundOut,
    StaffOut,
    StoreIn,
    StoreOut,
    StoreQr,
    WebhookEventOut,
    WebhookIn,
    WebhookSecretOut,
)
from app.wallet.errors import IDENTITY_LEVEL_REQUIRED, INSUFFICIENT_FUNDS, LIMIT_EXCEEDED, WALLET_NOT_FOUND

__all__ = ["merchant_routes"]

_STAFF = ("merchant_owner", "merchant_cashier")
QR_ERRORS = [
    QR_INVALID,
    QR_UNKNOWN_MERCHANT,
    MERCHANT_NOT_ACCEPTING,
    ORDER_NOT_FOUND,
    ORDER_EXPIRED,
    ORDER_NOT_PAYABLE,
    STORE_NOT_FOUND,
]
PAY_ERRORS = [
    *IDEMPOTENCY_ERRORS,
    *QR_ERRORS,
    QR_AMOUNT_REQUIRED,
    IDENTITY_LEVEL_REQUIRED,
    WALLET_NOT_FOUND,
    LIMIT_EXCEEDED,
    INSUFFICIENT_FUNDS,
    PIN_INVALID,
    PIN_LOCKED,
    PIN_NOT_SET,
]
MerchantId = Annotated[uuid.UUID, PathParameter(description="The merchant's id.")]


def channel_for(merchant_id: uuid.UUID) -> str:
    """The pub/sub channel of one merchant's real-time payments."""
    return f"merchant:{merchant_id}"


async def _publish(request: Request[Any, Any, Any], merchant_id: uuid.UUID, event: dict[str, Any]) -> None:
    pubsub = pubsub_of(request.app)
    if pubsub is None:
        return
    with contextlib.suppress(Exception):  # real time is best effort: the payment is committed already
        await pubsub.publish(channel_for(merchant_id), msgspec.json.encode(event))


async def _visible_merchant(session: AsyncSession, caller: Caller, merchant_id: uuid.UUID) -> Merchant:
    """The merchant if the caller is its owner, its staff or a support admin; 404 otherwise."""
    merchant = await session.get(Merchant, merchant_id)
    if merchant is None or not is_visible(
        caller, owner_id=merchant.owner_id, merchant_id=merchant.id, admin_duties=("support", "finance")
    ):
        raise MERCHANT_NOT_FOUND()
    return merchant


async def _staff_merchant(
    session: AsyncSession, caller: Caller, merchant_id: uuid.UUID, *, owner_only: bool = False
) -> Merchant:
    """The merchant if the caller is its staff (its owner when ``owner_only``); 404 for other merchants."""
    merchant = await session.get(Merchant, merchant_id)
    roles = ("merchant_owner",) if owner_only else _STAFF
    if merchant is None or caller.merchant_id != str(merchant_id) or not caller.has_role(*_STAFF):
        raise MERCHANT_NOT_FOUND()
    if not caller.has_role(*roles):
        raise FORBIDDEN("Chỉ chủ đơn vị được làm việc này", "Only the merchant's owner may do this")
    return merchant


class QrPaymentController(Controller):
    """Citizens: register a business, scan a merchant QR, pay it."""

    path = "/api/v1"
    tags = ["merchants"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]
    guards = [require_roles("citizen")]

    @post(
        "/merchants",
        operation_id="registerMerchant",
        summary="Register a merchant",
        status_code=201,
        guards=[rate_limit("default")],
        opt={"errors": [*IDEMPOTENCY_ERRORS, IDENTITY_LEVEL_REQUIRED, MERCHANT_TAX_CODE_TAKEN]},
    )
    async def register(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[MerchantIn],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[MerchantOut]:
        """Register a business (shop, stall, car park) to take wallet payments by QR. The owner must be
        verified (identity level 2). Tax code: 10 digits (company), 13 (branch) or the owner's 12-digit
        personal ID number (household business). It is `pending` until an admin approves it; the owner then
        becomes `merchant_owner` of it (sign in again to use the role)."""
        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=data,
            effect=lambda session: service.register_merchant(session, caller, data, settings),
        )

    @post(
        "/qr/preview",
        operation_id="previewQr",
        summary="Who a scanned QR pays",
        status_code=200,
        guards=[rate_limit("default")],
        opt={"errors": QR_ERRORS},
    )
    async def preview(
        self,
        data: JSONBody[QrScanIn],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
    ) -> QrPreview:
        """Read a scanned VietQR strictly (a wrong CRC or length is `qr_invalid`) and say who it pays: the
        merchant and store, and for a dynamic QR the fixed amount, the order and its expiry. A static QR has
        no amount: the payer types it. Nothing is charged."""
        async with db.read() as session:
            return await service.preview_qr(session, data.payload, settings)

    @post(
        "/qr/payments",
        operation_id="payQr",
        summary="Pay a merchant by QR",
        status_code=201,
        guards=[rate_limit("payments")],
        opt={"errors": PAY_ERRORS},
    )
    async def pay(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[QrPayIn],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[PaymentOut]:
        """Pay the merchant of a scanned QR from the wallet with the payment PIN: one journal entry (the
        wallet debited, the merchant credited net of its fee, the fee to fee revenue). A static QR needs the
        typed `amount`; a dynamic QR's amount is fixed and its order can be paid once, before it expires.
        Needs identity level 2 and an `Idempotency-Key`. The merchant sees it at once (stream and webhook)."""
        fingerprint = request_fingerprint(request.method, request.url.path, data, exclude=("pin",))
        if not db.is_sqlite:
            done = await pay_pg.pay(
                db,
                pay_pg.QrPayRequest(
                    caller=caller,
                    key=idempotency_key,
                    scope=scope_of(caller),
                    fingerprint=fingerprint,
                    payload=data.payload,
                    amount=data.amount,
                    pin=data.pin,
                    settings=settings,
                ),
            )
            if done.merchant_id is not None and done.event is not None:
                await _publish(request, done.merchant_id, done.event)
            return done.stored.to_response()
        paid: service.Paid | None = None
        async with idempotent(
            db, scope=scope_of(caller), key=idempotency_key, fingerprint=fingerprint
        ) as unit:
            if unit.replay is not None:
                return unit.replay.to_response()
            paid = await service.pay_by_qr(
                unit.session,
                caller,
                payload=data.payload,
                amount=data.amount,
                pin=data.pin,
                settings=settings,
            )
            stored = unit.record(201, paid.view)
        if paid is not None:
            await _publish(request, paid.merchant_id, paid.event)
        return stored.to_response()

    @get(
        "/me/merchant-payments/{payment_id:uuid}",
        operation_id="getMerchantPayment",
        summary="One QR payment",
        guards=[rate_limit("default")],
        opt={"errors": [PAYMENT_NOT_FOUND]},
    )
    async def get_payment(
        self,
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        payment_id: Annotated[uuid.UUID, PathParameter(description="The payment's id.")],
    ) -> PaymentOut:
        """A QR payment of the signed-in payer, with what was refunded. Anyone else gets 404."""
        async with db.read() as session:
            return await service.get_payment_for(session, caller, payment_id)


class AdminMerchantController(Controller):
    """Admins: review merchants."""

    path = "/api/v1/admin/merchants"
    tags = ["merchants", "admin"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]
    guards = [require_roles("admin"), require_duty("support"), rate_limit("default")]

    @get("/", operation_id="listMerchantsForReview", summary="Merchants by state", opt={"errors": []})
    async def list_merchants(
        self,
        db: NamedDependency[Database],
        status: Annotated[
            Literal["pending", "approved", "rejected", "suspended"],
            QueryParameter(description="Which state to list."),
        ] = "pending",
        limit: Annotated[int, QueryParameter(ge=1, le=200, description="At most this many.")] = 50,
    ) -> list[MerchantOut]:
        """Merchants in one state (default: waiting for review), oldest first."""
        async with db.read() as session:
            rows = await service.list_merchants_by_status(session, status, limit=limit)
            return [await service.merchant_out(session, m) for m in rows]

    @post(
        "/{merchant_id:uuid}/decision",
        operation_id="decideMerchant",
        summary="Approve, reject, suspend or reinstate",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS, MERCHANT_NOT_FOUND, MERCHANT_STATE]},
    )
    async def decide(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[DecisionIn],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        merchant_id: MerchantId,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[MerchantOut]:
        """`approve` or `reject` a pending merchant, `suspend` an approved one (it stops taking payments),
        `reinstate` a suspended one. Rejecting and suspending need a reason. Audited."""
        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=data,
            status_code=200,
            effect=lambda session: service.decide(
                session, caller, merchant_id, data.action, data.reason, data.mdr_bps
            ),
        )


class MerchantStaffController(Controller):
    """A merchant's own staff (owner and cashiers): its data only."""

    path = "/api/v1/merchants/{merchant_id:uuid}"
    tags = ["merchants"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]
    guards = [rate_limit("default")]

    @get("/", operation_id="getMerchant", summary="A merchant", opt={"errors": [MERCHANT_NOT_FOUND]})
    async def get_merchant(
        self, caller: NamedDependency[Caller], db: NamedDependency[Database], merchant_id: MerchantId
    ) -> MerchantOut:
        """The merchant with its stores: for its owner, its staff and support admins (404 for anyone else)."""
        async with db.read() as session:
            return await service.merchant_out(session, await _visible_merchant(session, caller, merchant_id))

    @post(
        "/stores",
        operation_id="addMerchantStore",
        summary="Add a store",
        status_code=201,
        opt={"errors": [*IDEMPOTENCY_ERRORS, MERCHANT_NOT_FOUND, FORBIDDEN]},
    )
    async def add_store(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[StoreIn],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        merchant_id: MerchantId,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[StoreOut]:
        """The owner adds an acceptance point (each has its own static QR)."""

        async def effect(session: AsyncSession) -> StoreOut:
            merchant = await _staff_merchant(session, caller, merchant_id, owner_only=True)
            return await service.add_store(session, merchant, data)

        return await idempotent_response(
            request, db, scope=scope_of(caller), key=idempotency_key, data=data, effect=effect
        )

    @get(
        "/stores/{store_id:uuid}/qr",
        operation_id="getStoreQr",
        summary="A store's static QR",
        opt={"errors": [MERCHANT_NOT_FOUND, STORE_NOT_FOUND]},
    )
    async def store_qr(
        self,
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        merchant_id: MerchantId,
        store_id: Annotated[uuid.UUID, PathParameter(description="The store's id.")],
    ) -> StoreQr:
        """The store's static VietQR (no amount: the payer types it) as a payload and image links."""
        async with db.read() as session:
            merchant, store = await self._store(session, caller, merchant_id, store_id)
        base = f"/api/v1/merchants/{merchant_id}/stores/{store_id}/qr"
        return StoreQr(
            payload=service.store_qr_payload(merchant, store, settings),
            png_url=f"{base}/png",
            svg_url=f"{base}/svg",
        )

    @get(
        "/stores/{store_id:uuid}/qr/{fmt:str}",
        operation_id="getStoreQrImage",
        summary="A store's static QR as PNG or SVG",
        media_type="image/png",
        opt={"errors": [MERCHANT_NOT_FOUND, STORE_NOT_FOUND]},
    )
    async def store_qr_image(
        self,
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        merchant_id: MerchantId,
        store_id: Annotated[uuid.UUID, PathParameter(description="The store's id.")],
        fmt: Annotated[str, PathParameter(description="`png` or `svg`.", pattern=r"^(png|svg)$")],
    ) -> Response[bytes]:
        """The store's static QR as an image to print (PNG or SVG)."""
        async with db.read() as session:
            merchant, store = await self._store(session, caller, merchant_id, store_id)
        return _image(service.store_qr_payload(merchant, store, settings), fmt, f"qr-{store.code}")

    @staticmethod
    async def _store(
        session: AsyncSession, caller: Caller, merchant_id: uuid.UUID, store_id: uuid.UUID
    ) -> tuple[Merchant, MerchantStore]:
        merchant = await _visible_merchant(session, caller, merchant_id)
        store = await session.get(MerchantStore, store_id)
        if store is None or store.merchant_id != merchant.id:
            raise STORE_NOT_FOUND()
        return merchant, store

    @get("/staff", operation_id="listMerchantStaff", summary="Staff", opt={"errors": [MERCHANT_NOT_FOUND]})
    async def list_staff(
        self, caller: NamedDependency[Caller], db: NamedDependency[Database], merchant_id: MerchantId
    ) -> list[StaffOut]:
        """The owner and cashiers of the merchant."""
        async with db.read() as session:
            merchant = await _staff_merchant(session, caller, merchant_id)
            return await service.list_staff(session, merchant.id)

    @post(
        "/staff",
        operation_id="addMerchantCashier",
        summary="Add a cashier",
        status_code=201,
        opt={"errors": [*IDEMPOTENCY_ERRORS, MERCHANT_NOT_FOUND, FORBIDDEN, VALIDATION_FAILED]},
    )
    async def add_cashier(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[CashierIn],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        merchant_id: MerchantId,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[StaffOut]:
        """The owner makes a Hue-S user (by phone) a cashier: they see this merchant's payments and QR
        codes, create orders and refund. A person serves one merchant at a time."""

        async def effect(session: AsyncSession) -> StaffOut:
            merchant = await _staff_merchant(session, caller, merchant_id, owner_only=True)
            return await service.add_cashier(session, caller, merchant, data.phone)

        return await idempotent_response(
            request, db, scope=scope_of(caller), key=idempotency_key, data=data, effect=effect
        )

    @delete(
        "/staff/{user_id:uuid}",
        operation_id="removeMerchantCashier",
        summary="Remove a cashier",
        opt={"errors": [*IDEMPOTENCY_ERRORS, MERCHANT_NOT_FOUND, FORBIDDEN, NOT_FOUND]},
    )
    async def remove_cashier(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        merchant_id: MerchantId,
        user_id: Annotated[uuid.UUID, PathParameter(description="The cashier's user id.")],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[None]:
        """The owner removes a cashier (their sessions end)."""

        async def effect(session: AsyncSession) -> None:
            merchant = await _staff_merchant(session, caller, merchant_id, owner_only=True)
            if not await service.remove_cashier(session, merchant, user_id):
                raise NOT_FOUND()

        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=None,
            effect=effect,
            status_code=204,
        )

    @post(
        "/orders",
        operation_id="createMerchantOrder",
        summary="Create an order (dynamic QR)",
        status_code=201,
        opt={"errors": [*IDEMPOTENCY_ERRORS, MERCHANT_NOT_FOUND, MERCHANT_NOT_ACCEPTING, STORE_NOT_FOUND]},
    )
    async def create_order(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[OrderIn],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        merchant_id: MerchantId,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[OrderOut]:
        """A cashier asks for an amount: a dynamic QR (amount, reference in field 62-05) that can be paid
        once, until it expires."""

        async def effect(session: AsyncSession) -> OrderOut:
            merchant = await _staff_merchant(session, caller, merchant_id)
            return await service.create_order(
                session,
                merchant,
                amount=data.amount,
                store_id=data.store_id,
                description=data.description,
                external_ref=data.external_ref,
                settings=settings,
            )

        return await idempotent_response(
            request, db, scope=scope_of(caller), key=idempotency_key, data=data, effect=effect
        )

    @get(
        "/orders/{order_id:uuid}",
        operation_id="getMerchantOrder",
        summary="An order",
        opt={"errors": [MERCHANT_NOT_FOUND, ORDER_NOT_FOUND]},
    )
    async def get_order(
        self,
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        merchant_id: MerchantId,
        order_id: Annotated[uuid.UUID, PathParameter(description="The order's id.")],
    ) -> OrderOut:
        """An order's state (open, paid, expired) and its QR."""
        async with db.read() as session:
            merchant = await _staff_merchant(session, caller, merchant_id)
            return (await service.get_order(session, merchant, order_id, settings))[1]

    @get(
        "/orders/{order_id:uuid}/qr/{fmt:str}",
        operation_id="getMerchantOrderQrImage",
        summary="An order's dynamic QR as PNG or SVG",
        media_type="image/png",
        opt={"errors": [MERCHANT_NOT_FOUND, ORDER_NOT_FOUND]},
    )
    async def order_qr_image(
        self,
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        merchant_id: MerchantId,
        order_id: Annotated[uuid.UUID, PathParameter(description="The order's id.")],
        fmt: Annotated[str, PathParameter(description="`png` or `svg`.", pattern=r"^(png|svg)$")],
    ) -> Response[bytes]:
        """The order's dynamic QR as an image to show on the counter's screen."""
        async with db.read() as session:
            merchant = await _staff_merchant(session, caller, merchant_id)
            order, view = await service.get_order(session, merchant, order_id, settings)
        return _image(view.qr_payload, fmt, f"qr-{order.reference}")

    @get(
        "/payments",
        operation_id="listMerchantPayments",
        summary="Payments received",
        opt={"errors": [MERCHANT_NOT_FOUND, VALIDATION_FAILED]},
    )
    async def list_payments(
        self,
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        merchant_id: MerchantId,
        limit: Annotated[int, QueryParameter(ge=1, le=200, description="Page size.")] = 50,
        cursor: Annotated[
            str | None, QueryParameter(max_length=64, description="From `next_cursor`.")
        ] = None,
    ) -> PaymentPage:
        """The merchant's payments, newest first, payer names masked. Staff of this merchant only."""
        async with db.read() as session:
            merchant = await _staff_merchant(session, caller, merchant_id)
            items, next_cursor = await service.list_payments(session, merchant, limit=limit, cursor=cursor)
        return PaymentPage(items=items, next_cursor=next_cursor)

    @post(
        "/payments/{payment_id:uuid}/refunds",
        operation_id="refundMerchantPayment",
        summary="Refund a payment",
        status_code=201,
        opt={"errors": [*IDEMPOTENCY_ERRORS, MERCHANT_NOT_FOUND, PAYMENT_NOT_FOUND, REFUND_EXCEEDS_PAID]},
    )
    async def refund(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[RefundIn],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        merchant_id: MerchantId,
        payment_id: Annotated[uuid.UUID, PathParameter(description="The payment's id.")],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[RefundOut]:
        """Give all (no `amount`) or part of a payment back to the payer's wallet. Several partial refunds
        may follow up to the amount paid; more is `refund_exceeds_paid`. The fee is given back pro rata."""

        async def effect(session: AsyncSession) -> RefundOut:
            merchant = await _staff_merchant(session, caller, merchant_id)
            return await service.refund_for_merchant(
                session,
                merchant,
                payment_id,
                data.amount,
                authority=f"user:{caller.user_id}",
                reason=data.reason,
            )

        return await idempotent_response(
            request, db, scope=scope_of(caller), key=idempotency_key, data=data, effect=effect
        )

    @get(
        "/stream",
        operation_id="streamMerchantPayments",
        summary="Payments in real time (SSE)",
        media_type="text/event-stream",
        opt={"errors": [MERCHANT_NOT_FOUND, SERVICE_UNAVAILABLE]},
        response_description="Server-sent events: ready, payment.succeeded, refund.succeeded.",
    )
    async def stream(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        merchant_id: MerchantId,
    ) -> ServerSentEvent:
        """Server-sent events for the merchant's staff: `ready` once listening, then `payment.succeeded`
        (data = the webhook event) as payments land, and a `: ping` comment every 15 s. Ends when the access
        token would expire; reconnect and read `GET .../payments` for anything missed meanwhile."""
        async with db.read() as session:
            merchant = await _staff_merchant(session, caller, merchant_id)
        pubsub = pubsub_of(request.app)
        if pubsub is None:
            raise SERVICE_UNAVAILABLE("Thời gian thực tạm thời không khả dụng", "Real time is unavailable")
        return ServerSentEvent(
            _merchant_events(pubsub, merchant.id, float(settings.access_token_ttl_seconds))
        )

    @post(
        "/webhook",
        operation_id="setMerchantWebhook",
        summary="Set the webhook endpoint",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS, MERCHANT_NOT_FOUND, FORBIDDEN]},
    )
    async def set_webhook(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[WebhookIn],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        merchant_id: MerchantId,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[WebhookSecretOut]:
        """The owner sets where signed webhooks go; the answer carries the signing secret (`whsec_...`).
        Each POST has `Hue-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` and
        `Hue-Event-Id` (deduplicate on it); non-2xx answers are retried with backoff."""

        async def effect(session: AsyncSession) -> WebhookSecretOut:
            merchant = await _staff_merchant(session, caller, merchant_id, owner_only=True)
            kid = settings.webhook_keys.active_kid
            merchant.webhook_url = data.url
            merchant.webhook_key_id = kid
            await session.flush()
            secret = webhooks.signing_secret(settings.webhook_keys, kid, merchant.id)
            return WebhookSecretOut(url=data.url, secret=secret)

        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=data,
            effect=effect,
            status_code=200,
        )

    @get(
        "/webhook-events",
        operation_id="listMerchantWebhookEvents",
        summary="Webhook delivery log",
        opt={"errors": [MERCHANT_NOT_FOUND]},
    )
    async def webhook_events(
        self,
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        merchant_id: MerchantId,
        limit: Annotated[int, QueryParameter(ge=1, le=200, description="At most this many.")] = 50,
    ) -> list[WebhookEventOut]:
        """Recent events with their delivery state (attempts, last HTTP status, error), newest first."""
        async with db.read() as session:
            merchant = await _staff_merchant(session, caller, merchant_id)
            rows = await session.scalars(
                select(MerchantWebhookEvent)
                .where(MerchantWebhookEvent.merchant_id == merchant.id)
                .order_by(MerchantWebhookEvent.id.desc())
                .limit(limit)
            )
            return [_event_view(e) for e in rows]

    @post(
        "/webhook-events/{event_id:uuid}/resend",
        operation_id="resendMerchantWebhook",
        summary="Resend a webhook",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS, MERCHANT_NOT_FOUND, NOT_FOUND]},
    )
    async def resend(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        merchant_id: MerchantId,
        event_id: Annotated[uuid.UUID, PathParameter(description="The event's id.")],
        idempotency_key: IdempotencyKey = None,
    ) -> WebhookEventOut:
        """Queue the event for delivery again (same id and body, a fresh signature)."""
        if not idempotency_key:
            from app.core.idempotency import IDEMPOTENCY_KEY_REQUIRED

            raise IDEMPOTENCY_KEY_REQUIRED()
        async with db.read() as session:
            await _staff_merchant(session, caller, merchant_id)
        event = await webhooks.resend(db, merchant_id, event_id)
        if event is None:
            raise NOT_FOUND()
        return _event_view(event)

    @post(
        "/api-keys",
        operation_id="createMerchantApiKey",
        summary="Create a server API key",
        status_code=201,
        opt={"errors": [*IDEMPOTENCY_ERRORS, MERCHANT_NOT_FOUND, FORBIDDEN]},
    )
    async def create_key(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[ApiKeyIn],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        merchant_id: MerchantId,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ApiKeyCreated]:
        """The owner creates a key for the merchant's server (scopes `orders`, `payments:read`,
        `refunds`). The secret is in this answer only; we keep its hash."""

        async def effect(session: AsyncSession) -> ApiKeyCreated:
            merchant = await _staff_merchant(session, caller, merchant_id, owner_only=True)
            key, secret = await service.create_api_key(
                session, caller, merchant, data.name, list(data.scopes)
            )
            return ApiKeyCreated(**msgspec.structs.asdict(key), secret=secret)

        return await idempotent_response(
            request, db, scope=scope_of(caller), key=idempotency_key, data=data, effect=effect
        )

    @get(
        "/api-keys",
        operation_id="listMerchantApiKeys",
        summary="Server API keys",
        opt={"errors": [MERCHANT_NOT_FOUND]},
    )
    async def list_keys(
        self, caller: NamedDependency[Caller], db: NamedDependency[Database], merchant_id: MerchantId
    ) -> list[ApiKeyOut]:
        """The merchant's keys (never their secrets)."""
        async with db.read() as session:
            merchant = await _staff_merchant(session, caller, merchant_id, owner_only=True)
            rows = await session.scalars(
                select(MerchantApiKey)
                .where(MerchantApiKey.merchant_id == merchant.id)
                .order_by(MerchantApiKey.id)
            )
            return [service.api_key_view(k) for k in rows]

    @delete(
        "/api-keys/{key_id:uuid}",
        operation_id="revokeMerchantApiKey",
        summary="Revoke a server API key",
        opt={"errors": [*IDEMPOTENCY_ERRORS, MERCHANT_NOT_FOUND, NOT_FOUND]},
    )
    async def revoke_key(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        merchant_id: MerchantId,
        key_id: Annotated[uuid.UUID, PathParameter(description="The key's id.")],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[None]:
        """The key stops working at once."""

        async def effect(session: AsyncSession) -> None:
            merchant = await _staff_merchant(session, caller, merchant_id, owner_only=True)
            key = await session.get(MerchantApiKey, key_id)
            if key is None or key.merchant_id != merchant.id:
                raise NOT_FOUND()
            key.revoked_at = key.revoked_at or utcnow()

        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=None,
            effect=effect,
            status_code=204,
        )

    @get(
        "/settlements",
        operation_id="listMerchantPayouts",
        summary="Daily settlements",
        opt={"errors": [MERCHANT_NOT_FOUND]},
    )
    async def payouts(
        self, caller: NamedDependency[Caller], db: NamedDependency[Database], merchant_id: MerchantId
    ) -> list[PayoutOut]:
        """The merchant's daily payouts to its bank account, newest first."""
        async with db.read() as session:
            merchant = await _visible_merchant(session, caller, merchant_id)
            rows = await session.scalars(
                select(MerchantPayout)
                .where(MerchantPayout.merchant_id == merchant.id)
                .order_by(MerchantPayout.day.desc())
                .limit(90)
            )
            return [
                PayoutOut(
                    id=p.id,
                    day=p.day,
                    amount=p.amount,
                    status=p.status,
                    reference=p.reference,
                    bank_reference=p.bank_reference,
                )
                for p in rows
            ]

    @get(
        "/settlements/{day:date}/report",
        operation_id="getMerchantSettlementReport",
        summary="A day's settlement report (CSV)",
        media_type="text/csv",
        opt={"errors": [MERCHANT_NOT_FOUND]},
    )
    async def report(
        self,
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        merchant_id: MerchantId,
        day: Annotated[date, PathParameter(description="Business day (Asia/Ho_Chi_Minh), YYYY-MM-DD.")],
    ) -> Response[bytes]:
        """Opening balance, every payment (gross, fee, net), refund and payout of the day on the merchant's
        account, and the closing balance (= what that day's settlement pays)."""
        async with db.read() as session:
            merchant = await _visible_merchant(session, caller, merchant_id)
        text = await settlement.settlement_csv(db, merchant, day)
        return Response(
            text.encode(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="quyet-toan-{day.isoformat()}.csv"'},
        )


def _event_view(event: MerchantWebhookEvent) -> WebhookEventOut:
    return WebhookEventOut(
        id=event.id,
        type=event.type,
        status=event.status,
        attempts=event.attempts,
        last_status_code=event.last_status_code,
        last_error=event.last_error,
        delivered_at=event.delivered_at,
        resends=event.resends,
        created_at=event.created_at,
    )


def _image(payload: str, fmt: str, name: str) -> Response[bytes]:
    if fmt == "svg":
        return Response(
            vietqr.svg(payload),
            media_type="image/svg+xml",
            headers={"Content-Disposition": f'inline; filename="{name}.svg"'},
        )
    return Response(
        vietqr.png(payload),
        media_type="image/png",
        headers={"Content-Disposition": f'inline; filename="{name}.png"'},
    )


async def _merchant_events(
    pubsub: Any, merchant_id: uuid.UUID, lifetime: float, heartbeat: float = 15.0
) -> AsyncIterator[ServerSentEventMessage]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + lifetime
    async with pubsub.subscribe(channel_for(merchant_id)) as messages:
        yield ServerSentEventMessage(event="ready", data="{}")
        iterator = messages.__aiter__()
        while (left := deadline - loop.time()) > 0:
            try:
                message = await asyncio.wait_for(iterator.__anext__(), timeout=min(heartbeat, left))
            except TimeoutError:
                yield ServerSentEventMessage(comment="ping")
                continue
            except StopAsyncIteration:
                return
            event = msgspec.json.decode(message)
            yield ServerSentEventMessage(
                event=str(event.get("type", "message")), data=message.decode(), id=str(event.get("id", ""))
            )


# --- the merchant server API (API keys) --------------------------------------------------------------------

ApiKeyHeader = Annotated[
    str | None,
    HeaderParameter(
        name="X-Api-Key",
        required=True,
        max_length=200,
        description="A merchant server API key (`mk_...`), created by the owner in the merchant app.",
    ),
]


async def _key(session: AsyncSession, secret: str | None, scope: str) -> tuple[Merchant, MerchantApiKey]:
    key = await service.find_api_key(session, secret or "")
    if key is None:
        raise API_KEY_INVALID()
    if scope not in key.scopes:
        raise FORBIDDEN("Khóa API không có quyền này", f"This API key lacks the {scope!r} scope")
    merchant = await session.get(Merchant, key.merchant_id)
    if merchant is None:
        raise API_KEY_INVALID()
    key.last_used_at = utcnow()
    return merchant, key


class MerchantServerApiController(Controller):
    """The merchant's own server, with an API key: orders with dynamic QR, payments, refunds."""

    path = "/api/v1/merchant-api"
    tags = ["merchant-api"]
    guards = [rate_limit("default")]

    @post(
        "/orders",
        operation_id="serverCreateOrder",
        summary="Create an order (dynamic QR)",
        status_code=201,
        opt={
            "errors": [
                *IDEMPOTENCY_ERRORS,
                API_KEY_INVALID,
                FORBIDDEN,
                MERCHANT_NOT_ACCEPTING,
                STORE_NOT_FOUND,
            ]
        },
    )
    async def create_order(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[OrderIn],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        api_key: ApiKeyHeader = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[OrderOut]:
        """Create an order and its dynamic QR (scope `orders`). Use `external_ref` for your order number;
        the `payment.succeeded` webhook carries it back."""
        async with db.read() as session:
            merchant, key = await _key(session, api_key, "orders")

        async def effect(session: AsyncSession) -> OrderOut:
            fresh = await service.get_merchant(session, merchant.id)
            return await service.create_order(
                session,
                fresh,
                amount=data.amount,
                store_id=data.store_id,
                description=data.description,
                external_ref=data.external_ref,
                settings=settings,
            )

        return await idempotent_response(
            request, db, scope=f"api_key:{key.id}", key=idempotency_key, data=data, effect=effect
        )

    @get(
        "/orders/{order_id:uuid}",
        operation_id="serverGetOrder",
        summary="An order's status",
        opt={"errors": [API_KEY_INVALID, FORBIDDEN, ORDER_NOT_FOUND]},
    )
    async def get_order(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        order_id: Annotated[uuid.UUID, PathParameter(description="The order's id.")],
        api_key: ApiKeyHeader = None,
    ) -> OrderOut:
        """Whether the order is open, paid or expired (scope `orders`)."""
        async with db.transaction() as session:
            merchant, _key_row = await _key(session, api_key, "orders")
            return (await service.get_order(session, merchant, order_id, settings))[1]

    @get(
        "/payments",
        operation_id="serverListPayments",
        summary="Payments received",
        opt={"errors": [API_KEY_INVALID, FORBIDDEN, VALIDATION_FAILED]},
    )
    async def list_payments(
        self,
        db: NamedDependency[Database],
        api_key: ApiKeyHeader = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200, description="Page size.")] = 50,
        cursor: Annotated[
            str | None, QueryParameter(max_length=64, description="From `next_cursor`.")
        ] = None,
    ) -> PaymentPage:
        """Payments newest first (scope `payments:read`)."""
        async with db.transaction() as session:
            merchant, _key_row = await _key(session, api_key, "payments:read")
            items, next_cursor = await service.list_payments(session, merchant, limit=limit, cursor=cursor)
        return PaymentPage(items=items, next_cursor=next_cursor)

    @post(
        "/payments/{payment_id:uuid}/refunds",
        operation_id="serverRefundPayment",
        summary="Refund a payment",
        status_code=201,
        opt={
            "errors": [
                *IDEMPOTENCY_ERRORS,
                API_KEY_INVALID,
                FORBIDDEN,
                PAYMENT_NOT_FOUND,
                REFUND_EXCEEDS_PAID,
            ]
        },
    )
    async def refund(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[RefundIn],
        db: NamedDependency[Database],
        payment_id: Annotated[uuid.UUID, PathParameter(description="The payment's id.")],
        api_key: ApiKeyHeader = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[RefundOut]:
        """Refund all or part of a payment to the payer's wallet (scope `refunds`)."""
        async with db.read() as session:
            merchant, key = await _key(session, api_key, "refunds")

        async def effect(session: AsyncSession) -> RefundOut:
            return await service.refund_for_merchant(
                session, merchant, payment_id, data.amount, authority=f"api_key:{key.id}", reason=data.reason
            )

        return await idempotent_response(
            request, db, scope=f"api_key:{key.id}", key=idempotency_key, data=data, effect=effect
        )


merchant_routes = [
    QrPaymentController,
    AdminMerchantController,
    MerchantStaffController,
    MerchantServerApiController,
]
