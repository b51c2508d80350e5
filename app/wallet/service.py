"""Wallet rules: opening a wallet, paying from it (identity level, PIN, limits, one ledger entry), refunds.

For other modules (all inside the caller's ``Database.transaction()`` session):

    await pay_from_wallet(session, payer_id=..., session_id=caller.session_id, pin=...,
                          category="electricity", limit_exempt=True,
                          credits=[(biller_account, 90_000)], kind="bill_payment",
                          reference=str(bill_id), description="...", metadata={...}) -> Posted
        raises identity_level_required (403), wallet_not_found (404), limit_exceeded (422), pin_invalid /
        pin_locked / pin_not_set, insufficient_funds (422) -- having written nothing the caller keeps
        (a refusal is an exception: let it roll the transaction back).
    await wallet_account_id(session, user_id, create=False) -> uuid   (wallet_not_found if none is open)
    await refund_to_wallet(session, user_id=..., debits=[(biller_account, 90_000)], kind="refund",
                           reference=..., description=..., metadata={...}) -> Posted
        system-initiated: no PIN, no limits; receive-only accounts may go negative (DESIGN.md); the
        wallet is opened on demand.

The payer's wallet must have been opened (``wallet_not_found`` otherwise): a wallet is opened explicitly by
a verified citizen, so nobody pays from a wallet they never asked for. Refunds open it on demand (money
owed to a citizen always has somewhere to land).

Round trips of a payment on PostgreSQL: identity level (1), PIN (1 + the shared counters), usage upsert (1),
the posting (1); the wallet's id is cached per process after its first lookup and the limit table for
:data:`app.wallet.limits.CACHE_SECONDS`.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.identity.service import identity_level, verify_payment_pin
from app.wallet import ledger, limits
from app.wallet.errors import IDENTITY_LEVEL_REQUIRED, WALLET_NOT_FOUND, LedgerError
from app.wallet.ledger import AccountType, Entry, Posted, credit, debit
from app.wallet.models import LedgerAccount

__all__ = [
    "REQUIRED_LEVEL",
    "open_wallet",
    "pay_from_wallet",
    "refund_to_wallet",
    "require_level",
    "wallet_account_id",
]

REQUIRED_LEVEL = 2
"""DOMAIN.md: identity level 2 (verified) is needed to move money."""

_wallet_ids: weakref.WeakKeyDictionary[Any, dict[uuid.UUID, uuid.UUID]] = weakref.WeakKeyDictionary()
"""Committed wallet ids by owner, per database (an account's id never changes)."""


def _key(user_id: uuid.UUID) -> str:
    return f"{AccountType.CITIZEN_WALLET.value}:{user_id}"


async def wallet_account_id(session: AsyncSession, user_id: uuid.UUID, *, create: bool) -> uuid.UUID:
    """The ledger account of ``user_id``'s wallet; with ``create``, opened now if it is not yet (no level
    check here: :func:`open_wallet` is the citizen's door). ``wallet_not_found`` otherwise."""
    known = _wallet_ids.setdefault(session.get_bind().engine.pool, {})
    if (cached := known.get(user_id)) is not None:
        return cached
    if create:
        return await ledger.ensure_account(session, AccountType.CITIZEN_WALLET, user_id)
    found = await session.scalar(select(LedgerAccount.id).where(LedgerAccount.key == _key(user_id)))
    if found is None:
        raise WALLET_NOT_FOUND(
            "Bạn chưa mở ví. Hãy mở ví trong ứng dụng.", "You have not opened a wallet yet."
        )
    if _key(user_id) not in session.info.get("ledger_created_accounts", set()):
        known[user_id] = found
    return found


async def require_level(session: AsyncSession, user_id: uuid.UUID) -> int:
    """``user_id``'s identity level, or ``identity_level_required`` below :data:`REQUIRED_LEVEL`."""
    level = await identity_level(session, user_id)
    if level < REQUIRED_LEVEL:
        raise IDENTITY_LEVEL_REQUIRED(
            "Cần xác thực danh tính mức 2 (VNeID mức 2 hoặc tại bộ phận một cửa) để dùng ví.",
            "Verify your identity (level 2) to use the wallet.",
            required=REQUIRED_LEVEL,
            current=level,
        )
    return level


async def open_wallet(session: AsyncSession, user_id: uuid.UUID) -> uuid.UUID:
    """Open ``user_id``'s wallet (verified citizens only); opening an open wallet returns it."""
    await require_level(session, user_id)
    return await wallet_account_id(session, user_id, create=True)


def _total(lines: Sequence[tuple[uuid.UUID, int]]) -> int:
    if not lines:
        raise LedgerError("a payment needs at least one line")
    total = 0
    for _account, amount in lines:
        if type(amount) is not int or amount <= 0:
            raise LedgerError(f"payment lines are positive int đồng, got {amount!r}")
        total += amount
    return total


async def pay_from_wallet(
    session: AsyncSession,
    *,
    payer_id: uuid.UUID,
    session_id: uuid.UUID,
    pin: str,
    category: str,
    limit_exempt: bool,
    credits: Sequence[tuple[uuid.UUID, int]],
    kind: str,
    reference: str,
    description: str,
    metadata: Mapping[str, Any],
) -> Posted:
    """Pay ``sum(credits)`` from ``payer_id``'s wallet as ONE ledger entry, in the caller's transaction.

    Order: identity level, wallet, per-payment limit (before the PIN: no PIN try is spent on a payment
    that could never pass), PIN, day/month/cap/new-device limits (counted under the payer's usage-row
    locks), then the posting (the wallet's row lock and balance check). Any refusal raises having written
    nothing the caller keeps, provided the caller lets the exception roll its transaction back.
    """
    amount = _total(credits)
    level = await require_level(session, payer_id)
    wallet = await wallet_account_id(session, payer_id, create=False)
    await limits.check_per_transaction(session, level=level, category=category, amount=amount)
    await verify_payment_pin(session, payer_id, pin)
    await limits.count_payment(
        session,
        user_id=payer_id,
        level=level,
        category=category,
        amount=amount,
        limit_exempt=limit_exempt,
        session_id=session_id,
    )
    entry = Entry(
        kind=kind,
        postings=[debit(wallet, amount), *(credit(account, value) for account, value in credits)],
        reference=reference,
        description=description,
        metadata={**metadata, "category": category, "payer_id": str(payer_id)},
    )
    return await ledger.post(session, entry)


async def refund_to_wallet(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    debits: Sequence[tuple[uuid.UUID, int]],
    kind: str,
    reference: str,
    description: str,
    metadata: Mapping[str, Any],
) -> Posted:
    """Give money back to ``user_id``'s wallet from receive-only accounts (system-initiated: no PIN, no
    limits; the accounts may go negative, DESIGN.md). Opens the wallet if needed."""
    amount = _total(debits)
    wallet = await wallet_account_id(session, user_id, create=True)
    entry = Entry(
        kind=kind,
        postings=[*(debit(account, value) for account, value in debits), credit(wallet, amount)],
        reference=reference,
        description=description,
        metadata=dict(metadata),
    )
    return await ledger.post(session, entry)
