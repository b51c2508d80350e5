"""Where the time of ONE request goes: a transfer, a one-tap payment and a QR payment to a merchant (its
store's static QR, a typed amount) driven in-process, one at a time.

    PYTHONPATH=. .venv/bin/python -m bench.profile [--requests 200] [--cprofile transfer|one_tap|qr]
        [--sqlite]

The app (``create_app``, lifespan started, Redis as configured by ``REDIS_URL``) runs in this process on a
fresh migrated PostgreSQL database (or a SQLite file with ``--sqlite``); requests go through
``httpx.ASGITransport``, so no socket or server is involved. Printed per request: wall ms, CPU ms
(``time.process_time``, this process only: the app + the in-process client; the database's CPU is not in
it), SQL statements executed (a ``before_cursor_execute`` listener, plus the raw asyncpg/sqlite3 calls the
ledger and money paths make, counted by :func:`app.core.db.count_raw`) and transactions. With
``--cprofile`` a cProfile of that scenario is printed (top 40 by cumulative time).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import logging
import os
import pstats
import tempfile
import time
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import event, update

from app.core import db as core_db
from app.core.db import utcnow
from app.core.migrate import upgrade
from app.core.settings import load_settings
from bench.pg import create_database, drop_database, sqlalchemy_url

PIN = "246810"


class Counter:
    def __init__(self) -> None:
        self.statements = 0
        self.begins = 0
        self.echo = False

    def install(self, engine: Any) -> None:
        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            self.statements += 1
            if self.echo:
                print("   SQL:", " ".join(statement.split())[:150])

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(*_args: Any) -> None:
            self.begins += 1


async def _seed(app: Any, users: int, bills: int) -> dict[str, Any]:
    import msgspec

    from app.bills import service as bills_service
    from app.bills.demo import demo_data
    from app.bills.models import Bill, Biller
    from app.bills.schemas import BillerIn
    from app.identity.models import Device
    from app.wallet import ledger
    from app.wallet import service as wallet_service
    from app.wallet.ledger import AccountType, Entry, credit, debit
    from tests.factories import make_user

    db = app.state.db
    people = []
    for _ in range(users):
        user = await make_user(app, pin=PIN, password=None)
        async with db.transaction() as session:
            await session.execute(
                update(Device)
                .where(Device.user_id == user.user_id)
                .values(first_seen_at=utcnow() - timedelta(days=30))
            )
            wallet = await wallet_service.wallet_account_id(session, user.user_id, create=True)
            bank = ledger.system_account(AccountType.GUARANTEE_BANK)
            await ledger.post(
                session, Entry(kind="topup", postings=[debit(bank, 10**11), credit(wallet, 10**11)])
            )
        people.append(user)
    for code, declaration in demo_data()["billers"].items():
        await bills_service.put_biller(db, code, msgspec.convert(declaration, BillerIn), production=False)
    groups: list[list[str]] = [[] for _ in range(bills)]
    async with db.transaction() as session:
        from sqlalchemy import select

        for code in ("EVN_CPC_HUE", "HUEWACO", "MN_SEN_HONG"):
            biller_id = await session.scalar(select(Biller.id).where(Biller.code == code))
            for n in range(bills):
                bill = Bill(
                    biller_id=biller_id,
                    customer_code=f"BENCH{n}",
                    external_id=f"bench-{code}-{n}",
                    period="2026-11",
                    amount=10_000,
                    due_date=date.today() + timedelta(days=10),
                    status="unpaid",
                    customer_name="Khách hàng thử",
                    source="batch",
                )
                session.add(bill)
                await session.flush()
                groups[n].append(str(bill.id))
    return {"people": people, "groups": groups, "qr": await _seed_merchant(app, people[1])}


async def _seed_merchant(app: Any, owner: Any) -> str:
    """One approved merchant owned by ``owner``; the static QR of its store."""
    from app.core.db import new_id
    from app.core.security import Caller
    from app.merchants import service as merchants
    from app.merchants.models import MerchantStore
    from app.merchants.schemas import MerchantIn, StoreIn

    db, settings = app.state.db, app.state.settings
    async with db.transaction() as session:
        created = await merchants.register_merchant(
            session,
            Caller(user_id=owner.user_id, session_id=new_id(), roles=frozenset({"citizen"})),
            MerchantIn(
                name="Quán thử",
                tax_code="3300000001",
                mcc="5812",
                settlement_bank_bin="970436",
                settlement_account_number="0041000000001",
                settlement_account_name="BENCH",
                stores=[StoreIn(code="QUAY-1", name="Quầy", address="Huế")],
            ),
            settings,
        )
        admin = Caller(user_id=owner.user_id, session_id=new_id(), roles=frozenset({"admin"}))
        await merchants.decide(session, admin, created.id, "approve", "", None)
        merchant = await merchants.get_merchant(session, created.id)
        store = await session.get(MerchantStore, created.stores[0].id)
        assert store is not None
        return merchants.store_qr_payload(merchant, store, settings)


async def _drive(
    app: Any, seeded: dict[str, Any], scenario: str, n: int, counter: Counter
) -> dict[str, float]:
    people = seeded["people"]
    payer, receiver = people[0], people[1]
    groups = seeded["groups"]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
        headers = {"Authorization": f"Bearer {payer.access_token}"}

        async def one(i: int) -> None:
            h = {**headers, "Idempotency-Key": uuid.uuid4().hex}
            if scenario == "transfer":
                r = await http.post(
                    "/api/v1/me/wallet/transfers",
                    json={"phone": receiver.phone, "amount": 1000 + i, "pin": PIN},
                    headers=h,
                )
            elif scenario == "qr":
                r = await http.post(
                    "/api/v1/qr/payments",
                    json={"payload": seeded["qr"], "amount": 1000 + i, "pin": PIN},
                    headers=h,
                )
            else:
                group = groups.pop()
                r = await http.post(
                    "/api/v1/payments", json={"items": [{"bill_id": b} for b in group], "pin": PIN}, headers=h
                )
            if r.status_code != 201:
                raise RuntimeError(f"{scenario}: {r.status_code} {r.text[:300]}")

        for i in range(5):  # warm-up: caches, prepared statements
            await one(i)
        if os.environ.get("PROFILE_ECHO"):
            counter.echo = True
            await one(99)
            counter.echo = False
        counter.statements = counter.begins = 0
        raw_calls = getattr(core_db, "RAW_CALLS", [0])  # absent before this branch
        raw0 = raw_calls[0]
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for i in range(n):
            await one(i)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        raw = raw_calls[0] - raw0
    return {
        "wall_ms": wall / n * 1000,
        "cpu_ms": cpu / n * 1000,
        "statements": (counter.statements + raw) / n,
        "transactions": counter.begins / n,
    }


async def _concurrent(app: Any, seeded: dict[str, Any], clients: int, seconds: float) -> None:
    """``clients`` payers sending transfers at once (each to its own receiver), in-process: does the app
    scale with concurrency, or does something serialise it?"""
    people = seeded["people"]
    transport = httpx.ASGITransport(app=app)
    done = [0]
    stop = [False]
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60) as http:

        async def client(i: int) -> None:
            payer, receiver = people[i], people[clients + i]
            while not stop[0]:
                r = await http.post(
                    "/api/v1/me/wallet/transfers",
                    json={"phone": receiver.phone, "amount": 1000, "pin": PIN},
                    headers={
                        "Authorization": f"Bearer {payer.access_token}",
                        "Idempotency-Key": uuid.uuid4().hex,
                    },
                )
                if r.status_code != 201:
                    raise RuntimeError(f"{r.status_code} {r.text[:300]}")
                done[0] += 1

        tasks = [asyncio.create_task(client(i)) for i in range(clients)]
        await asyncio.sleep(1.0)
        n0, wall0, cpu0 = done[0], time.perf_counter(), time.process_time()
        await asyncio.sleep(seconds)
        n, wall, cpu = done[0] - n0, time.perf_counter() - wall0, time.process_time() - cpu0
        stop[0] = True
        await asyncio.gather(*tasks)
    print(
        f"concurrent transfers, {clients} clients in-process: {n / wall:.0f}/s, "
        f"CPU {cpu / max(n, 1) * 1000:.2f} ms/req, CPU busy {cpu / wall:.0%} of one core"
    )


async def _main(url: str, requests: int, profile: str | None, clients: int = 0) -> None:
    from app.main import create_app

    env = {
        "DATABASE_URL": url,
        "APP_ENV": "test",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_PAYMENTS": "100000000/60",
        "RATE_LIMIT_DEFAULT": "100000000/60",
        "RUN_WORKER_IN_PROCESS": "false",
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "REDIS_PREFIX": f"prof{uuid.uuid4().hex[:6]}:",
    }
    settings = load_settings({k: v for k, v in env.items() if v})
    app = create_app(settings)
    async with app.lifespan():
        counter = Counter()
        counter.install(app.state.db.engine)
        users = max(2, 2 * clients)
        seeded = await _seed(app, users=users, bills=requests + 10 if profile in (None, "one_tap") else 10)
        if clients:
            await _concurrent(app, seeded, clients, 8.0)
            return
        for scenario in ("transfer", "one_tap", "qr"):
            if profile and scenario != profile:
                continue
            if profile and os.environ.get("PYINSTRUMENT"):
                from pyinstrument import Profiler  # a developer's tool, not a dependency

                with Profiler(async_mode="enabled", interval=0.0005) as sampler:
                    result = await _drive(app, seeded, scenario, requests, counter)
                print(sampler.output_text(unicode=False, show_all=False, color=False))
                prof = None
            else:
                prof = cProfile.Profile() if profile else None
                if prof:
                    prof.enable()
                result = await _drive(app, seeded, scenario, requests, counter)
            if prof:
                prof.disable()
                out = io.StringIO()
                stats = pstats.Stats(prof, stream=out)
                stats.sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(60)
                if os.environ.get("PROFILE_CALLERS"):
                    stats.print_callers(os.environ["PROFILE_CALLERS"])
                print(out.getvalue())
            print(
                f"{scenario:>9}: wall {result['wall_ms']:.2f} ms  cpu {result['cpu_ms']:.2f} ms  "
                f"statements {result['statements']:.1f}  transactions {result['transactions']:.1f}"
            )


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--cprofile", choices=["transfer", "one_tap", "qr"])
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--concurrent", type=int, default=0, help="N clients at once (transfers), no profile")
    args = parser.parse_args()
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            upgrade(url)
            asyncio.run(_main(url, args.requests, args.cprofile, args.concurrent))
        return
    name = create_database("bench_prof")
    try:
        upgrade(sqlalchemy_url(name))
        asyncio.run(_main(sqlalchemy_url(name), args.requests, args.cprofile, args.concurrent))
    finally:
        drop_database(name)


if __name__ == "__main__":
    main()
