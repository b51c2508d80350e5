"""Complaints on QR payments to merchants, through the HTTP API on both backends: the disputed amount is held
from the merchant's settlement until support decides, the refund goes back to the payer's wallet through the
merchants' refund (its cap holds), and the next settlement pays the held amount less the refunds."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta

from sqlalchemy import select

from app.core.bank_transfer import SandboxBank, install_bank_transfers
from app.core.db import utcnow
from app.merchants import service, settlement
from app.merchants.models import MerchantPayout
from app.wallet import ledger
from tests.conftest import assert_problem
from tests.factories import make_user
from tests.merchants.conftest import World

COMPLAINTS = "/api/v1/me/complaints"
ADMIN = "/api/v1/admin/complaints"


async def _payout(world: World, merchant_id: str, day: object) -> MerchantPayout:
    async with world.db.read() as session:
        row = await session.scalar(
            select(MerchantPayout).where(
                MerchantPayout.merchant_id == uuid.UUID(merchant_id), MerchantPayout.day == day
            )
        )
    assert row is not None
    return row


async def test_a_qr_payment_complaint_holds_the_merchant_settlement_until_resolved(world: World) -> None:
    merchant_id, owner = await world.merchant("Quán Chè Hẻm", "3300109876")
    owner_h = world.staff(owner, merchant_id, "merchant_owner")
    payload = await world.static_qr(merchant_id, owner_h)
    an = await make_user(world.app, full_name="Nguyễn Văn An")
    binh = await make_user(world.app, full_name="Trần Thị Bình")
    an_wallet = await world.fund(an.user_id, 500_000)
    await world.fund(binh.user_id, 500_000)
    paid = await world.pay(an, payload, 100_000)  # fee 600, the merchant is owed 99,400
    assert paid.status_code == 201, paid.text
    assert (await world.pay(binh, payload, 50_000)).status_code == 201  # fee 300, owed 49,700
    pid = paid.json()["id"]

    # Binh cannot complain about An's payment; An disputes 60,000 đ of it
    body = {
        "kind": "merchant",
        "payment_id": pid,
        "reason": "wrong_amount",
        "description": "Quán tính nhầm, tôi chỉ gọi hai ly chè.",
        "amount": 60_000,
    }
    assert_problem(await world.post(COMPLAINTS, body, binh.headers), 404, "payment_not_disputable")
    opened = await world.post(COMPLAINTS, body, an.headers)
    assert opened.status_code == 201, opened.text
    complaint = opened.json()
    assert (complaint["status"], complaint["disputed_amount"]) == ("logged", 60_000)
    assert complaint["payee_name"] == "Quán Chè Hẻm"
    assert (await world.http.get(f"{COMPLAINTS}/{complaint['id']}", headers=binh.headers)).status_code == 404

    # The day's settlement is short by exactly the held 60,000 đ
    async with world.db.read() as session:
        merchant = await service.get_merchant(session, uuid.UUID(merchant_id))
    payable = merchant.payable_account_id
    assert await world.balance(payable) == 99_400 + 49_700
    bank = SandboxBank()
    install_bank_transfers(bank)
    today = utcnow().astimezone(settlement.LOCAL_TZ).date()
    run = await settlement.settle_day(world.db, today)
    assert run.total == bank.succeeded_total() == 99_400 + 49_700 - 60_000
    assert await world.balance(payable) == 60_000  # what is held stays on the payable
    first = await _payout(world, merchant_id, today)
    assert (first.amount, first.status) == (89_100, "succeeded")
    # The day's CSV: opening + lines = closing = the ledger; closing less the hold = the payout
    report = await world.http.get(
        f"/api/v1/merchants/{merchant_id}/settlements/{today}/report", headers=owner_h
    )
    assert report.status_code == 200, report.text
    rows = list(csv.reader(io.StringIO(report.text)))
    kinds = [r[1] for r in rows]
    closing_at = kinds.index("closing_balance")
    day_lines = rows[2:closing_at]
    assert int(rows[1][6]) + sum(int(r[5]) for r in day_lines) == int(rows[closing_at][6]) == 60_000
    after = rows[closing_at + 1 :]
    assert [r[1] for r in after] == ["own_payout_added_back", "complaint_hold", "payout"]
    assert after[1][2] == f"complaint:{complaint['id']}"
    assert int(rows[closing_at][6]) + sum(int(r[5]) for r in after[:-1]) == int(after[-1][6]) == 89_100

    # The merchant refunds 50,000 đ at the counter; support cannot then refund more than is left
    refund_url = f"/api/v1/merchants/{merchant_id}/payments/{pid}/refunds"
    counter = await world.post(refund_url, {"amount": 50_000, "reason": "trả lại tại quầy"}, owner_h)
    assert counter.status_code == 201, counter.text
    support = await make_user(world.app, roles=("admin",), duties=("support",))
    reviewed = await world.post(f"{ADMIN}/{complaint['id']}/review", {"note": "Đã gọi quán"}, support.headers)
    assert reviewed.status_code == 200, reviewed.text
    too_much = await world.post(
        f"{ADMIN}/{complaint['id']}/resolve", {"refund_amount": 60_000, "note": "x"}, support.headers
    )
    assert_problem(too_much, 422, "refund_exceeds_paid")
    resolved = await world.post(
        f"{ADMIN}/{complaint['id']}/resolve",
        {"refund_amount": 25_000, "note": "Quán xác nhận tính nhầm."},
        support.headers,
    )
    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["status"], resolved.json()["refund_amount"]) == ("resolved", 25_000)
    assert await world.balance(an_wallet) == 500_000 - 100_000 + 50_000 + 25_000
    # A further refund beyond what was paid is refused (75,000 of 100,000 given back)
    assert_problem(await world.post(refund_url, {"amount": 25_001}, owner_h), 422, "refund_exceeds_paid")
    receipt = await world.http.get(f"/api/v1/me/merchant-payments/{pid}", headers=an.headers)
    assert (receipt.json()["refunded"], receipt.json()["status"]) == (75_000, "partially_refunded")

    # The next settlement returns the held 60,000 đ less the refunds' share of the payable, with a new sale
    assert (await world.pay(binh, payload, 200_000)).status_code == 201  # fee 1,200, owed 198,800
    refunds_on_payable = (50_000 - 300) + (25_000 - 150)  # the fee goes back pro rata from fee revenue
    tomorrow = today + timedelta(days=1)
    second = await settlement.settle_day(world.db, tomorrow)
    assert second.total == 60_000 - refunds_on_payable + 198_800
    assert bank.succeeded_total() == 89_100 + 60_000 - refunds_on_payable + 198_800
    assert await world.balance(payable) == 0
    report2 = await world.http.get(
        f"/api/v1/merchants/{merchant_id}/settlements/{tomorrow}/report", headers=owner_h
    )
    rows2 = list(csv.reader(io.StringIO(report2.text)))
    closing2 = [r[1] for r in rows2].index("closing_balance")
    after2 = rows2[closing2 + 1 :]
    assert [r[1] for r in after2] == ["own_payout_added_back", "kept_back_earlier", "hold_released", "payout"]
    assert int(rows2[closing2][6]) + sum(int(r[5]) for r in after2[:-1]) == int(after2[-1][6]) == second.total
    # Settling again pays nothing twice; the books balance
    assert (await settlement.settle_day(world.db, tomorrow)).total == 0
    async with world.db.transaction() as session:
        assert (await ledger.check_books(session)).ok
