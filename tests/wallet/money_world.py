"""A started app in the test's own event loop, with the sandbox card gateway behind a transport that can
lose answers, and a sandbox bank: for the top-up, withdrawal and property tests."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from litestar import Litestar
from sqlalchemy import func, select

from app.core.bank_transfer import SandboxBank, install_bank_transfers
from app.core.db import Database
from app.core.settings import Settings
from app.core.webhook_signature import signature_header
from app.wallet import ledger
from app.wallet import service as wallet_service
from app.wallet.gateway import CardGateway, install_card_gateway
from app.wallet.gateway.sandbox import SANDBOX_BASE_URL, SandboxGateway
from app.wallet.ledger import AccountType
from tests.factories import UserHandle, make_user


class FaultyTransport(httpx.AsyncBaseTransport):
    """The sandbox gateway behind a network that fails on demand. ``faults`` are consumed one per request:
    ``timeout`` (the request never arrives), ``lost`` (the gateway does it, the answer is lost), ``5xx``."""

    def __init__(self, box: SandboxGateway) -> None:
        self.box = box
        self.faults: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        fault = self.faults.pop(0) if self.faults else None
        if fault == "timeout":
            raise httpx.ConnectTimeout("gateway unreachable", request=request)
        if fault == "5xx":
            return httpx.Response(502, text="bad gateway")
        await request.aread()
        response = await self.box.handler(request)
        if fault == "lost":
            raise httpx.RemoteProtocolError("connection dropped before the answer", request=request)
        return response


@dataclass
class MoneyWorld:
    app: Litestar
    http: httpx.AsyncClient
    db: Database
    settings: Settings
    box: SandboxGateway
    network: FaultyTransport
    gateway: CardGateway
    bank: SandboxBank
    delivered: set[str] = field(default_factory=set)

    async def citizen(self, *, wallet: bool = True, **kwargs: Any) -> UserHandle:
        person = await make_user(self.app, **kwargs)
        if wallet:
            async with self.db.transaction() as session:
                await wallet_service.open_wallet(session, person.user_id)
        return person

    async def card_of(self, person: UserHandle, payment_method: str = "pm_card_visa_debit") -> str:
        response = await self.http.post(
            "/api/v1/me/wallet/funding-sources/cards",
            json={"payment_method": payment_method},
            headers={**person.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def topup(
        self, person: UserHandle, source: str, amount: int, key: str | None = None
    ) -> httpx.Response:
        return await self.http.post(
            "/api/v1/me/wallet/topups",
            json={"funding_source_id": source, "amount": amount},
            headers={**person.headers, "Idempotency-Key": key or uuid.uuid4().hex},
        )

    async def post_event(self, event: dict[str, Any], *, signature: str | None = None) -> httpx.Response:
        body = json.dumps(event).encode()
        secrets = [secret for _, secret in self.settings.card_gateway_webhook_secrets.keys]
        header = signature if signature is not None else signature_header(secrets, body)
        return await self.http.post(
            "/api/v1/webhooks/gateway",
            content=body,
            headers={"Stripe-Signature": header, "Content-Type": "application/json"},
        )

    async def deliver_new_events(self) -> int:
        """Deliver every sandbox event not delivered yet, in order."""
        count = 0
        for event in list(self.box.events):
            if event["id"] not in self.delivered:
                response = await self.post_event(event)
                assert response.status_code == 200, response.text
                self.delivered.add(event["id"])
                count += 1
        return count

    async def balance(self, account_id: uuid.UUID) -> int:
        async with self.db.read() as session:
            return (await ledger.balance(session, account_id)).balance

    async def wallet(self, person: UserHandle) -> ledger.Balance:
        async with self.db.read() as session:
            return await wallet_service.wallet_balance(session, person.user_id)

    async def clearing(self) -> int:
        """What the ledger says the gateway holds for us (debit-normal: the raw balance negated)."""
        return -await self.balance(ledger.system_account(AccountType.GATEWAY_CLEARING))

    async def fees(self) -> int:
        return -await self.balance(ledger.system_account(AccountType.GATEWAY_FEES))

    async def count(self, model: Any, *where: Any) -> int:
        async with self.db.read() as session:
            return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    async def books_ok(self) -> None:
        async with self.db.read() as session:
            report = await ledger.check_books(session)
        assert report.ok, report


async def money_world(app: Litestar, settings: Settings) -> AsyncIterator[MoneyWorld]:
    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    lifespan = asyncio.get_running_loop().create_task(run_lifespan())
    await asyncio.wait_for(started.wait(), timeout=10)
    box = SandboxGateway(webhook_secrets=tuple(s for _, s in settings.card_gateway_webhook_secrets.keys))
    network = FaultyTransport(box)
    gateway = CardGateway(
        SANDBOX_BASE_URL, box.secret_key, transport=network, backoff_seconds=0, max_retries=2
    )
    install_card_gateway(gateway, box)
    bank = SandboxBank()
    install_bank_transfers(bank)
    try:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as http:
            yield MoneyWorld(app, http, app.state.db, settings, box, network, gateway, bank)
    finally:
        install_card_gateway(None)
        install_bank_transfers(None)
        await gateway.aclose()
        stop.set()
        await lifespan
