"""Merchants through the HTTP API on both backends: onboarding, QR pay, refunds, webhooks, settlement,
isolation between merchants, and concurrency (the app in the test's own loop, requests overlapping)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar
from qr_pay.decode import decode as napas_decode
from sqlalchemy import func, select, update
from vietnam_qr_pay import QRPay

from app.core.bank_transfer import SandboxBank, install_bank_transfers
from app.core.db import utcnow
from app.core.outbox import Dispatcher, DispatcherConfig, HandlerRegistry
from app.merchants import pay_pg, service, settlement, vietqr, webhooks
from app.merchants.models import MerchantOrder, MerchantPayment, MerchantRefund
from app.wallet import ledger
from app.wallet import service as wallet_service
from tests.conftest import Rendezvous, assert_problem
from tests.factories import UserHandle, make_user
from tests.merchants.conftest import STORE, World
from tests.wallet.conftest import assert_books_balance


async def test_onboard_pay_by_scan_refund_webhook_and_settle(world: World) -> None:
    # Onboarding rules: level 2 owner, tax code shapes
    level1 = await make_user(world.app, level=1)
    refused = await world.post(
        "/api/v1/merchants",
        {
            "name": "Quán X",
            "tax_code": "3300101234",
            "mcc": "5812",
            "settlement_bank_bin": "970436",
            "settlement_account_number": "0041000123456",
            "settlement_account_name": "NGUYEN X",
            "stores": [STORE],
        },
        level1.headers,
    )
    assert_problem(refused, 403, "identity_level_required")
    for bad in ("33001012", "330010123456789", "ABCDEFGHIJ"):
        assert service_code(bad) is None
    assert service.business_type_of("046190001234") == ("046190001234", "household")
    assert service.business_type_of("3300101234-001") == ("3300101234001", "branch")

    merchant_id, owner = await world.merchant("Quán Bún Bò O Xuân", "046190001234")
    owner_h = world.staff(owner, merchant_id, "merchant_owner")
    # a cashier added by phone
    cashier = await make_user(world.app, full_name="Lê Văn Thu")
    added = await world.post(f"/api/v1/merchants/{merchant_id}/staff", {"phone": cashier.phone}, owner_h)
    assert added.status_code == 201, added.text
    cashier_h = world.staff(cashier, merchant_id, "merchant_cashier")
    # webhook endpoint (the merchant's server, mocked) and the signing secret shown once
    received: list[httpx.Request] = []

    def merchant_server(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(500 if len(received) == 1 else 200)  # first try fails: retried

    hook = await world.post(
        f"/api/v1/merchants/{merchant_id}/webhook", {"url": "https://shop.example/hook"}, owner_h
    )
    assert hook.status_code == 200, hook.text
    secret = hook.json()["secret"]
    webhooks.install(
        world.db, world.settings, httpx.AsyncClient(transport=httpx.MockTransport(merchant_server))
    )

    # Static QR: the payer scans, sees who, types the amount, pays
    payload = await world.static_qr(merchant_id, cashier_h)
    payer = await make_user(world.app, full_name="Nguyễn Văn An")
    wallet = await world.fund(payer.user_id, 500_000)
    preview = await world.http.post("/api/v1/qr/preview", json={"payload": payload}, headers=payer.headers)
    assert preview.status_code == 200, preview.text
    assert preview.json()["merchant_name"] == "Quán Bún Bò O Xuân"
    assert preview.json()["amount"] is None
    assert preview.json()["store_name"] == "Quầy chính"
    assert_problem(await world.pay(payer, payload), 422, "qr_amount_required")
    bad_crc = payload[:-1] + ("0" if payload[-1] != "0" else "1")
    assert_problem(await world.pay(payer, bad_crc, 45_000), 422, "qr_invalid")
    paid = await world.pay(payer, payload, 45_000)
    assert paid.status_code == 201, paid.text
    # fee 0.6 % of 45,000 = 270 đ; the merchant gets 44,730
    assert (paid.json()["amount"], paid.json()["fee"], paid.json()["net"]) == (45_000, 270, 44_730)
    assert await world.balance(wallet) == 455_000

    # Dynamic QR: the cashier asks for 120,001 đ (fee 720.006 -> 720), paid once
    order = await world.post(
        f"/api/v1/merchants/{merchant_id}/orders",
        {"amount": 120_001, "description": "Bún bò đặc biệt x3"},
        cashier_h,
    )
    assert order.status_code == 201, order.text
    dyn = order.json()["qr_payload"]
    png = await world.http.get(order.json()["qr_png_url"], headers=cashier_h)
    assert png.status_code == 200
    assert png.content.startswith(b"\x89PNG")
    assert_problem(await world.pay(payer, dyn, 1_000), 422, "qr_invalid")  # the amount is fixed
    second = await world.pay(payer, dyn)
    assert second.status_code == 201, second.text
    assert second.json()["fee"] == 720
    assert_problem(await world.pay(payer, dyn), 409, "order_not_payable")
    status = await world.http.get(
        f"/api/v1/merchants/{merchant_id}/orders/{order.json()['id']}", headers=cashier_h
    )
    assert status.json()["status"] == "paid"
    # an expired order
    late = await world.post(f"/api/v1/merchants/{merchant_id}/orders", {"amount": 5_000}, cashier_h)
    async with world.db.transaction() as session:
        await session.execute(
            update(MerchantOrder)
            .where(MerchantOrder.id == uuid.UUID(late.json()["id"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert_problem(await world.pay(payer, late.json()["qr_payload"]), 422, "order_expired")

    # Refunds: two partials, then more than is left is refused, then the rest
    pid = paid.json()["id"]
    url = f"/api/v1/merchants/{merchant_id}/payments/{pid}/refunds"
    r1 = await world.post(url, {"amount": 10_000, "reason": "thiếu món"}, cashier_h)
    assert r1.status_code == 201, r1.text
    r2 = await world.post(url, {"amount": 5_000}, cashier_h)
    assert r2.json()["refunded_total"] == 15_000
    assert r2.json()["payment_status"] == "partially_refunded"
    assert_problem(await world.post(url, {"amount": 30_001}, cashier_h), 422, "refund_exceeds_paid")
    r3 = await world.post(url, {}, cashier_h)
    assert r3.json()["amount"] == 30_000
    assert r3.json()["payment_status"] == "refunded"
    assert sum(r.json()["fee_returned"] for r in (r1, r2, r3)) == 270  # the whole fee given back
    assert await world.balance(wallet) == 500_000 - 120_001

    # Webhooks: 2 payments + 3 refunds, signed, the first try failed and was retried
    handlers = HandlerRegistry()
    handlers.register(service.WEBHOOK_TOPIC, webhooks.deliver_webhook)
    dispatcher = Dispatcher(
        world.db,
        config=DispatcherConfig(backoff_base_seconds=0.01, backoff_cap_seconds=0.02),
        handlers=handlers,
    )
    for _ in range(50):
        await dispatcher.dispatch_once()
        log = (
            await world.http.get(f"/api/v1/merchants/{merchant_id}/webhook-events", headers=owner_h)
        ).json()
        if all(e["status"] == "delivered" for e in log):
            break
        await asyncio.sleep(0.03)
    assert len(log) == 5
    assert all(e["status"] == "delivered" for e in log)
    assert sum(e["attempts"] for e in log) == 6
    for request in received:
        assert webhooks.verify(secret, request.content, request.headers["Hue-Signature"])
        assert json.loads(request.content)["id"] == request.headers["Hue-Event-Id"]
    assert not webhooks.verify(secret, received[-1].content + b" ", received[-1].headers["Hue-Signature"])
    resent = await world.post(
        f"/api/v1/merchants/{merchant_id}/webhook-events/{log[0]['id']}/resend", None, owner_h
    )
    assert resent.status_code == 200
    assert resent.json()["resends"] == 1

    # Settlement: the day's net balance to the bank, once; the CSV adds up to the ledger
    bank = SandboxBank()
    install_bank_transfers(bank)
    today = utcnow().astimezone(settlement.LOCAL_TZ).date()
    run = await settlement.settle_day(world.db, today)
    again = await settlement.settle_day(world.db, today)
    expected = (45_000 - 270) - (45_000 - 270) + (120_001 - 720)
    assert run.total == expected
    assert again.skipped >= 1
    assert bank.succeeded_total() == expected
    report = await world.http.get(
        f"/api/v1/merchants/{merchant_id}/settlements/{today}/report", headers=owner_h
    )
    rows = list(csv.reader(io.StringIO(report.text)))
    lines = list(rows[2:-1])
    async with world.db.read() as session:
        merchant = await service.get_merchant(session, uuid.UUID(merchant_id))
    # settled "today" in this test, so the payout is one of today's lines and the day closes at 0
    assert int(rows[1][6]) + sum(int(r[5]) for r in lines) == int(rows[-1][6])
    assert int(rows[-1][6]) == await world.balance(merchant.payable_account_id) == 0
    assert [int(r[5]) for r in lines if r[1] == "merchant_payout"] == [-expected]
    assert sum(int(r[3]) for r in lines if r[1] == "merchant_payment") == 45_000 + 120_001
    async with world.db.transaction() as session:
        assert (await ledger.check_books(session)).ok


def service_code(code: str) -> str | None:
    try:
        return service.business_type_of(code)[1]
    except Exception:
        return None


async def test_a_merchant_named_in_vietnamese_gets_an_ascii_vietqr_that_third_party_decoders_read(
    world: World,
) -> None:
    """DOMAIN.md: every VietQR value is ASCII (Vietnamese diacritics stripped, đ -> d), field 59 (name) at
    most 25 characters, field 60 (city) at most 15. A merchant registered with its Vietnamese name and city
    gets static and dynamic QR payloads that vietnam-qr-pay and napas-qr-python read back as the ASCII text
    written out below by hand; the app itself still shows the Vietnamese name."""
    cases = [  # name, city, what fields 59 and 60 must hold
        ("Quán Bún Bò Ơ Xuân", "Thành phố Huế", "Quan Bun Bo O Xuan", "Thanh pho Hue"),
        (  # too long for both fields: cut to 25 and 15 characters after the diacritics are gone
            "Nhà Hàng Cơm Niêu Đồng Khánh Thừa Thiên",
            "Thị xã Hương Thủy",
            "Nha Hang Com Nieu Dong Kh",
            "Thi xa Huong Th",
        ),
    ]
    payer = await make_user(world.app)
    for n, (name, city, ascii_name, ascii_city) in enumerate(cases):
        merchant_id, owner = await world.merchant(name, f"330010600{n}", city=city)
        owner_h = world.staff(owner, merchant_id, "merchant_owner")
        static = await world.static_qr(merchant_id, owner_h)
        order = await world.post(
            f"/api/v1/merchants/{merchant_id}/orders",
            {"amount": 45_000, "description": "Bún bò đặc biệt"},
            owner_h,
        )
        assert order.status_code == 201, order.text
        dynamic = order.json()["qr_payload"]
        for payload, method, amount in ((static, "11", None), (dynamic, "12", "45000")):
            assert payload.isascii(), payload
            q = QRPay(payload)  # vietnam-qr-pay
            assert q.is_valid
            assert (q.init_method, q.amount) == (method, amount)
            assert (q.merchant.name, q.city) == (ascii_name, ascii_city)
            d = napas_decode(payload)  # napas-qr-python (verifies the CRC itself)
            assert (d["point_of_initiation_method"], d["transaction_amount"]) == (method, amount)
            assert (d["merchant_name"], d["merchant_city"]) == (ascii_name, ascii_city)
            assert len(d["merchant_name"]) <= 25
            assert len(d["merchant_city"]) <= 15
        assert QRPay(static).additional_data.store == "QUAY-1"
        assert QRPay(dynamic).additional_data.purpose == "Bun bo dac biet"
        preview = await world.http.post("/api/v1/qr/preview", json={"payload": static}, headers=payer.headers)
        assert preview.status_code == 200, preview.text
        assert preview.json()["merchant_name"] == name


async def test_a_cashier_of_merchant_a_cannot_see_merchant_b(world: World) -> None:
    a_id, _owner_a = await world.merchant("Cơm Hến Bà Hoa", "3300101234")
    b_id, owner_b = await world.merchant("Chè Hẻm", "3300105678")
    cashier = await make_user(world.app)
    a_h = world.staff(cashier, a_id, "merchant_cashier")
    b_h = world.staff(owner_b, b_id, "merchant_owner")
    payer = await make_user(world.app)
    await world.fund(payer.user_id, 100_000)
    paid = await world.pay(payer, await world.static_qr(b_id, b_h), 20_000)
    assert paid.status_code == 201
    paid_a = await world.pay(payer, await world.static_qr(a_id, a_h), 15_000)
    assert paid_a.status_code == 201
    for path in ("", "/payments", "/staff", "/webhook-events", "/settlements"):
        assert_problem(
            await world.http.get(f"/api/v1/merchants/{b_id}{path}", headers=a_h), 404, "merchant_not_found"
        )
    assert_problem(
        await world.post(f"/api/v1/merchants/{b_id}/payments/{paid.json()['id']}/refunds", {}, a_h),
        404,
        "merchant_not_found",
    )
    assert_problem(
        await world.post(f"/api/v1/merchants/{a_id}/payments/{paid.json()['id']}/refunds", {}, a_h),
        404,
        "merchant_payment_not_found",
    )
    assert_problem(
        await world.http.get(f"/api/v1/me/merchant-payments/{paid.json()['id']}", headers=a_h),
        404,
        "merchant_payment_not_found",
    )
    # each merchant's own list holds its own payment and never the other's
    a_list = await world.http.get(f"/api/v1/merchants/{a_id}/payments", headers=a_h)
    assert a_list.status_code == 200, a_list.text
    assert [(p["id"], p["merchant_id"], p["amount"]) for p in a_list.json()["items"]] == [
        (paid_a.json()["id"], a_id, 15_000)
    ]
    b_list = await world.http.get(f"/api/v1/merchants/{b_id}/payments", headers=b_h)
    assert [(p["id"], p["merchant_id"], p["amount"]) for p in b_list.json()["items"]] == [
        (paid.json()["id"], b_id, 20_000)
    ]
    # and A's server, with a key allowed to read payments, sees only A's too
    reader = await world.post(
        f"/api/v1/merchants/{a_id}/api-keys",
        {"name": "books", "scopes": ["payments:read"]},
        world.staff(_owner_a, a_id, "merchant_owner"),
    )
    assert reader.status_code == 201, reader.text
    a_server_list = await world.http.get(
        "/api/v1/merchant-api/payments", headers={"X-Api-Key": reader.json()["secret"]}
    )
    assert a_server_list.status_code == 200, a_server_list.text
    assert [p["id"] for p in a_server_list.json()["items"]] == [paid_a.json()["id"]]
    # an API key of A cannot refund B's payment either
    key = await world.post(
        f"/api/v1/merchants/{a_id}/api-keys",
        {"name": "pos", "scopes": ["refunds", "orders"]},
        world.staff(_owner_a, a_id, "merchant_owner"),
    )
    assert key.status_code == 201, key.text
    api = {"X-Api-Key": key.json()["secret"]}
    assert_problem(
        await world.post(f"/api/v1/merchant-api/payments/{paid.json()['id']}/refunds", {}, api),
        404,
        "merchant_payment_not_found",
    )
    order = await world.post("/api/v1/merchant-api/orders", {"amount": 9_000, "external_ref": "POS-1"}, api)
    assert order.status_code == 201, order.text
    read_back = vietqr.parse(order.json()["qr_payload"])
    assert (read_back.amount, read_back.reference) == (9_000, order.json()["reference"])
    status = await world.http.get(f"/api/v1/merchant-api/orders/{order.json()['id']}", headers=api)
    assert status.json()["status"] == "open"
    assert_problem(
        await world.http.get("/api/v1/merchant-api/payments", headers=api), 403, "forbidden"
    )  # no scope
    owner_a_h = world.staff(_owner_a, a_id, "merchant_owner")
    revoked = await world.http.delete(
        f"/api/v1/merchants/{a_id}/api-keys/{key.json()['id']}",
        headers={**owner_a_h, "Idempotency-Key": "revoke-1"},
    )
    assert revoked.status_code == 204, revoked.text
    assert_problem(
        await world.http.get(f"/api/v1/merchant-api/orders/{order.json()['id']}", headers=api),
        401,
        "api_key_invalid",
    )
    assert_problem(
        await world.post("/api/v1/merchant-api/orders", {"amount": 9_000}, {"X-Api-Key": "mk_nothing"}),
        401,
        "api_key_invalid",
    )


PAYERS = 64
GROUP = 8
"""On PostgreSQL the payments are held in groups of this many, all posted and uncommitted at once (the
driver pool has ``DB_POOL_SIZE`` = 10 connections, so a group can always fill; 64 is 8 groups)."""
PAUSE = 0.02
"""Seconds each SQLite payment holds the writer lock after posting (SQLite admits one writer at a time)."""


async def test_64_concurrent_payers_to_one_merchant_all_land(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """64 payers pay one merchant's static QR at once. The overlap is forced, on each backend's path: all 64
    requests leave a barrier together, and each payment is held inside its transaction right after its
    posting (the merchant credited, not yet committed). On PostgreSQL (``pay_pg``: one ``merchant_pay``
    call) the call runs in a transaction held until 8 payments are posted and open at once; on SQLite (the
    ORM path: ``pay_from_wallet`` after ``BEGIN IMMEDIATE``) each holds the writer lock while the others
    queue. Every payment lands: 64 payments, 64 x 9,940 đ to the merchant, 40,000 đ left in each wallet."""
    merchant_id, owner = await world.merchant("Bãi Xe Đại Nội", "3300109999")
    payload = await world.static_qr(merchant_id, world.staff(owner, merchant_id, "merchant_owner"))
    payers = [await make_user(world.app) for _ in range(PAYERS)]
    wallets = [await world.fund(p.user_id, 50_000) for p in payers]
    assert world.settings.db_pool_size >= GROUP
    assert PAYERS % GROUP == 0

    sent = answered = inside = 0
    held: list[tuple[int, int]] = []  # (payments open at once, other requests in flight) at each hold
    group = asyncio.Barrier(GROUP)

    async def hold_inside_the_payment() -> None:
        nonlocal inside
        inside += 1
        held.append((inside, sent - answered - 1))
        try:
            if world.db.is_sqlite:
                await asyncio.sleep(PAUSE)
            else:
                await asyncio.wait_for(group.wait(), timeout=30)
        finally:
            inside -= 1

    post_on_orm = wallet_service.pay_from_wallet

    async def held_post_on_orm(session: Any, **kwargs: Any) -> Any:  # SQLite's path
        posted = await post_on_orm(session, **kwargs)
        await hold_inside_the_payment()
        return posted

    call_on_driver = pay_pg.call_money_function

    async def held_call_on_driver(connection: Any, *args: Any, **kwargs: Any) -> Any:  # PostgreSQL's path
        async with connection.transaction():  # merchant_pay's work stays uncommitted while held
            row = await call_on_driver(connection, *args, **kwargs)
            await hold_inside_the_payment()
        return row

    monkeypatch.setattr(wallet_service, "pay_from_wallet", held_post_on_orm)
    monkeypatch.setattr(pay_pg, "call_money_function", held_call_on_driver)
    start = asyncio.Barrier(PAYERS)

    async def pay(payer: UserHandle) -> httpx.Response:
        nonlocal sent, answered
        await start.wait()
        sent += 1
        try:
            return await world.pay(payer, payload, 10_000)
        finally:
            answered += 1

    results = await asyncio.gather(*(pay(p) for p in payers))

    assert [r.status_code for r in results] == [201] * PAYERS, [
        r.text for r in results if r.status_code != 201
    ][:2]
    assert len(held) == PAYERS  # every payment went through the hold
    assert held[0][1] == PAYERS - 1  # the first one held while all the others were sent and unanswered
    if world.db.is_sqlite:
        assert max(n for n, _ in held) == 1  # one writer at a time; the others queued behind it
    else:
        assert max(n for n, _ in held) >= GROUP  # (a group still leaving the barrier may add to it)
    # fee: 0.6 % of 10,000 = 60 đ; each payer paid 10,000 of 50,000
    assert [r.json()["net"] for r in results] == [10_000 - 60] * PAYERS
    assert [await world.balance(w) for w in wallets] == [40_000] * PAYERS
    async with world.db.read() as session:
        per_payer = dict(
            (
                await session.execute(
                    select(MerchantPayment.payer_id, func.count())
                    .where(MerchantPayment.merchant_id == uuid.UUID(merchant_id))
                    .group_by(MerchantPayment.payer_id)
                )
            ).all()
        )
        merchant = await service.get_merchant(session, uuid.UUID(merchant_id))
        payable = (await ledger.balance(session, merchant.payable_account_id)).balance
    assert per_payer == {p.user_id: 1 for p in payers}
    assert payable == PAYERS * (10_000 - 60)
    await assert_books_balance(world.db)


async def test_a_qr_payment_retried_with_its_key_pays_once(world: World) -> None:
    """A phone that loses the answer and retries (twice at once, then again later) pays the merchant once and
    gets the first answer back; the same key with another amount is refused."""
    merchant_id, owner = await world.merchant("Chè Hẻm Huế", "3300108888")
    payload = await world.static_qr(merchant_id, world.staff(owner, merchant_id, "merchant_owner"))
    payer = await make_user(world.app)
    await world.fund(payer.user_id, 100_000)

    together = await asyncio.gather(*(world.pay(payer, payload, 30_000, key="tap-1") for _ in range(2)))
    assert sorted(r.status_code for r in together) in ([201, 201], [201, 409]), [r.text for r in together]
    later = await world.pay(payer, payload, 30_000, key="tap-1")
    assert later.status_code == 201, later.text
    assert later.headers.get("Idempotent-Replayed") == "true"
    assert later.json() == next(r for r in together if r.status_code == 201).json()
    assert_problem(await world.pay(payer, payload, 31_000, key="tap-1"), 422, "idempotency_key_reused")

    async with world.db.read() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(MerchantPayment)
            .where(MerchantPayment.merchant_id == uuid.UUID(merchant_id))
        )
    assert count == 1
    wallet = (await world.http.get("/api/v1/me/wallet", headers=payer.headers)).json()
    assert wallet["balance"] == 70_000


async def test_two_refunds_at_once_never_exceed_what_was_paid(world: World) -> None:
    merchant_id, owner = await world.merchant("Quán Chè Mụ Ròm", "3300107777")
    payload = await world.static_qr(merchant_id, world.staff(owner, merchant_id, "merchant_owner"))
    payer = await make_user(world.app)
    wallet = await world.fund(payer.user_id, 100_000)
    paid = await world.pay(payer, payload, 60_000)
    payment_id = uuid.UUID(paid.json()["id"])
    first_in = asyncio.Event()

    async def refund(hold: float) -> Any:
        try:
            async with world.db.transaction() as session:
                done = await service.refund_merchant_payment(session, payment_id, 40_000, authority="test")
                first_in.set()
                await asyncio.sleep(hold)
                return done
        except Exception as exc:
            return exc

    async def second() -> Any:
        await first_in.wait()
        return await refund(0)

    results = await asyncio.gather(refund(0.3), second())
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert [getattr(r, "kind", None) and r.kind.code for r in results if isinstance(r, Exception)] == [
        "refund_exceeds_paid"
    ]
    assert await world.balance(wallet) == 100_000 - 60_000 + 40_000
    async with world.db.transaction() as session:
        assert (await ledger.check_books(session)).ok


HOLD = 0.5
"""Seconds the first refund stays inside its transaction waiting for the second to reach it too."""


async def test_two_refunds_at_once_over_http_never_exceed_what_was_paid(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cashier (staff API) and the shop's server (API key) refund the same 60,000 đ payment at the same
    moment, 40,000 and 35,000 đ: together more than was paid. Both requests leave a barrier together; the
    first to reach the posting is held there, inside its transaction (the payment row locked on PostgreSQL,
    the writer lock on SQLite), until the other gets there too or HOLD passes. Exactly one refund is made,
    the other is a 422 ``refund_exceeds_paid``; the wallet, the merchant's payable and the books agree."""
    merchant_id, owner = await world.merchant("Quán Chè Mụ Ròm Đông Ba", "3300106666")
    owner_h = world.staff(owner, merchant_id, "merchant_owner")
    cashier = await make_user(world.app)
    added = await world.post(f"/api/v1/merchants/{merchant_id}/staff", {"phone": cashier.phone}, owner_h)
    assert added.status_code == 201, added.text
    cashier_h = world.staff(cashier, merchant_id, "merchant_cashier")
    key = await world.post(
        f"/api/v1/merchants/{merchant_id}/api-keys", {"name": "pos", "scopes": ["refunds"]}, owner_h
    )
    assert key.status_code == 201, key.text
    server_h = {"X-Api-Key": key.json()["secret"]}
    payer = await make_user(world.app)
    wallet = await world.fund(payer.user_id, 100_000)
    paid = await world.pay(payer, await world.static_qr(merchant_id, owner_h), 60_000)
    assert paid.status_code == 201, paid.text
    assert paid.json()["fee"] == 360  # 0.6 % of 60,000
    pid = paid.json()["id"]

    answered = 0
    both_in = Rendezvous(2, timeout=HOLD)
    unanswered_at_release: list[int] = []
    refund_to_wallet = wallet_service.refund_to_wallet

    async def held_refund(session: Any, **kwargs: Any) -> Any:
        await both_in.arrive()
        unanswered_at_release.append(2 - answered)
        return await refund_to_wallet(session, **kwargs)

    monkeypatch.setattr(wallet_service, "refund_to_wallet", held_refund)
    start = asyncio.Barrier(2)

    async def refund(url: str, amount: int, headers: dict[str, str]) -> httpx.Response:
        nonlocal answered
        await start.wait()
        try:
            return await world.post(url, {"amount": amount, "reason": "khách trả món"}, headers)
        finally:
            answered += 1

    by_cashier, by_server = await asyncio.gather(
        refund(f"/api/v1/merchants/{merchant_id}/payments/{pid}/refunds", 40_000, cashier_h),
        refund(f"/api/v1/merchant-api/payments/{pid}/refunds", 35_000, server_h),
    )

    assert sorted([by_cashier.status_code, by_server.status_code]) == [201, 422], (
        by_cashier.text,
        by_server.text,
    )
    winner, loser = (by_cashier, by_server) if by_cashier.status_code == 201 else (by_server, by_cashier)
    # the refund made, its share of the 360 đ fee (fee x refunded / paid, rounded down) and what is left
    refunded = winner.json()["amount"]
    fee_returned, left = {40_000: (240, 20_000), 35_000: (210, 25_000)}[refunded]
    assert (winner.json()["fee_returned"], winner.json()["refunded_total"]) == (fee_returned, refunded)
    assert winner.json()["payment_status"] == "partially_refunded"
    assert assert_problem(loser, 422, "refund_exceeds_paid")["refundable"] == left
    # the loser never reached the posting: it waited and then saw the first refund
    assert both_in.arrived == 1
    assert unanswered_at_release == [2]  # and it was in flight, unanswered, all the while the first held
    assert await world.balance(wallet) == 100_000 - 60_000 + refunded
    async with world.db.read() as session:
        merchant = await service.get_merchant(session, uuid.UUID(merchant_id))
        refunds = await session.scalar(
            select(func.count())
            .select_from(MerchantRefund)
            .where(MerchantRefund.payment_id == uuid.UUID(pid))
        )
    assert refunds == 1
    assert await world.balance(merchant.payable_account_id) == (60_000 - 360) - (refunded - fee_returned)
    seen = (await world.http.get(f"/api/v1/me/merchant-payments/{pid}", headers=payer.headers)).json()
    assert (seen["refunded"], seen["status"]) == (refunded, "partially_refunded")
    await assert_books_balance(world.db)


class SSEStream:
    """Reads an SSE route event by event while it stays open (ASGI driven directly, as in the inbox tests)."""

    def __init__(self, app: Litestar, path: str, headers: dict[str, str]) -> None:
        self.app, self.path = app, path
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        self.events: asyncio.Queue[dict[str, str] | None] = asyncio.Queue()
        self.started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._disconnect = asyncio.Event()
        self._requested = False
        self._buffer = b""
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SSEStream:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"testserver.local"), *self.headers],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver.local", 80),
        }
        self._task = asyncio.get_running_loop().create_task(self.app(scope, self._receive, self._send))  # type: ignore[arg-type]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._disconnect.set()
        assert self._task is not None
        await asyncio.wait_for(self._task, timeout=5)

    async def _receive(self) -> dict[str, Any]:
        if not self._requested:
            self._requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._disconnect.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.started.set_result(message["status"])
            return
        if message["type"] != "http.response.body":
            return
        self._buffer += message.get("body", b"")
        while b"\r\n\r\n" in self._buffer:
            block, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
            event: dict[str, str] = {}
            for line in block.decode().split("\r\n"):
                name, _, value = line.partition(": ")
                event[name or "comment"] = value
            self.events.put_nowait(event)
        if not message.get("more_body", False):
            self.events.put_nowait(None)

    async def next(self, timeout: float = 5) -> dict[str, str]:
        while True:
            event = await asyncio.wait_for(self.events.get(), timeout=timeout)
            assert event is not None, "the stream ended"
            if "event" in event:
                return event


async def test_the_cashier_sees_a_payment_arrive_in_real_time(world: World) -> None:
    merchant_id, _owner = await world.merchant("Bánh Bèo Bà Đỏ", "3300104444")
    cashier = await make_user(world.app)
    cashier_h = world.staff(cashier, merchant_id, "merchant_cashier")
    payload = await world.static_qr(merchant_id, cashier_h)
    payer = await make_user(world.app)
    await world.fund(payer.user_id, 100_000)
    async with SSEStream(world.app, f"/api/v1/merchants/{merchant_id}/stream", cashier_h) as stream:
        assert await stream.started == 200
        assert (await stream.next())["event"] == "ready"
        paid = await world.pay(payer, payload, 32_000)
        assert paid.status_code == 201
        event = await stream.next()
        assert event["event"] == "payment.succeeded"
        data = json.loads(event["data"])["data"]
        assert (data["id"], data["amount"], data["net"]) == (paid.json()["id"], 32_000, 32_000 - 192)


async def test_demo_merchant_is_seeded_once_with_a_payable_static_qr(world: World) -> None:
    from app.identity.bootstrap import seed_identity
    from app.merchants.demo import seed_merchants

    credentials: dict[str, Any] = {}
    await seed_identity(world.db, world.settings, credentials)
    await seed_merchants(world.db, world.settings, credentials)
    again: dict[str, Any] = dict(credentials)
    await seed_merchants(world.db, world.settings, again)  # idempotent
    demo = credentials["merchants"]
    assert again["merchants"]["merchant_id"] == demo["merchant_id"]
    assert demo["name"] == "Quán Bún Bò O Xuân"
    assert credentials["merchant_owner"]["password"]
    assert credentials["merchant_cashier"]["phone"]
    assert vietqr.parse(demo["static_qr"]).name == "Quan Bun Bo O Xuan"
    payer = await make_user(world.app)
    await world.fund(payer.user_id, 100_000)
    paid = await world.pay(payer, demo["static_qr"], 35_000)
    assert paid.status_code == 201, paid.text
    assert paid.json()["merchant_name"] == "Quán Bún Bò O Xuân"
