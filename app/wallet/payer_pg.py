"""Paying from a wallet on PostgreSQL's driver (asyncpg), for the money paths that skip the ORM.

The rules are :func:`app.wallet.service.pay_from_wallet`'s, taken by the same functions in the same order
(identity level, wallet, linked funding source, per-payment limit, PIN, usage limits, funds); only the
reading and writing differ: the payer's facts come as columns of the path's own first query
(:func:`payer_sql`, joined to whatever else that path reads, e.g. the idempotency claim and the payee),
and the usage upsert and the posting are one ``wallet_pay`` call (migration ``0015_money_functions``).
A path using it: ``app/wallet/transfer_pg.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from asyncpg.exceptions import PostgresError

from app.core.db import Database, new_id, note_raw_call, utcnow
from app.core.idempotency import StoredResponse, claimed_replay
from app.identity.pin import PinRecord, check_payment_pin
from app.identity.runtime import runtime_of
from app.wallet import limits
from app.wallet.errors import LedgerError
from app.wallet.funding import funding_source_required
from app.wallet.ledger import credit, debit, refusal_error
from app.wallet.ledger.base import Entry, Posted, Refusal, validate_entry
from app.wallet.ledger.postgres import WALLET_PAY
from app.wallet.service import required_level, wallet_not_found

__all__ = [
    "PAYER_COLUMN_COUNT",
    "POSTED_AT",
    "Authorized",
    "Payer",
    "PayerSql",
    "authorize_on_driver",
    "call_money_function",
    "call_replay",
    "capped_pay_args",
    "capped_refusal",
    "pay_on_driver",
    "payer_of",
    "payer_sql",
]

PAYER_COLUMN_COUNT = 9
_REHASH_PIN = "UPDATE payment_pins SET pin_hash = $2, key_id = $3 WHERE user_id = $1"


@dataclass(frozen=True, slots=True)
class PayerSql:
    """The payer's facts in a path's first query: :attr:`columns` (:data:`PAYER_COLUMN_COUNT` select-list
    expressions, read back with :func:`payer_of`) and :attr:`joins` (to append to its FROM clause)."""

    columns: str
    joins: str


def payer_sql(*, payer: int, wallet_key: int, session: int) -> PayerSql:
    """:class:`PayerSql` for a query whose parameters ``$payer`` (user id), ``$wallet_key``
    (:func:`app.wallet.service.wallet_key`) and ``$session`` (the sign-in session, for the new-device
    limit) are those numbers."""
    p, k, s = f"${payer}", f"${wallet_key}", f"${session}"
    columns = f"""
       CASE WHEN pu.status = 'active' THEN pu.identity_level ELSE 0 END, pu.full_name,
       pin.pin_hash, pin.salt, pin.key_id,
       EXISTS (SELECT 1 FROM wallet_funding_sources f WHERE f.user_id = {p} AND f.status = 'active'),
       (SELECT a.id FROM ledger_accounts a WHERE a.key = {k}),
       (SELECT d.first_seen_at FROM auth_sessions s JOIN devices d ON d.id = s.device_id WHERE s.id = {s}),
       {p}::uuid"""  # noqa: S608 - only placeholder numbers are formatted in, never data
    joins = f"""
  LEFT JOIN users pu ON pu.id = {p}
  LEFT JOIN payment_pins pin ON pin.user_id = {p}"""
    return PayerSql(columns, joins)


@dataclass(frozen=True, slots=True)
class Payer:
    """What a payment needs to know of its payer, read with the path's first query."""

    user_id: uuid.UUID
    level: int
    """0 unless the account is active."""
    name: str | None
    pin: PinRecord | None
    funded: bool
    wallet: uuid.UUID | None
    device_first_seen: datetime | None


def payer_of(row: Sequence[Any], start: int) -> Payer:
    """The :class:`PayerSql` columns of ``row`` beginning at column ``start``."""
    columns = row[start : start + PAYER_COLUMN_COUNT]
    level, name, pin_hash, salt, key_id, funded, wallet, seen, user_id = columns
    pin = None if pin_hash is None else PinRecord(bytes(pin_hash), bytes(salt), key_id)
    return Payer(user_id, int(level or 0), name, pin, bool(funded), wallet, seen)


@dataclass(frozen=True, slots=True)
class Authorized:
    """A payment its payer may make, once its usage limits and the balance allow it (checked as it posts)."""

    entry: Entry
    amount: int
    plan: limits.PaymentCount
    device_new: bool
    """Whether the payer's device was first seen within the new-device window."""


async def authorize_on_driver(
    db: Database,
    connection: Any,
    payer: Payer,
    *,
    pin: str,
    category: str,
    limit_exempt: bool,
    credits: Sequence[tuple[uuid.UUID, int]],
    kind: str,
    reference: str,
    description: str,
    metadata: Mapping[str, Any],
) -> Authorized:
    """The rules of :func:`app.wallet.service.pay_from_wallet` up to the posting, in their order: raise the
    first refusal (level, wallet, funding source, per-payment limit, PIN), else the entry to post and the
    usage to count with it."""
    amount = sum(value for _, value in credits)
    level = required_level(payer.level)
    if payer.wallet is None:
        raise wallet_not_found()
    if not payer.funded:
        raise funding_source_required()
    table = await limits.table_of(db)
    limits.check_amount(table, level=level, category=category, amount=amount)
    runtime = runtime_of(db)
    rehashed = await check_payment_pin(runtime, db, payer.user_id, pin, payer.pin)
    if rehashed is not None:
        note_raw_call()
        await connection.execute(_REHASH_PIN, payer.user_id, rehashed, runtime.settings.pin_keys.active_kid)
    seen = payer.device_first_seen
    device_new = seen is None or (utcnow() - seen).total_seconds() < runtime.policy.new_device_seconds

    async def device_is_new() -> bool:
        return device_new

    plan = limits.plan_payment(
        table,
        level=level,
        category=category,
        amount=amount,
        limit_exempt=limit_exempt,
        now=utcnow(),
        device_is_new=device_is_new,
    )
    entry = Entry(
        kind=kind,
        postings=[debit(payer.wallet, amount), *(credit(account, value) for account, value in credits)],
        reference=reference,
        description=description,
        metadata={**metadata, "category": category, "payer_id": str(payer.user_id)},
        entry_id=new_id(),
    )
    validate_entry(entry)
    return Authorized(entry, amount, plan, device_new)


async def pay_on_driver(
    db: Database,
    connection: Any,
    payer: Payer,
    *,
    pin: str,
    category: str,
    limit_exempt: bool,
    credits: Sequence[tuple[uuid.UUID, int]],
    kind: str,
    reference: str,
    description: str,
    metadata: Mapping[str, Any],
) -> Posted:
    """:func:`app.wallet.service.pay_from_wallet` (PIN given) in ``connection``'s open transaction:
    raise the first refusal, or post one entry debiting the payer's wallet and crediting ``credits``.
    Usage and entry are written by one call; a refusal after it leaves them to the caller's rollback."""
    authorized = await authorize_on_driver(
        db,
        connection,
        payer,
        pin=pin,
        category=category,
        limit_exempt=limit_exempt,
        credits=credits,
        kind=kind,
        reference=reference,
        description=description,
        metadata=metadata,
    )
    entry, plan, amount = authorized.entry, authorized.plan, authorized.amount
    assert entry.entry_id is not None
    buckets = sorted(plan.buckets)
    note_raw_call()
    outcome, account_id, available, posted_at, totals = await connection.fetchrow(
        WALLET_PAY,
        payer.user_id,
        buckets,
        amount,
        entry.entry_id,
        entry.kind,
        entry.reference,
        entry.description,
        msgspec.json.encode(entry.metadata).decode(),
        [p.account_id for p in entry.postings],
        [p.amount for p in entry.postings],
    )
    await plan.check(dict(zip(buckets, (int(t) for t in totals), strict=True)))
    if outcome != "ok":
        raise refusal_error(Refusal(outcome, account_id, available))
    return Posted(entry.entry_id, posted_at, account_id, available)


POSTED_AT = datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
"""A stand-in for the posting's time, in JSON that a one-call money function completes (``json_at``,
migration ``0018_money_calls``): only the call knows when it posted. msgspec writes it as
``"0001-01-01T00:00:00.000001Z"``; a string value could only hold that text with its quotes escaped, so
nothing else is replaced (but a value that is exactly that text, which no real one is)."""

_LIMIT, _FUNDS = "HU001", "HU002"


def capped_pay_args(payer: Payer, authorized: Authorized) -> list[Any]:
    """The ``wallet_pay_capped`` part of a one-call money function's arguments (``p_user_id`` to
    ``p_amounts`` but ``p_kind``): the buckets to count in, the caps that apply to them (Python decides
    which, :meth:`app.wallet.limits.PaymentCount.caps`), the entry."""
    entry, plan = authorized.entry, authorized.plan
    buckets = sorted(plan.buckets)
    ceilings, amount_cap = plan.caps(authorized.device_new)
    return [
        payer.user_id,
        buckets,
        [ceilings.get(bucket) for bucket in buckets],
        amount_cap,
        authorized.amount,
        entry.entry_id,
        entry.reference,
        entry.description,
        msgspec.json.encode(entry.metadata).decode(),
        [p.account_id for p in entry.postings],
        [p.amount for p in entry.postings],
    ]


async def capped_refusal(exc: Exception, authorized: Authorized) -> Exception | None:
    """The refusal a one-call money function raised (``wallet_pay_capped``), named as the ORM path names
    it: the limit from the totals (the same check), or the balance; None for any other error."""
    sqlstate = getattr(exc, "sqlstate", None)
    detail = getattr(exc, "detail", None) or ""
    if sqlstate == _LIMIT:
        buckets = sorted(authorized.plan.buckets)
        await authorized.plan.check(dict(zip(buckets, (int(t) for t in detail.split(",")), strict=True)))
        return LedgerError("the call refused a limit that the limits check accepts")
    if sqlstate == _FUNDS:
        reason = str(getattr(exc, "message", "insufficient_funds"))
        return refusal_error(Refusal(reason, None, int(detail) if detail else None))
    return None


async def call_money_function(
    connection: Any,
    sql: str,
    args: Sequence[Any],
    authorized: Authorized,
    *,
    refusals: Mapping[str, Callable[[str], Exception]] | None = None,
) -> Any:
    """Run a one-call money function (``wallet_transfer``, ``merchant_pay``) and return its row; its
    refusals are raised as the ORM path raises them: the capped posting's (:func:`capped_refusal`) and the
    path's own, by SQLSTATE (``refusals``, given the error's DETAIL)."""
    note_raw_call()
    try:
        return await connection.fetchrow(sql, *args)
    except PostgresError as exc:
        own = (refusals or {}).get(exc.sqlstate)
        if own is not None:
            raise own(getattr(exc, "detail", None) or "") from exc
        refusal = await capped_refusal(exc, authorized)
        if refusal is None:
            raise
        raise refusal from exc


def call_replay(fingerprint: bytes, outcome: str, stored: tuple[Any, Any, Any]) -> StoredResponse:
    """The answer of a call that did not pay (``outcome`` in_progress: 409, replay: the stored answer, or
    422 for another request under the key); ``stored`` = (fingerprint, status_code, body) it returned."""
    replay = claimed_replay(fingerprint, outcome == "replay", stored)
    assert replay is not None
    return replay
