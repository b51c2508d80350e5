"""One-tap payments (3 bills of 3 billers) per second and p99 through HTTP on PostgreSQL, next to pgbench.

    PYTHONPATH=. .venv/bin/python -m bench.one_tap [--clients 16,64] [--seconds 8] [--runs 1] [--keep]

For each client count, in the same run: ``pgbench -n -M prepared -f ../shared/bench/one_tap.sql -c N -j 2
-T S`` against a fresh database loaded with ``schema.sql``, then the app: ``hue serve`` (granian, two
API processes, no in-process worker, Redis stores, the payments rate limit lifted) on a fresh migrated
database seeded with 128 verified citizens (PIN set, a real session each, a funded wallet), the Huế sandbox
billers and enough unpaid bills; N concurrent HTTP clients each ``POST /api/v1/payments`` three bills of three
billers (electricity, water, tuition: limit-exempt) with the PIN and a fresh Idempotency-Key, as fast as
answers come. Reported: payments/s (201 answers), p50/p99 latency, refusals, and the ratio to pgbench's TPS.
At the end every bench payment is checked: one journal entry per payment, every bill paid once, the books
balanced.

``run(clients, seconds, runs)`` / ``main(argv)`` are for ``bench/__main__.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec

from app.bills import service as bills_service
from app.bills.demo import demo_data
from app.bills.schemas import BillerIn
from app.core.db import Database
from app.core.migrate import upgrade
from app.core.settings import load_settings
from app.main import create_app
from bench.http_client import Keepalive
from bench.http_load import WORKERS
from bench.measure import (
    CORES,
    cpu_bound,
    services_cpu_ms,
    services_cpu_seconds,
    statements,
    tree_cpu_seconds,
)
from bench.payers import seed_payer
from bench.pg import (
    checkpoint,
    create_database,
    drop_database,
    dsn_for,
    load_reference_schema,
    pgbench,
    sqlalchemy_url,
)

REDIS_URL = os.environ.get("BENCH_REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))

ROOT = Path(__file__).resolve().parents[1]
USERS = 128
PIN = "246810"
BILL_AMOUNT = 10_000
BILLERS = ("EVN_CPC_HUE", "HUEWACO", "MN_SEN_HONG")


@dataclass
class Seeded:
    tokens: list[str]
    bill_groups: Iterator[tuple[str, str, str]]
    """Each group is paid at most once: the warm-up and the measured run share the iterator."""


def _cccd(n: int) -> str:
    return f"046090{n:06d}"


async def _seed(database: str, groups: int) -> Seeded:
    settings = load_settings(
        {"DATABASE_URL": sqlalchemy_url(database), "APP_ENV": "test", "LOG_LEVEL": "WARNING"}
    )
    db: Database = create_app(settings).state.db  # create_app installs identity on its database
    tokens: list[str] = []
    try:
        for code, declaration in demo_data()["billers"].items():
            await bills_service.put_biller(db, code, msgspec.convert(declaration, BillerIn), production=False)
        for n in range(USERS):
            async with db.transaction() as session:
                pair = await seed_payer(
                    session, phone=f"+8490{n:07d}", cccd=_cccd(n), full_name=f"Người thử {n}", pin=PIN
                )
                tokens.append(pair.access_token)
    finally:
        await db.dispose()
    conn = await asyncpg.connect(dsn_for(database))
    try:
        ids: dict[str, list[str]] = {}
        for code in BILLERS:
            biller_id = await conn.fetchval("SELECT id FROM billers WHERE code = $1", code)
            rows = await conn.fetch(
                """
                INSERT INTO bills (id, created_at, updated_at, biller_id, customer_code, external_id, period,
                                   amount, due_date, status, customer_name, description, source)
                SELECT gen_random_uuid(), now(), now(), $1, 'BENCH' || g, 'bench-' || g, '2026-11', $2,
                       current_date + 10, 'unpaid', 'Khách hàng thử', NULL, 'batch'
                  FROM generate_series(1, $3) g
                RETURNING id
                """,
                biller_id,
                BILL_AMOUNT,
                groups,
            )
            ids[code] = [str(r["id"]) for r in rows]
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    bill_groups = list(zip(*(ids[code] for code in BILLERS), strict=True))
    return Seeded(tokens, iter(bill_groups))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _serve(database: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": sqlalchemy_url(database),
        "APP_ENV": "development",
        "RUN_WORKER_IN_PROCESS": "false",
        "RATE_LIMIT_PAYMENTS": "100000000/60",
        "RATE_LIMIT_DEFAULT": "100000000/60",
        "LOG_LEVEL": "WARNING",
        "DB_POOL_SIZE": "8",
        "VAR_DIR": str(Path(os.environ.get("TMPDIR", "/tmp")) / f"hue-bench-{port}"),
        # As in production: the counters (PIN tries, rate limits) and the inbox's channels on Redis, shared
        # by the API processes.
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": f"bench{port}:",
    }
    hue = shutil.which("hue", path=str(Path(sys.executable).parent)) or "hue"
    log = open(_server_log(port), "wb")  # noqa: SIM115 - the child process writes it until it exits
    return subprocess.Popen(
        [hue, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _server_log(port: int) -> Path:
    """Where the bench's server writes its log (errors only), for a look after a run with refusals."""
    return Path(os.environ.get("TMPDIR", "/tmp")) / f"hue-bench-one-tap-{port}.log"


async def _wait_ready(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as http:
        for _ in range(200):
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the app did not become ready")


async def _load(base: str, seeded: Seeded, clients: int, seconds: float) -> dict[str, Any]:
    groups = seeded.bill_groups
    latencies: list[float] = []
    refused: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    host, port = base.removeprefix("http://").rsplit(":", 1)

    async def client(n: int) -> None:
        connection = await Keepalive.open(host, int(port))
        auth = f"Bearer {seeded.tokens[n % len(seeded.tokens)]}"
        while time.perf_counter() < deadline:
            group = next(groups, None)
            if group is None:
                break
            body = msgspec.json.encode({"items": [{"bill_id": bill} for bill in group], "pin": PIN})
            started = time.perf_counter()
            status, _answer = await connection.post_json(
                "/api/v1/payments", body, {"Authorization": auth, "Idempotency-Key": uuid.uuid4().hex}
            )
            elapsed = time.perf_counter() - started
            if status == 201:
                latencies.append(elapsed)
            else:
                refused[status] = refused.get(status, 0) + 1
        connection.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    took = time.perf_counter() - began
    latencies.sort()

    def p(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0.0

    return {
        "paid": len(latencies),
        "rate": len(latencies) / took,
        "p50": p(0.50),
        "p99": p(0.99),
        "refused": sum(refused.values()),
        "refused_by_status": dict(sorted(refused.items())),
    }


async def _check(database: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn_for(database))
    try:
        payments = await conn.fetchval("SELECT count(*) FROM bill_payments")
        entries = await conn.fetchval("SELECT count(DISTINCT entry_id) FROM bill_payments")
        paid = await conn.fetchval("SELECT count(*) FROM bills WHERE status = 'paid'")
        items = await conn.fetchval("SELECT count(*) FROM bill_payment_items")
        twice = await conn.fetchval(
            "SELECT count(*) FROM (SELECT bill_id FROM bill_payment_items"
            " GROUP BY bill_id HAVING count(*) > 1) t"
        )
        unbalanced = await conn.fetchval(
            "SELECT count(*) FROM (SELECT entry_id FROM ledger_postings"
            " GROUP BY entry_id HAVING sum(amount) <> 0) t"
        )
    finally:
        await conn.close()
    ok = payments == entries and paid == items == 3 * payments and twice == 0 and unbalanced == 0
    return {"payments": payments, "bills_paid": paid, "paid_twice": twice, "unbalanced": unbalanced, "ok": ok}


def _one(clients: int, seconds: int) -> dict[str, Any]:
    reference = create_database("bench_ref")
    app_db = create_database("bench_onetap")
    server: subprocess.Popen[bytes] | None = None
    try:
        load_reference_schema(reference)
        baseline = pgbench(reference, "one_tap.sql", clients, seconds)
        upgrade(sqlalchemy_url(app_db))
        seeded = asyncio.run(_seed(app_db, groups=max(20_000, 3_000 * seconds)))
        checkpoint()
        port = _free_port()
        server = _serve(app_db, port)
        base = f"http://127.0.0.1:{port}"
        asyncio.run(_wait_ready(base))
        asyncio.run(_load(base, seeded, clients, 1.5))  # warm-up: connections, caches, prepared statements
        cpu0, sql0 = tree_cpu_seconds(server.pid), asyncio.run(statements("127.0.0.1", port, WORKERS))
        services = services_cpu_seconds()
        result = asyncio.run(_load(base, seeded, clients, seconds))
        answered = result["paid"] + result["refused"]
        result["server_cpu_ms"] = (tree_cpu_seconds(server.pid) - cpu0) / max(answered, 1) * 1000
        result.update(services_cpu_ms(services, answered))
        result["statements"] = (asyncio.run(statements("127.0.0.1", port, WORKERS)) - sql0) / max(answered, 1)
        check = asyncio.run(_check(app_db))
        if result["refused"]:
            refusals = result["refused_by_status"]
            print(f"refused answers at {clients} clients: {refusals}; server log {_server_log(port)}")
        return {
            "clients": clients,
            **result,
            "pgbench_tps": baseline.tps,
            "ratio": result["rate"] / baseline.tps,
            **check,
        }
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        drop_database(reference)
        drop_database(app_db)


def run(clients: list[int], seconds: int = 8, runs: int = 1) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for n in clients:
        results = [_one(n, seconds) for _ in range(runs)]
        rows.append(
            {
                "clients": n,
                "rate": statistics.median(r["rate"] for r in results),
                "p50": statistics.median(r["p50"] for r in results),
                "p99": statistics.median(r["p99"] for r in results),
                "refused": sum(r["refused"] for r in results),
                "pgbench_tps": statistics.median(r["pgbench_tps"] for r in results),
                "ratio": statistics.median(r["ratio"] for r in results),
                "server_cpu_ms": statistics.median(r["server_cpu_ms"] for r in results),
                "statements": statistics.median(r["statements"] for r in results),
                "db_cpu_ms": statistics.median(r["db_cpu_ms"] for r in results),
                "redis_cpu_ms": statistics.median(r["redis_cpu_ms"] for r in results),
                "books_ok": all(r["ok"] for r in results),
            }
        )
    print("one_tap (3 bills, HTTP, PostgreSQL)")
    header = ("clients", "pay/s", "p50 ms", "p99 ms", "refused", "pgbench", "ratio", "srv cpu", "db cpu")
    print(" ".join(f"{h:>8}" for h in (*header, "redis", "bound", "stmts")), "books_ok")
    for r in rows:
        bound = cpu_bound(r["server_cpu_ms"], r["db_cpu_ms"], r["redis_cpu_ms"])
        print(
            f"{r['clients']:>8} {r['rate']:>8.0f} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['refused']:>8} "
            f"{r['pgbench_tps']:>8.0f} {r['ratio']:>8.2f} {r['server_cpu_ms']:>8.2f} {r['db_cpu_ms']:>8.2f}"
            f" {r['redis_cpu_ms']:>8.2f} {bound:>8.0f} {r['statements']:>8.1f} {r['books_ok']}"
        )
    print(
        "srv cpu: the server's CPU ms per payment (all its processes); db cpu / redis: PostgreSQL's and"
        f" Redis's; bound: {CORES} cores / their sum (the load generator's share left out), the most the"
        " machine allows; stmts: database statements per payment"
        f" (/metrics). Load average now {os.getloadavg()[0]:.1f} on 2 shared cores: rates are noisy."
    )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", default="16,64")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args(argv)
    run([int(c) for c in args.clients.split(",")], args.seconds, args.runs)


if __name__ == "__main__":
    main()
