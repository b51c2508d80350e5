"""The worker as operators run it: `hue worker` until SIGTERM, or inside the API in embedded mode."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from app.core.outbox import HANDLERS, Envelope, enqueue
from app.core.scheduler import default_leader_lock
from app.core.settings import load_settings
from app.main import create_app
from tests.conftest import Backend
from tests.core.outbox_support import database, message

HUE = Path(sys.executable).with_name("hue")


def test_the_worker_runs_in_process_in_development_only() -> None:
    assert load_settings({}).run_worker_in_process is True
    assert load_settings({"APP_ENV": "test", "RUN_WORKER_IN_PROCESS": "true"}).run_worker_in_process is False
    production = {
        "APP_ENV": "production",
        "DATABASE_URL": "postgresql://app@db/hue",
        **dict.fromkeys(("JWT_KEYS", "PIN_KEYS", "DATA_KEYS", "AUDIT_KEYS"), f"k1:{'p' * 40}"),
        "WEBHOOK_KEYS": f"k1:{'w' * 40}",
        "RECEIPT_KEYS": f"k1:{'r' * 40}",
        "SMS_GATEWAY_URL": "https://sms.internal/send",
        "BANK_API_URL": "https://bank.internal",
        "CARD_GATEWAY_URL": "https://api.gateway.internal",
        "CARD_GATEWAY_SECRET_KEY": "sk_live_x",
        "CARD_GATEWAY_WEBHOOK_SECRETS": f"k1:{'g' * 40}",
    }
    assert load_settings(production).run_worker_in_process is False


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_embedded_mode_delivers_and_schedules_inside_the_api(backend_env: Backend) -> None:
    topic = f"test.embedded.{uuid.uuid4().hex[:8]}"
    received: list[uuid.UUID] = []

    async def push(envelope: Envelope) -> None:
        received.append(envelope.id)

    HANDLERS.register(topic, push)
    settings = dataclasses.replace(backend_env.settings(), run_worker_in_process=True)
    app = create_app(settings)
    try:
        async with AsyncTestClient(app=app), database(backend_env) as db:
            async with db.transaction() as session:
                message_id = await enqueue(session, topic, {"title": "Hóa đơn điện đã thanh toán"})

            async def delivered() -> bool:
                return (await message(db, message_id)).status == "delivered"

            await wait_for(delivered)
            assert received == [message_id]

            async def leading() -> bool:
                return bool(app.state.worker.scheduler.is_active)

            await wait_for(leading)
        assert app.state.worker.scheduler.is_active is False, "shutdown released the scheduler"
    finally:
        HANDLERS.unregister(topic)


async def _read_until(stream: asyncio.StreamReader, event: str, timeout: float = 20.0) -> dict[str, Any]:
    async def scan() -> dict[str, Any]:
        while line := await stream.readline():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == event:
                return dict(record)
        raise AssertionError(f"the worker exited before logging {event}")

    return await asyncio.wait_for(scan(), timeout)


async def _start_worker(backend_env: Backend) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": backend_env.database_url,
        "LOG_LEVEL": "INFO",
        "LOG_JSON": "true",
    }
    if backend_env.redis_url:
        env["REDIS_URL"] = backend_env.redis_url
    return await asyncio.create_subprocess_exec(
        str(HUE), "worker", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )


@pytest.mark.postgres_only  # one process start is costly; SQLite's file lock is tested in-process
async def test_hue_worker_leads_works_the_outbox_and_stops_on_sigterm(backend_env: Backend) -> None:
    async with database(backend_env) as db:
        contender = default_leader_lock(db)
        # The worker takes the scheduler lock, works the outbox, and stops cleanly on SIGTERM.
        worker = await _start_worker(backend_env)
        assert worker.stdout is not None
        try:
            await _read_until(worker.stdout, "scheduler_active")
            assert not await contender.try_acquire(), "another process cannot lead while it does"
            async with db.transaction() as session:
                message_id = await enqueue(session, "test.nobody_handles_this", {"n": 1})
            failed = await _read_until(worker.stdout, "outbox_delivery_failed")
            assert failed["message_id"] == str(message_id)
            worker.send_signal(signal.SIGTERM)
            await _read_until(worker.stdout, "worker_stopped")
            assert await asyncio.wait_for(worker.wait(), 15) == 0
        finally:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
        row = await message(db, message_id)
        assert row.attempts == 1
        assert row.last_error == "no delivery handler is registered for topic 'test.nobody_handles_this'"
        assert await contender.try_acquire(), "a stopped worker leaves the scheduler lock free"
        await contender.release()
