"""Core's own scheduled jobs: forgetting delivered outbox messages, old job runs and expired idempotency
keys, and anchoring the audit chain's head outside the database every day."""

from __future__ import annotations

from datetime import timedelta

import structlog

from app.core.audit import anchor_audit_head
from app.core.idempotency import sweep_idempotency_keys
from app.core.outbox import purge_delivered
from app.core.scheduler import DAILY, JobContext, cron, every, purge_job_runs, scheduled_job

__all__ = [
    "JOB_RUNS_RETENTION",
    "anchor_audit_chain",
    "purge_delivered_outbox",
    "purge_old_job_runs",
    "sweep_idempotency",
]

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


@scheduled_job("idempotency.sweep", trigger=every(minutes=15))
async def sweep_idempotency(ctx: JobContext) -> None:
    """Every quarter hour: forget Idempotency-Keys older than 24 hours."""
    deleted = await sweep_idempotency_keys(ctx.db, ctx.scheduled_for)
    log.info("idempotency_keys_swept", deleted=deleted)


@scheduled_job("audit.anchor_head", trigger=cron(hour=0, minute=5), period=DAILY)
async def anchor_audit_chain(ctx: JobContext) -> None:
    """Every night at 00:05: write the audit chain's head outside the database (after verifying it)."""
    await anchor_audit_head(ctx.db, ctx.settings, label="daily")
