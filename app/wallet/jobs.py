"""The ledger's background work: folding receive-only accounts' deltas and releasing expired holds."""

from __future__ import annotations

import structlog

from app.core.scheduler import JobContext, every, scheduled_job
from app.wallet import ledger

__all__ = ["fold_ledger_deltas", "release_expired_ledger_holds"]

log = structlog.get_logger("app.wallet.jobs")


@scheduled_job("ledger.fold_balance_deltas", trigger=every(minutes=1))
async def fold_ledger_deltas(ctx: JobContext) -> None:
    """Move committed balance deltas of receive-only accounts into their rows, so balance reads stay short.
    Balances are correct without it (row + unfolded deltas); folding only keeps reads cheap."""
    folded = await ledger.fold_balance_deltas(ctx.db)
    log.info("ledger_deltas_folded", folded=folded)


@scheduled_job("ledger.release_expired_holds", trigger=every(minutes=1))
async def release_expired_ledger_holds(ctx: JobContext) -> None:
    """Give back the money of holds whose two-step flow never finished."""
    released = await ledger.release_expired_holds(ctx.db)
    log.info("ledger_holds_released", released=released)
