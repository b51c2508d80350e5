"""What the idempotency layer adds to one write transaction, on PostgreSQL.

    .venv/bin/python -m bench.idempotency [-n 2000] [--bursts 5]
        [--admin-url postgresql://root@127.0.0.1:5432/test]

Creates a scratch database, migrates it, and times four units of work on the same engine:

- ``plain``: BEGIN, one INSERT (the stand-in effect), COMMIT;
- ``plain+1``: the same with one extra trivial statement (``SELECT 1``): the price of one round trip;
- ``idempotent``: the same effect through :func:`app.core.idempotency.run_idempotent` with a new key
  (fingerprint, in-process check, claim function, effect, key row, commit);
- ``replay``: a key already stored (fingerprint, claim function, commit; no effect).

Prints statements per unit (counted by SQLAlchemy), mean and p50/p99 latency one at a time, Python CPU per
unit, and throughput with 16 concurrent tasks.

The database side alone, without Python: in a migrated database with
``CREATE TABLE bench_effects (id bigserial PRIMARY KEY, owner text NOT NULL, amount int NOT NULL)``, run
``pgbench -n -M prepared -c 16 -j 2 -T 5 -f bench/sql/idempotency_<name>.sql DB`` for ``effect`` (BEGIN,
INSERT, END), ``effect_plus2`` (two trivial extra statements) and ``effect_idem`` (claim function + key row).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from sqlalchemy import Column, Integer, MetaData, String, Table, event, insert, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Database
from app.core.idempotency import request_fingerprint, run_idempotent
from app.core.migrate import upgrade
from app.core.settings import load_settings

metadata = MetaData()
effects = Table(
    "bench_effects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner", String(100), nullable=False),
    Column("amount", Integer, nullable=False),
)
EFFECT = insert(effects)
ONE = text("SELECT 1")


async def _effect(session: AsyncSession) -> dict[str, Any]:
    connection = await session.connection()
    await connection.execute(EFFECT, {"owner": "bench", "amount": 1000})
    return {"ok": True, "amount": 1000}


_retried = 0


def _retrying(unit: Callable[[int], Awaitable[Any]]) -> Callable[[int], Awaitable[Any]]:
    """On a shared server another test may kill our connections (pg_terminate_backend): retry once."""

    async def run(i: int) -> Any:
        global _retried
        try:
            return await unit(i)
        except DBAPIError:
            _retried += 1
            return await unit(i)

    return run


def _units(db: Database) -> dict[str, Callable[[int], Awaitable[Any]]]:
    body = {"bill_ids": ["b1", "b2", "b3"], "amount": 90_000, "pin": "123456"}
    replay_key = "replay-key"

    async def plain(_: int) -> None:
        async with db.transaction() as session:
            await _effect(session)

    async def plain_plus_one(_: int) -> None:
        async with db.transaction() as session:
            connection = await session.connection()
            await connection.execute(ONE)
            await _effect(session)

    async def idempotent(i: int) -> None:
        fingerprint = request_fingerprint("POST", "/api/v1/payments", body)
        await run_idempotent(
            db, scope=f"user:{i % 500}", key=uuid.uuid4().hex, fingerprint=fingerprint, effect=_effect
        )

    async def replay(i: int) -> None:
        fingerprint = request_fingerprint("POST", "/api/v1/payments", body)
        stored = await run_idempotent(
            db, scope=f"user:{i % 16}", key=replay_key, fingerprint=fingerprint, effect=_effect
        )
        assert stored.replayed or i < 16

    units = {"plain": plain, "plain+1": plain_plus_one, "idempotent": idempotent, "replay": replay}
    return {name: _retrying(unit) for name, unit in units.items()}


async def _interleaved(units: dict[str, Callable[[int], Awaitable[Any]]], n: int) -> dict[str, Any]:
    """Each unit in turn, one request at a time, so that load from elsewhere hits them all alike."""
    latencies: dict[str, list[float]] = {name: [] for name in units}
    cpu: dict[str, float] = dict.fromkeys(units, 0.0)
    for i in range(n):
        for name, unit in units.items():
            cpu_started, started = time.process_time(), time.perf_counter()
            await unit(i)
            latencies[name].append(time.perf_counter() - started)
            cpu[name] += time.process_time() - cpu_started
    return {name: (sorted(latencies[name]), cpu[name] / n) for name in units}


async def _burst(unit: Callable[[int], Awaitable[Any]], n: int, tasks: int) -> float:
    counter = iter(range(n))

    async def worker(worker_id: int) -> None:
        for _ in counter:
            await unit(worker_id)  # a replaying client never overlaps itself

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(tasks)))
    return n / (time.perf_counter() - started)


async def _run(url: str, n: int, bursts: int) -> None:
    settings = load_settings({"APP_ENV": "test", "DATABASE_URL": url, "DB_POOL_SIZE": "16"})
    db = Database(settings)
    statements = 0

    @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
    def _count(*_args: Any) -> None:
        nonlocal statements
        statements += 1

    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    units = _units(db)
    counts: dict[str, float] = {}
    for name, unit in units.items():  # warm up (pool, prepared statements) and count statements
        statements = 0
        for i in range(200):
            await unit(i)
        counts[name] = statements / 200
    sequential = await _interleaved(units, n)
    rates: dict[str, list[float]] = {name: [] for name in units}
    for _ in range(bursts):
        for name, unit in units.items():
            rates[name].append(await _burst(unit, max(n // 4, 100), 16))
    print(f"{'unit':<12}{'stmts':>6}{'mean ms':>9}{'p50 ms':>8}{'p99 ms':>8}{'CPU ms':>8}{'req/s x16':>11}")
    for name in units:
        latencies, cpu = sequential[name]
        p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
        print(
            f"{name:<12}{counts[name]:>6.1f}{statistics.fmean(latencies) * 1000:>9.3f}"
            f"{p50 * 1000:>8.3f}{p99 * 1000:>8.3f}{cpu * 1000:>8.3f}{statistics.median(rates[name]):>11.0f}"
        )
    if _retried:
        print(f"({_retried} units retried after their connection was killed from outside)")
    print(
        f"(statements exclude BEGIN and COMMIT, one round trip each; latency and CPU over {n} interleaved "
        f"requests per unit; req/s: median of {bursts} interleaved bursts, 16 concurrent tasks)"
    )
    await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--admin-url", default="postgresql://root@127.0.0.1:5432/test")
    parser.add_argument("-n", type=int, default=3000, help="units per measurement")
    parser.add_argument("--bursts", type=int, default=5)
    args = parser.parse_args()
    name = f"hue_bench_idem_{uuid.uuid4().hex[:8]}"
    base = args.admin_url.rsplit("/", 1)[0]

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(args.admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        url = f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)
        upgrade(url)
        asyncio.run(_run(url, args.n, args.bursts))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
