"""QR payments to merchants per second through HTTP on PostgreSQL: 64 payers to ONE merchant (hot) vs 64
payers to 64 merchants (spread) vs ../shared/bench/hot.sql (pgbench), in the same run.

    PYTHONPATH=. .venv/bin/python -m bench.merchant_qr [--clients 64] [--seconds 8]

The app (``hue serve``, granian, two API processes on Redis stores, no in-process worker, rate limits
lifted) runs on a fresh migrated database seeded with N verified citizens (PIN, session, funded wallet) and
N approved merchants with a store each; each client ``POST /api/v1/qr/payments`` the static QR of its
merchant (hot: all the same one; spread: its own) with a typed amount, the PIN and a fresh Idempotency-Key.
Every payment credits the merchant's payable AND fee revenue (both receive-only, never locked by the
ledger). Reported: payments/s, p50/p99, refusals, the server's CPU ms per payment (from /proc), and the
ratios hot/spread (goal >= 0.8) and hot/hot.sql (goal > 1). At the end the books are checked (every entry
balanced, one entry per payment)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import signal
import subprocess
import time
import uuid
from typing import Any

import asyncpg
import httpx
import msgspec
from sqlalchemy import select

from app.core.db import Database, new_id
from app.core.migrate import upgrade
from app.core.security import Caller
from app.core.settings import load_settings
from app.main import create_app
from app.merchants import service as merchants
from app.merchants import vietqr
from app.merchants.models import Merchant, MerchantStore
from app.merchants.schemas import MerchantIn, StoreIn
from app.wallet import ledger
from app.wallet import service as wallet_service
from app.wallet.ledger import AccountType, Entry, credit, debit
from bench.http_client import Keepalive
from bench.measure import CORES, cpu_bound, services_cpu_ms, services_cpu_seconds
from bench.one_tap import _free_port, _serve
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

PIN = "246810"
AMOUNT = 25_000


async def _seed(database: str, n: int) -> tuple[list[str], list[str], list[Caller]]:
    settings = load_settings(
        {"DATABASE_URL": sqlalchemy_url(database), "APP_ENV": "test", "LOG_LEVEL": "WARNING"}
    )
    db: Database = create_app(settings).state.db
    tokens: list[str] = []
    payloads: list[str] = []
    callers: list[Caller] = []
    try:
        for i in range(n):
            async with db.transaction() as session:
                pair = await seed_payer(
                    session, phone=f"+8491{i:07d}", cccd=f"046090{i:06d}", full_name=f"Người thử {i}", pin=PIN
                )
                tokens.append(pair.access_token)
                callers.append(
                    Caller(user_id=pair.user_id, session_id=pair.session_id, roles=frozenset({"citizen"}))
                )
                owner = Caller(user_id=pair.user_id, session_id=new_id(), roles=frozenset({"citizen"}))
                created = await merchants.register_merchant(
                    session,
                    owner,
                    MerchantIn(
                        name=f"Quán thử {i}",
                        tax_code=f"33{i:08d}",
                        mcc="5812",
                        settlement_bank_bin="970436",
                        settlement_account_number=f"00410{i:08d}",
                        settlement_account_name="BENCH",
                        stores=[StoreIn(code="QUAY-1", name="Quầy", address="Huế")],
                    ),
                    settings,
                )
                admin = Caller(user_id=pair.user_id, session_id=new_id(), roles=frozenset({"admin"}))
                await merchants.decide(session, admin, created.id, "approve", "", None)
                merchant = await merchants.get_merchant(session, created.id)
                store = await session.get(MerchantStore, created.stores[0].id)
                assert store is not None
                payloads.append(merchants.store_qr_payload(merchant, store, settings))
        await db.dispose()
        conn = await asyncpg.connect(dsn_for(database))
        try:
            await conn.execute(
                "UPDATE wallet_limits SET per_transaction = NULL, per_day = NULL, per_month = NULL"
            )
            await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()
    finally:
        await db.dispose()
    return tokens, payloads, callers


async def _wait_ready(base: str, patience: float = 90.0) -> None:
    """Wait for ``/readyz`` (a loaded machine can take tens of seconds to start granian)."""
    deadline = time.perf_counter() + patience
    async with httpx.AsyncClient(base_url=base) as http:
        while time.perf_counter() < deadline:
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the app did not become ready")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children that were waited for (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(x) for x in fields[11:15]) / ticks


def _tree_cpu(pid: int) -> float:
    total = _cpu_seconds(pid)
    try:
        children = subprocess.run(
            ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
        ).stdout
    except FileNotFoundError:
        return total
    for child in children.split():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
            total += _tree_cpu(int(child))
    return total


async def _load(
    base: str, tokens: list[str], payloads: list[str], seconds: float, *, hot: bool
) -> dict[str, Any]:
    latencies: list[float] = []
    refused: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    clients = len(tokens)
    host, port = base.removeprefix("http://").rsplit(":", 1)

    async def client(n: int) -> None:
        connection = await Keepalive.open(host, int(port))
        auth = f"Bearer {tokens[n]}"
        body = msgspec.json.encode({"payload": payloads[0 if hot else n], "amount": AMOUNT, "pin": PIN})
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status, _answer = await connection.post_json(
                "/api/v1/qr/payments", body, {"Authorization": auth, "Idempotency-Key": uuid.uuid4().hex}
            )
            if status == 201:
                latencies.append(time.perf_counter() - started)
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
        "p50": p(0.5),
        "p99": p(0.99),
        "refused": refused,
    }


async def _service_load(
    database: str,
    callers: list[Caller],
    payloads: list[str],
    seconds: float,
    *,
    hot: bool,
    ledger_only: bool = False,
) -> dict[str, Any]:
    """The same payments without HTTP: ``pay_by_qr`` in one process, one task per payer (what the ledger
    and the payment code cost, next to pgbench's bare SQL)."""
    settings = load_settings(
        {
            "DATABASE_URL": sqlalchemy_url(database),
            "APP_ENV": "test",
            "LOG_LEVEL": "WARNING",
            "DB_POOL_SIZE": str(len(callers)),
        }
    )
    db: Database = create_app(settings).state.db
    latencies: list[float] = []
    refused: dict[str, int] = {}
    fee_revenue = ledger.system_account(AccountType.FEE_REVENUE)
    wallets: list[Any] = []
    payables: list[Any] = []
    async with db.read() as session:
        for caller, payload in zip(callers, payloads, strict=True):
            wallets.append(await wallet_service.wallet_account_id(session, caller.user_id, create=False))
            account = vietqr.parse(payload).account
            payables.append(
                await session.scalar(
                    select(Merchant.payable_account_id).where(Merchant.account_number == account)
                )
            )
    fee = merchants.fee_of(AMOUNT, settings.merchant_mdr_bps)
    deadline = time.perf_counter() + seconds
    cpu = time.process_time()

    async def client(n: int) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                async with db.transaction() as session:
                    if ledger_only:
                        payable = payables[0 if hot else n]
                        postings = [
                            debit(wallets[n], AMOUNT),
                            credit(payable, AMOUNT - fee),
                            credit(fee_revenue, fee),
                        ]
                        await ledger.post(session, Entry(kind="merchant_payment", postings=postings))
                        latencies.append(time.perf_counter() - started)
                        continue
                    await merchants.pay_by_qr(
                        session,
                        callers[n],
                        payload=payloads[0 if hot else n],
                        amount=AMOUNT,
                        pin=PIN,
                        settings=settings,
                    )
                latencies.append(time.perf_counter() - started)
            except Exception as exc:
                refused[type(exc).__name__] = refused.get(type(exc).__name__, 0) + 1

    try:
        began = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(len(callers))))
        took = time.perf_counter() - began
    finally:
        await db.dispose()
    latencies.sort()

    def p(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0.0

    return {
        "paid": len(latencies),
        "rate": len(latencies) / took,
        "p50": p(0.5),
        "p99": p(0.99),
        "refused": refused,
        "cpu_ms": (time.process_time() - cpu) * 1000 / max(len(latencies), 1),
    }


async def _check(database: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn_for(database))
    try:
        payments = await conn.fetchval("SELECT count(*) FROM merchant_payments")
        entries = await conn.fetchval("SELECT count(DISTINCT entry_id) FROM merchant_payments")
        unbalanced = await conn.fetchval(
            "SELECT count(*) FROM (SELECT entry_id FROM ledger_postings"
            " GROUP BY entry_id HAVING sum(amount) <> 0) t"
        )
    finally:
        await conn.close()
    return {"payments": payments, "ok": payments == entries and unbalanced == 0}


def run(clients: int = 64, seconds: int = 8) -> dict[str, Any]:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    reference = create_database("bench_ref")
    app_db = create_database("bench_merchant")
    server: subprocess.Popen[bytes] | None = None
    try:
        load_reference_schema(reference)
        baseline = pgbench(reference, "hot.sql", clients, seconds)
        upgrade(sqlalchemy_url(app_db))
        tokens, payloads, callers = asyncio.run(_seed(app_db, clients))
        checkpoint()
        results: dict[str, dict[str, Any]] = {}
        asyncio.run(_service_load(app_db, callers, payloads, 1.0, hot=False))  # warm-up
        for mode in (
            "svc_spread",
            "svc_hot",
            "svc_spread2",
            "svc_hot2",
            "led_spread",
            "led_hot",
            "led_spread2",
            "led_hot2",
        ):
            results[mode] = asyncio.run(
                _service_load(
                    app_db,
                    callers,
                    payloads,
                    seconds / 2,
                    hot="hot" in mode,
                    ledger_only=mode.startswith("led"),
                )
            )
        port = _free_port()
        server = _serve(app_db, port)
        base = f"http://127.0.0.1:{port}"
        asyncio.run(_wait_ready(base))
        asyncio.run(_load(base, tokens, payloads, 1.5, hot=False))  # warm-up
        for mode in ("spread", "hot", "spread2", "hot2"):
            cpu, services = _tree_cpu(server.pid), services_cpu_seconds()
            result = asyncio.run(_load(base, tokens, payloads, seconds / 2, hot=mode.startswith("hot")))
            result["cpu_ms"] = (_tree_cpu(server.pid) - cpu) * 1000 / max(result["paid"], 1)
            result.update(services_cpu_ms(services, result["paid"]))
            results[mode] = result
        check = asyncio.run(_check(app_db))
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        drop_database(reference)
        drop_database(app_db)

    def merged(a: str, b: str) -> dict[str, Any]:
        x, y = results[a], results[b]
        return {
            "rate": (x["rate"] + y["rate"]) / 2,
            "p50": (x["p50"] + y["p50"]) / 2,
            "p99": max(x["p99"], y["p99"]),
            "refused": sum(x["refused"].values()) + sum(y["refused"].values()),
            "cpu_ms": (x["cpu_ms"] + y["cpu_ms"]) / 2,
            # HTTP rows only: a service load's connections close before its window is read (bench/measure.py)
            "db_cpu_ms": (x.get("db_cpu_ms", math.nan) + y.get("db_cpu_ms", math.nan)) / 2,
            "redis_cpu_ms": (x.get("redis_cpu_ms", math.nan) + y.get("redis_cpu_ms", math.nan)) / 2,
        }

    hot, spread = merged("hot", "hot2"), merged("spread", "spread2")
    svc_hot, svc_spread = merged("svc_hot", "svc_hot2"), merged("svc_spread", "svc_spread2")
    led_hot, led_spread = merged("led_hot", "led_hot2"), merged("led_spread", "led_spread2")
    print(f"merchant_qr ({clients} payers, PostgreSQL; hot/spread interleaved, 2 x {seconds / 2:.0f} s each)")
    print(
        f"{'':>10} {'pay/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'refused':>8} {'cpu ms/pay':>10}"
        f" {'db ms':>6} {'redis':>6} {'bound':>6}"
    )
    for name, row in (
        ("spread", spread),
        ("hot", hot),
        ("svc spread", svc_spread),
        ("svc hot", svc_hot),
        ("led spread", led_spread),
        ("led hot", led_hot),
    ):
        bound = cpu_bound(row["cpu_ms"], row["db_cpu_ms"], row["redis_cpu_ms"])
        print(
            f"{name:>10} {row['rate']:>8.0f} {row['p50']:>8.1f} {row['p99']:>8.1f} {row['refused']:>8} "
            f"{row['cpu_ms']:>10.2f} {row['db_cpu_ms']:>6.2f} {row['redis_cpu_ms']:>6.2f} {bound:>6.0f}"
        )
    print(f"{'hot.sql':>10} {baseline.tps:>8.0f}   (pgbench -c {clients}, hot row locked)")
    print(
        "cpu ms/pay: the API server's CPU (HTTP rows) or this process's (svc, led) per payment;"
        f" db ms / redis: PostgreSQL's and Redis's; bound: {CORES} cores / their sum, the most the"
        " machine allows."
    )
    print(
        f"hot/spread = {hot['rate'] / max(spread['rate'], 1e-9):.2f} (goal >= 0.80)   "
        f"hot/hot.sql = {hot['rate'] / baseline.tps:.2f} (goal > 1)   books_ok={check['ok']} "
        f"payments={check['payments']}"
    )
    print(
        f"service path: hot/spread = {svc_hot['rate'] / max(svc_spread['rate'], 1e-9):.2f}   "
        f"hot/hot.sql = {svc_hot['rate'] / baseline.tps:.2f}"
    )
    print(
        f"ledger posting only: hot/spread = {led_hot['rate'] / led_spread['rate']:.2f}   "
        f"hot/hot.sql = {led_hot['rate'] / baseline.tps:.2f}"
    )
    return {
        "hot": hot,
        "spread": spread,
        "svc_hot": svc_hot,
        "svc_spread": svc_spread,
        "hot_sql_tps": baseline.tps,
        **check,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args(argv)
    run(args.clients, args.seconds)


if __name__ == "__main__":
    main()
