"""The double-entry ledger: the record of money.

Every function takes the caller's ``AsyncSession`` and works inside its transaction (writes need
``Database.transaction()``), so money moves atomically with the state that explains it. Writes go through a
backend chosen by the database (:mod:`.postgres`: one round trip; :mod:`.sqlite`: one thread hop); reads
and rare administrative work use SQLAlchemy Core.

Guarantees:
- an entry has 2+ postings summing to zero, and is never changed or deleted (a correction is a new entry);
- a wallet (an account that may not go negative) never has ``balance - held < 0``: checked under its row
  lock (PostgreSQL) or the single writer lock (SQLite), and by a CHECK constraint as a last line;
- wallets are locked in id order, so opposite transfers cannot deadlock;
- accounts that may go negative (payables, system accounts) are never locked by a posting.
"""

from __future__ import annotations

import sqlite3
import uuid
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from asyncpg.exceptions import UniqueViolationError
from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Database, new_id, utcnow
from app.core.errors import CONFLICT
from app.wallet.errors import HOLD_NOT_ACTIVE, INSUFFICIENT_FUNDS, LedgerError
from app.wallet.ledger.base import (
    ACCOUNT_SPECS,
    SYSTEM_ACCOUNT_IDS,
    AccountType,
    Balance,
    Entry,
    LedgerBackend,
    Posted,
    Posting,
    Refusal,
    credit,
    debit,
    validate_entry,
)
from app.wallet.ledger.postgres import PostgresLedger
from app.wallet.ledger.sqlite import SqliteLedger
from app.wallet.models import LedgerAccount, LedgerBalanceDelta, LedgerEntry, LedgerHold, LedgerPosting

__all__ = [
    "AccountType",
    "Balance",
    "BooksCheck",
    "Entry",
    "Posted",
    "Posting",
    "backend_for",
    "balance",
    "balances",
    "capture",
    "check_books",
    "credit",
    "debit",
    "ensure_account",
    "fold_balance_deltas",
    "hold",
    "post",
    "post_counted",
    "refusal_error",
    "release",
    "release_expired_holds",
    "reverse",
    "system_account",
]

_BACKENDS: dict[str, LedgerBackend] = {"postgresql": PostgresLedger(), "sqlite": SqliteLedger()}


def backend_for(session: AsyncSession) -> LedgerBackend:
    return _BACKENDS[session.get_bind().dialect.name]


def refusal_error(refusal: Refusal) -> Exception:
    if refusal.reason == "insufficient_funds":
        available = refusal.available or 0
        return INSUFFICIENT_FUNDS(
            f"Số dư khả dụng ({available:,} đồng) không đủ cho giao dịch này.".replace(",", "."),
            f"The available balance ({available:,} VND) does not cover this payment.",
            available=available,
        )
    if refusal.reason == "hold_not_active":
        return HOLD_NOT_ACTIVE()
    return LedgerError(f"ledger refused: {refusal.reason}")


# --- writes ----------------------------------------------------------------------------------------------


async def post(session: AsyncSession, entry: Entry, *, capture_hold: uuid.UUID | None = None) -> Posted:
    """Post ``entry`` in the session's transaction, or raise ``insufficient_funds`` having written nothing.

    With ``capture_hold``, the entry consumes that active hold: the hold's amount counts as available to
    its wallet for this entry, and the hold becomes ``captured`` (``hold_not_active`` if it is not active).
    """
    validate_entry(entry)
    result = await backend_for(session).post(session, entry, entry.entry_id or new_id(), capture_hold)
    if isinstance(result, Refusal):
        raise refusal_error(result)
    return result


async def post_counted(
    session: AsyncSession,
    entry: Entry,
    *,
    user_id: uuid.UUID,
    buckets: Sequence[str],
    usage: int,
    check: Callable[[dict[str, int]], Awaitable[None]],
) -> Posted:
    """:func:`post`, adding ``usage`` to ``user_id``'s ``wallet_usage`` rows ``buckets`` in the same call
    (PostgreSQL: the ``wallet_pay`` function, one round trip; SQLite: one hop to the connection's thread).

    ``check(totals)`` gets the buckets' new totals and raises to refuse the payment (a limit); it runs
    before an ``insufficient_funds`` refusal is raised, so a limit is reported first, as when the usage was
    counted before posting. Either refusal leaves the usage and the entry for the caller's rollback.
    """
    validate_entry(entry)
    result, totals = await backend_for(session).post_counted(
        session, entry, entry.entry_id or new_id(), user_id, sorted(buckets), usage
    )
    await check(totals)
    if isinstance(result, Refusal):
        raise refusal_error(result)
    return result


async def capture(session: AsyncSession, hold_id: uuid.UUID, entry: Entry) -> Posted:
    """Capture a hold with ``entry`` (which debits the held wallet, usually by at most the held amount)."""
    return await post(session, entry, capture_hold=hold_id)


async def hold(
    session: AsyncSession,
    account_id: uuid.UUID,
    amount: int,
    *,
    kind: str,
    reference: str | None = None,
    expires_at: datetime | None = None,
) -> uuid.UUID:
    """Reserve ``amount`` of a wallet's available balance; returns the hold's id."""
    if type(amount) is not int or amount <= 0:
        raise LedgerError("a hold is a positive int amount")
    hold_id = new_id()
    result = await backend_for(session).hold(
        session, hold_id, account_id, amount, kind, reference, expires_at
    )
    if isinstance(result, Refusal):
        raise refusal_error(result)
    return hold_id


async def release(session: AsyncSession, hold_id: uuid.UUID) -> Balance:
    """Give an active hold back; returns the wallet's balance after."""
    result = await backend_for(session).release(session, hold_id)
    if isinstance(result, Refusal):
        raise refusal_error(result)
    return result


async def reverse(
    session: AsyncSession, entry_id: uuid.UUID, *, kind: str = "reversal", description: str = ""
) -> Posted:
    """Cancel an entry by posting its mirror image (at most once: a second reversal is a conflict)."""
    lines = (
        await session.execute(
            select(LedgerPosting.account_id, LedgerPosting.amount)
            .where(LedgerPosting.entry_id == entry_id)
            .order_by(LedgerPosting.id)
        )
    ).all()
    if not lines:
        raise LedgerError("no such entry")
    already = await session.scalar(select(LedgerEntry.id).where(LedgerEntry.reverses_id == entry_id))
    if already is not None:
        raise CONFLICT("Bút toán này đã được đảo.", "This entry was already reversed.")
    entry = Entry(
        kind=kind,
        postings=[Posting(account_id, -amount) for account_id, amount in lines],
        reference=str(entry_id),
        description=description,
        reverses_id=entry_id,
    )
    try:
        return await post(session, entry)
    except (UniqueViolationError, sqlite3.IntegrityError) as exc:  # two reversals raced: one wins
        raise CONFLICT("Bút toán này đã được đảo.", "This entry was already reversed.") from exc


async def fold_balance_deltas(db: Database, *, batch: int = 5000) -> int:
    """Fold committed deltas of receive-only and system accounts into their rows; returns how many.

    Run it from the worker every few seconds: it keeps their balances cheap to read. Payments never wait
    for it and it never waits for them (``SKIP LOCKED``; it locks no wallet).
    """
    total = 0
    while True:
        async with db.transaction() as session:
            moved = await backend_for(session).fold_deltas(session, batch)
        total += moved
        if moved < batch:
            return total


async def release_expired_holds(db: Database, *, now: datetime | None = None, batch: int = 500) -> int:
    """Release every active hold whose ``expires_at`` has passed; returns how many."""
    moment = now or utcnow()
    released = 0
    async with db.read() as session:
        ids = list(
            await session.scalars(
                select(LedgerHold.id)
                .where(LedgerHold.status == "active", LedgerHold.expires_at <= moment)
                .order_by(LedgerHold.expires_at)
                .limit(batch)
            )
        )
    for hold_id in ids:
        async with db.transaction() as session:
            result = await backend_for(session).release(session, hold_id)
        if not isinstance(result, Refusal):
            released += 1
    return released


# --- accounts --------------------------------------------------------------------------------------------

_known_ids: weakref.WeakKeyDictionary[Any, dict[str, uuid.UUID]] = weakref.WeakKeyDictionary()
"""Account ids by key, per database (keyed by the connection pool): an account's id never changes."""


def system_account(account_type: AccountType) -> uuid.UUID:
    """The fixed id of a system account (the bank mirror, clearing, fees, revenue, suspense)."""
    try:
        return SYSTEM_ACCOUNT_IDS[account_type]
    except KeyError:
        raise LedgerError(f"{account_type} is an account per owner, not a system account") from None


async def ensure_account(
    session: AsyncSession, account_type: AccountType, owner_id: uuid.UUID | None = None
) -> uuid.UUID:
    """The id of ``owner_id``'s account of ``account_type``, created (empty) if it does not exist yet."""
    spec = ACCOUNT_SPECS[account_type]
    if spec.system:
        if owner_id is not None:
            raise LedgerError(f"{account_type} is a system account: it has no owner")
        return SYSTEM_ACCOUNT_IDS[account_type]
    if owner_id is None:
        raise LedgerError(f"{account_type} needs an owner")
    key = f"{account_type.value}:{owner_id}"
    known = _known_ids.setdefault(session.get_bind().engine.pool, {})
    if (cached := known.get(key)) is not None:
        return cached
    created: set[str] = session.info.setdefault("ledger_created_accounts", set())
    found = await session.scalar(select(LedgerAccount.id).where(LedgerAccount.key == key))
    if found is not None:
        if key not in created:
            known[key] = found
        return found
    account_id = new_id()
    values = {
        "id": account_id,
        "created_at": utcnow(),
        "key": key,
        "type": account_type.value,
        "owner_id": owner_id,
        "currency": "VND",
        "normal_side": spec.normal_side,
        "allow_negative": spec.allow_negative,
        "balance": 0,
        "held": 0,
    }
    insert = pg_dialect.insert if session.get_bind().dialect.name == "postgresql" else sqlite_dialect.insert
    result = await session.execute(
        insert(LedgerAccount).values(**values).on_conflict_do_nothing(index_elements=["key"])
    )
    if getattr(result, "rowcount", 0) == 1:
        created.add(key)
        return account_id
    found = await session.scalar(select(LedgerAccount.id).where(LedgerAccount.key == key))
    if found is None:  # pragma: no cover - the conflicting row was committed, so it is visible
        raise LedgerError(f"account {key} vanished")
    known[key] = found
    return found


# --- reads -----------------------------------------------------------------------------------------------


def _pending(account_ids: list[uuid.UUID] | None = None) -> Any:
    query = select(LedgerBalanceDelta.account_id, func.sum(LedgerBalanceDelta.amount).label("amount"))
    if account_ids is not None:
        query = query.where(LedgerBalanceDelta.account_id.in_(account_ids))
    return query.group_by(LedgerBalanceDelta.account_id).subquery()


async def balances(session: AsyncSession, account_ids: list[uuid.UUID]) -> dict[uuid.UUID, Balance]:
    """Balances of several accounts, read in one statement (one consistent snapshot)."""
    pending = _pending(account_ids)
    rows = await session.execute(
        select(
            LedgerAccount.id,
            LedgerAccount.balance + func.coalesce(pending.c.amount, 0),
            LedgerAccount.held,
        )
        .outerjoin(pending, pending.c.account_id == LedgerAccount.id)
        .where(LedgerAccount.id.in_(account_ids))
    )
    return {row[0]: Balance(row[0], int(row[1]), int(row[2])) for row in rows}


async def balance(session: AsyncSession, account_id: uuid.UUID) -> Balance:
    """An account's raw balance (credit-positive), what is held, and what is available."""
    found = await balances(session, [account_id])
    if account_id not in found:
        raise LedgerError("no such account")
    return found[account_id]


@dataclass
class BooksCheck:
    """The ledger's invariants, as found. ``ok`` when every list is empty and the total is zero."""

    total: int = 0
    """Sum of every posting: always zero."""
    unbalanced_entries: list[uuid.UUID] = field(default_factory=list)
    balance_mismatches: list[tuple[uuid.UUID, int, int]] = field(default_factory=list)
    """(account, stored balance, sum of postings) where they differ."""
    held_mismatches: list[tuple[uuid.UUID, int, int]] = field(default_factory=list)
    """(account, held, sum of active holds) where they differ."""
    negative_wallets: list[uuid.UUID] = field(default_factory=list)
    running_balance_breaks: list[int] = field(default_factory=list)
    """Posting ids whose ``balance_after`` is not the running sum of their account's postings."""

    @property
    def ok(self) -> bool:
        return not (
            self.total
            or self.unbalanced_entries
            or self.balance_mismatches
            or self.held_mismatches
            or self.negative_wallets
            or self.running_balance_breaks
        )


async def check_books(session: AsyncSession) -> BooksCheck:
    """Check every invariant of the ledger (tests and the admin reconciliation run it)."""
    report = BooksCheck()
    report.total = int(await session.scalar(select(func.coalesce(func.sum(LedgerPosting.amount), 0))) or 0)
    report.unbalanced_entries = list(
        await session.scalars(
            select(LedgerPosting.entry_id)
            .group_by(LedgerPosting.entry_id)
            .having(or_(func.sum(LedgerPosting.amount) != 0, func.count() < 2))
        )
    )
    posted = (
        select(LedgerPosting.account_id, func.sum(LedgerPosting.amount).label("amount"))
        .group_by(LedgerPosting.account_id)
        .subquery()
    )
    pending = _pending()
    stored = LedgerAccount.balance + func.coalesce(pending.c.amount, 0)
    summed = func.coalesce(posted.c.amount, 0)
    rows = await session.execute(
        select(LedgerAccount.id, stored, summed)
        .outerjoin(posted, posted.c.account_id == LedgerAccount.id)
        .outerjoin(pending, pending.c.account_id == LedgerAccount.id)
        .where(stored != summed)
    )
    report.balance_mismatches = [(r[0], int(r[1]), int(r[2])) for r in rows]
    active = (
        select(LedgerHold.account_id, func.sum(LedgerHold.amount).label("amount"))
        .where(LedgerHold.status == "active")
        .group_by(LedgerHold.account_id)
        .subquery()
    )
    rows = await session.execute(
        select(LedgerAccount.id, LedgerAccount.held, func.coalesce(active.c.amount, 0))
        .outerjoin(active, active.c.account_id == LedgerAccount.id)
        .where(LedgerAccount.held != func.coalesce(active.c.amount, 0))
    )
    report.held_mismatches = [(r[0], int(r[1]), int(r[2])) for r in rows]
    report.negative_wallets = list(
        await session.scalars(
            select(LedgerAccount.id).where(
                and_(~LedgerAccount.allow_negative, LedgerAccount.balance - LedgerAccount.held < 0)
            )
        )
    )
    running = select(
        LedgerPosting.id,
        LedgerPosting.balance_after,
        func.sum(LedgerPosting.amount)
        .over(partition_by=LedgerPosting.account_id, order_by=LedgerPosting.id)
        .label("running"),
    ).subquery()
    report.running_balance_breaks = list(
        await session.scalars(
            select(running.c.id).where(
                running.c.balance_after.is_not(None), running.c.balance_after != running.c.running
            )
        )
    )
    return report
