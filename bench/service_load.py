"""Load on the wallet below HTTP: N concurrent clients each running transfers, each in its own transaction.

Two paths:
- ``service``: the unit of work every module uses, ``Database.transaction()`` (a SQLAlchemy session) with
  ``ledger.post`` inside: SQLAlchemy's pool and session, then one round trip for the posting;
- ``sql``: the floor under it, an asyncpg pool with BEGIN / ``ledger_post(...)`` / COMMIT.

Run by ``python -m bench`` in a process of its own; prints one JSON line with the rate, latencies and the
CPU time this process spent per transfer (Python and kernel).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
from sqlalchemy import select

from app.core.db import Database
from app.core.settings import load_settings
from app.wallet import ledger
from app.wallet.ledger import Entry, credit, debit
from app.wallet.models import LedgerAccount
from bench.pg import HOT_WALLET_BALANCE

_POST = (
    "SELECT status, account_id, available, posted_at "
    "FROM ledger_post($1, $2, $3, $4, $5, $6::uuid[], $7::bigint[], $8, $9)"
)


async def run(
    url: str,
    path: str,
    scenario: str,
    clients: int,
    seconds: float,
    warmup: float,
    pool: int,
    pre_ping: bool = True,
) -> dict[str, float]:
    settings = load_settings({"DATABASE_URL": url, "DB_POOL_SIZE": str(pool), "LOG_LEVEL": "WARNING"})
    db = Database(settings)
    if not pre_ping:
        db.engine.sync_engine.pool._pre_ping = False  # what the pool costs with and without its ping
    raw_pool = (
        await asyncpg.create_pool(
            url.replace("postgresql+asyncpg://", "postgresql://"), min_size=pool, max_size=pool
        )
        if path == "sql"
        else None
    )
    async with db.read() as session:
        wallets = list(
            await session.scalars(
                select(LedgerAccount.id).where(
                    LedgerAccount.type == "citizen_wallet", LedgerAccount.balance >= HOT_WALLET_BALANCE
                )
            )
        )
        shop = await session.scalar(select(LedgerAccount.id).where(LedgerAccount.type == "merchant_payable"))
    assert shop is not None
    latencies: list[float] = []
    state = {"measuring": False, "stop": False}

    async def via_service(payer: uuid.UUID, payee: uuid.UUID, amount: int) -> None:
        async with db.transaction() as session:
            await ledger.post(session, Entry("transfer", [debit(payer, amount), credit(payee, amount)]))

    async def via_sql(payer: uuid.UUID, payee: uuid.UUID, amount: int) -> None:
        assert raw_pool is not None
        async with raw_pool.acquire() as conn, conn.transaction():
            status = await conn.fetchval(
                _POST, uuid.uuid4(), "transfer", None, "", "{}", [payer, payee], [-amount, amount], None, None
            )
            assert status == "ok", status

    transfer: Callable[[uuid.UUID, uuid.UUID, int], Awaitable[None]] = (
        via_sql if path == "sql" else via_service
    )

    async def client(seed: int) -> None:
        rnd = random.Random(seed)
        while not state["stop"]:
            payer = rnd.choice(wallets)
            payee = shop if scenario == "hot" else rnd.choice(wallets)
            if payee == payer:
                continue
            amount = rnd.randint(1_000, 500_000)
            started = time.perf_counter()
            await transfer(payer, payee, amount)
            if state["measuring"]:
                latencies.append(time.perf_counter() - started)

    tasks = [asyncio.create_task(client(i)) for i in range(clients)]
    await asyncio.sleep(warmup)
    state["measuring"] = True
    began, cpu_began = time.perf_counter(), time.process_time()
    await asyncio.sleep(seconds)
    state["measuring"] = False
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu_began
    state["stop"] = True
    await asyncio.gather(*tasks)
    await db.dispose()
    if raw_pool is not None:
        await raw_pool.close()
    latencies.sort()
    n = len(latencies)
    return {
        "count": n,
        "rate": n / elapsed,
        "p50_ms": latencies[n // 2] * 1000 if n else 0.0,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else 0.0,
        "cpu_ms": cpu / n * 1000 if n else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--path", choices=["service", "sql"], default="service")
    parser.add_argument("--scenario", choices=["transfer", "hot"], default="transfer")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--pool", type=int, default=16)
    parser.add_argument("--no-pre-ping", action="store_true", help="disable SQLAlchemy's pool pre-ping")
    args = parser.parse_args()
    result = asyncio.run(
        run(
            args.url,
            args.path,
            args.scenario,
            args.clients,
            args.seconds,
            args.warmup,
            args.pool,
            pre_ping=not args.no_pre_ping,
        )
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
