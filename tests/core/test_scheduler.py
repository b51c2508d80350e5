"""Scheduled jobs (issue 3, item 5): one active scheduler among several workers, each period run once.

Periods are business periods in Asia/Ho_Chi_Minh (UTC+7): a daily job's period is the local date.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.date import DateTrigger
from sqlalchemy import select, text

from app.core.db import Database, utcnow
from app.core.models import JobRun
from app.core.scheduler import (
    DAILY,
    HOURLY,
    JOBS,
    LOCAL_TZ,
    MONTHLY,
    AlwaysLeader,
    JobContext,
    JobRegistry,
    JobScheduler,
    ScheduledJob,
    default_leader_lock,
    every,
    per_interval,
    register_job,
    run_job_once,
)
from tests.conftest import Backend
from tests.core.outbox_support import database


def test_periods_are_local_to_hue() -> None:
    evening_utc = datetime(2026, 11, 23, 17, 30, tzinfo=UTC)  # 00:30 on the 24th in Huế
    local = evening_utc.astimezone(LOCAL_TZ)
    assert DAILY(local) == "2026-11-24"
    assert HOURLY(local) == "2026-11-24T00"
    assert MONTHLY(datetime(2026, 11, 30, 17, 0, tzinfo=UTC).astimezone(local.tzinfo)) == "2026-12"
    quarter = per_interval(900)
    assert quarter(local.replace(minute=44, second=59)) == "2026-11-24T00:30:00"
    assert quarter(local.replace(minute=45)) == "2026-11-24T00:45:00"
    with pytest.raises(ValueError):
        per_interval(7 * 3600)


def test_core_jobs_are_declared_in_code() -> None:
    import app.tasks  # noqa: F401

    names = {job.name for job in JOBS.all()}
    assert {"outbox.purge_delivered", "scheduler.purge_job_runs"} <= names
    with pytest.raises(ValueError):
        register_job("outbox.purge_delivered", _never, trigger=every(hours=1))


async def _never(_ctx: JobContext) -> None:
    raise AssertionError("not run")


async def job_runs(db: Database) -> list[JobRun]:
    async with db.read() as session:
        return list((await session.execute(select(JobRun).order_by(JobRun.started_at))).scalars())


async def test_a_period_runs_once_when_two_schedulers_fire_it_together(backend_env: Backend) -> None:
    runs: list[str] = []

    async def settle_day(ctx: JobContext) -> None:
        runs.append(ctx.period_key)

    job = ScheduledJob("test.settle_day", settle_day, every(days=1), DAILY)
    both_ready = asyncio.Barrier(2)

    async def together(_name: str, _period: str) -> None:
        await asyncio.wait_for(both_ready.wait(), 5)

    settings = backend_env.settings()
    fire_time = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)  # 03:00 on the 24th, Huế time
    # Two processes' worth of connections: each scheduler has its own Database.
    async with database(backend_env) as db_a, database(backend_env) as db_b:
        ran = await asyncio.gather(
            run_job_once(db_a, settings, job, fire_time, runner="a", before_claim=together),
            run_job_once(db_b, settings, job, fire_time, runner="b", before_claim=together),
        )
        assert sorted(ran) == [False, True]
        assert runs == ["2026-11-24"]

        # A restart (or a takeover) later the same local day does not run it again...
        same_day = fire_time + timedelta(hours=15)
        assert not await run_job_once(db_a, settings, job, same_day, runner="restarted")
        # ...the next local day runs.
        next_day = fire_time + timedelta(hours=22)  # 01:00 on the 25th
        assert await run_job_once(db_a, settings, job, next_day, runner="restarted")
        rows = await job_runs(db_a)
    assert runs == ["2026-11-24", "2026-11-25"]
    assert [(r.period_key, r.status) for r in rows] == [
        ("2026-11-24", "succeeded"),
        ("2026-11-25", "succeeded"),
    ]
    assert rows[0].runner in {"a", "b"}
    assert rows[0].finished_at is not None


@pytest.mark.sqlite_only
async def test_a_failed_run_is_recorded_and_not_repeated_in_its_period(backend_env: Backend) -> None:
    attempts = 0

    async def report(_ctx: JobContext) -> None:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("reporting database unreachable")

    job = ScheduledJob("test.report", report, every(hours=1), HOURLY)
    settings = backend_env.settings()
    now = utcnow()
    async with database(backend_env) as db:
        assert await run_job_once(db, settings, job, now, runner="w")
        assert not await run_job_once(db, settings, job, now, runner="w")
        (row,) = await job_runs(db)
    assert attempts == 1
    assert row.status == "failed"
    assert row.error == "RuntimeError: reporting database unreachable"


async def wait_until(predicate: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_two_schedulers_started_at_once_one_leads_and_a_period_runs_once(
    backend_env: Backend,
) -> None:
    ran_by: list[str] = []

    async def tick(ctx: JobContext) -> None:
        ran_by.append(ctx.period_key)

    jobs = JobRegistry()
    # Fires every 0.1 s, but every firing belongs to the same period.
    register_job("test.tick", tick, trigger=every(seconds=0.1), period=lambda _local: "p1", registry=jobs)
    settings = backend_env.settings()
    async with database(backend_env) as db_a, database(backend_env) as db_b:
        first = JobScheduler(db_a, settings, jobs=jobs, runner="a", retry_seconds=0.1)
        second = JobScheduler(db_b, settings, jobs=jobs, runner="b", retry_seconds=0.1)
        await asyncio.gather(first.start(), second.start())
        await wait_until(lambda: first.is_active or second.is_active)
        await asyncio.sleep(0.35)
        assert [first.is_active, second.is_active].count(True) == 1, "exactly one scheduler leads"
        leader, follower = (first, second) if first.is_active else (second, first)

        # The leader goes away: the other takes over within its retry interval, and does not run
        # the period again.
        await leader.stop()
        await wait_until(lambda: follower.is_active)
        await asyncio.sleep(0.3)
        assert not leader.is_active
        await follower.stop()
        rows = await job_runs(db_a)
        assert ran_by == ["p1"]
        assert [(r.job_name, r.period_key, r.status) for r in rows] == [("test.tick", "p1", "succeeded")]

        # Even with leadership failing (a stalled leader replaced mid-period: both active at once), the
        # job_runs row alone keeps the period to one run.
        ran_by.clear()
        jobs.remove("test.tick")
        register_job("test.tock", tick, trigger=every(seconds=0.1), period=lambda _l: "p2", registry=jobs)
        both = [
            JobScheduler(db, settings, jobs=jobs, leader=AlwaysLeader(), runner=name)
            for db, name in ((db_a, "a"), (db_b, "b"))
        ]
        await asyncio.gather(*(s.start() for s in both))
        await wait_until(lambda: all(s.is_active for s in both))
        await asyncio.sleep(0.35)
        await asyncio.gather(*(s.stop() for s in both))
    assert ran_by == ["p2"]


@pytest.mark.sqlite_only
async def test_the_period_is_that_of_the_scheduled_time(backend_env: Backend) -> None:
    seen: list[JobContext] = []

    async def record(ctx: JobContext) -> None:
        seen.append(ctx)

    run_date = utcnow().replace(microsecond=0) + timedelta(seconds=1)
    jobs = JobRegistry()
    register_job("test.once", record, trigger=DateTrigger(run_date=run_date), period=DAILY, registry=jobs)
    async with database(backend_env) as db:
        scheduler = JobScheduler(db, backend_env.settings(), jobs=jobs, leader=AlwaysLeader())
        await scheduler.start()
        await wait_until(lambda: bool(seen), timeout=5)
        await scheduler.stop()
    (ctx,) = seen
    assert ctx.scheduled_for == run_date, "the job is told when it was due, not when it started"
    assert ctx.period_key == run_date.astimezone(ctx.local_time.tzinfo).strftime("%Y-%m-%d")


@pytest.mark.sqlite_only
async def test_stopping_lets_short_jobs_finish_and_interrupts_long_ones(backend_env: Backend) -> None:
    started: set[str] = set()

    async def long_job(ctx: JobContext) -> None:
        started.add(ctx.name)
        await asyncio.sleep(30)

    async def short_job(ctx: JobContext) -> None:
        started.add(ctx.name)
        await asyncio.sleep(0.3)

    jobs = JobRegistry()
    for name, func in (("test.long", long_job), ("test.short", short_job)):
        register_job(name, func, trigger=every(seconds=0.1), period=lambda _l: "p", registry=jobs)
    async with database(backend_env) as db:
        scheduler = JobScheduler(db, backend_env.settings(), jobs=jobs, leader=AlwaysLeader())
        await scheduler.start()
        await wait_until(lambda: started == {"test.long", "test.short"})
        await scheduler.stop(grace_seconds=1.0)
        rows = {row.job_name: row.status for row in await job_runs(db)}
    assert rows == {"test.long": "interrupted", "test.short": "succeeded"}


@pytest.mark.postgres_only
async def test_the_advisory_lock_dies_with_its_session(backend_env: Backend) -> None:
    async with database(backend_env) as db_a, database(backend_env) as db_b:
        holder, contender = default_leader_lock(db_a), default_leader_lock(db_b)
        assert await holder.try_acquire()
        assert await holder.still_held()
        assert not await contender.try_acquire()
        # The holder's session ends (its process was killed, or the network cut it).
        async with db_b.engine.connect() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
                )
            )
        assert not await holder.still_held(), "the old leader learns it no longer leads"
        assert await contender.try_acquire()
        assert await contender.still_held()
        await contender.release()
        await holder.release()
