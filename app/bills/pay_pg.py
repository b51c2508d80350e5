"""One-tap payment of bills on PostgreSQL, driven through asyncpg: the rules of
:func:`app.bills.payments.pay_bills`, without the ORM.

Why a second path: through SQLAlchemy's session a one-tap payment cost ~12-16 ms of server CPU for 14
statements (the async layer and the unit of work, not the database, were the cost; DESIGN.md). Here it is
six round trips of prepared statements on a driver connection (:meth:`app.core.db.Database.driver`), as the
transfer does (``app/wallet/transfer_pg.py``):

1. ``BEGIN``;
2. one read: the idempotency claim (``idempotency_claim``), then, only for a fresh claim, the bills
   ``FOR UPDATE`` in id order (the ORM path's lock order, so the two paths queue on the same rows and never
   deadlock) with their billers, and the payer's facts (:func:`app.wallet.payer_pg.payer_sql`) and whether
   the payer has push devices;
3. ``wallet_pay`` through :func:`app.wallet.payer_pg.pay_on_driver`: every wallet rule, one journal entry
   debiting the wallet and crediting each biller's payable;
4. the bills marked paid, the payment row, and the receipt numbers (taken after the money moved, as the ORM
   path takes them: a refused payment burns no number);
5. the items, the signed receipts, one outbox message per biller, the notification and the idempotency row;
6. ``COMMIT``; then the notification is streamed and this process's outbox dispatchers are woken.

Every decision is taken by the functions :func:`~app.bills.payments.pay_bills` uses, in its order (claim,
duplicate bill, each bill in the order asked, then the wallet's rules), and the answer is encoded as the ORM
path encodes it, so a replay is byte-identical whichever path stored it.

Not here, on purpose: a payment with a bill that has an owner (a public-service bill: a dossier's fee, a
result's postage). Its ``BillsPaid`` event moves the dossier or the delivery on in the payment's transaction,
and those subscribers are ORM code; :func:`pay` rolls back and answers None, and the route pays it with
:func:`~app.bills.payments.pay_bills`. Payments with no owned bill publish no ``BillsPaid``: its subscribers
(``app/services/dossiers.py``, ``app/services/postal.py``) ignore such bills.

Payable accounts: their ledger key derives from the biller's ``payable_account_ref`` through a UUIDv5 that
SQL cannot compute, so they are not part of the context read; their ids are remembered per process once a
payment that read them committed, and a payment meeting an unknown one reads it (creating it if new, as
:func:`app.wallet.ledger.ensure_account` would) with two more statements.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from app.bills import receipts
from app.bills.payment_schemas import PaymentView
from app.bills.payments import (
    CONFIRM_TOPIC,
    PayItem,
    checked_amounts,
    confirm_messages,
    item_view,
    limit_terms,
    new_reference,
    paid_notice,
    payable_key,
    payable_owner,
    receipt_content,
    wanted_bills,
)
from app.core.db import Database, new_id, note_raw_call, utcnow
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
from app.core.settings import KeyRing
from app.identity.inbox import deliver_committed
from app.identity.inbox_schemas import CommittedNotification
from app.wallet.ledger.base import ACCOUNT_SPECS
from app.wallet.payer_pg import PAYER_COLUMN_COUNT, pay_on_driver, payer_of, payer_sql
from app.wallet.service import wallet_key

__all__ = ["PaymentRequest", "pay"]

_PAYER = payer_sql(payer=4, wallet_key=5, session=6)
_BILL_COLUMNS = 18
_CONTEXT = f"""
WITH claim AS MATERIALIZED (
    SELECT claimed, fingerprint, status_code, body FROM idempotency_claim($1, $2, $3)
), locked AS MATERIALIZED (
    SELECT b.id, b.status, b.amount, b.owner_user_id, b.external_id, b.customer_code, b.customer_name,
           b.period, b.description,
           r.id AS biller_id, r.code, r.name, r.category, r.amount_rule, r.active, r.limit_exempt,
           r.agency_code, r.payable_account_ref
      FROM bills b JOIN billers r ON r.id = b.biller_id
     WHERE b.id = ANY($7::uuid[])
       AND (SELECT k.claimed AND k.fingerprint IS NULL FROM claim k)
     ORDER BY b.id
       FOR UPDATE OF b
)
SELECT c.claimed, c.fingerprint, c.status_code, c.body,
       EXISTS (SELECT 1 FROM inbox_push_devices d WHERE d.user_id = $4),
       {_PAYER.columns},
       l.*
  FROM claim c{_PAYER.joins}
  LEFT JOIN locked l ON true
"""  # noqa: S608 - only placeholder numbers are formatted in, never data
_PAYER_AT = 5
_BILLS_AT = _PAYER_AT + PAYER_COLUMN_COUNT

_CREATE_ACCOUNTS = """
INSERT INTO ledger_accounts
       (id, created_at, key, type, owner_id, currency, normal_side, allow_negative, balance, held)
SELECT t.id, $2, t.key, t.type, t.owner_id, 'VND', t.normal_side, t.allow_negative, 0, 0
  FROM unnest($1::uuid[], $3::text[], $4::text[], $5::uuid[], $6::text[], $7::boolean[])
       AS t(id, key, type, owner_id, normal_side, allow_negative)
ON CONFLICT (key) DO NOTHING
"""
_ACCOUNTS = "SELECT key, id FROM ledger_accounts WHERE key = ANY($1::text[])"

_SETTLE = f"""
WITH settled AS (
    UPDATE bills SET status = 'paid', paid_at = $1, updated_at = $1 WHERE id = ANY($2::uuid[])
), payment AS (
    INSERT INTO bill_payments (id, created_at, payer_id, reference, total, entry_id, paid_at, mandate_id)
    VALUES ($3, $1, $4, $5, $6, $7, $1, NULL)
)
{receipts.NUMBERS_SQL.format(count="$8::int")}
"""  # noqa: S608 - only a placeholder is formatted in, never data

_RECORD = """
WITH items AS (
    INSERT INTO bill_payment_items
           (id, created_at, payment_id, bill_id, biller_id, amount, payable_account_id, status)
    SELECT t.id, $1, $2, t.bill_id, t.biller_id, t.amount, t.account, 'paid'
      FROM unnest($3::uuid[], $4::uuid[], $5::uuid[], $6::bigint[], $7::uuid[])
           AS t(id, bill_id, biller_id, amount, account)
), issued AS (
    INSERT INTO bill_receipts
           (id, created_at, item_id, payer_id, series, number, content, key_id, signature, status)
    SELECT t.id, $1, t.item_id, $8, $9, t.number, t.content::jsonb, t.key_id, t.signature, 'valid'
      FROM unnest($10::uuid[], $3::uuid[], $11::bigint[], $12::text[], $13::text[], $14::text[])
           AS t(id, item_id, number, content, key_id, signature)
), messages AS (
    INSERT INTO outbox_messages (id, created_at, topic, key, payload, status, available_at, attempts,
                                 round_attempts, requeue_count)
    SELECT t.id, t.created_at, t.topic, t.key, t.payload::jsonb, t.status, t.available_at, t.attempts,
           t.round_attempts, t.requeue_count
      FROM unnest($15::uuid[], $16::timestamptz[], $17::text[], $18::text[], $19::text[], $20::text[],
                  $21::timestamptz[], $22::int[], $23::int[], $24::int[])
           AS t(id, created_at, topic, key, payload, status, available_at, attempts, round_attempts,
                requeue_count)
    ON CONFLICT (topic, key) DO NOTHING
), notice AS (
    INSERT INTO inbox_notifications
           (id, created_at, user_id, kind, title_vi, body_vi, title_en, body_en, data)
    VALUES ($25, $26, $8, $27, $28, $29, $30, $31, $32::json)
)
INSERT INTO idempotency_keys (scope, key, fingerprint, status_code, body, created_at)
VALUES ($33, $34, $35, $36, $37, $26)
"""

_payables: weakref.WeakKeyDictionary[Database, dict[str, uuid.UUID]] = weakref.WeakKeyDictionary()
"""Payable account ids by ledger key, per database: read once (an account's id never changes)."""


class _OrmPathError(Exception):
    """This payment belongs to the ORM path (see the module docstring); raised to roll back."""


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """A validated one-tap request (``PaymentIn``) with its caller, key and fingerprint."""

    caller: Caller
    key: str | None
    scope: str
    fingerprint: bytes
    items: Sequence[PayItem]
    pin: str
    receipt_keys: KeyRing


@dataclass(frozen=True, slots=True)
class _Bill:
    """A locked bill as the context read gives it (an :class:`app.bills.payments.BillFacts`)."""

    id: uuid.UUID
    status: str
    amount: int
    owner_user_id: uuid.UUID | None
    external_id: str
    customer_code: str
    customer_name: str | None
    period: str
    description: str | None


@dataclass(frozen=True, slots=True)
class _Biller:
    """A locked bill's biller (an :class:`app.bills.payments.BillerFacts`)."""

    id: uuid.UUID
    code: str
    name: str
    category: str
    amount_rule: str
    active: bool
    limit_exempt: bool
    agency_code: str | None
    payable_account_ref: str


@dataclass(frozen=True, slots=True)
class _Done:
    stored: StoredResponse
    notice: CommittedNotification | None = None
    pushes: bool = False
    accounts: dict[str, uuid.UUID] = field(default_factory=dict)
    """Payable accounts read (maybe created) by this payment: remembered once it committed."""


async def pay(db: Database, request: PaymentRequest) -> StoredResponse | None:
    """Pay the bills once per key and answer as the ORM route would: the stored answer for a replay,
    409/422 for a key in use or reused, the first refusal, else 201 with a ``PaymentView``. None: the
    payment is the ORM path's (nothing was written; the key is free again)."""
    key = checked_key(request.scope, request.key)
    with key_in_flight(db, request.scope, key):
        try:
            async with db.driver() as connection, connection.transaction():
                done = await _pay(db, connection, request, key)
        except _OrmPathError:
            return None
    _payables.setdefault(db, {}).update(done.accounts)
    if done.notice is not None:
        wake_dispatchers()
        delivering = deliver_committed(db, done.notice, push=done.pushes)
        if delivering is not None:
            await delivering
    return done.stored


async def _pay(db: Database, connection: Any, request: PaymentRequest, key: str) -> _Done:
    payer_id = request.caller.user_id
    asked = list(dict.fromkeys(item.bill_id for item in request.items))
    note_raw_call()
    rows = await connection.fetch(
        _CONTEXT,
        request.scope,
        key,
        lock_id(request.scope, key),
        payer_id,
        wallet_key(payer_id),
        request.caller.session_id,
        asked,
    )
    first = rows[0]
    replay = claimed_replay(request.fingerprint, first[0], (first[1], first[2], first[3]))
    if replay is not None:
        return _Done(replay)
    wanted = wanted_bills(request.items)
    found = {
        bill.id: (bill, biller)
        for bill, biller in (_bill_of(row) for row in rows if row[_BILLS_AT] is not None)
    }
    if any(bill.owner_user_id is not None for bill, _biller in found.values()):
        raise _OrmPathError
    amounts = checked_amounts(wanted, found, payer_id)
    ordered = [found[bill_id] for bill_id in wanted]
    payable, learned = await _payable_accounts(
        connection, _payables.setdefault(db, {}), {biller.payable_account_ref for _b, biller in ordered}
    )
    payer = payer_of(first, _PAYER_AT)
    category, limit_exempt = limit_terms(biller for _bill, biller in ordered)
    payment_id = new_id()
    reference = new_reference()
    total = sum(amounts.values())
    posted = await pay_on_driver(
        db,
        connection,
        payer,
        pin=request.pin,
        category=category,
        limit_exempt=limit_exempt,
        credits=[(payable[biller.payable_account_ref], amounts[bill.id]) for bill, biller in ordered],
        kind="bill_payment",
        reference=reference,
        description=f"Thanh toán {len(ordered)} hóa đơn",
        metadata={"payment_id": str(payment_id), "bills": [str(bill.id) for bill, _ in ordered]},
    )
    paid_at: datetime = posted.created_at
    note_raw_call()
    settled = await connection.fetch(
        _SETTLE, paid_at, list(wanted), payment_id, payer_id, reference, total, posted.entry_id, len(ordered)
    )
    numbers = sorted(int(row[0]) for row in settled)
    series = receipts.series_for(paid_at)
    item_ids = [new_id() for _ in ordered]
    receipt_ids = [new_id() for _ in ordered]
    contents: list[str] = []
    signatures: list[tuple[str, str]] = []
    for (bill, biller), number, receipt_id in zip(ordered, numbers, receipt_ids, strict=True):
        content = receipt_content(
            series=series,
            number=number,
            receipt_id=receipt_id,
            bill=bill,
            biller=biller,
            payer_id=payer_id,
            payer_name=payer.name,
            amount=amounts[bill.id],
            paid_at=paid_at,
            reference=reference,
        )
        signatures.append(receipts.sign(request.receipt_keys, content))
        contents.append(msgspec.json.encode(content).decode())
    view = PaymentView(
        id=payment_id,
        reference=reference,
        total=total,
        paid_at=paid_at,
        items=[
            item_view(bill, biller, amount=amounts[bill.id], receipt_id=receipt_id)
            for (bill, biller), receipt_id in zip(ordered, receipt_ids, strict=True)
        ],
    )
    body = encode_body(201, view)
    messages = keyed_rows(CONFIRM_TOPIC, confirm_messages(payment_id, (biller.id for _b, biller in ordered)))
    text = paid_notice(payment_id, len(ordered), total, reference)
    notice = CommittedNotification(
        id=new_id(),
        created_at=utcnow(),
        user_id=payer_id,
        kind=text.kind,
        title_vi=text.title_vi,
        body_vi=text.body_vi,
        title_en=text.title_en,
        body_en=text.body_en,
        data=text.data,
        read_at=None,
    )
    note_raw_call()
    await connection.execute(
        _RECORD,
        paid_at,
        payment_id,
        item_ids,
        [bill.id for bill, _ in ordered],
        [biller.id for _, biller in ordered],
        [amounts[bill.id] for bill, _ in ordered],
        [payable[biller.payable_account_ref] for _, biller in ordered],
        payer_id,
        series,
        receipt_ids,
        numbers,
        contents,
        [key_id for key_id, _ in signatures],
        [signature for _, signature in signatures],
        *column_arrays(messages),
        notice.id,
        notice.created_at,
        notice.kind,
        notice.title_vi,
        notice.body_vi,
        notice.title_en,
        notice.body_en,
        msgspec.json.encode(notice.data).decode(),
        request.scope,
        key,
        request.fingerprint,
        201,
        body,
    )
    accounts = {payable_key(ref): account for ref, account in payable.items()} if learned else {}
    return _Done(StoredResponse(201, body), notice, bool(first[4]), accounts)


def _bill_of(row: Sequence[Any]) -> tuple[_Bill, _Biller]:
    columns = row[_BILLS_AT : _BILLS_AT + _BILL_COLUMNS]
    bill = _Bill(*columns[:9])
    return bill, _Biller(*columns[9:])


async def _payable_accounts(
    connection: Any, known: dict[str, uuid.UUID], refs: set[str]
) -> tuple[dict[str, uuid.UUID], bool]:
    """The payable account of each ref (:func:`app.bills.payments.payable_account` on the driver), and
    whether any was read rather than remembered (the caller remembers them once committed). Known ones cost
    nothing; the others are created if new, in the order of their refs (concurrent first payments then
    wait for each other rather than deadlock), and read."""
    keys = {ref: payable_key(ref) for ref in refs}
    missing = sorted(ref for ref, key in keys.items() if key not in known)
    if not missing:
        return {ref: known[key] for ref, key in keys.items()}, False
    owners = [payable_owner(ref) for ref in missing]
    specs = [ACCOUNT_SPECS[account_type] for account_type, _owner in owners]
    note_raw_call()
    await connection.execute(
        _CREATE_ACCOUNTS,
        [new_id() for _ in missing],
        utcnow(),
        [keys[ref] for ref in missing],
        [account_type.value for account_type, _owner in owners],
        [owner for _type, owner in owners],
        [spec.normal_side for spec in specs],
        [spec.allow_negative for spec in specs],
    )
    note_raw_call()
    read = dict(await connection.fetch(_ACCOUNTS, [keys[ref] for ref in missing]))
    return {ref: known.get(key) or read[key] for ref, key in keys.items()}, True
