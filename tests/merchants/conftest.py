"""The merchants' test world: a running app (lifespan in the test's loop, requests through httpx's ASGI
transport), an admin, and helpers to onboard a merchant, show its QR and pay it (both backends)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar import Litestar

from app.core.bank_transfer import install_bank_transfers
from app.core.db import Database
from app.core.security import Caller, issue_access_token
from app.core.settings import Settings
from app.merchants import webhooks
from app.wallet import ledger
from app.wallet import service as wallet_service
from app.wallet.ledger import AccountType, Entry, credit, debit
from tests.factories import DEFAULT_PIN, UserHandle, make_user

STORE = {"code": "QUAY-1", "name": "Quầy chính", "address": "11 Lý Thường Kiệt, Phú Nhuận, Huế"}


@dataclass
class World:
    app: Litestar
    http: httpx.AsyncClient
    db: Database
    settings: Settings
    admin: UserHandle

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

    def staff(self, person: UserHandle, merchant_id: str, role: str) -> dict[str, str]:
        """The person's headers after signing in again (their token now states the merchant role)."""
        assert person.session_id is not None
        token, _ttl = issue_access_token(
            self.settings,
            Caller(
                person.user_id,
                person.session_id,
                frozenset({"citizen", role}),
                identity_level=2,
                merchant_id=merchant_id,
            ),
        )
        return {"Authorization": f"Bearer {token}"}

    async def post(self, path: str, body: Any, headers: dict[str, str], **kw: Any) -> httpx.Response:
        return await self.http.post(
            path, json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}, **kw
        )

    async def merchant(
        self, name: str, tax_code: str, *, owner: UserHandle | None = None, city: str | None = None
    ) -> tuple[str, UserHandle]:
        owner = owner or await make_user(self.app, full_name="Trần Thị Xuân")
        body: dict[str, Any] = {
            "name": name,
            "tax_code": tax_code,
            "mcc": "5812",
            "settlement_bank_bin": "970436",
            "settlement_account_number": "0041000123456",
            "settlement_account_name": "TRAN THI XUAN",
            "stores": [STORE],
        }
        if city is not None:
            body["city"] = city
        created = await self.post("/api/v1/merchants", body, owner.headers)
        assert created.status_code == 201, created.text
        merchant_id = created.json()["id"]
        approved = await self.post(
            f"/api/v1/admin/merchants/{merchant_id}/decision", {"action": "approve"}, self.admin.headers
        )
        assert approved.status_code == 200, approved.text
        return merchant_id, owner

    async def static_qr(self, merchant_id: str, headers: dict[str, str]) -> str:
        m = (await self.http.get(f"/api/v1/merchants/{merchant_id}", headers=headers)).json()
        store_id = m["stores"][0]["id"]
        return str(
            (
                await self.http.get(f"/api/v1/merchants/{merchant_id}/stores/{store_id}/qr", headers=headers)
            ).json()["payload"]
        )

    async def pay(
        self, payer: UserHandle, payload: str, amount: int | None = None, key: str | None = None
    ) -> httpx.Response:
        body: dict[str, Any] = {"payload": payload, "pin": DEFAULT_PIN}
        if amount is not None:
            body["amount"] = amount
        return await self.http.post(
            "/api/v1/qr/payments",
            json=body,
            headers={**payer.headers, "Idempotency-Key": key or uuid.uuid4().hex},
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
    try:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as http:
            admin = await make_user(app, roles=("admin",), duties=("support",))
            yield World(app, http, db, settings, admin)
    finally:
        install_bank_transfers(None)
        webhooks._runtime = None  # the next test's deliveries must not use this test's database
        stop.set()
        await asyncio.wait_for(lifespan, timeout=10)
