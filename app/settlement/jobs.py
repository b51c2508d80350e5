"""Scheduled settlement work: yesterday's settlements every night, and the payouts' outcomes."""

from __future__ import annotations

from datetime import timedelta

import structlog

from app.core.bank_transfer import get_bank_transfers
from app.core.scheduler import DAILY, JobContext, cron, every, scheduled_job
from app.settlement.service import resolve_payouts, settle_day

__all__ = ["resolve_payouts_job", "settle_yesterday"]

log = structlog.get_logger("app.settlement.jobs")


@scheduled_job("settlement.daily", trigger=cron(hour=0, minute=30), period=DAILY)
async def settle_yesterday(ctx: JobContext) -> None:
    """00:30 Huế: pay each biller and each agency's treasury what the previous day collected for them."""
    day = ctx.local_time.date() - timedelta(days=1)
    created = await settle_day(ctx.db, get_bank_transfers(), day)
    log.info("settlement_day_done", day=day.isoformat(), settlements=len(created))


@scheduled_job("settlement.resolve_payouts", trigger=every(minutes=15))
async def resolve_payouts_job(ctx: JobContext) -> None:
    """Every 15 minutes: learn the outcome of payouts the bank has not answered yet."""
    await resolve_payouts(ctx.db, get_bank_transfers())
