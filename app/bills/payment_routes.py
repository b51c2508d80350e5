"""HTTP routes of one-tap bill payment and e-receipts."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter

from app.bills import pay_pg, payments
from app.bills.errors import (
    AMOUNT_NOT_ALLOWED,
    BILL_ALREADY_PAID,
    BILL_NOT_FOUND,
    BILL_NOT_PAYABLE,
    PAYMENT_NOT_FOUND,
    RECEIPT_NOT_FOUND,
)
from app.bills.payment_schemas import PaymentIn, PaymentView, ReceiptVerification, ReceiptView
from app.core.db import Database
from app.core.deps import AUTHENTICATED
from app.core.errors import AppError
from app.core.idempotency import IDEMPOTENCY_ERRORS, IdempotencyKey, idempotent, request_fingerprint, scope_of
from app.core.ratelimit import rate_limit
from app.core.security import Caller, require_roles
from app.core.settings import Settings
from app.identity.errors import PIN_INVALID, PIN_LOCKED, PIN_NOT_SET
from app.wallet.errors import (
    FUNDING_SOURCE_REQUIRED,
    IDENTITY_LEVEL_REQUIRED,
    INSUFFICIENT_FUNDS,
    LIMIT_EXCEEDED,
    WALLET_NOT_FOUND,
)

__all__ = ["BillPaymentController", "MyReceiptsController", "ReceiptVerifyController", "payment_routes"]

PAYMENT_ERRORS = [
    *IDEMPOTENCY_ERRORS,
    BILL_NOT_FOUND,
    BILL_ALREADY_PAID,
    BILL_NOT_PAYABLE,
    AMOUNT_NOT_ALLOWED,
    IDENTITY_LEVEL_REQUIRED,
    WALLET_NOT_FOUND,
    LIMIT_EXCEEDED,
    INSUFFICIENT_FUNDS,
    FUNDING_SOURCE_REQUIRED,
    PIN_INVALID,
    PIN_LOCKED,
    PIN_NOT_SET,
]


class BillPaymentController(Controller):
    """Paying bills from the wallet, and the payer's payments."""

    path = "/api/v1"
    tags = ["bills"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]
    guards = [require_roles("citizen")]

    @post(
        "/payments",
        operation_id="payBills",
        summary="Pay bills in one tap",
        status_code=201,
        guards=[rate_limit("payments")],
        opt={"errors": PAYMENT_ERRORS},
    )
    async def pay(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[PaymentIn],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[PaymentView]:
        """Pay one or more bills (of one or several billers) from the wallet with the payment PIN: one debit
        of the wallet, every bill paid, an e-receipt per bill. All or nothing: if any bill cannot be paid
        (already paid, withdrawn, expired, someone else's dossier fee, amount refused by the biller's rule)
        nothing is paid and the error's ``bill_id`` names that bill. Needs identity level 2 and an
        ``Idempotency-Key``: a retry with the same key answers the first result and never pays twice. Each
        biller is then told in the background; a biller that refuses (e.g. the bill was paid at a counter
        meanwhile) is refunded to the wallet automatically, with an inbox notification."""
        items = [payments.PayItem(item.bill_id, item.amount) for item in data.items]
        fingerprint = request_fingerprint(request.method, request.url.path, data, query=request.url.query)
        try:
            if not db.is_sqlite:
                done = await pay_pg.pay(
                    db,
                    pay_pg.PaymentRequest(
                        caller=caller,
                        key=idempotency_key,
                        scope=scope_of(caller),
                        fingerprint=fingerprint,
                        items=items,
                        pin=data.pin,
                        receipt_keys=settings.receipt_keys,
                    ),
                )
                if done is not None:
                    return done.to_response()
            async with idempotent(
                db, scope=scope_of(caller), key=idempotency_key, fingerprint=fingerprint
            ) as unit:
                if unit.replay is not None:
                    return unit.replay.to_response()
                view = await payments.pay_bills(
                    unit.session, caller=caller, items=items, pin=data.pin, receipt_keys=settings.receipt_keys
                )
                stored = unit.record(201, view)
        except AppError as error:
            if error.kind not in IDEMPOTENCY_ERRORS:
                await payments.record_failure(db, payer_id=caller.user_id, items=items, error=error)
            raise
        return stored.to_response()

    @get(
        "/me/payments/{payment_id:uuid}",
        operation_id="getBillPayment",
        summary="One of my bill payments",
        guards=[rate_limit("default")],
        opt={"errors": [PAYMENT_NOT_FOUND]},
    )
    async def get_payment(
        self,
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        payment_id: Annotated[uuid.UUID, PathParameter(description="The payment's id.")],
    ) -> PaymentView:
        """A payment with each bill's state (``paid``, ``confirmed`` by the biller, or ``refunded``) and its
        receipt. Only the payer sees it."""
        async with db.read() as session:
            view = await payments.get_payment(session, caller.user_id, payment_id)
        if view is None:
            raise PAYMENT_NOT_FOUND()
        return view


class MyReceiptsController(Controller):
    """The payer's e-receipts."""

    path = "/api/v1/me/receipts"
    tags = ["bills"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]
    guards = [require_roles("citizen"), rate_limit("default")]

    @get(
        "/{receipt_id:uuid}",
        operation_id="getReceipt",
        summary="One of my e-receipts",
        opt={"errors": [RECEIPT_NOT_FOUND]},
    )
    async def get_receipt(
        self,
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        receipt_id: Annotated[uuid.UUID, PathParameter(description="The receipt's id.")],
    ) -> ReceiptView:
        """The e-receipt of one paid bill: number, series, issuer, payer, amount in figures and words, time,
        and the issuer's Ed25519 signature with its public key. Only the payer sees it."""
        async with db.read() as session:
            view = await payments.get_receipt(session, caller.user_id, receipt_id, settings.receipt_keys)
        if view is None:
            raise RECEIPT_NOT_FOUND()
        return view

    @get(
        "/{receipt_id:uuid}/pdf",
        operation_id="getReceiptPdf",
        summary="One of my e-receipts as a PDF",
        media_type="application/pdf",
        opt={"errors": [RECEIPT_NOT_FOUND]},
    )
    async def get_receipt_pdf(
        self,
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        receipt_id: Annotated[uuid.UUID, PathParameter(description="The receipt's id.")],
    ) -> Response[bytes]:
        """The e-receipt as an A5 PDF (Vietnamese text, the signature and the look-up code printed). Only the
        payer gets it."""
        async with db.read() as session:
            found = await payments.receipt_pdf(session, caller.user_id, receipt_id)
        if found is None:
            raise RECEIPT_NOT_FOUND()
        name, pdf = found
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{name}"'},
        )


class ReceiptVerifyController(Controller):
    """Public check of an e-receipt (no sign-in): whoever holds it can verify it."""

    path = "/api/v1/receipts"
    tags = ["bills"]
    guards = [rate_limit("default")]

    @get(
        "/{code:str}/verify",
        operation_id="verifyReceipt",
        summary="Check an e-receipt",
        opt={"errors": [RECEIPT_NOT_FOUND]},
    )
    async def verify(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        code: Annotated[
            str,
            PathParameter(description="Series and number as printed, e.g. `C26THU-00000042`.", max_length=40),
        ],
        check: Annotated[
            str,
            QueryParameter(
                description="The look-up code printed on the receipt (mã tra cứu).", max_length=64
            ),
        ],
    ) -> ReceiptVerification:
        """Whether the receipt with this code and look-up code exists and its issuer's signature checks out,
        with its issuer, amount, time, state and the public key. A wrong look-up code is 404, so receipts
        cannot be listed by guessing numbers."""
        async with db.read() as session:
            result = await payments.verify_receipt(session, code, check, settings.receipt_keys)
        if result is None:
            raise RECEIPT_NOT_FOUND()
        return result


payment_routes = [BillPaymentController, MyReceiptsController, ReceiptVerifyController]
