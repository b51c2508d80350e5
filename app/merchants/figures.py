"""Headline figures of merchants for the admin dashboard."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.merchants.models import Merchant, MerchantStore

__all__ = ["active_acceptance_points"]


async def active_acceptance_points(session: AsyncSession) -> int:
    """Stores (acceptance points, each with its static QR) that can take a payment now: the store is active
    and its merchant approved (a pending, rejected or suspended merchant's stores take nothing)."""
    found = await session.scalar(
        select(func.count())
        .select_from(MerchantStore)
        .join(Merchant, Merchant.id == MerchantStore.merchant_id)
        .where(MerchantStore.active.is_(True), Merchant.status == "approved")
    )
    return int(found or 0)
