"""A running app (lifespan entered in the test's loop, requests through httpx's ASGI transport) with the Huế
billers declared, for auto-pay, complaints and settlement tests on both backends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from sqlalchemy import func, select

from app.bills import service
from app.bills.clock import local_today
from app.bills.demo import demo_data
from app.bills.schemas import BillerIn
from app.core.db import Database
from app.core.settings import Settings
from app.wallet import ledger
from app.wallet import service as wallet_service
from app.wallet.ledger import AccountType, Entry, credit, debit
from tests.factories import DEFAULT_PIN, UserHandle


@dataclass
class World:
    app: Litestar
    http: httpx.AsyncClient
    db: Database
    settings: Settings

    async def fund(self, user_id: uuid.UUID, amount: int) -> uuid.UUID:
        async with self.db.transaction() as session:
            wallet = await wallet_service.wallet_account_id(session, user_id, create=True)
            bank = ledger.system_account(AccountType.GUARANTEE_BANK)
            await ledger.post(
                session, Entry(kind="topup", postings=[debit(bank, amount), credit(wallet, amount)])
            )
            return wallet

    async def balance(self, account_id: uuid.UUID) -> int:
        async with self.db.read() as session:
            return (await ledger.balance(session, account_id)).balance

    async def bill(
        self, biller: str, code: str, amount: int, *, due: date | None = None, period: str = ""
    ) -> uuid.UUID:
        async with self.db.transaction() as session:
            bill = await service.issue_bill(
                session,
                biller_code=biller,
                customer_code=code,
                external_id=f"{code}-{uuid.uuid4().hex[:8]}",
                period=period or "2026-11",
                amount=amount,
                due_date=due or local_today() + timedelta(days=10),
                customer_name="Trần Thị Bình",
            )
            return bill.id

    async def count(self, model: Any, *where: Any) -> int:
        async with self.db.read() as session:
            return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    async def post(self, path: str, user: UserHandle, body: Any, *, key: str | None = None) -> httpx.Response:
        return await self.http.post(
            path, json=body, headers={**user.headers, "Idempotency-Key": key or uuid.uuid4().hex}
        )

    async def pay(self, user: UserHandle, bill_ids: list[uuid.UUID]) -> httpx.Response:
        return await self.post(
            "/api/v1/payments", user, {"items": [{"bill_id": str(b)} for b in bill_ids], "pin": DEFAULT_PIN}
        )


@pytest.fixture
async def world(app: Litestar, settings: Settings) -> AsyncIterator[World]:
    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    lifespan = asyncio.get_running_loop().create_task(run_lifespan())
    await asyncio.wait_for(started.wait(), timeout=10)
    db: Database = app.state.db
    for code, declaration in demo_data()["billers"].items():
        await service.put_biller(db, code, msgspec.convert(declaration, BillerIn), production=False)
    try:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as http:
            yield World(app, http, db, settings)
    finally:
        stop.set()
        await asyncio.wait_for(lifespan, timeout=10)
