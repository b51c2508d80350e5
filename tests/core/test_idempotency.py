"""Idempotency keys, through HTTP, on both backends, with every overlap forced rather than hoped for.

The routes below are a stand-in for a money path: each request that takes effect inserts one row into a
table of effects, so "exactly one effect" is a row count. Several apps built on one database stand in for
several API processes (each has its own engine, pool and in-process state).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from litestar import Controller, Litestar, Request, Response, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Database, utcnow
from app.core.deps import BEARER_SECURITY, core_dependencies
from app.core.errors import error_kind
from app.core.idempotency import (
    IDEMPOTENCY_ERRORS,
    IdempotencyKey,
    idempotent_response,
    scope_of,
    sweep_idempotency_keys,
)
from app.core.openapi import document_errors, openapi_config
from app.core.security import Caller, get_caller, issue_access_token
from app.core.settings import Settings
from tests.conftest import PG_ADMIN_URL, Backend, _asyncpg_dsn, assert_problem

pytestmark = pytest.mark.usefixtures("tokens_without_sessions")

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 20

effects_metadata = MetaData()
effects = Table(
    "idem_test_effects",
    effects_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner", String(100), nullable=False),
    Column("label", String(50), nullable=False),
    Column("amount", Integer, nullable=False),
)

INVALID_AMOUNT = error_kind("test_invalid_amount", 422, "Số tiền không hợp lệ", "Invalid amount")
WRONG_PIN = error_kind("test_wrong_pin", 403, "Sai mã PIN", "Wrong PIN")


class OrderCreate(msgspec.Struct, forbid_unknown_fields=True):
    label: str
    amount: int
    pin: str | None = None
    note: str = ""


class Order(msgspec.Struct):
    id: int
    label: str
    amount: int
    receipt: str
    """Server-generated per effect: a replay must carry the first one, not a new one."""


@dataclass
class Gate:
    """Test control over what happens inside the effect, shared by every app of a test."""

    hold: bool = False
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    entries: int = 0
    crash_once: bool = False
    barrier: asyncio.Barrier | None = None
    backend_pid: int | None = None


def _order_effect(
    request: Request[Any, Any, Any], caller: Caller, data: OrderCreate
) -> Callable[[AsyncSession], Awaitable[Order]]:
    gate: Gate = request.app.state.gate

    async def effect(session: AsyncSession) -> Order:
        result = await session.execute(
            insert(effects)
            .values(owner=str(caller.user_id), label=data.label, amount=data.amount)
            .returning(effects.c.id)
        )
        effect_id = result.scalar_one()
        gate.entries += 1
        if data.amount <= 0:
            raise INVALID_AMOUNT("Số tiền phải dương", "The amount must be positive")
        if data.pin is not None and data.pin != "1234":
            raise WRONG_PIN()
        if gate.crash_once:
            gate.crash_once = False
            raise RuntimeError("crash in the middle of the effect")
        if gate.hold:
            if session.bind.dialect.name == "postgresql":
                gate.backend_pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            gate.entered.set()
            await gate.release.wait()
        return Order(id=effect_id, label=data.label, amount=data.amount, receipt=uuid.uuid4().hex)

    return effect


class OrdersController(Controller):
    path = "/api/v1/_test"
    tags = ["health"]
    dependencies = {"caller": Provide(get_caller)}
    security = BEARER_SECURITY

    @post(
        "/orders",
        operation_id="testCreateOrder",
        summary="Create a test order",
        opt={"errors": [*IDEMPOTENCY_ERRORS, INVALID_AMOUNT, WRONG_PIN]},
    )
    async def create_order(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[OrderCreate],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Order]:
        """A stand-in for a money path: one effect row per request that takes effect."""
        gate: Gate = request.app.state.gate
        if gate.barrier is not None:
            await gate.barrier.wait()
        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=data,
            effect=_order_effect(request, caller, data),
        )

    @post(
        "/gifts",
        operation_id="testCreateGift",
        summary="Create a test gift",
        opt={"errors": [*IDEMPOTENCY_ERRORS, INVALID_AMOUNT, WRONG_PIN]},
    )
    async def create_gift(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[OrderCreate],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Order]:
        """Another route with the same body: a key used on one route is not valid on another."""
        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=data,
            effect=_order_effect(request, caller, data),
        )


@dataclass
class Fleet:
    """Several API "processes" on one database, and the means to call them and look inside."""

    settings: Settings
    apps: list[Litestar]
    clients: list[httpx.AsyncClient]
    gate: Gate

    def token_for(self, caller: Caller) -> dict[str, str]:
        token, _ = issue_access_token(self.settings, caller)
        return {"Authorization": f"Bearer {token}"}

    async def order(
        self,
        caller: Caller,
        key: str | None,
        body: dict[str, Any],
        *,
        via: int = 0,
        path: str = "/api/v1/_test/orders",
    ) -> httpx.Response:
        headers = self.token_for(caller)
        if key is not None:
            headers["Idempotency-Key"] = key
        return await asyncio.wait_for(self.clients[via].post(path, json=body, headers=headers), TIMEOUT)

    @property
    def db(self) -> Database:
        db: Database = self.apps[0].state.db
        return db

    async def effect_count(self) -> int:
        async with self.db.read() as session:
            return int((await session.execute(select(func.count()).select_from(effects))).scalar_one())


def new_caller() -> Caller:
    return Caller(user_id=uuid.uuid4(), session_id=uuid.uuid4(), roles=frozenset({"citizen"}))


@pytest.fixture
async def fleet_factory(settings: Settings) -> AsyncIterator[Callable[[int], Awaitable[Fleet]]]:
    from app.main import create_app

    made: list[Fleet] = []

    async def make(processes: int = 1) -> Fleet:
        gate = Gate()
        apps = []
        for _ in range(processes):
            app = create_app(settings)
            app.register(OrdersController)
            app.state.gate = gate
            apps.append(app)
        async with apps[0].state.db.engine.begin() as conn:
            await conn.run_sync(effects_metadata.create_all)
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver.local")
            for app in apps
        ]
        fleet = Fleet(settings, apps, clients, gate)
        made.append(fleet)
        return fleet

    yield make
    for fleet in made:
        fleet.gate.release.set()
        for client in fleet.clients:
            await client.aclose()
        for app in fleet.apps:
            await app.state.db.dispose()


@pytest.fixture
async def fleet(fleet_factory: Callable[[int], Awaitable[Fleet]]) -> Fleet:
    return await fleet_factory(1)


def _is_replay(response: httpx.Response) -> bool:
    return response.headers.get("idempotent-replayed") == "true"


async def test_retry_gets_the_first_response_and_no_second_effect(fleet: Fleet) -> None:
    caller = new_caller()
    first = await fleet.order(caller, "key-1", {"label": "water bill", "amount": 120_000, "pin": "1234"})
    assert first.status_code == 201, first.text
    assert not _is_replay(first)

    # The same request, retried: fields in another order, the PIN typed again (the PIN is not compared).
    again = await fleet.order(caller, "key-1", {"pin": "1234", "amount": 120_000, "label": "water bill"})
    assert again.status_code == 201, again.text
    assert _is_replay(again)
    assert again.content == first.content
    assert again.json()["receipt"] == first.json()["receipt"]
    assert await fleet.effect_count() == 1


async def test_same_key_with_another_request_is_refused(fleet: Fleet) -> None:
    caller = new_caller()
    first = await fleet.order(caller, "key-2", {"label": "electricity", "amount": 300_000})
    assert first.status_code == 201, first.text

    other_amount = await fleet.order(caller, "key-2", {"label": "electricity", "amount": 310_000})
    assert_problem(other_amount, 422, "idempotency_key_reused")
    other_route = await fleet.order(
        caller, "key-2", {"label": "electricity", "amount": 300_000}, path="/api/v1/_test/gifts"
    )
    assert_problem(other_route, 422, "idempotency_key_reused")
    assert await fleet.effect_count() == 1

    # The mismatch stored nothing either: the original still replays.
    replay = await fleet.order(caller, "key-2", {"label": "electricity", "amount": 300_000})
    assert _is_replay(replay)
    assert replay.content == first.content


async def test_the_key_is_required_and_bounded(fleet: Fleet) -> None:
    caller = new_caller()
    body = {"label": "tuition", "amount": 1_000}
    assert_problem(await fleet.order(caller, None, body), 400, "idempotency_key_required")
    assert_problem(await fleet.order(caller, "", body), 422, "validation_failed")
    assert_problem(await fleet.order(caller, "k" * 256, body), 422, "validation_failed")
    assert await fleet.effect_count() == 0
    assert (await fleet.order(caller, "k" * 255, body)).status_code == 201


async def test_request_while_the_first_runs_is_409(fleet: Fleet) -> None:
    caller = new_caller()
    body = {"label": "hospital fee", "amount": 50_000}
    fleet.gate.hold = True
    first = asyncio.create_task(fleet.order(caller, "key-3", body))
    await asyncio.wait_for(fleet.gate.entered.wait(), TIMEOUT)

    second = await fleet.order(caller, "key-3", body)
    problem = assert_problem(second, 409, "idempotency_in_progress")
    assert second.headers["retry-after"] == "1"
    assert problem["detail"]

    fleet.gate.release.set()
    done = await first
    assert done.status_code == 201, done.text
    retry = await fleet.order(caller, "key-3", body)
    assert _is_replay(retry)
    assert retry.content == done.content
    assert await fleet.effect_count() == 1


async def test_request_while_the_first_runs_in_another_process(
    fleet_factory: Callable[[int], Awaitable[Fleet]], backend_env: Backend
) -> None:
    fleet = await fleet_factory(2)
    caller = new_caller()
    body = {"label": "land tax", "amount": 75_000}
    fleet.gate.hold = True
    first = asyncio.create_task(fleet.order(caller, "key-4", body, via=0))
    await asyncio.wait_for(fleet.gate.entered.wait(), TIMEOUT)

    second = asyncio.create_task(fleet.order(caller, "key-4", body, via=1))
    if backend_env.is_postgres:
        # The advisory lock of the first transaction answers at once, across processes.
        assert_problem(await second, 409, "idempotency_in_progress")
    else:
        # SQLite has one writer at a time, across processes: the second waits for the first to commit...
        await asyncio.sleep(0.3)
        assert not second.done()
    fleet.gate.release.set()
    done = await first
    assert done.status_code == 201, done.text
    if not backend_env.is_postgres:
        # ...and then finds its stored response: a replay, not a second effect.
        waited = await second
        assert _is_replay(waited)
        assert waited.content == done.content
    assert fleet.gate.entries == 1
    assert await fleet.effect_count() == 1


async def test_a_refused_request_leaves_the_key_free(fleet: Fleet) -> None:
    caller = new_caller()
    refused = await fleet.order(caller, "key-5", {"label": "water", "amount": 0})
    assert_problem(refused, 422, "test_invalid_amount")
    corrected = await fleet.order(caller, "key-5", {"label": "water", "amount": 10_000})
    assert corrected.status_code == 201, corrected.text
    assert not _is_replay(corrected)

    wrong_pin = await fleet.order(caller, "key-6", {"label": "gas", "amount": 20_000, "pin": "0000"})
    assert_problem(wrong_pin, 403, "test_wrong_pin")
    right_pin = await fleet.order(caller, "key-6", {"label": "gas", "amount": 20_000, "pin": "1234"})
    assert right_pin.status_code == 201, right_pin.text
    assert not _is_replay(right_pin)

    # The refused attempts inserted effect rows too; they were rolled back with the key.
    assert fleet.gate.entries == 4
    assert await fleet.effect_count() == 2


async def test_twenty_concurrent_requests_with_one_key_take_effect_once(
    fleet_factory: Callable[[int], Awaitable[Fleet]], backend_env: Backend
) -> None:
    fleet = await fleet_factory(4)
    caller = new_caller()
    body = {"label": "one tap", "amount": 90_000}
    fleet.gate.hold = True
    fleet.gate.barrier = asyncio.Barrier(20)  # all twenty reach the idempotency check together
    tasks = [asyncio.create_task(fleet.order(caller, "key-7", body, via=i % 4)) for i in range(20)]
    await asyncio.wait_for(fleet.gate.entered.wait(), TIMEOUT)

    if backend_env.is_postgres:
        # While the winner holds its transaction open, every other request is answered 409 at once.
        async def nineteen_answered() -> None:
            while sum(t.done() for t in tasks) < 19:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(nineteen_answered(), TIMEOUT)
        for task in tasks:
            if task.done():
                assert_problem(task.result(), 409, "idempotency_in_progress")
    else:
        # One writer at a time: the winner's "process" answers its other requests 409, the other
        # processes' requests wait for the write lock.
        await asyncio.sleep(0.3)
    fleet.gate.release.set()
    responses = await asyncio.gather(*tasks)

    created = [r for r in responses if r.status_code == 201 and not _is_replay(r)]
    replays = [r for r in responses if r.status_code == 201 and _is_replay(r)]
    in_progress = [r for r in responses if r.status_code == 409]
    assert len(created) == 1
    assert len(created) + len(replays) + len(in_progress) == 20
    assert all(r.content == created[0].content for r in replays)
    assert all(r.json()["code"] == "idempotency_in_progress" for r in in_progress)
    if backend_env.is_postgres:
        assert len(in_progress) == 19
    assert fleet.gate.entries == 1
    assert await fleet.effect_count() == 1


async def test_keys_belong_to_their_caller(fleet: Fleet) -> None:
    alice, bob = new_caller(), new_caller()
    body = {"label": "school fee", "amount": 500_000}
    for_alice = await fleet.order(alice, "shared-key", body)
    for_bob = await fleet.order(bob, "shared-key", body)
    assert for_alice.status_code == for_bob.status_code == 201
    assert not _is_replay(for_bob)
    assert for_alice.json()["id"] != for_bob.json()["id"]
    assert await fleet.effect_count() == 2
    # Bob's key with Alice's request is Bob's business only: his own request under it replays.
    assert (await fleet.order(bob, "shared-key", body)).json() == for_bob.json()


async def test_an_exception_mid_effect_does_not_hold_the_key(fleet: Fleet) -> None:
    caller = new_caller()
    body = {"label": "parking", "amount": 5_000}
    fleet.gate.crash_once = True
    assert_problem(await fleet.order(caller, "key-8", body), 500, "internal_error")
    assert await fleet.effect_count() == 0
    retry = await fleet.order(caller, "key-8", body)
    assert retry.status_code == 201, retry.text
    assert not _is_replay(retry)
    assert await fleet.effect_count() == 1


_KILLED_WORKER = """
import asyncio, sys
from sqlalchemy import text
from app.core.db import Database
from app.core.idempotency import idempotent
from app.core.settings import load_settings

async def main(url: str, scope: str, key: str) -> None:
    db = Database(load_settings({"APP_ENV": "test", "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}))
    async with idempotent(db, scope=scope, key=key, fingerprint=bytes(32)) as unit:
        await unit.session.execute(
            text("INSERT INTO idem_test_effects (owner, label, amount) VALUES ('killed', 'killed', 1)")
        )
        print("entered", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main(*sys.argv[1:]))
"""


async def test_a_killed_process_does_not_hold_the_key(fleet: Fleet, backend_env: Backend) -> None:
    caller = new_caller()
    body = {"label": "health insurance", "amount": 700_000}
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _KILLED_WORKER,
        backend_env.database_url,
        scope_of(caller),
        "key-9",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert worker.stdout is not None
        line = await asyncio.wait_for(worker.stdout.readline(), TIMEOUT)
        assert line.strip() == b"entered"
        if backend_env.is_postgres:
            assert_problem(await fleet.order(caller, "key-9", body), 409, "idempotency_in_progress")
            worker.send_signal(signal.SIGKILL)
            await worker.wait()
            response = await fleet.order(caller, "key-9", body)
        else:
            waiting = asyncio.create_task(fleet.order(caller, "key-9", body))
            await asyncio.sleep(0.3)
            assert not waiting.done()
            worker.send_signal(signal.SIGKILL)
            await worker.wait()
            response = await waiting
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    assert response.status_code == 201, response.text
    assert not _is_replay(response)
    async with fleet.db.read() as session:
        owners = (await session.execute(select(effects.c.owner))).scalars().all()
    assert owners == [str(caller.user_id)]


@pytest.mark.postgres_only
async def test_a_dropped_connection_releases_the_key(
    fleet_factory: Callable[[int], Awaitable[Fleet]], backend_env: Backend
) -> None:
    fleet = await fleet_factory(2)
    caller = new_caller()
    body = {"label": "fine", "amount": 150_000}
    fleet.gate.hold = True
    first = asyncio.create_task(fleet.order(caller, "key-10", body, via=0))
    await asyncio.wait_for(fleet.gate.entered.wait(), TIMEOUT)
    assert_problem(await fleet.order(caller, "key-10", body, via=1), 409, "idempotency_in_progress")

    database = backend_env.database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(_asyncpg_dsn(PG_ADMIN_URL, database))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", fleet.gate.backend_pid)
        # The server ends the backend asynchronously; wait until it is gone.
        for _ in range(200):
            gone = not await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", fleet.gate.backend_pid
            )
            if gone:
                break
            await asyncio.sleep(0.01)
    finally:
        await admin.close()

    fleet.gate.hold = False
    second = await fleet.order(caller, "key-10", body, via=1)
    assert second.status_code == 201, second.text
    assert not _is_replay(second)

    fleet.gate.release.set()
    assert_problem(await first, 500, "internal_error")
    # The first process forgot the key too: its retry gets the second's response.
    retry = await fleet.order(caller, "key-10", body, via=0)
    assert _is_replay(retry)
    assert retry.content == second.content
    assert await fleet.effect_count() == 1


async def _age(fleet: Fleet, key: str, age: timedelta) -> None:
    async with fleet.db.transaction() as session:
        from app.core.models import IdempotencyRecord

        await session.execute(
            update(IdempotencyRecord).where(IdempotencyRecord.key == key).values(created_at=utcnow() - age)
        )


async def test_sweep_removes_only_keys_older_than_a_day(fleet: Fleet) -> None:
    caller = new_caller()
    bodies = {f"key-{n}": {"label": f"bill {n}", "amount": 1_000 + n} for n in range(4)}
    for key, body in bodies.items():
        assert (await fleet.order(caller, key, body)).status_code == 201
    await _age(fleet, "key-0", timedelta(hours=24, minutes=1))
    await _age(fleet, "key-1", timedelta(hours=30))
    await _age(fleet, "key-2", timedelta(hours=23, minutes=59))

    assert await sweep_idempotency_keys(fleet.db, utcnow(), batch_size=1) == 2
    assert await sweep_idempotency_keys(fleet.db, utcnow()) == 0

    # Swept keys are free again (a new effect); the others still replay.
    for key, swept in (("key-0", True), ("key-1", True), ("key-2", False), ("key-3", False)):
        response = await fleet.order(caller, key, bodies[key])
        assert response.status_code == 201
        assert _is_replay(response) is not swept, key
    assert await fleet.effect_count() == 6

    with pytest.raises(ValueError):
        await sweep_idempotency_keys(fleet.db, utcnow().replace(tzinfo=None))


def test_openapi_documents_the_header_the_replay_and_the_errors() -> None:
    app = Litestar(
        route_handlers=[OrdersController],
        dependencies=core_dependencies(),
        openapi_config=openapi_config("test"),
    )
    document_errors(app)
    operation = app.openapi_schema.to_schema()["paths"]["/api/v1/_test/orders"]["post"]
    header = next(p for p in operation["parameters"] if p["name"] == "Idempotency-Key")
    assert header["in"] == "header"
    assert header["required"] is True
    assert header["schema"] == {"type": "string", "minLength": 1, "maxLength": 255}
    assert "retry" in header["description"]
    responses = operation["responses"]
    assert "Idempotent-Replayed" in responses["201"]["headers"]
    assert "`idempotency_key_required`" in responses["400"]["description"]
    assert "`idempotency_in_progress`" in responses["409"]["description"]
    assert "`idempotency_key_reused`" in responses["422"]["description"]
