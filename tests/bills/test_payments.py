"""One-tap bill payment through the HTTP API (issue 7's Must-show), on both backends.

The app runs in the test's own event loop (its lifespan entered directly, requests through httpx's ASGI
transport), so two requests really overlap and the outbox dispatcher can be driven from the test.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from sqlalchemy import func, select

from app.bills import confirmations, pay_pg, payments, service
from app.bills.demo import demo_data
from app.bills.events import BillsPaid
from app.bills.gateway import BillerGateway
from app.bills.models import Bill, BillPayment, BillPaymentItem, PaymentAttempt, Receipt
from app.bills.receipts import amount_in_words
from app.bills.schemas import BillerIn
from app.core import events
from app.core.db import Database
from app.core.models import OutboxMessage
from app.core.outbox import Dispatcher, DispatcherConfig, HandlerRegistry
from app.core.scheduler import JobRegistry
from app.core.settings import Settings
from app.core.worker import Worker
from app.identity.inbox_models import InboxNotification
from app.wallet import ledger
from app.wallet import service as wallet_service
from app.wallet.ledger import AccountType, Entry, credit, debit
from app.wallet.models import LedgerEntry
from tests.conftest import Rendezvous, assert_problem
from tests.factories import DEFAULT_PIN, UserHandle, make_user

SANDBOX_TODAY = date(2025, 6, 20)


@dataclass
class World:
    app: Litestar
    http: httpx.AsyncClient
    db: Database
    settings: Settings
    seen_events: list[BillsPaid] = field(default_factory=list)

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
        self, biller: str, code: str, amount: int, *, owner: uuid.UUID | None = None, period: str = "2025-06"
    ) -> uuid.UUID:
        async with self.db.transaction() as session:
            bill = await service.issue_bill(
                session,
                biller_code=biller,
                customer_code=code,
                external_id=f"{code}-{period}-{uuid.uuid4().hex[:6]}",
                period=period,
                amount=amount,
                due_date=SANDBOX_TODAY + timedelta(days=10),
                customer_name="Trần Thị Bình",
                owner_user_id=owner,
            )
            return bill.id

    async def count(self, model: Any, *where: Any) -> int:
        async with self.db.read() as session:
            return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    async def pay(
        self, user: UserHandle, items: list[dict[str, Any]], *, key: str | None = None, pin: str = DEFAULT_PIN
    ) -> httpx.Response:
        return await self.http.post(
            "/api/v1/payments",
            json={"items": items, "pin": pin},
            headers={**user.headers, "Idempotency-Key": key or uuid.uuid4().hex},
        )

    async def run_worker_until_delivered(self, topic: str, count: int, timeout: float = 15.0) -> None:
        """Run the real worker (``hue worker``'s :class:`Worker`, every module's handlers as ``app.tasks``
        registers them; no scheduled jobs) until ``count`` messages of ``topic`` are delivered."""
        import app.tasks  # noqa: F401 - registers every module's delivery handlers, as hue worker does

        worker = Worker(
            self.db, self.settings, jobs=JobRegistry(), config=DispatcherConfig(poll_seconds=0.05)
        )
        await worker.start()
        try:
            async with asyncio.timeout(timeout):
                while (
                    await self.count(
                        OutboxMessage, OutboxMessage.topic == topic, OutboxMessage.status == "delivered"
                    )
                    < count
                ):
                    await asyncio.sleep(0.05)
        finally:
            await worker.stop(grace_seconds=5)

    async def deliver_outbox(self) -> int:
        handlers = HandlerRegistry()
        handlers.register(payments.CONFIRM_TOPIC, confirmations.confirm_payment)
        dispatcher = Dispatcher(
            self.db, config=DispatcherConfig(backoff_base_seconds=0.01), handlers=handlers
        )
        delivered = 0
        while count := await dispatcher.dispatch_once():
            delivered += count
        return delivered


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
    gateway = BillerGateway(allow_sandbox=True, today=lambda: SANDBOX_TODAY)
    confirmations.install(db, gateway)
    seen: list[BillsPaid] = []

    async def remember(_session: Any, event: BillsPaid) -> None:
        seen.append(event)

    events.subscribe(BillsPaid)(remember)
    try:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as http:
            yield World(app, http, db, settings, seen)
    finally:
        events._handlers[BillsPaid].remove(remember)
        await gateway.aclose()
        stop.set()
        await asyncio.wait_for(lifespan, timeout=10)


async def test_three_bills_of_three_billers_in_one_tap(world: World) -> None:
    # Given a verified citizen with 1,000,000 đ and three bills of three billers
    citizen = await make_user(world.app, full_name="Nguyễn Văn An")
    wallet = await world.fund(citizen.user_id, 1_000_000)
    electricity = await world.bill("EVN_CPC_HUE", "PC03DD0123456", 312_450)
    water = await world.bill("HUEWACO", "0104567821", 98_000)
    sanitation = await world.bill("HEPCO_VSMT", "VS24051987", 30_000)
    entries_before = await world.count(LedgerEntry)

    # When they pay the three in one tap
    response = await world.pay(
        citizen, [{"bill_id": str(b)} for b in (electricity, water, sanitation)], key="tap-1"
    )

    # Then one payment of 440,450 đ, one journal entry, all three bills paid
    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment["total"] == 440_450
    assert [i["status"] for i in payment["items"]] == ["paid", "paid", "paid"]
    assert await world.count(LedgerEntry) == entries_before + 1
    assert await world.balance(wallet) == 1_000_000 - 440_450
    assert await world.count(Bill, Bill.id.in_([electricity, water, sanitation]), Bill.status == "paid") == 3
    # none of these bills has an owner (a dossier fee or a result's postage has one), so no BillsPaid: its
    # subscribers act on owned bills only (see the dossier-fee test below); the same on both databases
    assert world.seen_events == []
    # every biller's payable got its own bill's amount
    async with world.db.read() as session:
        items = (await session.execute(select(BillPaymentItem))).scalars().all()
        for item in items:
            assert (await ledger.balance(session, item.payable_account_id)).balance == item.amount
        notes = (
            (
                await session.execute(
                    select(InboxNotification.body_vi).where(InboxNotification.user_id == citizen.user_id)
                )
            )
            .scalars()
            .all()
        )
    assert notes == [f"Đã thanh toán 3 hóa đơn, tổng 440.450 đ (mã {payment['reference']})."]

    # And the worker tells each of the three billers once
    assert await world.count(OutboxMessage, OutboxMessage.topic == "bills.confirm_payment") == 3
    await world.run_worker_until_delivered("bills.confirm_payment", 3)
    detail = await world.http.get(f"/api/v1/me/payments/{payment['id']}", headers=citizen.headers)
    assert detail.status_code == 200
    assert [i["status"] for i in detail.json()["items"]] == ["confirmed"] * 3
    assert await world.count(OutboxMessage, OutboxMessage.status == "delivered") == 3

    # And each bill has a signed e-receipt, in the app and as a PDF
    for item in payment["items"]:
        receipt = await world.http.get(f"/api/v1/me/receipts/{item['receipt_id']}", headers=citizen.headers)
        assert receipt.status_code == 200
        body = receipt.json()
        assert body["amount"] == item["amount"]
        assert body["amount_in_words"] == amount_in_words(item["amount"])
        assert body["payer_name"] == "Nguyễn Văn An"
        assert body["issuer_code"] == item["biller_code"]
        assert body["status"] == "valid"
        assert body["series"].startswith("C")
        assert body["number"] > 0
        verified = await world.http.get(
            f"/api/v1/receipts/{body['code']}/verify", params={"check": body["check_code"]}
        )
        assert verified.status_code == 200
        assert verified.json()["valid"] is True
        assert verified.json()["public_key"] == body["public_key"]
        wrong = await world.http.get(f"/api/v1/receipts/{body['code']}/verify", params={"check": "x" * 16})
        assert_problem(wrong, 404, "receipt_not_found")
    electricity_receipt = next(i for i in payment["items"] if i["biller_code"] == "EVN_CPC_HUE")["receipt_id"]
    pdf = await world.http.get(f"/api/v1/me/receipts/{electricity_receipt}/pdf", headers=citizen.headers)
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    if pdftotext := shutil.which("pdftotext"):
        text = subprocess.run(  # noqa: S603 - a fixed local tool on our own bytes
            [pdftotext, "-", "-"], input=pdf.content, capture_output=True, check=True
        ).stdout.decode()
        text = " ".join(text.split())  # words wrap across lines
        assert "BIÊN LAI THU TIỀN ĐIỆN TỬ" in text
        assert "Ba trăm mười hai nghìn bốn trăm năm mươi đồng" in text
        assert "Nguyễn Văn An" in text


async def test_receipt_numbers_differ_and_the_signature_covers_the_content(world: World) -> None:
    citizen = await make_user(world.app)
    await world.fund(citizen.user_id, 500_000)
    bills = [await world.bill("HUEWACO", f"01045678{n:02d}", 50_000 + n) for n in range(3)]
    response = await world.pay(citizen, [{"bill_id": str(b)} for b in bills])
    assert response.status_code == 201
    async with world.db.read() as session:
        receipts = (await session.execute(select(Receipt))).scalars().all()
    assert len({(r.series, r.number) for r in receipts}) == 3
    from app.bills.receipts import verify

    tampered = {**receipts[0].content, "amount": 1}
    assert verify(world.settings.receipt_keys, receipts[0].content, receipts[0].key_id, receipts[0].signature)
    assert not verify(world.settings.receipt_keys, tampered, receipts[0].key_id, receipts[0].signature)


async def test_two_devices_paying_the_same_bill_at_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a household bill and two family members, each on their own phone with money in their wallet
    son = await make_user(world.app)
    daughter = await make_user(world.app)
    wallets = [await world.fund(son.user_id, 500_000), await world.fund(daughter.user_id, 500_000)]
    bill = await world.bill("EVN_CPC_HUE", "PC03DD0123456", 200_000)

    # Both requests are held inside their transactions right after the bills are locked (or, on SQLite,
    # after the writer lock is taken): they overlap for sure.
    original = wallet_service.pay_from_wallet
    both = Rendezvous(2, timeout=0.5)

    async def slow_pay(session: Any, **kwargs: Any) -> Any:
        await both.arrive()
        return await original(session, **kwargs)

    monkeypatch.setattr(wallet_service, "pay_from_wallet", slow_pay)
    driver_pay = pay_pg.pay_on_driver

    async def slow_driver_pay(*args: Any, **kwargs: Any) -> Any:  # PostgreSQL's path, same hold
        await both.arrive()
        return await driver_pay(*args, **kwargs)

    monkeypatch.setattr(pay_pg, "pay_on_driver", slow_driver_pay)
    first, second = await asyncio.gather(
        world.pay(son, [{"bill_id": str(bill)}]), world.pay(daughter, [{"bill_id": str(bill)}])
    )

    # Then one succeeds and the other is told the bill is already paid; money moved once
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [201, 409], (first.text, second.text)
    loser = first if first.status_code == 409 else second
    problem = assert_problem(loser, 409, "bill_already_paid")
    assert problem["bill_id"] == str(bill)
    assert sorted([await world.balance(w) for w in wallets]) == [300_000, 500_000]
    assert await world.count(BillPayment) == 1
    assert await world.count(PaymentAttempt, PaymentAttempt.error_code == "bill_already_paid") == 1


async def test_a_failed_one_tap_leaves_nothing_but_its_failure_record(world: World) -> None:
    citizen = await make_user(world.app)
    wallet = await world.fund(citizen.user_id, 1_000_000)
    good = await world.bill("EVN_CPC_HUE", "PC03DD0123456", 100_000)
    paid = await world.bill("HUEWACO", "0104567821", 50_000)
    async with world.db.transaction() as session:
        row = await session.get(Bill, paid)
        assert row is not None
        row.status = "paid"
    before = {
        "entries": await world.count(LedgerEntry),
        "outbox": await world.count(OutboxMessage),
        "notes": await world.count(InboxNotification),
    }

    response = await world.pay(citizen, [{"bill_id": str(good)}, {"bill_id": str(paid)}], key="fails")

    problem = assert_problem(response, 409, "bill_already_paid")
    assert problem["bill_id"] == str(paid)
    assert await world.balance(wallet) == 1_000_000
    assert await world.count(Bill, Bill.id == good, Bill.status == "unpaid") == 1
    assert await world.count(BillPayment) == 0
    assert await world.count(BillPaymentItem) == 0
    assert await world.count(Receipt) == 0
    assert await world.count(LedgerEntry) == before["entries"]
    assert await world.count(OutboxMessage) == before["outbox"]
    assert await world.count(InboxNotification) == before["notes"]
    assert world.seen_events == []
    async with world.db.read() as session:
        attempts = (await session.execute(select(PaymentAttempt))).scalars().all()
    assert [(a.error_code, a.bill_id, a.payer_id) for a in attempts] == [
        ("bill_already_paid", paid, citizen.user_id)
    ]
    # the key was not used up: a corrected request with the same key goes through
    retry = await world.pay(citizen, [{"bill_id": str(good)}], key="fails")
    assert retry.status_code == 201


@pytest.mark.parametrize(
    ("rule", "amount", "ok"),
    [
        ("exact", 120_000, False),
        ("at_least", 150_000, True),
        ("at_least", 90_000, False),
        ("partial_allowed", 40_000, True),
    ],
)
async def test_amount_rules(world: World, rule: str, amount: int, ok: bool) -> None:
    declaration = msgspec.convert(demo_data()["billers"]["HUEWACO"], BillerIn)
    await service.put_biller(
        world.db, "HUEWACO", msgspec.structs.replace(declaration, amount_rule=rule), production=False
    )
    citizen = await make_user(world.app)
    wallet = await world.fund(citizen.user_id, 1_000_000)
    bill = await world.bill("HUEWACO", "0104567821", 100_000)
    response = await world.pay(citizen, [{"bill_id": str(bill), "amount": amount}])
    if ok:
        assert response.status_code == 201, response.text
        assert await world.balance(wallet) == 1_000_000 - amount
    else:
        problem = assert_problem(response, 422, "amount_not_allowed")
        assert problem["bill_id"] == str(bill)
        assert await world.balance(wallet) == 1_000_000


async def test_bills_that_cannot_be_paid(world: World) -> None:
    citizen = await make_user(world.app)
    await world.fund(citizen.user_id, 1_000_000)
    withdrawn = await world.bill("HUEWACO", "0104567821", 10_000)
    async with world.db.transaction() as session:
        row = await session.get(Bill, withdrawn)
        assert row is not None
        row.status = "cancelled"
    problem = assert_problem(await world.pay(citizen, [{"bill_id": str(withdrawn)}]), 409, "bill_not_payable")
    assert problem["bill_id"] == str(withdrawn)
    missing = uuid.uuid4()
    problem = assert_problem(await world.pay(citizen, [{"bill_id": str(missing)}]), 404, "bill_not_found")
    assert problem["bill_id"] == str(missing)
    wrong_pin = await world.pay(
        citizen, [{"bill_id": str(await world.bill("HUEWACO", "0104567822", 5_000))}], pin="000000"
    )
    assert_problem(wrong_pin, 422, "pin_invalid")


async def test_a_dossier_fee_is_paid_only_by_its_applicant(world: World) -> None:
    applicant = await make_user(world.app)
    other = await make_user(world.app)
    await world.fund(applicant.user_id, 500_000)
    await world.fund(other.user_id, 500_000)
    await world.bill("HEPCO_VSMT", "VS24051987", 1_000)  # make sure the biller exists for both
    fee = await world.bill("HEPCO_VSMT", "VS24051988", 25_000, owner=applicant.user_id)
    assert_problem(await world.pay(other, [{"bill_id": str(fee)}]), 404, "bill_not_found")
    assert (await world.pay(applicant, [{"bill_id": str(fee)}])).status_code == 201


async def test_the_same_idempotency_key_pays_once(world: World) -> None:
    citizen = await make_user(world.app)
    wallet = await world.fund(citizen.user_id, 300_000)
    bill = await world.bill("EVN_CPC_HUE", "PC03DD0123456", 100_000)
    first = await world.pay(citizen, [{"bill_id": str(bill)}], key="same-key")
    again = await world.pay(citizen, [{"bill_id": str(bill)}], key="same-key")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert await world.balance(wallet) == 200_000
    assert await world.count(BillPayment) == 1
    other = await world.pay(citizen, [{"bill_id": str(bill), "amount": 100_001}], key="same-key")
    assert_problem(other, 422, "idempotency_key_reused")


async def test_another_citizen_sees_neither_the_payment_nor_its_receipts(world: World) -> None:
    payer = await make_user(world.app)
    stranger = await make_user(world.app)
    await world.fund(payer.user_id, 300_000)
    bill = await world.bill("EVN_CPC_HUE", "PC03DD0123456", 100_000)
    payment = (await world.pay(payer, [{"bill_id": str(bill)}])).json()
    receipt_id = payment["items"][0]["receipt_id"]
    assert_problem(
        await world.http.get(f"/api/v1/me/payments/{payment['id']}", headers=stranger.headers),
        404,
        "payment_not_found",
    )
    for path in (f"/api/v1/me/receipts/{receipt_id}", f"/api/v1/me/receipts/{receipt_id}/pdf"):
        assert_problem(await world.http.get(path, headers=stranger.headers), 404, "receipt_not_found")
        assert (await world.http.get(path, headers=payer.headers)).status_code == 200


async def test_a_biller_that_refuses_after_payment_is_refunded(world: World) -> None:
    # Given a bill the biller will say was paid at its counter meanwhile (sandbox: code ending in 409)
    citizen = await make_user(world.app)
    wallet = await world.fund(citizen.user_id, 500_000)
    refused = await world.bill("EVN_CPC_HUE", "PC03DD0123409", 150_000)
    accepted = await world.bill("HUEWACO", "0104567821", 60_000)
    payment = (await world.pay(citizen, [{"bill_id": str(refused)}, {"bill_id": str(accepted)}])).json()
    assert await world.balance(wallet) == 290_000

    # When the worker tells the billers (twice: a redelivery must not refund twice)
    assert await world.deliver_outbox() == 2
    await confirmations.confirm_payment(await _envelope_of(world, payment["id"], "EVN_CPC_HUE"))

    # Then the refused bill's amount is back in the wallet, once, with the reason and a notification
    assert await world.balance(wallet) == 440_000
    detail = (await world.http.get(f"/api/v1/me/payments/{payment['id']}", headers=citizen.headers)).json()
    by_bill = {i["bill_id"]: i for i in detail["items"]}
    assert by_bill[str(refused)]["status"] == "refunded"
    assert by_bill[str(refused)]["refund_reason"] == "already_paid"
    assert by_bill[str(accepted)]["status"] == "confirmed"
    assert await world.count(Bill, Bill.id == refused, Bill.status == "refunded") == 1
    receipt = (
        await world.http.get(
            f"/api/v1/me/receipts/{by_bill[str(refused)]['receipt_id']}", headers=citizen.headers
        )
    ).json()
    assert receipt["status"] == "cancelled"
    async with world.db.read() as session:
        kinds = (
            (
                await session.execute(
                    select(InboxNotification.kind).where(InboxNotification.user_id == citizen.user_id)
                )
            )
            .scalars()
            .all()
        )
    assert sorted(kinds) == ["bill_refunded", "bills_paid"]


async def _envelope_of(world: World, payment_id: str, biller_code: str) -> Any:
    from app.bills.models import Biller
    from app.core.outbox import Envelope

    async with world.db.read() as session:
        biller_id = await session.scalar(select(Biller.id).where(Biller.code == biller_code))
        message = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.key == f"{payment_id}:{biller_id}")
        )
    assert message is not None
    return Envelope(message.id, message.topic, message.key, message.payload, 2, message.created_at)


async def test_two_refunds_of_one_paid_bill_at_once_move_the_money_once(world: World) -> None:
    """The one refund path (biller refusal, dossier withdrawn or stopped) under a forced overlap: the first
    refund holds its transaction open while the second starts; the second finds the item refunded."""
    from app.bills.refunds import refund_paid_bill

    citizen = await make_user(world.app)
    wallet = await world.fund(citizen.user_id, 500_000)
    bill = await world.bill("EVN_CPC_HUE", "PC03DD0123456", 120_000)
    assert (await world.pay(citizen, [{"bill_id": str(bill)}])).status_code == 201
    assert await world.balance(wallet) == 380_000
    first_in = asyncio.Event()

    async def refund(hold: float) -> Any:
        async with world.db.transaction() as session:
            done = await refund_paid_bill(
                session, bill, reason="test", reference=f"R-{hold}", description="hoàn tiền thử"
            )
            first_in.set()
            await asyncio.sleep(hold)
            return done

    async def second() -> Any:
        await first_in.wait()
        return await refund(0)

    results = await asyncio.gather(refund(0.3), second())
    assert sum(r is not None for r in results) == 1
    assert await world.balance(wallet) == 500_000
    assert await world.count(Bill, Bill.id == bill, Bill.status == "refunded") == 1
    async with world.db.transaction() as session:
        assert (await ledger.check_books(session)).ok


async def _entry_of(world: World, payment_id: str) -> LedgerEntry:
    async with world.db.read() as session:
        payment = await session.get(BillPayment, uuid.UUID(payment_id))
        assert payment is not None
        entry = await session.get(LedgerEntry, payment.entry_id)
        assert entry is not None
        return entry


async def test_a_replay_is_the_first_answer_byte_for_byte_and_a_second_payment_credits_the_same_payable(
    world: World,
) -> None:
    citizen = await make_user(world.app)
    await world.fund(citizen.user_id, 500_000)
    first_bill = await world.bill("HUEWACO", "0104567821", 70_000)
    second_bill = await world.bill("HUEWACO", "0104567822", 30_000, period="2025-07")
    first = await world.pay(citizen, [{"bill_id": str(first_bill)}], key="bytes")
    again = await world.pay(citizen, [{"bill_id": str(first_bill)}], key="bytes")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers.get("Idempotent-Replayed") == "true"
    # the payable account is known now (on PostgreSQL: remembered by the driver path)
    second = await world.pay(citizen, [{"bill_id": str(second_bill)}])
    assert second.status_code == 201, second.text
    async with world.db.read() as session:
        items = (await session.execute(select(BillPaymentItem))).scalars().all()
        assert len({item.payable_account_id for item in items}) == 1
        assert (await ledger.balance(session, items[0].payable_account_id)).balance == 100_000
        assert (await ledger.check_books(session)).ok
    assert await world.count(OutboxMessage, OutboxMessage.topic == payments.CONFIRM_TOPIC) == 2


async def test_the_limit_category_is_the_billers_or_mixed(world: World) -> None:
    citizen = await make_user(world.app)
    await world.fund(citizen.user_id, 500_000)
    water = await world.bill("HUEWACO", "0104567821", 10_000)
    other_water = await world.bill("HUEWACO", "0104567823", 12_000)
    sanitation = await world.bill("HEPCO_VSMT", "VS24051987", 5_000)
    waters = await world.pay(citizen, [{"bill_id": str(water)}, {"bill_id": str(other_water)}])
    fee = await world.pay(citizen, [{"bill_id": str(sanitation)}])
    assert waters.status_code == fee.status_code == 201
    assert (await _entry_of(world, waters.json()["id"])).details["category"] == "water"
    assert (await _entry_of(world, fee.json()["id"])).details["category"] == "sanitation_fee"
    electricity = await world.bill("EVN_CPC_HUE", "PC03DD0123456", 20_000)
    more_sanitation = await world.bill("HEPCO_VSMT", "VS24051988", 5_000)
    both = await world.pay(citizen, [{"bill_id": str(electricity)}, {"bill_id": str(more_sanitation)}])
    assert both.status_code == 201, both.text
    entry = await _entry_of(world, both.json()["id"])
    assert entry.details["category"] == payments.MIXED_CATEGORY
    assert entry.details["bills"] == [str(electricity), str(more_sanitation)]


async def test_not_enough_money_pays_nothing_and_is_recorded(world: World) -> None:
    citizen = await make_user(world.app)
    wallet = await world.fund(citizen.user_id, 50_000)
    bills = [
        await world.bill("EVN_CPC_HUE", "PC03DD0123456", 40_000),
        await world.bill("HUEWACO", "01045", 20_000),
    ]
    before = await world.count(OutboxMessage)
    response = await world.pay(citizen, [{"bill_id": str(b)} for b in bills])
    assert assert_problem(response, 422, "insufficient_funds")["available"] == 50_000
    assert await world.balance(wallet) == 50_000
    assert await world.count(Bill, Bill.id.in_(bills), Bill.status == "unpaid") == 2
    assert await world.count(BillPayment) == await world.count(Receipt) == 0
    assert await world.count(OutboxMessage) == before
    assert await world.count(PaymentAttempt, PaymentAttempt.error_code == "insufficient_funds") == 1


async def test_a_payment_with_an_owned_bill_publishes_bills_paid_on_both_backends(world: World) -> None:
    """A bill with an owner (a dossier fee, a result's postage) has in-transaction subscribers: on
    PostgreSQL too such a payment takes the ORM path, whole, and publishes ``BillsPaid``."""
    applicant = await make_user(world.app, full_name="Lê Thị Hoa")
    wallet = await world.fund(applicant.user_id, 500_000)
    fee = await world.bill("HEPCO_VSMT", "VS24051988", 25_000, owner=applicant.user_id)
    water = await world.bill("HUEWACO", "0104567821", 40_000)
    response = await world.pay(applicant, [{"bill_id": str(water)}, {"bill_id": str(fee)}])
    assert response.status_code == 201, response.text
    assert [item["bill_id"] for item in response.json()["items"]] == [str(water), str(fee)]
    assert await world.balance(wallet) == 500_000 - 65_000
    assert len(world.seen_events) == 1
    assert [b.bill_id for b in world.seen_events[0].bills] == [water, fee]
    assert await world.count(Receipt) == 2
