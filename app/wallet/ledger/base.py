"""What the ledger is made of, and the interface its two backends (PostgreSQL, SQLite) implement.

The backends differ only in how a write reaches the database: PostgreSQL in one round trip (a PL/pgSQL
function created by the migration, called through asyncpg with a prepared statement), SQLite in one hop to
the connection's thread (plain ``sqlite3`` calls inside the caller's ``BEGIN IMMEDIATE`` transaction).
Both run inside the caller's unit of work (an ``AsyncSession`` from ``Database.transaction()``), so a
posting commits or rolls back together with everything else the request did.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.wallet.errors import LedgerError

__all__ = [
    "ACCOUNT_SPECS",
    "MAX_POSTINGS",
    "SYSTEM_ACCOUNT_IDS",
    "AccountSpec",
    "AccountType",
    "Balance",
    "Entry",
    "LedgerBackend",
    "Posted",
    "Posting",
    "Refusal",
    "credit",
    "debit",
    "validate_entry",
]

MAX_POSTINGS = 64
MAX_AMOUNT = 10**15
"""No single posting comes near this (a quadrillion đồng); anything larger is a bug, not a payment."""


class AccountType(StrEnum):
    CITIZEN_WALLET = "citizen_wallet"
    MERCHANT_PAYABLE = "merchant_payable"
    BILLER_PAYABLE = "biller_payable"
    TREASURY_PAYABLE = "treasury_payable"
    GUARANTEE_BANK = "guarantee_bank"
    """Mirror of the guarantee (escrow) account at the partner bank: an asset."""
    GATEWAY_CLEARING = "gateway_clearing"
    """Mirror of the card gateway's balance owed to us, not yet paid out to the bank: an asset."""
    GATEWAY_FEES = "gateway_fees"
    """Fees the gateway charges us: an expense."""
    FEE_REVENUE = "fee_revenue"
    SUSPENSE = "suspense"
    """Money received or paid that cannot be matched yet; cleared by an admin correction."""


@dataclass(frozen=True, slots=True)
class AccountSpec:
    normal_side: str
    """``credit`` (liabilities, revenue) or ``debit`` (assets, expenses)."""
    allow_negative: bool
    system: bool
    """One account per ledger (fixed id, created by the migration) rather than one per owner."""


ACCOUNT_SPECS: Mapping[AccountType, AccountSpec] = {
    AccountType.CITIZEN_WALLET: AccountSpec("credit", allow_negative=False, system=False),
    AccountType.MERCHANT_PAYABLE: AccountSpec("credit", allow_negative=True, system=False),
    AccountType.BILLER_PAYABLE: AccountSpec("credit", allow_negative=True, system=False),
    AccountType.TREASURY_PAYABLE: AccountSpec("credit", allow_negative=True, system=False),
    AccountType.GUARANTEE_BANK: AccountSpec("debit", allow_negative=True, system=True),
    AccountType.GATEWAY_CLEARING: AccountSpec("debit", allow_negative=True, system=True),
    AccountType.GATEWAY_FEES: AccountSpec("debit", allow_negative=True, system=True),
    AccountType.FEE_REVENUE: AccountSpec("credit", allow_negative=True, system=True),
    AccountType.SUSPENSE: AccountSpec("credit", allow_negative=True, system=True),
}

SYSTEM_ACCOUNT_IDS: Mapping[AccountType, uuid.UUID] = {
    AccountType.GUARANTEE_BANK: uuid.UUID("00000000-0000-7000-8000-000000000001"),
    AccountType.GATEWAY_CLEARING: uuid.UUID("00000000-0000-7000-8000-000000000002"),
    AccountType.GATEWAY_FEES: uuid.UUID("00000000-0000-7000-8000-000000000003"),
    AccountType.FEE_REVENUE: uuid.UUID("00000000-0000-7000-8000-000000000004"),
    AccountType.SUSPENSE: uuid.UUID("00000000-0000-7000-8000-000000000005"),
}
"""Fixed ids of the system accounts; the migration creates them, so no lookup is ever needed."""


@dataclass(frozen=True, slots=True)
class Posting:
    """One line of an entry: ``amount`` đồng, positive for a credit, negative for a debit."""

    account_id: uuid.UUID
    amount: int


def debit(account_id: uuid.UUID, amount: int) -> Posting:
    """Take ``amount`` (positive) from a credit-normal account such as a wallet."""
    return Posting(account_id, -amount)


def credit(account_id: uuid.UUID, amount: int) -> Posting:
    """Give ``amount`` (positive) to a credit-normal account such as a wallet or a payable."""
    return Posting(account_id, amount)


@dataclass(frozen=True, slots=True)
class Entry:
    """A journal entry to post: what happened (``kind``, ``reference``) and its balanced postings."""

    kind: str
    postings: Sequence[Posting]
    reference: str | None = None
    """The business object behind it (a transfer id, a bill id, a gateway event id)."""
    description: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    reverses_id: uuid.UUID | None = None
    entry_id: uuid.UUID | None = None
    """Chosen by the caller when it must know the id before posting; a fresh UUIDv7 otherwise."""


@dataclass(frozen=True, slots=True)
class Posted:
    """A committed-with-the-transaction entry."""

    entry_id: uuid.UUID
    created_at: datetime
    debited_account_id: uuid.UUID | None = None
    """The first (by id) wallet this entry debited, if any."""
    debited_available: int | None = None
    """That wallet's available balance right after the posting."""


@dataclass(frozen=True, slots=True)
class Balance:
    account_id: uuid.UUID
    balance: int
    """Raw, credit-positive: what the account holds for a wallet or a payable."""
    held: int
    """Sum of the active holds."""

    @property
    def available(self) -> int:
        return self.balance - self.held


def validate_entry(entry: Entry) -> None:
    """Refuse an entry that could never be right, before any round trip."""
    postings = entry.postings
    if not 2 <= len(postings) <= MAX_POSTINGS:
        raise LedgerError(f"an entry needs 2 to {MAX_POSTINGS} postings, got {len(postings)}")
    total = 0
    for p in postings:
        if type(p.amount) is not int or p.amount == 0 or abs(p.amount) > MAX_AMOUNT:
            raise LedgerError(f"posting amounts are non-zero int đồng, got {p.amount!r}")
        total += p.amount
    if total != 0:
        raise LedgerError(f"postings must sum to zero, they sum to {total}")
    if not entry.kind or len(entry.kind) > 32:
        raise LedgerError("an entry's kind is 1 to 32 characters")
    if entry.reference is not None and len(entry.reference) > 128:
        raise LedgerError("an entry's reference is at most 128 characters")
    if len(entry.description) > 255:
        raise LedgerError("an entry's description is at most 255 characters")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a backend did not write: ``insufficient_funds``, ``hold_not_found`` or ``hold_not_active``."""

    reason: str
    account_id: uuid.UUID | None = None
    available: int | None = None


class LedgerBackend(ABC):
    """The writes of the ledger, each one atomic inside the caller's transaction.

    A method either writes everything it is asked to, or writes nothing and returns a :class:`Refusal`
    (the caller turns it into a problem), or raises :class:`LedgerError` for a programming error.
    """

    @abstractmethod
    async def post(
        self, session: AsyncSession, entry: Entry, entry_id: uuid.UUID, capture_hold: uuid.UUID | None
    ) -> Posted | Refusal:
        """Post ``entry``; with ``capture_hold``, consume that active hold on the same account in it."""

    @abstractmethod
    async def post_counted(
        self,
        session: AsyncSession,
        entry: Entry,
        entry_id: uuid.UUID,
        user_id: uuid.UUID,
        buckets: Sequence[str],
        usage: int,
    ) -> tuple[Posted | Refusal, dict[str, int]]:
        """Add ``usage`` to ``user_id``'s ``wallet_usage`` ``buckets`` (sorted: the lock order), then post
        ``entry``, in one round trip; returns the posting's result and the buckets' new totals."""

    @abstractmethod
    async def hold(
        self,
        session: AsyncSession,
        hold_id: uuid.UUID,
        account_id: uuid.UUID,
        amount: int,
        kind: str,
        reference: str | None,
        expires_at: datetime | None,
    ) -> Balance | Refusal:
        """Reserve ``amount`` of a wallet's available balance."""

    @abstractmethod
    async def release(self, session: AsyncSession, hold_id: uuid.UUID) -> Balance | Refusal:
        """Give an active hold back to the available balance."""

    @abstractmethod
    async def fold_deltas(self, session: AsyncSession, limit: int) -> int:
        """Move up to ``limit`` committed balance deltas into their accounts' rows; returns how many."""
