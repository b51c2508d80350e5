"""Paying a merchant by QR on PostgreSQL, driven through asyncpg: the rules of
:func:`app.merchants.service.pay_by_qr`, without the ORM, in two round trips.

Why a second path: through SQLAlchemy's session a QR payment cost ~9 ms of server CPU for a dozen
statements, the same ceiling the wallet transfer had (``app/wallet/transfer_pg.py``). Here, on a driver
connection (:meth:`app.core.db.Database.driver`), outside any transaction:

1. one read: the answer already stored under the Idempotency-Key (if any), the merchant by its account
   number, the dynamic QR's order, the static QR's store by code, and the payer's facts (:func:`payer_sql`);
2. Python decides, with the functions the ORM path uses and in its order: the QR's text (CRC, format,
   acquirer BIN; a bad QR is answered after a stored answer, as the ORM path reads it inside the claimed
   transaction), the merchant, the order, the store, the amount, then the wallet's rules (PIN included);
3. one call of ``merchant_pay`` (migration ``0018_money_calls``), its own transaction: the key's advisory
   lock and a second look for a stored answer, the order locked and still open, the usage and the posting
   with its limits and balance (a refusal raises and rolls everything back), the payment, the order marked
   paid, the webhook event, its outbox message when the merchant has an endpoint
   (:func:`app.core.outbox.keyed_rows`, the row ``enqueue`` writes, woken after the call) and the
   idempotency row.

So both paths give the same answers, byte for byte on a replay; the HTTP tests run them on SQLite (ORM)
and PostgreSQL (this one).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from app.core.db import Database, new_id, note_raw_call
from app.core.errors import AppError
from app.core.idempotency import (
    StoredResponse,
    checked_key,
    claimed_replay,
    encode_body,
    key_in_flight,
    lock_id,
)
from app.core.outbox import column_arrays, keyed_rows, wake_dispatchers
from app.core.security import Caller
from app.core.settings import Settings
from app.merchants import vietqr
from app.merchants.errors import ORDER_NOT_PAYABLE, QR_UNKNOWN_MERCHANT, STORE_NOT_FOUND
from app.merchants.models import MerchantPayment
from app.merchants.service import (
    PAY_CATEGORY,
    WEBHOOK_TOPIC,
    charged_amount,
    check_order,
    event_data,
    new_payment_reference,
    new_webhook_event,
    payment_view,
    qr_charge,
    read_qr,
    require_accepting,
    require_dynamic_fields,
    webhook_message_key,
)
from app.wallet.payer_pg import (
    POSTED_AT,
    authorize_on_driver,
    call_money_function,
    call_replay,
    capped_pay_args,
    payer_of,
    payer_sql,
)
from app.wallet.service import wallet_key

__all__ = ["QrPaid", "QrPayRequest", "pay"]

_PAYER = payer_sql(payer=3, wallet_key=7, session=8)
_PAYER_START = 19
_CONTEXT = f"""
SELECT k.fingerprint, k.status_code, k.body,
       m.id, m.name, m.status, m.mdr_bps, m.payable_account_id, m.webhook_url,
       o.id, o.merchant_id, o.amount, o.status, o.expires_at, o.store_id, o.reference, o.external_ref,
       s.id, s.active,
       {_PAYER.columns}
  FROM (SELECT 1) AS one
  LEFT JOIN idempotency_keys k ON k.scope = $1 AND k.key = $2
  LEFT JOIN merchants m ON m.account_number = $4
  LEFT JOIN merchant_orders o ON o.reference = $5
  LEFT JOIN merchant_stores s ON s.merchant_id = m.id AND s.code = $6{_PAYER.joins}
"""  # noqa: S608 - only placeholder numbers are formatted in, never data

_PAY = (
    "SELECT outcome, posted_at, status_code, fingerprint, body, event FROM merchant_pay("
    "$1, $2, $3, $4, $5, $6::text[], $7::bigint[], $8, $9, $10, $11, $12, $13, $14::uuid[], $15::bigint[],"
    " $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26,"
    " $27::uuid[], $28::timestamptz[], $29::text[], $30::text[], $31::text[], $32::text[],"
    " $33::timestamptz[], $34::int[], $35::int[], $36::int[], $37)"
)
_ORDER_TAKEN = "HU003"


@dataclass(frozen=True, slots=True)
class QrPayRequest:
    """A validated QR payment request (``QrPayIn``) with its caller, key and fingerprint."""

    caller: Caller
    key: str | None
    scope: str
    fingerprint: bytes
    payload: str
    amount: int | None
    pin: str
    settings: Settings


@dataclass(frozen=True, slots=True)
class QrPaid:
    """The answer, and for a payment made now (not a replay) what the merchant's cashiers are shown."""

    stored: StoredResponse
    merchant_id: uuid.UUID | None = None
    event: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class _Order:
    id: uuid.UUID
    merchant_id: uuid.UUID
    amount: int
    status: str
    expires_at: datetime
    store_id: uuid.UUID | None
    reference: str
    external_ref: str | None


@dataclass(frozen=True, slots=True)
class _Payee:
    id: uuid.UUID
    name: str


async def pay(db: Database, request: QrPayRequest) -> QrPaid:
    """Pay once per key and answer as the ORM route does: the stored answer for a replay, 409/422 for a key
    in use or reused, else 201 with a ``PaymentOut``."""
    key = checked_key(request.scope, request.key)
    with key_in_flight(db, request.scope, key):
        async with db.driver() as connection:
            paid, enqueued = await _pay(db, connection, request, key)
    if enqueued:
        wake_dispatchers()
    return paid


def _read_qr(payload: str, settings: Settings) -> vietqr.VietQr | AppError:
    """The QR, or the refusal to raise once the key is claimed (a replay or a key reused for another
    request answers first, as on the ORM path)."""
    try:
        return read_qr(payload, settings)
    except AppError as error:
        return error


async def _pay(db: Database, connection: Any, request: QrPayRequest, key: str) -> tuple[QrPaid, bool]:
    payer = request.caller.user_id
    qr = _read_qr(request.payload, request.settings)
    scanned = qr if isinstance(qr, vietqr.VietQr) else None
    note_raw_call()
    row = await connection.fetchrow(
        _CONTEXT,
        request.scope,
        key,
        payer,
        scanned.account if scanned is not None else None,
        scanned.reference if scanned is not None and scanned.dynamic else None,
        scanned.store if scanned is not None else None,
        wallet_key(payer),
        request.caller.session_id,
    )
    replay = claimed_replay(request.fingerprint, True, (row[0], row[1], row[2]))
    if replay is not None:
        return QrPaid(replay), False
    if isinstance(qr, AppError):
        raise qr
    merchant_id, merchant_name, merchant_status, mdr_bps, payable, webhook_url = row[3:9]
    if merchant_id is None:
        raise QR_UNKNOWN_MERCHANT()
    require_accepting(merchant_status)
    order = None
    if qr.dynamic:
        require_dynamic_fields(qr)
        order = None if row[9] is None else _Order(*row[9:17])
        check_order(order, merchant_id, qr)
    store_id: uuid.UUID | None = None
    if order is not None and order.store_id is not None:
        store_id = order.store_id
    elif qr.store:
        if row[17] is None or not row[18]:
            raise STORE_NOT_FOUND()
        store_id = row[17]
    amount = charged_amount(order.amount if order is not None else None, request.amount)
    payment_id = new_id()
    reference = new_payment_reference()
    charge = qr_charge(
        payment_id=payment_id,
        merchant_id=merchant_id,
        merchant_name=merchant_name,
        payable_account_id=payable,
        mdr_bps=mdr_bps,
        amount=amount,
    )
    found = payer_of(row, _PAYER_START)
    authorized = await authorize_on_driver(
        db,
        connection,
        found,
        pin=request.pin,
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
        created_at=POSTED_AT,
        merchant_id=merchant_id,
        store_id=store_id,
        order_id=order.id if order is not None else None,
        payer_id=payer,
        reference=reference,
        amount=amount,
        fee=charge.fee,
        refunded=0,
        status="paid",
        entry_id=authorized.entry.entry_id,
        paid_at=POSTED_AT,
    )
    view = payment_view(
        payment,
        _Payee(merchant_id, merchant_name),
        order_reference=order.reference if order is not None else None,
    )
    event = new_webhook_event(
        "payment.succeeded", event_data(view, order.external_ref if order is not None else None)
    )
    messages = (
        keyed_rows(WEBHOOK_TOPIC, [({"event_id": str(event.id)}, webhook_message_key(event.id))])
        if webhook_url
        else []
    )
    outcome, _posted_at, status_code, fingerprint, body, event_text = await call_money_function(
        connection,
        _PAY,
        [
            request.scope,
            key,
            lock_id(request.scope, key),
            request.fingerprint,
            *capped_pay_args(found, authorized),
            payment_id,
            merchant_id,
            store_id,
            payment.order_id,
            amount,
            charge.fee,
            event.id,
            event.created_at,
            "payment.succeeded",
            msgspec.json.encode(event.body).decode(),
            "pending" if webhook_url else "no_endpoint",
            *column_arrays(messages),
            encode_body(201, view).decode(),
        ],
        authorized,
        refusals={_ORDER_TAKEN: lambda status: ORDER_NOT_PAYABLE(status=status)},
    )
    if outcome != "ok":
        return QrPaid(call_replay(request.fingerprint, outcome, (fingerprint, status_code, body))), False
    stored = StoredResponse(201, bytes(body))
    return QrPaid(stored, merchant_id, msgspec.json.decode(event_text)), bool(messages)
