"""Payment limits: a table keyed by identity level and payment category, and usage counted as money moves.

The table (``wallet_limits``, seeded by migration ``0009_wallet``) holds, per identity level and category,
the most one payment, one day and one month may move (Asia/Ho_Chi_Minh days and months). Three rows per
level are not categories:

- ``*``: the limits of a category with no row of its own;
- ``_monthly_cap``: the provider-wide cap on payments and transfers per customer per month (DOMAIN.md,
  Circular 40/2024 Art. 26: 100,000,000 đồng), counting every payment whose caller did not mark it
  ``limit_exempt`` (public-service portal, electricity, water, telecom, tuition, hospital fees, insurance,
  loan repayments: the caller knows the biller's category and its exemption);
- ``_new_device``: lower limits (per payment, per day over all categories) while the device of the
  payer's sign-in session was first seen less than 24 hours ago.

Usage is counted in ``wallet_usage``, in the payment's own transaction, by one upsert that adds the amount
to the payer's day/month buckets and returns the new totals. The upsert locks those rows, so two
concurrent payments of one customer are counted one after the other: a limit cannot be overrun by a race
(PostgreSQL row locks; SQLite has one writer). A refused payment raises, and its transaction rolls back the
counting with everything else. Refunds do not give usage back (the careful reading).

The table is read once per process per database and kept for :data:`CACHE_SECONDS` (it changes rarely;
:func:`set_limit` clears the cache of this process).
"""

from __future__ import annotations

import time
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Database, utcnow
from app.identity.service import device_is_new
from app.wallet.errors import LIMIT_EXCEEDED
from app.wallet.models import WalletLimit, WalletUsage

__all__ = [
    "CACHE_SECONDS",
    "DEFAULT",
    "MONTHLY_CAP",
    "NEW_DEVICE",
    "Limits",
    "PaymentCount",
    "check_amount",
    "check_per_transaction",
    "count_payment",
    "limits_for",
    "plan_payment",
    "planned_count",
    "remaining_for",
    "set_limit",
    "table_of",
]

VN = ZoneInfo("Asia/Ho_Chi_Minh")
CACHE_SECONDS = 30.0
DEFAULT = "*"
MONTHLY_CAP = "_monthly_cap"
NEW_DEVICE = "_new_device"


@dataclass(frozen=True, slots=True)
class Limits:
    """Đồng; ``None`` means no limit of that kind."""

    per_transaction: int | None = None
    per_day: int | None = None
    per_month: int | None = None


_NONE = Limits()
_Table = dict[tuple[int, str], Limits]
_cache: weakref.WeakKeyDictionary[Any, tuple[float, _Table]] = weakref.WeakKeyDictionary()


async def _table(session: AsyncSession) -> _Table:
    pool = session.get_bind().engine.pool
    cached = _cache.get(pool)
    now = time.monotonic()
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    rows = (await session.execute(select(WalletLimit))).scalars()
    table = {(r.identity_level, r.category): Limits(r.per_transaction, r.per_day, r.per_month) for r in rows}
    _cache[pool] = (now, table)
    return table


async def limits_for(session: AsyncSession, level: int, category: str) -> Limits:
    """The limits of ``category`` at identity ``level`` (the level's ``*`` row if it has none)."""
    table = await _table(session)
    return table.get((level, category)) or table.get((level, DEFAULT)) or _NONE


async def set_limit(session: AsyncSession, level: int, category: str, limits: Limits) -> None:
    """Set (insert or replace) one row of the table, in the session's transaction (admin, tests)."""
    row = await session.get(WalletLimit, (level, category))
    if row is None:
        session.add(WalletLimit(identity_level=level, category=category))
        await session.flush()
        row = await session.get(WalletLimit, (level, category))
        assert row is not None
    row.per_transaction, row.per_day, row.per_month = limits.per_transaction, limits.per_day, limits.per_month
    await session.flush()
    _cache.pop(session.get_bind().engine.pool, None)


def _money(amount: int) -> str:
    return f"{amount:,}".replace(",", ".")


def _refuse(limit: str, category: str, limit_amount: int, remaining: int) -> Exception:
    remaining = max(remaining, 0)
    names_vi = {
        "per_transaction": "hạn mức mỗi giao dịch",
        "per_day": "hạn mức trong ngày",
        "per_month": "hạn mức trong tháng",
        "monthly_cap": "hạn mức 100 triệu đồng/tháng theo quy định",
        "new_device_per_transaction": "hạn mức mỗi giao dịch trên thiết bị mới (24 giờ đầu)",
        "new_device_per_day": "hạn mức trong ngày trên thiết bị mới (24 giờ đầu)",
    }
    return LIMIT_EXCEEDED(
        f"Giao dịch vượt {names_vi[limit]} ({_money(limit_amount)} đồng); còn được {_money(remaining)} đồng.",
        f"The payment exceeds the {limit.replace('_', ' ')} limit ({limit_amount:,} VND); "
        f"{remaining:,} VND remain.",
        limit=limit,
        category=category,
        limit_amount=limit_amount,
        remaining=remaining,
    )


async def check_per_transaction(session: AsyncSession, *, level: int, category: str, amount: int) -> None:
    """Refuse an amount over the category's per-payment limit (no usage needed, so checked before the PIN)."""
    check_amount(await _table(session), level=level, category=category, amount=amount)


def _buckets(moment: datetime, category: str, limit_exempt: bool) -> tuple[str, str, str, str | None]:
    local = moment.astimezone(VN)
    day, month = local.strftime("%Y-%m-%d"), local.strftime("%Y-%m")
    cap = None if limit_exempt else f"m:{month}:_cap"
    return f"d:{day}:{category}", f"m:{month}:{category}", f"d:{day}:_all", cap


async def _add_usage(
    session: AsyncSession, user_id: uuid.UUID, buckets: list[str], amount: int
) -> dict[str, int]:
    dialect = session.get_bind().dialect.name
    insert = pg_dialect.insert if dialect == "postgresql" else sqlite_dialect.insert
    stmt = insert(WalletUsage).values(
        [{"user_id": user_id, "bucket": b, "amount": amount} for b in sorted(buckets)]
    )
    upsert = stmt.on_conflict_do_update(
        index_elements=["user_id", "bucket"], set_={"amount": WalletUsage.amount + stmt.excluded.amount}
    ).returning(WalletUsage.bucket, WalletUsage.amount)
    rows = await session.execute(upsert)
    return {bucket: int(total) for bucket, total in rows}


@dataclass(frozen=True, slots=True)
class PaymentCount:
    """The usage buckets one payment adds to, and the check of their totals once added
    (:func:`planned_count`; the adding is done by the posting, ``ledger.post_counted``)."""

    buckets: tuple[str, ...]
    check: Callable[[dict[str, int]], Awaitable[None]]
    caps: Callable[[bool], tuple[dict[str, int | None], int | None]] = lambda _new: ({}, None)
    """For a store that refuses by itself (``wallet_transfer``): given whether the device is new, the most
    each bucket may hold after this payment, and the most the payment itself may be (None: no limit).
    Passing one of them means ``check`` raises on those totals."""


DeviceIsNew = Callable[[], Awaitable[bool]]
"""Whether the payer's device was first seen less than 24 h ago; asked only when a new-device limit would
refuse the payment."""


async def planned_count(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    level: int,
    category: str,
    amount: int,
    limit_exempt: bool,
    session_id: uuid.UUID | None,
    now: datetime | None = None,
    device_check: bool = True,
) -> PaymentCount:
    """What :func:`count_payment` does, split so that the upsert can travel with the posting in one round
    trip: the buckets to add ``amount`` to, and ``check(totals)`` that raises ``limit_exceeded`` on the
    totals after adding (the device's age is looked up only when a new-device limit would refuse)."""

    async def is_new() -> bool:
        return session_id is None or await device_is_new(session, session_id)

    return plan_payment(
        await _table(session),
        level=level,
        category=category,
        amount=amount,
        limit_exempt=limit_exempt,
        now=now or utcnow(),
        device_is_new=is_new if device_check else None,
    )


async def table_of(db: Database) -> _Table:
    """The limits table for a money path that holds no session (cached like :func:`limits_for`)."""
    cached = _cache.get(db.engine.pool)
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    async with db.read() as session:
        return await _table(session)


def plan_payment(
    table: _Table,
    *,
    level: int,
    category: str,
    amount: int,
    limit_exempt: bool,
    now: datetime,
    device_is_new: DeviceIsNew | None,
) -> PaymentCount:
    """:func:`planned_count` on a table already read; ``device_is_new``: None for a payment no device
    started (no new-device limits)."""
    limits = table.get((level, category)) or table.get((level, DEFAULT)) or _NONE
    cap = table.get((level, MONTHLY_CAP), _NONE)
    new_device = table.get((level, NEW_DEVICE), _NONE)
    day_b, month_b, all_b, cap_b = _buckets(now, category, limit_exempt)
    buckets = (day_b, month_b, all_b) + ((cap_b,) if cap_b is not None else ())

    async def check(totals: dict[str, int]) -> None:
        checks: list[tuple[str, int | None, str]] = [
            ("per_day", limits.per_day, day_b),
            ("per_month", limits.per_month, month_b),
        ]
        if cap_b is not None:
            checks.append(("monthly_cap", cap.per_month, cap_b))
        for name, limit, bucket in checks:
            if limit is not None and totals[bucket] > limit:
                raise _refuse(name, category, limit, limit - (totals[bucket] - amount))
        over_tx = new_device.per_transaction is not None and amount > new_device.per_transaction
        over_day = new_device.per_day is not None and totals[all_b] > new_device.per_day
        if device_is_new is not None and (over_tx or over_day) and await device_is_new():
            if over_tx:
                assert new_device.per_transaction is not None
                raise _refuse(
                    "new_device_per_transaction",
                    category,
                    new_device.per_transaction,
                    new_device.per_transaction,
                )
            assert new_device.per_day is not None
            raise _refuse(
                "new_device_per_day",
                category,
                new_device.per_day,
                new_device.per_day - (totals[all_b] - amount),
            )

    def caps(device_new: bool) -> tuple[dict[str, int | None], int | None]:
        ceilings: dict[str, int | None] = {day_b: limits.per_day, month_b: limits.per_month, all_b: None}
        if cap_b is not None:
            ceilings[cap_b] = cap.per_month
        if not (device_new and device_is_new is not None):
            return ceilings, None
        ceilings[all_b] = new_device.per_day
        return ceilings, new_device.per_transaction

    return PaymentCount(buckets, check, caps)


def check_amount(table: _Table, *, level: int, category: str, amount: int) -> None:
    """:func:`check_per_transaction` on a table already read."""
    limits = table.get((level, category)) or table.get((level, DEFAULT)) or _NONE
    if limits.per_transaction is not None and amount > limits.per_transaction:
        raise _refuse("per_transaction", category, limits.per_transaction, limits.per_transaction)


async def count_payment(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    level: int,
    category: str,
    amount: int,
    limit_exempt: bool,
    session_id: uuid.UUID | None,
    now: datetime | None = None,
    device_check: bool = True,
) -> None:
    """Add ``amount`` to the payer's usage and refuse (``limit_exceeded``) if any limit is now passed.

    ``device_check=False``: a payment no device started (an auto-pay mandate running on its own), to which
    the new-device limits do not apply; every other limit does.

    One round trip in the common case (the upsert); the device's age is looked up only when a new-device
    limit would refuse the payment. Call it inside the payment's transaction, before posting. (The wallet's
    payments use :func:`planned_count` with ``ledger.post_counted`` instead: upsert and posting in one call.)
    """
    plan = await planned_count(
        session,
        user_id=user_id,
        level=level,
        category=category,
        amount=amount,
        limit_exempt=limit_exempt,
        session_id=session_id,
        now=now,
        device_check=device_check,
    )
    await plan.check(await _add_usage(session, user_id, list(plan.buckets), amount))


async def remaining_for(
    session: AsyncSession, *, user_id: uuid.UUID, level: int, category: str, limit_exempt: bool
) -> dict[str, int | None]:
    """What the customer may still pay today/this month in ``category`` (``None``: no such limit)."""
    table = await _table(session)
    limits = table.get((level, category)) or table.get((level, DEFAULT)) or _NONE
    cap = table.get((level, MONTHLY_CAP), _NONE)
    day_b, month_b, _all_b, cap_b = _buckets(utcnow(), category, limit_exempt)
    wanted = [day_b, month_b] + ([cap_b] if cap_b else [])
    rows = await session.execute(
        select(WalletUsage.bucket, WalletUsage.amount).where(
            WalletUsage.user_id == user_id, WalletUsage.bucket.in_(wanted)
        )
    )
    used = {bucket: int(total) for bucket, total in rows}

    def left(limit: int | None, bucket: str | None) -> int | None:
        if limit is None or bucket is None:
            return None
        return max(limit - int(used.get(bucket, 0)), 0)

    return {
        "per_transaction": limits.per_transaction,
        "today": left(limits.per_day, day_b),
        "this_month": left(limits.per_month, month_b),
        "monthly_cap": left(cap.per_month, cap_b),
    }
