"""Payout holds: money a receive-only account (a biller's, a treasury's or a merchant's payable) must not pay
out yet, because a complaint disputes it.

A hold is a memo, not a journal entry: the money stays on the payable account (the books do not change);
the settlement of that account subtracts every active hold it has not withheld yet, and adds a hold back
once it is released (the complaint resolved or rejected). Any module that settles a payable (bills'
billers, the treasury, merchants) reads holds with :func:`holds_to_withhold` / :func:`holds_to_return`
and marks them with :func:`mark_withheld` / :func:`mark_returned` in the settlement's transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, String, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import TimestampedBase, utcnow

__all__ = [
    "HoldsAtCutoff",
    "PayoutHold",
    "holds_at_cutoff",
    "holds_kept_back",
    "holds_to_return",
    "holds_to_withhold",
    "mark_returned",
    "mark_withheld",
    "place_payout_hold",
    "release_payout_hold",
]


class PayoutHold(TimestampedBase):
    """``amount`` đồng of ``account_id`` kept back from its settlements while ``released_at`` is empty."""

    __tablename__ = "payout_holds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_payout_holds_account_id", "account_id"),
    )

    account_id: Mapped[uuid.UUID]
    """The ledger account (a receive-only payable) whose payouts are short by the hold."""
    amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(String(80), unique=True)
    """Who asked for it, e.g. ``complaint:{id}``: at most one hold per reference."""
    released_at: Mapped[datetime | None]
    withheld_in: Mapped[uuid.UUID | None]
    """The settlement that kept the amount back (none yet: the next one will)."""
    returned_in: Mapped[uuid.UUID | None]
    """The settlement that paid it after the release."""


async def place_payout_hold(
    session: AsyncSession, account_id: uuid.UUID, amount: int, *, reason: str, reference: str
) -> uuid.UUID:
    """Hold ``amount`` of ``account_id``'s next settlements, in the caller's transaction."""
    if type(amount) is not int or amount <= 0:
        raise ValueError("a payout hold is a positive int number of đồng")
    hold = PayoutHold(account_id=account_id, amount=amount, reason=reason[:64], reference=reference[:80])
    session.add(hold)
    await session.flush()
    return hold.id


async def release_payout_hold(
    session: AsyncSession, hold_id: uuid.UUID, *, at: datetime | None = None
) -> bool:
    """Release a hold (the dispute is over); returns whether it was active."""
    result = await session.execute(
        update(PayoutHold)
        .where(PayoutHold.id == hold_id, PayoutHold.released_at.is_(None))
        .values(released_at=at or utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def holds_to_withhold(
    session: AsyncSession, account_id: uuid.UUID, before: datetime
) -> list[PayoutHold]:
    """Holds placed before ``before`` that no settlement has withheld yet and that were still active at
    ``before`` (a hold placed and released between two settlements changes nothing)."""
    rows = await session.scalars(
        select(PayoutHold)
        .where(
            PayoutHold.account_id == account_id,
            PayoutHold.withheld_in.is_(None),
            PayoutHold.created_at < before,
            (PayoutHold.released_at.is_(None)) | (PayoutHold.released_at >= before),
        )
        .order_by(PayoutHold.created_at)
        .with_for_update()
    )
    return list(rows)


async def holds_to_return(session: AsyncSession, account_id: uuid.UUID, before: datetime) -> list[PayoutHold]:
    """Holds withheld by an earlier settlement and released before ``before``: their amount is paid now."""
    rows = await session.scalars(
        select(PayoutHold)
        .where(
            PayoutHold.account_id == account_id,
            PayoutHold.withheld_in.is_not(None),
            PayoutHold.returned_in.is_(None),
            PayoutHold.released_at < before,
        )
        .order_by(PayoutHold.released_at)
        .with_for_update()
    )
    return list(rows)


async def mark_withheld(
    session: AsyncSession, hold_ids: list[uuid.UUID], settlement_id: uuid.UUID | None
) -> None:
    """Record that settlement ``settlement_id`` kept these holds back (``None`` undoes it)."""
    if hold_ids:
        await session.execute(
            update(PayoutHold)
            .where(PayoutHold.id.in_(hold_ids))
            .values(withheld_in=settlement_id)
            .execution_options(synchronize_session=False)
        )


async def mark_returned(
    session: AsyncSession, hold_ids: list[uuid.UUID], settlement_id: uuid.UUID | None
) -> None:
    """Record that settlement ``settlement_id`` paid these released holds (``None`` undoes it)."""
    if hold_ids:
        await session.execute(
            update(PayoutHold)
            .where(PayoutHold.id.in_(hold_ids))
            .values(returned_in=settlement_id)
            .execution_options(synchronize_session=False)
        )


@dataclass(frozen=True, slots=True)
class HoldsAtCutoff:
    """What one settlement of an account does with its holds: keep back ``withheld``, pay ``returned``."""

    withheld: list[PayoutHold]
    """Active holds no settlement has kept back yet (this one does)."""
    returned: list[PayoutHold]
    """Holds kept back earlier and released since (this one pays them)."""

    @property
    def net(self) -> int:
        """Đồng this settlement pays less because of holds (negative: it pays more)."""
        return sum(h.amount for h in self.withheld) - sum(h.amount for h in self.returned)

    async def mark(self, session: AsyncSession, settlement_id: uuid.UUID) -> None:
        """Record, in the settlement's transaction, that ``settlement_id`` kept back and paid these."""
        await mark_withheld(session, [h.id for h in self.withheld], settlement_id)
        await mark_returned(session, [h.id for h in self.returned], settlement_id)


async def holds_at_cutoff(session: AsyncSession, account_id: uuid.UUID, before: datetime) -> HoldsAtCutoff:
    """The holds a settlement of ``account_id`` with cut-off ``before`` withholds and returns (rows locked
    until the caller's transaction ends; mark them with :meth:`HoldsAtCutoff.mark` in it)."""
    return HoldsAtCutoff(
        withheld=await holds_to_withhold(session, account_id, before),
        returned=await holds_to_return(session, account_id, before),
    )


async def holds_kept_back(session: AsyncSession, account_id: uuid.UUID) -> int:
    """Đồng that earlier settlements of ``account_id`` kept back and none has paid yet. A settlement that
    pays an account's whole balance (merchants) subtracts this too: the money is still on the account."""
    total = await session.scalar(
        select(func.coalesce(func.sum(PayoutHold.amount), 0)).where(
            PayoutHold.account_id == account_id,
            PayoutHold.withheld_in.is_not(None),
            PayoutHold.returned_in.is_(None),
        )
    )
    return int(total or 0)
