"""Paying a merchant by QR on PostgreSQL, driven through asyncpg: the rules of
:func:`app.merchants.service.pay_by_qr`, without the ORM.

Why a second path: through SQLAlchemy's session a QR payment cost ~9 ms of server CPU for a dozen
statements, the same ceiling the wallet transfer had (``app/wallet/transfer_pg.py``). Here it is five round
trips of prepared statements on a driver connection (:meth:`app.core.db.Database.driver`):

1. ``BEGIN``;
2. one read: the idempotency claim (``idempotency_claim``), the merchant by its account number, the dynamic
   QR's order locked ``FOR UPDATE`` (only once the key is claimed and the merchant approved, as the ORM path
   locks it only then), the static QR's store by code, and the payer's facts (:func:`payer_sql`);
3. ``wallet_pay`` through :func:`app.wallet.payer_pg.pay_on_driver`: the usage upsert and the posting;
4. one statement writing the rest: the payment, the order marked paid, the webhook event, its outbox
   message when the merchant has an endpoint (:func:`app.core.outbox.keyed_rows`, the row ``enqueue``
   writes, woken after the commit) and the idempotency row;
5. ``COMMIT``.

Every decision is taken in Python by the functions the ORM path uses, in its order: the QR's text (CRC,
format, acquirer BIN; a bad QR is still answered after the key's claim, as the ORM path reads it inside
the claimed transaction), the merchant, the order, the store, the amount, then the wallet's rules. So both
paths give the same answers, byte for byte on a replay; the HTTP tests run them on SQLite (ORM) and
PostgreSQL (this one).
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
from app.core.outbox import keyed_rows, wake_dispatchers
from app.core.security import Caller
from app.core.settings import Settings
from app.merchants import vietqr
from app.merchants.errors import QR_UNKNOWN_MERCHANT, STORE_NOT_FOUND
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
from app.wallet.payer_pg import pay_on_driver, payer_of, payer_sql
from app.wallet.service import wallet_key

__all__ = ["QrPaid", "QrPayRequest", "pay"]

_PAYER = payer_sql(payer=4, wallet_key=8, session=9)
_PAYER_START = 20
_CONTEXT = f"""
SELECT c.claimed, c.fingerprint, c.status_code, c.body,
       m.id, m.name, m.status, m.mdr_bps, m.payable_account_id, m.webhook_url,
       o.id, o.merchant_id, o.amount, o.status, o.expires_at, o.store_id, o.reference, o.external_ref,
       s.id, s.active,
       {_PAYER.columns}
  FROM idempotency_claim($1, $2, $3) AS c
  LEFT JOIN merchants m ON m.account_number = $5
  LEFT JOIN LATERAL (
        SELECT o.id, o.merchant_id, o.amount, o.status, o.expires_at, o.store_id, o.reference, o.external_ref
          FROM merchant_orders o
         WHERE o.reference = $6 AND c.claimed AND c.fingerprint IS NULL AND m.status = 'approved'
           FOR UPDATE
  ) AS o ON true
  LEFT JOIN merchant_stores s ON s.merchant_id = m.id AND s.code = $7{_PAYER.joins}
"""  # noqa: S608 - only placeholder numbers are formatted in, never data

_RECORD_AND_KEEP = """
WITH payment AS (
    INSERT INTO merchant_payments
           (id, created_at, merchant_id, store_id, order_id, payer_id, reference, amount, fee, refunded,
            status, entry_id, paid_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, 'paid', $10, $2)
), paid_order AS (
    UPDATE merchant_orders SET status = 'paid', payment_id = $1, paid_at = $2 WHERE id = $5
), event AS (
    INSERT INTO merchant_webhook_events
           (id, created_at, merchant_id, type, payload, status, attempts, resends)
    VALUES ($11, $12, $3, $13, $14::jsonb, $15, 0, 0)
), message AS (
    INSERT INTO outbox_messages
           (id, created_at, topic, key, payload, status, available_at, attempts, round_attempts,
            requeue_count)
    SELECT t.id, t.created_at, t.topic, t.key, t.payload::jsonb, t.status, t.available_at, t.attempts,
           t.round_attempts, t.requeue_count
      FROM unnest($16::uuid[], $17::timestamptz[], $18::text[], $19::text[], $20::text[], $21::text[],
                  $22::timestamptz[], $23::int[], $24::int[], $25::int[])
           AS t(id, created_at, topic, key, payload, status, available_at, attempts, round_attempts,
                requeue_count)
    ON CONFLICT (topic, key) DO NOTHING
)
INSERT INTO idempotency_keys (scope, key, fingerprint, status_code, body, created_at)
VALUES ($26, $27, $28, 201, $29, $12)
"""


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
        async with db.driver() as connection, connection.transaction():
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
        lock_id(request.scope, key),
        payer,
        scanned.account if scanned is not None else None,
        scanned.reference if scanned is not None and scanned.dynamic else None,
        scanned.store if scanned is not None else None,
        wallet_key(payer),
        request.caller.session_id,
    )
    replay = claimed_replay(request.fingerprint, row[0], (row[1], row[2], row[3]))
    if replay is not None:
        return QrPaid(replay), False
    if isinstance(qr, AppError):
        raise qr
    merchant_id, merchant_name, merchant_status, mdr_bps, payable, webhook_url = row[4:10]
    if merchant_id is None:
        raise QR_UNKNOWN_MERCHANT()
    require_accepting(merchant_status)
    order = None
    if qr.dynamic:
        require_dynamic_fields(qr)
        order = None if row[10] is None else _Order(*row[10:18])
        check_order(order, merchant_id, qr)
    store_id: uuid.UUID | None = None
    if order is not None and order.store_id is not None:
        store_id = order.store_id
    elif qr.store:
        if row[18] is None or not row[19]:
            raise STORE_NOT_FOUND()
        store_id = row[18]
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
    posted = await pay_on_driver(
        db,
        connection,
        payer_of(row, _PAYER_START),
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
        created_at=posted.created_at,
        merchant_id=merchant_id,
        store_id=store_id,
        order_id=order.id if order is not None else None,
        payer_id=payer,
        reference=reference,
        amount=amount,
        fee=charge.fee,
        refunded=0,
        status="paid",
        entry_id=posted.entry_id,
        paid_at=posted.created_at,
    )
    view = payment_view(
        payment,
        _Payee(merchant_id, merchant_name),
        order_reference=order.reference if order is not None else None,
    )
    event = new_webhook_event(
        "payment.succeeded", event_data(view, order.external_ref if order is not None else None)
    )
    body = encode_body(201, view)
    messages = (
        keyed_rows(WEBHOOK_TOPIC, [({"event_id": str(event.id)}, webhook_message_key(event.id))])
        if webhook_url
        else []
    )
    note_raw_call()
    await connection.execute(
        _RECORD_AND_KEEP,
        payment_id,
        posted.created_at,
        merchant_id,
        store_id,
        payment.order_id,
        payer,
        reference,
        amount,
        charge.fee,
        posted.entry_id,
        event.id,
        event.created_at,
        "payment.succeeded",
        msgspec.json.encode(event.body).decode(),
        "pending" if webhook_url else "no_endpoint",
        *_columns(messages),
        request.scope,
        key,
        request.fingerprint,
        body,
    )
    return QrPaid(StoredResponse(201, body), merchant_id, event.body), bool(messages)


_MESSAGE_COLUMNS = (
    "id",
    "created_at",
    "topic",
    "key",
    "payload",
    "status",
    "available_at",
    "attempts",
    "round_attempts",
    "requeue_count",
)


def _columns(rows: list[dict[str, Any]]) -> list[list[Any]]:
    """``rows`` as one array per column, for ``unnest``; the JSON payload as text."""
    return [
        [msgspec.json.encode(row[name]).decode() if name == "payload" else row[name] for row in rows]
        for name in _MESSAGE_COLUMNS
    ]
