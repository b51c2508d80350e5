"""Headline figures of bills for the admin dashboard."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.bills.models import Bill, Biller

__all__ = ["PaidByCategory", "paid_by_category"]


@dataclass(frozen=True, slots=True)
class PaidByCategory:
    category: str
    bills: int
    amount: int
    """đồng."""


async def paid_by_category(session: AsyncSession) -> list[PaidByCategory]:
    """Bills paid (and not refunded), per biller category, largest amount first."""
    rows = (
        await session.execute(
            select(Biller.category, func.count(), func.coalesce(func.sum(Bill.amount), 0))
            .join(Biller, Biller.id == Bill.biller_id)
            .where(Bill.status == "paid")
            .group_by(Biller.category)
        )
    ).all()
    out = [PaidByCategory(str(c), int(n), int(a)) for c, n, a in rows]
    return sorted(out, key=lambda r: (-r.amount, r.category))
