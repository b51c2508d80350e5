"""The worker: the outbox dispatcher and the job scheduler, in ``hue worker`` or inside the API process.

``hue worker`` runs until SIGTERM or SIGINT, then stops claiming, lets deliveries and jobs in hand finish
(for a grace period) and releases the scheduler's leader lock. In embedded mode
(``settings.run_worker_in_process``) the API's lifespan starts and stops the same :class:`Worker`.
Handlers and jobs come from the registries, filled by importing ``app.tasks`` first.
"""

from __future__ import annotations

import asyncio
import signal

import structlog

from app.core.db import Database
from app.core.outbox import HANDLERS, Dispatcher, DispatcherConfig, HandlerRegistry, worker_name
from app.core.scheduler import JOBS, JobRegistry, JobScheduler, LeaderLock
from app.core.settings import Settings

__all__ = ["Worker", "run_worker"]

log = structlog.get_logger("app.worker")


class Worker:
    """One dispatcher and one (leader-elected) scheduler sharing a database handle."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        handlers: HandlerRegistry | None = None,
        jobs: JobRegistry | None = None,
        config: DispatcherConfig | None = None,
        leader: LeaderLock | None = None,
        leader_retry_seconds: float = 10.0,
        name: str | None = None,
    ) -> None:
        self.name = name or worker_name()
        self.dispatcher = Dispatcher(
            db,
            config=config or DispatcherConfig.from_settings(settings),
            handlers=handlers or HANDLERS,
            name=self.name,
        )
        self.scheduler = JobScheduler(
            db,
            settings,
            jobs=jobs or JOBS,
            leader=leader,
            runner=self.name,
            retry_seconds=leader_retry_seconds,
        )
        self._dispatching: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._dispatching is None:
            self._dispatching = asyncio.create_task(self.dispatcher.run(), name="outbox-dispatcher")
            await self.scheduler.start()
            log.info("worker_started", worker=self.name)

    async def stop(self, grace_seconds: float = 20.0) -> None:
        """Stop taking work; what is in hand gets ``grace_seconds`` to finish. A delivery cut short keeps
        its lease and is delivered again once the lease expires."""
        task, self._dispatching = self._dispatching, None
        if task is None:
            return
        self.dispatcher.stop()
        stopping_scheduler = asyncio.create_task(self.scheduler.stop(grace_seconds))
        done, _ = await asyncio.wait({task}, timeout=grace_seconds)
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=5)
        await stopping_scheduler
        log.info("worker_stopped", worker=self.name)


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Run a worker until SIGTERM/SIGINT (or ``stop`` is set), then shut down gracefully."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    db = Database(settings)
    worker = Worker(db, settings)
    try:
        await worker.start()
        await stop.wait()
        log.info("worker_stopping", worker=worker.name)
        await worker.stop()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await db.dispose()
