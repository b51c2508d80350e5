"""Headline figures of identity for the admin dashboard (counts only; no personal data)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.identity.models import User

__all__ = ["UserFigures", "user_figures"]


@dataclass(frozen=True, slots=True)
class UserFigures:
    total: int
    """Accounts not closed."""
    by_level: dict[int, int]
    """Open accounts per identity level (0, 1, 2)."""
    locked: int


async def user_figures(session: AsyncSession) -> UserFigures:
    rows = (
        await session.execute(
            select(User.identity_level, User.status, func.count())
            .where(User.status != "closed")
            .group_by(User.identity_level, User.status)
        )
    ).all()
    by_level: dict[int, int] = {0: 0, 1: 0, 2: 0}
    locked = 0
    for level, status, n in rows:
        by_level[int(level)] = by_level.get(int(level), 0) + int(n)
        if status == "locked":
            locked += int(n)
    return UserFigures(total=sum(by_level.values()), by_level=by_level, locked=locked)
