"""Headline figures of the wallets for the admin dashboard."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.wallet.ledger.base import AccountType
from app.wallet.models import LedgerAccount

__all__ = ["WalletFigures", "wallet_figures"]


@dataclass(frozen=True, slots=True)
class WalletFigures:
    count: int
    """Wallets opened."""
    balance: int
    """Sum of their balances, đồng (wallets are locked accounts: no unfolded deltas)."""


async def wallet_figures(session: AsyncSession) -> WalletFigures:
    count, balance = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(LedgerAccount.balance), 0)).where(
                LedgerAccount.type == AccountType.CITIZEN_WALLET.value
            )
        )
    ).one()
    return WalletFigures(count=int(count), balance=int(balance))
