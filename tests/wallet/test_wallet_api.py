"""The wallet over HTTP: open, balance, transfers (PIN, idempotency, limits, inbox), statement, CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar

from app.core.db import Database
from app.wallet import ledger, limits, service
from app.wallet.ledger import AccountType
from app.wallet.limits import Limits
from tests.conftest import assert_problem
from tests.factories import in_app, make_user
from tests.wallet.helpers import fund

TRANSFERS = "/api/v1/me/wallet/transfers"


def _key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def _send(
    client: Any, sender: Any, to: Any, amount: int, *, pin: str = "246810", key: str | None = None
) -> Any:
    body = {"phone": to.phone, "amount": amount, "pin": pin, "message": "Tiền ăn trưa"}
    headers = {**sender.headers, "Idempotency-Key": key or str(uuid.uuid4())}
    return await client.post(TRANSFERS, json=body, headers=headers)


async def _set_limit(client: Any, category: str, value: Limits) -> None:
    db: Database = client.app.state.db

    async def run() -> None:
        async with db.transaction() as session:
            await limits.set_limit(session, 2, category, value)

    await in_app(client, run)


async def _available(client: Any, user: Any) -> int:
    resp = await client.get("/api/v1/me/wallet", headers=user.headers)
    assert resp.status_code == 200, resp.text
    return int(resp.json()["available"])


async def test_open_wallet_needs_level_2_and_is_idempotent(client: Any) -> None:
    citizen = await make_user(client, level=1)
    resp = await client.post("/api/v1/me/wallet", headers={**citizen.headers, **_key()})
    assert assert_problem(resp, 403, "identity_level_required")["current"] == 1
    assert_problem(await client.get("/api/v1/me/wallet", headers=citizen.headers), 404, "wallet_not_found")
    verified = await make_user(client, funding_source=False)
    for _ in range(2):
        resp = await client.post("/api/v1/me/wallet", headers={**verified.headers, **_key()})
        assert resp.status_code == 201, resp.text
        assert resp.json()["balance"] == 0
        assert resp.json()["funding_source_linked"] is False
    wallet = (await client.get("/api/v1/me/wallet", headers=verified.headers)).json()
    assert wallet["available"] == 0
    assert wallet["limits"]["monthly_cap"] == 100_000_000


async def test_transfer_moves_money_and_notifies_the_receiver(client: Any) -> None:
    alice, bob = await make_user(client), await make_user(client, full_name="Trần Thị Bình")
    await fund(client, alice.user_id, 1_000_000)
    await fund(client, bob.user_id, 0)
    resp = await _send(client, alice, bob, 250_000)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["amount"] == -250_000
    assert body["available_after"] == 750_000
    assert body["recipient_name"] == "T*** T** B***"
    assert await _available(client, alice) == 750_000
    assert await _available(client, bob) == 250_000
    inbox = (await client.get("/api/v1/me/inbox", headers=bob.headers)).json()["items"]
    assert inbox[0]["kind"] == "wallet.transfer_received"
    assert "250.000" in inbox[0]["body_vi"]
    seen = await client.get(f"{TRANSFERS}/{body['id']}", headers=bob.headers)
    assert seen.status_code == 200
    assert seen.json()["amount"] == 250_000
    assert seen.json()["message"] == "Tiền ăn trưa"


async def test_others_cannot_see_a_transfer_or_its_lines(client: Any) -> None:
    alice, bob, eve = await make_user(client), await make_user(client), await make_user(client)
    await fund(client, alice.user_id, 100_000)
    await fund(client, bob.user_id, 0)
    await fund(client, eve.user_id, 5_000)
    transfer_id = (await _send(client, alice, bob, 10_000)).json()["id"]
    assert_problem(await client.get(f"{TRANSFERS}/{transfer_id}", headers=eve.headers), 404, "not_found")
    lines = (await client.get("/api/v1/me/wallet/statement", headers=eve.headers)).json()["items"]
    assert [line["amount"] for line in lines] == [5_000]
    assert await _available(client, eve) == 5_000


async def test_wrong_pin_writes_nothing_and_the_key_can_be_reused(client: Any) -> None:
    alice, bob = await make_user(client), await make_user(client)
    await fund(client, alice.user_id, 100_000)
    await fund(client, bob.user_id, 0)
    key = str(uuid.uuid4())
    resp = await _send(client, alice, bob, 40_000, pin="135799", key=key)
    assert_problem(resp, 422, "pin_invalid")
    assert await _available(client, alice) == 100_000
    assert await _available(client, bob) == 0
    assert (await client.get("/api/v1/me/inbox", headers=bob.headers)).json()["items"] == []
    assert (await _send(client, alice, bob, 40_000, key=key)).status_code == 201
    assert await _available(client, bob) == 40_000


async def test_repeated_idempotency_key_sends_once(client: Any) -> None:
    alice, bob = await make_user(client), await make_user(client)
    await fund(client, alice.user_id, 100_000)
    await fund(client, bob.user_id, 0)
    key = str(uuid.uuid4())
    first = await _send(client, alice, bob, 30_000, key=key)
    again = await _send(client, alice, bob, 30_000, key=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert await _available(client, alice) == 70_000
    assert await _available(client, bob) == 30_000


async def test_unknown_recipient_self_and_funds(client: Any) -> None:
    alice, no_wallet = await make_user(client), await make_user(client)
    await fund(client, alice.user_id, 10_000)
    assert_problem(await _send(client, alice, no_wallet, 5_000), 404, "recipient_not_found")
    assert_problem(await _send(client, alice, alice, 5_000), 422, "self_transfer")
    bob = await make_user(client)
    await fund(client, bob.user_id, 0)
    assert (
        assert_problem(await _send(client, alice, bob, 20_000), 422, "insufficient_funds")["available"]
        == 10_000
    )


async def test_per_transaction_and_daily_limits_say_what_remains(client: Any) -> None:
    await _set_limit(client, "transfer", Limits(per_transaction=100_000, per_day=250_000, per_month=None))
    alice, bob = await make_user(client), await make_user(client)
    await fund(client, alice.user_id, 1_000_000)
    await fund(client, bob.user_id, 0)
    refused = assert_problem(await _send(client, alice, bob, 150_000), 422, "limit_exceeded")
    assert (refused["limit"], refused["remaining"]) == ("per_transaction", 100_000)
    assert (await _send(client, alice, bob, 100_000)).status_code == 201
    assert (await _send(client, alice, bob, 100_000)).status_code == 201
    refused = assert_problem(await _send(client, alice, bob, 100_000), 422, "limit_exceeded")
    assert (refused["limit"], refused["remaining"]) == ("per_day", 50_000)
    assert await _available(client, alice) == 800_000  # the refused ones took nothing


async def test_monthly_cap_counts_transfers_not_exempt_bills(client: Any) -> None:
    # DOMAIN.md: 100,000,000 đồng per customer per month, payments and transfers; electricity is exempt.
    big = Limits(per_transaction=200_000_000, per_day=200_000_000, per_month=None)
    await _set_limit(client, "transfer", big)
    await _set_limit(client, "electricity", big)
    alice, bob = await make_user(client), await make_user(client)
    await fund(client, alice.user_id, 150_000_000)
    await fund(client, bob.user_id, 0)
    assert (await _send(client, alice, bob, 60_000_000)).status_code == 201
    db: Database = client.app.state.db

    async def pay_electricity() -> None:
        async with db.transaction() as session:
            biller = await ledger.ensure_account(session, AccountType.BILLER_PAYABLE, uuid.uuid4())
            await service.pay_from_wallet(
                session,
                payer_id=alice.user_id,
                session_id=alice.session_id,
                pin="246810",
                category="electricity",
                limit_exempt=True,
                credits=[(biller, 30_000_000)],
                kind="bill_payment",
                reference="evn",
                description="Tiền điện",
                metadata={},
            )

    await in_app(client, pay_electricity)
    refused = assert_problem(await _send(client, alice, bob, 45_000_000), 422, "limit_exceeded")
    assert (refused["limit"], refused["remaining"]) == ("monthly_cap", 40_000_000)
    assert (await _send(client, alice, bob, 40_000_000)).status_code == 201
    assert await _available(client, alice) == 20_000_000


async def test_new_device_has_a_lower_limit(client: Any) -> None:
    await _set_limit(client, "_new_device", Limits(per_transaction=1_000_000, per_day=1_500_000))
    fresh, settled, bob = (
        await make_user(client, new_device=True),
        await make_user(client),
        await make_user(client),
    )
    for user in (fresh, settled):
        await fund(client, user.user_id, 5_000_000)
    await fund(client, bob.user_id, 0)
    assert (await _send(client, settled, bob, 2_000_000)).status_code == 201
    refused = assert_problem(await _send(client, fresh, bob, 2_000_000), 422, "limit_exceeded")
    assert (refused["limit"], refused["remaining"]) == ("new_device_per_transaction", 1_000_000)
    assert (await _send(client, fresh, bob, 1_000_000)).status_code == 201
    refused = assert_problem(await _send(client, fresh, bob, 1_000_000), 422, "limit_exceeded")
    assert (refused["limit"], refused["remaining"]) == ("new_device_per_day", 500_000)


async def test_statement_pages_filters_and_running_balance(client: Any) -> None:
    alice, bob = await make_user(client), await make_user(client)
    await fund(client, alice.user_id, 100_000)
    await fund(client, bob.user_id, 0)
    for amount in (1_000, 2_000, 3_000, 4_000, 5_000):
        assert (await _send(client, alice, bob, amount)).status_code == 201
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/me/wallet/statement", params=params, headers=alice.headers)).json()
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [line["amount"] for line in seen] == [-5_000, -4_000, -3_000, -2_000, -1_000, 100_000]
    assert [line["balance_after"] for line in seen] == [85_000, 90_000, 94_000, 97_000, 99_000, 100_000]
    only = await client.get("/api/v1/me/wallet/statement", params={"kind": "transfer"}, headers=bob.headers)
    assert [line["amount"] for line in only.json()["items"]] == [5_000, 4_000, 3_000, 2_000, 1_000]
    past = await client.get(
        "/api/v1/me/wallet/statement", params={"date_to": "2020-01-01"}, headers=bob.headers
    )
    assert past.json()["items"] == []
    bad = await client.get("/api/v1/me/wallet/statement", params={"cursor": "nope"}, headers=bob.headers)
    assert_problem(bad, 422, "validation_failed")


async def test_monthly_csv_export(client: Any) -> None:
    alice, bob = await make_user(client), await make_user(client)
    await fund(client, alice.user_id, 50_000)
    await fund(client, bob.user_id, 0)
    await _send(client, alice, bob, 12_000)
    month = (await client.get("/api/v1/me/wallet/statement", headers=alice.headers)).json()["items"][0]
    from datetime import datetime

    from app.wallet.limits import VN

    local_month = datetime.fromisoformat(month["created_at"]).astimezone(VN).strftime("%Y-%m")
    resp = await client.get(
        "/api/v1/me/wallet/statement.csv", params={"month": local_month}, headers=alice.headers
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert rows[0] == ["time", "id", "kind", "description", "amount", "balance_after"]
    assert rows[1][2] == "opening_balance"
    assert rows[1][5] == "0"
    assert [(r[2], r[4], r[5]) for r in rows[2:4]] == [
        ("topup", "50000", "50000"),
        ("transfer", "-12000", "38000"),
    ]
    assert rows[-1][2] == "closing_balance"
    assert rows[-1][5] == "38000"
    empty = await client.get(
        "/api/v1/me/wallet/statement.csv", params={"month": "2020-01"}, headers=alice.headers
    )
    assert [r[5] for r in csv.reader(io.StringIO(empty.content.decode("utf-8-sig")))][1:] == ["0", "0"]


@pytest.fixture
async def http(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.get_running_loop().create_task(run_lifespan())
    await asyncio.wait_for(started.wait(), timeout=10)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            yield client
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


async def test_two_concurrent_transfers_over_the_balance_one_succeeds(
    app: Litestar, http: httpx.AsyncClient, backend_env: Any
) -> None:
    alice, bob, carol = await make_user(app), await make_user(app), await make_user(app)
    db: Database = app.state.db
    for user, amount in ((alice, 100_000), (bob, 0), (carol, 0)):
        async with db.transaction() as session:
            wallet = await service.wallet_account_id(session, user.user_id, create=True)
            if amount:
                bank = ledger.system_account(AccountType.GUARANTEE_BANK)
                await ledger.post(
                    session,
                    ledger.Entry(
                        kind="topup", postings=[ledger.debit(bank, amount), ledger.credit(wallet, amount)]
                    ),
                )
    # Force the overlap on PostgreSQL: both requests inside their transaction (idempotency key claimed,
    # identity level read), before the PIN, the limits and the posting. SQLite admits one writer at a
    # time (BEGIN IMMEDIATE): no overlap is possible there, the second waits for the first to commit.
    barrier = asyncio.Barrier(2 if backend_env.is_postgres else 1)
    original = limits.check_per_transaction

    async def paused(*args: Any, **kwargs: Any) -> None:
        await original(*args, **kwargs)
        await asyncio.wait_for(barrier.wait(), timeout=5)

    limits_module: Any = limits
    limits_module.check_per_transaction = paused
    try:
        results = await asyncio.gather(
            *(
                http.post(
                    TRANSFERS,
                    json={"phone": to.phone, "amount": 70_000, "pin": "246810"},
                    headers={**alice.headers, **_key()},
                )
                for to in (bob, carol)
            )
        )
    finally:
        limits_module.check_per_transaction = original
    codes = sorted(r.status_code for r in results)
    assert codes == [201, 422], [r.text for r in results]
    async with db.read() as session:
        assert (await service.wallet_balance(session, alice.user_id)).balance == 30_000
        assert (await ledger.check_books(session)).ok
