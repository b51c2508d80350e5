"""Scheduled jobs: declared in code, run by one active scheduler, each period at most once.

APScheduler 3.11's job stores cannot be shared between processes, so jobs live in code (a registry filled
by :func:`scheduled_job` / :func:`register_job` at import, see ``app/tasks.py``) and APScheduler keeps them
in memory. Several workers may run: only the one holding the leader lock schedules anything (PostgreSQL: a
session-level advisory lock held by the scheduler's own connection; SQLite: an exclusive lock on a file
beside the database), and the others try again every few seconds, so one takes over when the leader dies.

Leadership alone is not enough (a leader can stall and be replaced mid-run, a restart can fire the same
period again), so every run first inserts and commits a ``job_runs`` row unique per (job, period): the
period runs only for whoever inserted it. A period is the local period (Asia/Ho_Chi_Minh) containing the
run's *scheduled* time, e.g. the local date for a daily job, so a run that starts a little late still
belongs to its own day. A failed or interrupted run stays recorded as such and is not repeated in its
period: jobs are written to catch up on whatever earlier periods left undone.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol
from zoneinfo import ZoneInfo

import structlog
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import delete, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.db import Database, new_id, utcnow
from app.core.models import JobRun
from app.core.settings import Settings

__all__ = [
    "DAILY",
    "HOURLY",
    "JOBS",
    "LOCAL_TZ",
    "MONTHLY",
    "AlwaysLeader",
    "FileLeaderLock",
    "JobContext",
    "JobRegistry",
    "JobScheduler",
    "LeaderLock",
    "PostgresLeaderLock",
    "ScheduledJob",
    "cron",
    "default_leader_lock",
    "every",
    "per_interval",
    "purge_job_runs",
    "register_job",
    "run_job_once",
    "scheduled_job",
]

log = structlog.get_logger("app.scheduler")

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
"""Business time: periods, cron fields and days are all taken here."""


# --- periods and triggers ---------------------------------------------------------------------------------

Period = Callable[[datetime], str]
"""Maps a run's scheduled time (aware, in Asia/Ho_Chi_Minh) to the key of the period it belongs to."""


def DAILY(local: datetime) -> str:  # noqa: N802 - reads as a constant at the call site
    """The local date: ``2026-11-24``."""
    return local.strftime("%Y-%m-%d")


def HOURLY(local: datetime) -> str:  # noqa: N802
    """The local hour: ``2026-11-24T07``."""
    return local.strftime("%Y-%m-%dT%H")


def MONTHLY(local: datetime) -> str:  # noqa: N802
    """The local month: ``2026-11``."""
    return local.strftime("%Y-%m")


def per_interval(seconds: float) -> Period:
    """Consecutive slices of ``seconds`` counted from local midnight: ``2026-11-24T07:15:00`` for the
    quarter hour starting 07:15 when ``seconds`` is 900. Use it with an interval trigger of the same size."""
    if seconds <= 0 or 86400 % seconds:
        raise ValueError("an interval period must divide a day evenly")

    def period(local: datetime) -> str:
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        elapsed = (local - midnight).total_seconds()
        start = midnight + timedelta(seconds=(elapsed // seconds) * seconds)
        return start.strftime("%Y-%m-%dT%H:%M:%S")

    return period


def cron(**fields: Any) -> CronTrigger:
    """A cron trigger read in Asia/Ho_Chi_Minh (``cron(hour=3, minute=15)`` = 03:15 local every day)."""
    return CronTrigger(timezone=LOCAL_TZ, **fields)


def every(**interval: float) -> IntervalTrigger:
    """An interval trigger (``every(minutes=15)``)."""
    return IntervalTrigger(timezone=LOCAL_TZ, **interval)


# --- the registry -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a job receives."""

    name: str
    period_key: str
    scheduled_for: datetime
    """The run's scheduled time (UTC, aware); ``local_time`` gives it in Asia/Ho_Chi_Minh."""
    db: Database
    settings: Settings

    @property
    def local_time(self) -> datetime:
        return self.scheduled_for.astimezone(LOCAL_TZ)


JobFunc = Callable[[JobContext], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    name: str
    func: JobFunc
    trigger: Any
    """An APScheduler 3 trigger; build it with :func:`cron` or :func:`every` so it reads local time."""
    period: Period
    misfire_grace_seconds: int = 600
    """A run that could not start within this long after its time is skipped (the next one catches up)."""


class JobRegistry:
    """Jobs by name. The process-wide one is :data:`JOBS`; tests build their own."""

    def __init__(self) -> None:
        self._jobs: dict[str, ScheduledJob] = {}

    def add(self, job: ScheduledJob) -> None:
        existing = self._jobs.get(job.name)
        if existing is not None and existing.func is not job.func:
            raise ValueError(f"a scheduled job named {job.name!r} already exists")
        self._jobs[job.name] = job

    def remove(self, name: str) -> None:
        self._jobs.pop(name, None)

    def get(self, name: str) -> ScheduledJob | None:
        return self._jobs.get(name)

    def all(self) -> list[ScheduledJob]:
        return [self._jobs[name] for name in sorted(self._jobs)]


JOBS = JobRegistry()
"""The process's scheduled jobs; modules register theirs at import (see ``app/tasks.py``)."""


def _default_period(trigger: Any) -> Period:
    if isinstance(trigger, IntervalTrigger):
        return per_interval(trigger.interval_length)
    raise ValueError("give the period of a job whose trigger is not an interval (DAILY, HOURLY, ...)")


def register_job(
    name: str,
    func: JobFunc,
    *,
    trigger: Any,
    period: Period | None = None,
    misfire_grace_seconds: int = 600,
    registry: JobRegistry | None = None,
) -> ScheduledJob:
    """Declare a job: ``func`` runs at ``trigger``'s times, at most once per ``period`` (default for an
    interval trigger: slices of its interval)."""
    if not name or len(name) > 100:
        raise ValueError("a job name is 1-100 characters")
    job = ScheduledJob(name, func, trigger, period or _default_period(trigger), misfire_grace_seconds)
    (registry or JOBS).add(job)
    return job


def scheduled_job(
    name: str,
    *,
    trigger: Any,
    period: Period | None = None,
    misfire_grace_seconds: int = 600,
    registry: JobRegistry | None = None,
) -> Callable[[JobFunc], JobFunc]:
    """Decorator form of :func:`register_job`::

    @scheduled_job("outbox.purge_delivered", trigger=cron(hour=3, minute=15), period=DAILY)
    async def purge(ctx: JobContext) -> None: ...
    """

    def decorate(func: JobFunc) -> JobFunc:
        register_job(
            name,
            func,
            trigger=trigger,
            period=period,
            misfire_grace_seconds=misfire_grace_seconds,
            registry=registry,
        )
        return func

    return decorate


# --- one run ----------------------------------------------------------------------------------------------

BeforeClaimHook = Callable[[str, str], Awaitable[None]]


async def _finish_run(db: Database, run_id: Any, status: str, error: str | None) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(status=status, finished_at=utcnow(), error=error[:2000] if error else None)
        )


async def run_job_once(
    db: Database,
    settings: Settings,
    job: ScheduledJob,
    scheduled_for: datetime,
    *,
    runner: str,
    before_claim: BeforeClaimHook | None = None,
) -> bool:
    """Run ``job`` for the period of ``scheduled_for`` unless that period already ran (or is running)
    somewhere; returns whether this call ran it. The period is claimed by a committed ``job_runs`` row
    before the job starts."""
    period_key = job.period(scheduled_for.astimezone(LOCAL_TZ))
    if before_claim is not None:
        await before_claim(job.name, period_key)
    async with db.transaction() as session:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        run_id = (
            await session.execute(
                insert(JobRun)
                .values(
                    id=new_id(),
                    job_name=job.name,
                    period_key=period_key,
                    status="running",
                    scheduled_for=scheduled_for,
                    started_at=utcnow(),
                    runner=runner[:100],
                )
                .on_conflict_do_nothing(index_elements=["job_name", "period_key"])
                .returning(JobRun.id)
            )
        ).scalar_one_or_none()
    fields = {"job": job.name, "period": period_key}
    if run_id is None:
        log.info("job_period_already_ran", **fields)
        return False
    log.info("job_started", **fields)
    context = JobContext(job.name, period_key, scheduled_for, db, settings)
    try:
        await job.func(context)
    except asyncio.CancelledError:
        await asyncio.shield(_finish_run(db, run_id, "interrupted", "stopped before the job finished"))
        log.warning("job_interrupted", **fields)
        raise
    except Exception as exc:
        await _finish_run(db, run_id, "failed", f"{type(exc).__name__}: {exc}")
        log.exception("job_failed", **fields)
        return True
    await _finish_run(db, run_id, "succeeded", None)
    log.info("job_succeeded", **fields)
    return True


async def purge_job_runs(db: Database, *, older_than: timedelta, now: datetime | None = None) -> int:
    """Forget finished runs whose period started more than ``older_than`` ago."""
    cutoff = (now or utcnow()) - older_than
    async with db.transaction() as session:
        result = await session.execute(
            delete(JobRun)
            .where(JobRun.scheduled_for < cutoff, JobRun.status != "running")
            .returning(JobRun.id)
        )
        return len(result.all())


# --- who leads --------------------------------------------------------------------------------------------


class LeaderLock(Protocol):
    """At most one holder across every process sharing the database."""

    async def try_acquire(self) -> bool: ...

    async def still_held(self) -> bool: ...

    async def release(self) -> None: ...


class AlwaysLeader:
    """No election (an in-memory database: there is only this process)."""

    async def try_acquire(self) -> bool:
        return True

    async def still_held(self) -> bool:
        return True

    async def release(self) -> None:
        return None


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class PostgresLeaderLock:
    """A session-level advisory lock held by a connection of its own, kept for as long as we lead.

    The lock dies with its session, so a killed worker releases it; a scheduler that loses its connection
    learns it at the next :meth:`still_held` and stops scheduling.
    """

    def __init__(self, engine: AsyncEngine, name: str = "hue-citizen:scheduler") -> None:
        self._engine = engine
        self.key = _lock_key(name)
        self._conn: AsyncConnection | None = None

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            conn = await self._engine.connect()
            self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    async def try_acquire(self) -> bool:
        conn = await self._connection()
        try:
            got = await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})
        except Exception:
            await self._drop()
            raise
        if not got:
            await self._drop()  # do not keep a connection while waiting
        return bool(got)

    async def still_held(self) -> bool:
        if self._conn is None:
            return False
        try:
            held = await self._conn.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND pid = pg_backend_pid() AND objsubid = 1 "
                    "AND classid::bigint = :high AND objid::bigint = :low"
                ),
                {"high": (self.key >> 32) & 0xFFFFFFFF, "low": self.key & 0xFFFFFFFF},
            )
        except Exception:
            await self._drop()
            return False
        return bool(held)

    async def release(self) -> None:
        if self._conn is None:
            return
        try:
            await self._conn.scalar(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        except Exception:
            log.warning("scheduler_unlock_failed")
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:
                log.warning("scheduler_lock_connection_close_failed")


class FileLeaderLock:
    """An exclusive ``flock`` on a file beside the SQLite database: one leader among the processes of this
    machine sharing that file. The kernel drops it when the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    async def try_acquire(self) -> bool:
        import fcntl

        if self._file is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    async def still_held(self) -> bool:
        return self._file is not None

    async def release(self) -> None:
        import fcntl

        handle, self._file = self._file, None
        if handle is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()


def default_leader_lock(db: Database) -> LeaderLock:
    """The leader lock fitting ``db``: an advisory lock on PostgreSQL, a file lock beside a SQLite file."""
    if not db.is_sqlite:
        return PostgresLeaderLock(db.engine)
    database = db.engine.url.database
    if not database or database == ":memory:":
        return AlwaysLeader()
    return FileLeaderLock(Path(database).with_name(Path(database).name + ".scheduler.lock"))


# --- the scheduler ----------------------------------------------------------------------------------------

_scheduled_for: contextvars.ContextVar[datetime | None] = contextvars.ContextVar(
    "scheduled_for", default=None
)


class _ScheduledTimeExecutor(AsyncIOExecutor):  # type: ignore[misc]
    """APScheduler's asyncio executor, telling each run its scheduled time (a context variable copied
    into the run's task), so the period is that of the schedule and not of a late start."""

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        token = _scheduled_for.set(run_times[-1] if run_times else None)
        try:
            super()._do_submit_job(job, run_times)
        finally:
            _scheduled_for.reset(token)


class JobScheduler:
    """Runs the registered jobs while this process holds the leader lock."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        jobs: JobRegistry | None = None,
        leader: LeaderLock | None = None,
        runner: str | None = None,
        retry_seconds: float = 10.0,
        before_claim: BeforeClaimHook | None = None,
    ) -> None:
        from app.core.outbox import worker_name

        self.db = db
        self.settings = settings
        self.jobs = jobs or JOBS
        self.leader = leader or default_leader_lock(db)
        self.runner = runner or worker_name()
        self.retry_seconds = retry_seconds
        self.before_claim = before_claim
        self._aps: AsyncIOScheduler | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._running: set[asyncio.Task[Any]] = set()

    @property
    def is_active(self) -> bool:
        """Whether this scheduler currently leads (and so schedules the jobs)."""
        return self._aps is not None

    async def start(self) -> None:
        """Begin contending for leadership; returns at once (the first attempt happens right away)."""
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self._lead(), name="scheduler-leader")

    async def _lead(self) -> None:
        while not self._stop.is_set():
            try:
                if self._aps is None:
                    if await self.leader.try_acquire():
                        self._start_jobs()
                elif not await self.leader.still_held():
                    log.error("scheduler_leadership_lost", runner=self.runner)
                    self._stop_jobs()
                    await self.leader.release()
            except Exception:
                log.exception("scheduler_leader_check_failed")
                self._stop_jobs()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.retry_seconds)

    def _start_jobs(self) -> None:
        aps = AsyncIOScheduler(
            timezone=LOCAL_TZ,
            executors={"default": _ScheduledTimeExecutor()},
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        for job in self.jobs.all():
            aps.add_job(
                self._fire,
                trigger=job.trigger,
                args=[job.name],
                id=job.name,
                name=job.name,
                misfire_grace_time=job.misfire_grace_seconds,
            )
        aps.start()
        self._aps = aps
        log.info("scheduler_active", runner=self.runner, jobs=[job.name for job in self.jobs.all()])

    def _stop_jobs(self) -> None:
        """Stop scheduling at once; APScheduler's executor cancels the runs in progress (their periods
        are recorded as interrupted)."""
        aps, self._aps = self._aps, None
        if aps is not None and aps.running:
            aps.shutdown(wait=False)

    async def _fire(self, name: str) -> None:
        job = self.jobs.get(name)
        if job is None:
            return
        scheduled_for = _scheduled_for.get() or utcnow()
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            await run_job_once(
                self.db,
                self.settings,
                job,
                scheduled_for,
                runner=self.runner,
                before_claim=self.before_claim,
            )
        finally:
            if task is not None:
                self._running.discard(task)

    async def stop(self, grace_seconds: float = 20.0) -> None:
        """Stop scheduling, give running jobs ``grace_seconds`` to finish (then interrupt them), and
        release the leader lock."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._aps is not None and self._aps.running:
            self._aps.pause()  # no new runs; the ones in progress go on
        if self._running:
            _, pending = await asyncio.wait(set(self._running), timeout=grace_seconds)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        self._stop_jobs()
        try:
            await self.leader.release()
        except Exception:
            log.exception("scheduler_release_failed")
