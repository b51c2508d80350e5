"""Core's own scheduled jobs: forgetting delivered outbox messages and old job runs.

Other core mechanisms add their sweeps here the same way, e.g. the idempotency keys::

    @scheduled_job("idempotency.sweep", trigger=every(minutes=15))
    async def sweep_idempotency(ctx: JobContext) -> None:
        await sweep_idempotency_keys(ctx.db, now=ctx.scheduled_for)

(an interval trigger's period defaults to slices of its interval, so each quarter hour runs once).
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from app.core.outbox import purge_delivered
from app.core.scheduler import DAILY, JobContext, cron, purge_job_runs, scheduled_job

__all__ = ["JOB_RUNS_RETENTION", "purge_delivered_outbox", "purge_old_job_runs"]

log = structlog.get_logger("app.housekeeping")

JOB_RUNS_RETENTION = timedelta(days=90)


@scheduled_job("outbox.purge_delivered", trigger=cron(hour=3, minute=15), period=DAILY)
async def purge_delivered_outbox(ctx: JobContext) -> None:
    """Every night at 03:15 (Huế time): delete messages delivered more than
    ``OUTBOX_RETENTION_DAYS`` ago, with their delivery log. Dead letters stay until an admin acts."""
    deleted = await purge_delivered(
        ctx.db, older_than=timedelta(days=ctx.settings.outbox_retention_days), now=ctx.scheduled_for
    )
    log.info("outbox_purged", deleted=deleted)


@scheduled_job("scheduler.purge_job_runs", trigger=cron(hour=3, minute=25), period=DAILY)
async def purge_old_job_runs(ctx: JobContext) -> None:
    """Every night at 03:25: forget finished job runs older than 90 days."""
    deleted = await purge_job_runs(ctx.db, older_than=JOB_RUNS_RETENTION, now=ctx.scheduled_for)
    log.info("job_runs_purged", deleted=deleted)
