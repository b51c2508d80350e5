"""A QR payment's refusals, their order and what a payment writes, through the HTTP API on both backends
(SQLite: the ORM path; PostgreSQL: ``app/merchants/pay_pg.py``), so the two paths must agree."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

from sqlalchemy import func, select, update

from app.core import db as core_db
from app.core.models import OutboxMessage
from app.merchants import service, vietqr
from app.merchants.models import MerchantOrder, MerchantPayment, MerchantStore, MerchantWebhookEvent
from tests.conftest import assert_problem
from tests.factories import make_user
from tests.merchants.conftest import World


async def _payments(world: World, merchant_id: str) -> int:
    async with world.db.read() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(MerchantPayment)
                .where(MerchantPayment.merchant_id == uuid.UUID(merchant_id))
            )
            or 0
        )


async def test_refusals_come_in_the_orm_order_and_keep_nothing(world: World) -> None:
    a_id, a_owner = await world.merchant("Quán Cơm Âm Phủ", "3300101111")
    b_id, b_owner = await world.merchant("Bánh Khoái Lạc Thiện", "3300102222")
    a_h = world.staff(a_owner, a_id, "merchant_owner")
    static = await world.static_qr(a_id, a_h)
    qr = vietqr.parse(static)
    payer = await make_user(world.app)
    await world.fund(payer.user_id, 100_000)

    # the key is claimed before the QR is read: a reused key answers first, a replay is byte for byte
    first = await world.pay(payer, static, 10_000, key="scan-1")
    assert first.status_code == 201, first.text
    bad_crc = static[:-1] + ("0" if static[-1] != "0" else "1")
    assert_problem(await world.pay(payer, bad_crc, 10_000, key="scan-1"), 422, "idempotency_key_reused")
    again = await world.pay(payer, static, 10_000, key="scan-1")
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.content == first.content
    assert_problem(await world.pay(payer, bad_crc, 10_000), 422, "qr_invalid")

    # acquirer, account, store
    foreign = vietqr.build(dataclasses.replace(qr, bank_bin="970415"))
    assert_problem(await world.pay(payer, foreign, 1_000), 404, "qr_unknown_merchant")
    nobody = vietqr.build(dataclasses.replace(qr, account="960000000000"))
    assert_problem(await world.pay(payer, nobody, 1_000), 404, "qr_unknown_merchant")
    no_store = vietqr.build(dataclasses.replace(qr, store="QUAY-9"))
    assert_problem(await world.pay(payer, no_store, 1_000), 404, "store_not_found")
    async with world.db.transaction() as session:
        await session.execute(
            update(MerchantStore).where(MerchantStore.merchant_id == uuid.UUID(a_id)).values(active=False)
        )
    assert_problem(await world.pay(payer, static, 1_000), 404, "store_not_found")
    async with world.db.transaction() as session:
        await session.execute(
            update(MerchantStore).where(MerchantStore.merchant_id == uuid.UUID(a_id)).values(active=True)
        )

    # an order of merchant A in a QR naming merchant B is unknown; B suspended takes nothing
    order = await world.post(f"/api/v1/merchants/{a_id}/orders", {"amount": 25_000}, a_h)
    dyn = order.json()["qr_payload"]
    b_account = vietqr.parse(
        await world.static_qr(b_id, world.staff(b_owner, b_id, "merchant_owner"))
    ).account
    borrowed = vietqr.build(dataclasses.replace(vietqr.parse(dyn), account=b_account))
    assert_problem(await world.pay(payer, borrowed), 404, "order_not_found")
    suspended = await world.post(
        f"/api/v1/admin/merchants/{b_id}/decision",
        {"action": "suspend", "reason": "kiểm tra"},
        world.admin.headers,
    )
    assert suspended.status_code == 200, suspended.text
    assert_problem(await world.pay(payer, borrowed), 409, "merchant_not_accepting")
    mismatch = vietqr.build(dataclasses.replace(vietqr.parse(dyn), amount=24_000))
    assert_problem(await world.pay(payer, mismatch), 422, "qr_invalid")

    # the wallet's refusals roll the order back: it stays open and is paid later
    wrong_pin = await world.http.post(
        "/api/v1/qr/payments",
        json={"payload": dyn, "pin": "000000"},
        headers={**payer.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert_problem(wrong_pin, 422, "pin_invalid")
    poor = await make_user(world.app)
    await world.fund(poor.user_id, 1_000)
    assert_problem(await world.pay(poor, dyn), 422, "insufficient_funds")
    unfunded = await make_user(world.app, funding_source=False)
    await world.fund(unfunded.user_id, 50_000)
    assert_problem(await world.pay(unfunded, dyn), 409, "funding_source_required")
    async with world.db.read() as session:
        events = await session.scalar(
            select(func.count())
            .select_from(MerchantWebhookEvent)
            .where(MerchantWebhookEvent.merchant_id == uuid.UUID(a_id))
        )
    assert (await _payments(world, a_id), events) == (1, 1)
    paid = await world.pay(payer, dyn)
    assert paid.status_code == 201, paid.text
    assert_problem(await world.pay(payer, dyn), 409, "order_not_payable")


async def test_a_payment_writes_payment_order_event_and_outbox_message(world: World) -> None:
    hooked_id, hooked_owner = await world.merchant("Nhà Hàng Ông Táo", "3300103333")
    plain_id, plain_owner = await world.merchant("Bún Hến Cồn", "3300104444")
    hooked_h = world.staff(hooked_owner, hooked_id, "merchant_owner")
    hook = await world.post(
        f"/api/v1/merchants/{hooked_id}/webhook", {"url": "https://shop.example/h"}, hooked_h
    )
    assert hook.status_code == 200, hook.text
    store_id = (await world.http.get(f"/api/v1/merchants/{hooked_id}", headers=hooked_h)).json()["stores"][0][
        "id"
    ]
    order = await world.post(
        f"/api/v1/merchants/{hooked_id}/orders",
        {"amount": 88_888, "store_id": store_id, "external_ref": "DH-42"},
        hooked_h,
    )
    assert order.status_code == 201, order.text
    payer = await make_user(world.app)
    await world.fund(payer.user_id, 200_000)

    calls = core_db.RAW_CALLS[0]
    paid = await world.pay(payer, order.json()["qr_payload"])
    assert paid.status_code == 201, paid.text
    if not world.db.is_sqlite:
        assert core_db.RAW_CALLS[0] - calls == 2  # the read, then merchant_pay (no BEGIN/COMMIT)
    body = paid.json()
    assert (body["amount"], body["fee"], body["net"]) == (88_888, service.fee_of(88_888, 60), 88_888 - 533)
    assert (body["store_id"], body["order_id"], body["order_reference"]) == (
        store_id,
        order.json()["id"],
        order.json()["reference"],
    )
    plain_qr = await world.static_qr(plain_id, world.staff(plain_owner, plain_id, "merchant_owner"))
    plain = await world.pay(payer, plain_qr, 7_000)
    assert plain.status_code == 201, plain.text

    async with world.db.read() as session:
        row = await session.get(MerchantOrder, uuid.UUID(order.json()["id"]))
        assert row is not None
        assert (row.status, str(row.payment_id)) == ("paid", body["id"])
        payment = await session.get(MerchantPayment, uuid.UUID(body["id"]))
        assert payment is not None
        assert (payment.refunded, payment.status, payment.paid_at) == (0, "paid", row.paid_at)
        events = {e.merchant_id: e for e in await session.scalars(select(MerchantWebhookEvent))}
        hooked = events[uuid.UUID(hooked_id)]
        assert (hooked.status, hooked.attempts, hooked.resends) == ("pending", 0, 0)
        assert hooked.payload["type"] == "payment.succeeded"
        assert hooked.payload["data"]["external_ref"] == "DH-42"
        assert hooked.payload["data"]["id"] == body["id"]
        assert events[uuid.UUID(plain_id)].status == "no_endpoint"
        messages = list(
            await session.scalars(select(OutboxMessage).where(OutboxMessage.topic == service.WEBHOOK_TOPIC))
        )
    assert [(m.key, m.payload, m.status, m.attempts) for m in messages] == [
        (f"{hooked.id}:0", {"event_id": str(hooked.id)}, "pending", 0)
    ]


async def test_two_payers_scanning_one_order_at_once_pay_it_once(world: World) -> None:
    merchant_id, owner = await world.merchant("Chè Bột Lọc Bà Đào", "3300105555")
    order = await world.post(
        f"/api/v1/merchants/{merchant_id}/orders",
        {"amount": 42_000},
        world.staff(owner, merchant_id, "merchant_owner"),
    )
    payers = [await make_user(world.app) for _ in range(4)]
    for payer in payers:
        await world.fund(payer.user_id, 100_000)
    results = await asyncio.gather(*(world.pay(p, order.json()["qr_payload"]) for p in payers))
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409], [r.text for r in results]
    assert all(r.json()["code"] == "order_not_payable" for r in results if r.status_code == 409)
    assert await _payments(world, merchant_id) == 1
    balances = [
        (await world.http.get("/api/v1/me/wallet", headers=p.headers)).json()["balance"] for p in payers
    ]
    assert sorted(balances) == [58_000, 100_000, 100_000, 100_000]
