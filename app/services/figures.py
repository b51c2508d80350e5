"""Headline figures of dossiers for the admin dashboard."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.dossier_models import Dossier
from app.services.workflow import STATUSES

__all__ = ["dossiers_by_status"]


async def dossiers_by_status(session: AsyncSession) -> list[tuple[str, int]]:
    """Submitted dossiers per portal status, in the portal's order (1-10), zeros included."""
    result = await session.execute(select(Dossier.status, func.count()).group_by(Dossier.status))
    rows = {str(status): int(n) for status, n in result.all()}
    return [(str(s), int(rows.get(str(s), 0))) for s in sorted(STATUSES, key=lambda s: STATUSES[s].code)]
