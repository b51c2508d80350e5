"""Auto-pay mandates (issue 11, item 1) on both backends: confirmed once with the PIN, the mandate is the
authority of each payment, two workers running the same day pay each bill once, failures and reminders
reach the inbox once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import select

from app.bills import autopay
from app.bills.autopay_models import AutopayMandate
from app.bills.clock import local_today
from app.bills.models import Bill, Biller, BillPayment, SavedCustomerCode
from app.identity.inbox_models import InboxNotification
from app.wallet.models import LedgerEntry
from tests.afterpay.conftest import World
from tests.conftest import assert_problem
from tests.factories import DEFAULT_PIN, make_user

MANDATES = "/api/v1/me/autopay-mandates"
CODE = "PC03DD0123456"


async def _saved_code(world: World, user_id: uuid.UUID, code: str = CODE) -> uuid.UUID:
    async with world.db.transaction() as session:
        biller_id = await session.scalar(select(Biller.id).where(Biller.code == "EVN_CPC_HUE"))
        saved = SavedCustomerCode(
            user_id=user_id, biller_id=biller_id, customer_code=code, nickname="Điện nhà"
        )
        session.add(saved)
        await session.flush()
        return saved.id


async def _notes(world: World, user_id: uuid.UUID, kind: str) -> list[str]:
    async with world.db.read() as session:
        rows = await session.scalars(
            select(InboxNotification.body_vi).where(
                InboxNotification.user_id == user_id, InboxNotification.kind == kind
            )
        )
        return list(rows)


async def test_two_workers_on_the_same_day_pay_each_bill_once(world: World) -> None:
    # Given a citizen with 2,000,000 đ who saved their electricity code and confirmed a mandate with the PIN:
    # pay 3 days before the due date, at most 500,000 đ a bill
    citizen = await make_user(world.app, full_name="Lê Thị Hoa")
    wallet = await world.fund(citizen.user_id, 2_000_000)
    saved_id = await _saved_code(world, citizen.user_id)
    wrong = await world.post(
        MANDATES, citizen, {"saved_code_id": str(saved_id), "max_amount": 500_000, "pin": "000000"}
    )
    assert_problem(wrong, 422, "pin_invalid")
    body = {"saved_code_id": str(saved_id), "days_before": 3, "max_amount": 500_000, "pin": DEFAULT_PIN}
    confirmed = await world.post(MANDATES, citizen, body, key="mandate-1")
    assert confirmed.status_code == 201, confirmed.text
    mandate_id = uuid.UUID(confirmed.json()["id"])
    again = await world.post(MANDATES, citizen, body, key="mandate-1")
    assert again.json() == confirmed.json()
    # Another citizen cannot put a mandate on that saved code
    stranger = await make_user(world.app)
    await world.fund(stranger.user_id, 10_000)
    assert_problem(
        await world.post(MANDATES, stranger, {**body, "saved_code_id": str(saved_id)}),
        404,
        "saved_code_not_found",
    )

    today = local_today()
    due_in_2 = await world.bill("EVN_CPC_HUE", CODE, 320_000, due=today + timedelta(days=2), period="2026-10")
    due_in_1 = await world.bill("EVN_CPC_HUE", CODE, 180_000, due=today + timedelta(days=1), period="2026-09")
    too_big = await world.bill("EVN_CPC_HUE", CODE, 650_000, due=today + timedelta(days=3), period="2026-11")
    later = await world.bill("EVN_CPC_HUE", CODE, 100_000, due=today + timedelta(days=20), period="2026-12")

    # When two workers run the job for the same day, the second starting while the first holds its claim
    # on a bill inside its open transaction
    first_in = asyncio.Event()

    async def hold(_mandate: uuid.UUID, _bill: uuid.UUID) -> None:
        first_in.set()
        await asyncio.sleep(0.4)

    worker_a = asyncio.create_task(
        autopay.run_autopay(world.db, world.settings.receipt_keys, today, pause=hold)
    )
    await asyncio.wait_for(first_in.wait(), timeout=10)
    worker_b = asyncio.create_task(autopay.run_autopay(world.db, world.settings.receipt_keys, today))
    report_a, report_b = await asyncio.gather(worker_a, worker_b)

    # Then each due bill was paid exactly once, on the mandate's authority, and nothing else moved
    assert sorted([*report_a.paid, *report_b.paid]) == sorted([due_in_2, due_in_1])
    assert report_b.claimed_elsewhere, "the second worker must have met the first one's claim"
    assert await world.balance(wallet) == 2_000_000 - 500_000
    async with world.db.read() as session:
        payments = list(
            await session.scalars(select(BillPayment).where(BillPayment.payer_id == citizen.user_id))
        )
        assert len(payments) == 2
        assert {p.mandate_id for p in payments} == {mandate_id}
        entries = list(
            await session.scalars(
                select(LedgerEntry).where(LedgerEntry.id.in_([p.entry_id for p in payments]))
            )
        )
        assert {e.details["authority"] for e in entries} == {f"mandate:{mandate_id}"}
        statuses = dict(
            (
                await session.execute(
                    select(Bill.id, Bill.status).where(Bill.id.in_([due_in_2, due_in_1, too_big, later]))
                )
            ).all()
        )
    assert statuses == {due_in_2: "paid", due_in_1: "paid", too_big: "unpaid", later: "unpaid"}
    # The bill above the maximum was announced once, although both workers saw it
    failures = await _notes(world, citizen.user_id, "bills.autopay_failed")
    assert len(failures) == 1
    assert "vượt mức tối đa 500.000 đ" in failures[0]

    # A third run the same day changes nothing
    report = await autopay.run_autopay(world.db, world.settings.receipt_keys, today)
    assert report.paid == []
    assert report.failed == []
    assert await world.balance(wallet) == 1_500_000

    # Reminders: each unpaid bill due within the window once, however often the job runs
    assert await autopay.send_reminders(world.db, today, days=30) == 2
    assert await autopay.send_reminders(world.db, today, days=30) == 0
    reminders = await _notes(world, citizen.user_id, "bills.due_soon")
    assert len(reminders) == 2
    assert all("tự động thanh toán" in text for text in reminders)

    # A mandate whose wallet cannot cover the bill: the citizen is told once, nothing moves
    poor_code = await _saved_code(world, stranger.user_id, "PC03HH0765432")
    poor = await world.post(
        MANDATES, stranger, {"saved_code_id": str(poor_code), "max_amount": 500_000, "pin": DEFAULT_PIN}
    )
    assert poor.status_code == 201, poor.text
    await world.bill("EVN_CPC_HUE", "PC03HH0765432", 90_000, due=today + timedelta(days=1))
    for _ in range(2):
        await autopay.run_autopay(world.db, world.settings.receipt_keys, today)
    short = await _notes(world, stranger.user_id, "bills.autopay_failed")
    assert len(short) == 1
    assert "số dư ví không đủ" in short[0]

    # Cancelling stops the mandate: a later bill due now is not paid
    cancelled = await world.post(f"{MANDATES}/{mandate_id}/cancel", citizen, None)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert_problem(
        await world.post(f"{MANDATES}/{mandate_id}/cancel", stranger, None), 404, "mandate_not_found"
    )
    report = await autopay.run_autopay(world.db, world.settings.receipt_keys, today + timedelta(days=20))
    assert report.paid == []
    async with world.db.read() as session:
        assert (await session.get(AutopayMandate, mandate_id)).status == "cancelled"  # type: ignore[union-attr]
