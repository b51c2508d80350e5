"""Complaints and settlement (issue 11, items 2-4 and their Must-show), on both backends.

A complaint resolved with a partial refund leaves the books balanced, and the settlement of the day is short
by exactly the held amount until the complaint is resolved; the day's remittance files add up to the
payouts and to the ledger's movements of the payable accounts.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta

from sqlalchemy import select

from app.bills.clock import local_today
from app.complaints import service as complaints
from app.complaints.models import Complaint
from app.core.audit_models import AuditEvent
from app.core.bank_transfer import SandboxBank, TransferStatus
from app.identity.inbox_models import InboxNotification
from app.settlement import service as settlement
from app.settlement.models import Settlement
from app.wallet import ledger
from app.wallet.payout_holds import PayoutHold
from tests.afterpay.conftest import World
from tests.conftest import assert_problem
from tests.factories import DEFAULT_PIN, make_user

COMPLAINTS = "/api/v1/me/complaints"
ADMIN = "/api/v1/admin/complaints"


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def _settlements(world: World, day: object) -> dict[str, Settlement]:
    async with world.db.read() as session:
        rows = await session.scalars(select(Settlement).where(Settlement.business_day == day))
        return {s.payee_code: s for s in rows}


async def _books_ok(world: World) -> None:
    async with world.db.read() as session:
        books = await ledger.check_books(session)
    assert books.ok, books


async def test_partial_refund_complaint_holds_the_settlement_short_until_resolved(world: World) -> None:
    today = local_today()
    # Given two citizens who paid electricity and water bills today
    an = await make_user(world.app, full_name="Nguyễn Văn An")
    binh = await make_user(world.app, full_name="Trần Thị Bình")
    an_wallet = await world.fund(an.user_id, 1_000_000)
    await world.fund(binh.user_id, 1_000_000)
    evn_an = await world.bill("EVN_CPC_HUE", "PC03DD0123456", 300_000)
    water_an = await world.bill("HUEWACO", "0104567821", 100_000)
    evn_binh = await world.bill("EVN_CPC_HUE", "PC03HH0765432", 200_000)
    assert (await world.pay(an, [evn_an, water_an])).status_code == 201
    assert (await world.pay(binh, [evn_binh])).status_code == 201

    # When An complains about 120,000 đ of the electricity bill
    body = {
        "kind": "bill",
        "payment_id": str(evn_an),
        "reason": "wrong_amount",
        "description": "Chỉ số công tơ bị ghi sai, tiền điện tăng gấp đôi.",
        "amount": 120_000,
    }
    opened = await world.post(COMPLAINTS, an, body, key="kn-1")
    assert opened.status_code == 201, opened.text
    complaint = opened.json()
    assert complaint["status"] == "logged"
    assert complaint["disputed_amount"] == 120_000
    assert (await world.post(COMPLAINTS, an, body, key="kn-1")).json() == complaint  # replayed, not doubled
    assert_problem(await world.post(COMPLAINTS, an, body), 409, "complaint_exists")
    # Nobody else can complain about An's payment, or read the complaint
    assert_problem(await world.post(COMPLAINTS, binh, body), 404, "payment_not_disputable")
    other = await world.http.get(f"{COMPLAINTS}/{complaint['id']}", headers=binh.headers)
    assert other.status_code == 404
    assert_problem(
        await world.post(COMPLAINTS, an, {**body, "payment_id": str(water_an), "amount": 100_001}),
        422,
        "nothing_to_dispute",
    )

    # Then the day's settlement pays EVN everything but the held 120,000 đ
    bank = SandboxBank()
    await settlement.settle_day(world.db, bank, today, kinds=("biller",))
    day = await _settlements(world, today)
    evn, water = day["EVN_CPC_HUE"], day["HUEWACO"]
    assert (evn.collected, evn.held, evn.amount, evn.status) == (500_000, 120_000, 380_000, "succeeded")
    assert (water.collected, water.held, water.amount, water.status) == (100_000, 0, 100_000, "succeeded")
    assert bank.succeeded_total() == 480_000
    assert {o.amount for o, r in bank.transfers.values() if r.status is TransferStatus.SUCCEEDED} == {
        380_000,
        100_000,
    }
    # The files: one line per bill paid, the hold, a total equal to the payout
    evn_rows = _rows(evn.file_csv)
    lines = [r for r in evn_rows if r["type"] != "total"]
    assert [r["type"] for r in lines].count("bill_payment") == 2
    assert sum(int(r["amount"]) for r in lines) == 380_000 == int(evn_rows[-1]["amount"])
    assert {r["customer_code"] for r in lines if r["type"] == "bill_payment"} == {
        "PC03DD0123456",
        "PC03HH0765432",
    }
    # ... and the day's files add up to the payouts and (holds aside) to the ledger's movements of payables
    async with world.db.read() as session:
        movement = sum([await settlement.ledger_movement(session, s.account_id, today) for s in (evn, water)])
    collected_lines = sum(
        int(r["amount"])
        for s in (evn, water)
        for r in _rows(s.file_csv)
        if r["type"] in ("bill_payment", "refund")
    )
    assert collected_lines == movement == 600_000
    assert evn.amount + water.amount == bank.succeeded_total() == movement - 120_000
    await _books_ok(world)
    assert await world.balance(evn.account_id) == 120_000  # what is held stays on the payable

    # The SLA: past its due time the complaint is escalated once, and An is told
    async with world.db.read() as session:
        row = await session.get(Complaint, uuid.UUID(complaint["id"]))
        assert row is not None
        due_at = row.due_at
    assert due_at > row.created_at + timedelta(days=1)
    assert await complaints.escalate_overdue(world.db, now=due_at + timedelta(seconds=1)) == 1
    assert await complaints.escalate_overdue(world.db, now=due_at + timedelta(hours=2)) == 0

    # When support reviews it and resolves it with a partial refund of 50,000 đ
    support = await make_user(world.app, roles=("admin",), duties=("support",))
    assert_problem(
        await world.post(
            f"{ADMIN}/{complaint['id']}/resolve", support, {"refund_amount": 50_000, "note": "x"}
        ),
        409,
        "complaint_state",
    )
    reviewed = await world.post(f"{ADMIN}/{complaint['id']}/review", support, {"note": "Đã liên hệ EVN"})
    assert reviewed.status_code == 200
    assert reviewed.json()["status"] == "in_review"
    too_much = await world.post(
        f"{ADMIN}/{complaint['id']}/resolve", support, {"refund_amount": 120_001, "note": "x"}
    )
    assert_problem(too_much, 422, "nothing_to_dispute")
    resolved = await world.post(
        f"{ADMIN}/{complaint['id']}/resolve",
        support,
        {"refund_amount": 50_000, "note": "EVN xác nhận ghi sai chỉ số, hoàn 50.000 đ."},
        key="resolve-1",
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    assert resolved.json()["refund_amount"] == 50_000
    assert [e["action"] for e in resolved.json()["events"]] == [
        "logged",
        "escalated",
        "in_review",
        "resolved",
    ]
    # Then the money came back, the books balance, the hold is released
    assert await world.balance(an_wallet) == 1_000_000 - 400_000 + 50_000
    await _books_ok(world)
    assert await world.balance(evn.account_id) == 70_000
    async with world.db.read() as session:
        hold = await session.scalar(
            select(PayoutHold).where(PayoutHold.reference == f"complaint:{complaint['id']}")
        )
        assert hold is not None
        assert hold.released_at is not None
        notes = list(
            await session.scalars(
                select(InboxNotification.kind).where(
                    InboxNotification.user_id == an.user_id,
                    InboxNotification.kind == "complaints.status_changed",
                )
            )
        )
        audited = set(
            await session.scalars(select(AuditEvent.action).where(AuditEvent.object_id == complaint["id"]))
        )
    assert len(notes) == 4  # logged, escalated, in review, resolved
    assert {"complaints.in_review", "complaints.resolved", "complaints.escalated"} <= audited
    assert_problem(
        await world.post(f"{ADMIN}/{complaint['id']}/reject", support, {"reason": "x"}),
        409,
        "complaint_state",
    )

    # And the next settlement pays EVN the released hold less the refund: 120,000 - 50,000
    tomorrow = today + timedelta(days=1)
    await settlement.settle_day(world.db, bank, tomorrow, kinds=("biller",))
    evn_next = (await _settlements(world, tomorrow))["EVN_CPC_HUE"]
    next_lines = [r for r in _rows(evn_next.file_csv) if r["type"] != "total"]
    assert sorted((r["type"], int(r["amount"])) for r in next_lines) == [
        ("hold_released", 120_000),
        ("refund", -50_000),
    ]
    assert evn_next.amount == 70_000
    assert evn_next.status == "succeeded"
    assert await world.balance(evn.account_id) == 0
    await _books_ok(world)
    # Settling a day twice pays nothing twice
    assert await settlement.settle_day(world.db, bank, tomorrow, kinds=("biller",)) == []

    # Finance lists the settlements and downloads a file (audited); support and citizens cannot
    finance = await make_user(world.app, roles=("admin",), duties=("finance",))
    listed = await world.http.get(
        "/api/v1/admin/settlements", params={"kind": "biller"}, headers=finance.headers
    )
    assert listed.status_code == 200
    assert len(listed.json()) == 3
    file = await world.http.get(f"/api/v1/admin/settlements/{evn.id}/file", headers=finance.headers)
    assert file.status_code == 200
    assert file.text == evn.file_csv
    assert (await world.http.get("/api/v1/admin/settlements", headers=support.headers)).status_code == 403
    assert (await world.http.get("/api/v1/admin/settlements", headers=an.headers)).status_code == 403
    async with world.db.read() as session:
        downloads = await session.scalar(
            select(AuditEvent.action).where(AuditEvent.action == "settlement.file_downloaded")
        )
    assert downloads == "settlement.file_downloaded"


async def test_a_transfer_complaint_takes_back_only_what_the_receiver_still_has(world: World) -> None:
    # Given An sent 300,000 đ by mistake to Bình, who has since spent 250,000 đ of it
    an = await make_user(world.app, full_name="Nguyễn Văn An")
    binh = await make_user(world.app, full_name="Trần Thị Bình")
    cuong = await make_user(world.app, full_name="Phạm Văn Cường")
    an_wallet = await world.fund(an.user_id, 500_000)
    for person in (binh, cuong):
        assert (await world.post("/api/v1/me/wallet", person, None)).status_code == 201
    sent = await world.post(
        "/api/v1/me/wallet/transfers",
        an,
        {"phone": binh.phone, "amount": 300_000, "pin": DEFAULT_PIN, "message": ""},
    )
    assert sent.status_code == 201, sent.text
    spent = await world.post(
        "/api/v1/me/wallet/transfers",
        binh,
        {"phone": cuong.phone, "amount": 250_000, "pin": DEFAULT_PIN, "message": ""},
    )
    assert spent.status_code == 201, spent.text

    # When An complains and support upholds it
    opened = await world.post(
        COMPLAINTS,
        an,
        {
            "kind": "transfer",
            "payment_id": sent.json()["id"],
            "reason": "mistaken_transfer",
            "description": "Chuyển nhầm số điện thoại.",
        },
    )
    assert opened.status_code == 201, opened.text
    complaint_id = opened.json()["id"]
    assert opened.json()["payee_name"] != "Trần Thị Bình"  # masked
    support = await make_user(world.app, roles=("admin",), duties=("support",))
    assert (await world.post(f"{ADMIN}/{complaint_id}/review", support, {})).status_code == 200

    # Then the full amount cannot come back (it is no longer there), and nothing moves
    full = await world.post(
        f"{ADMIN}/{complaint_id}/resolve", support, {"refund_amount": 300_000, "note": "Hoàn toàn bộ"}
    )
    assert_problem(full, 422, "insufficient_funds")
    assert await world.balance(an_wallet) == 200_000
    # What is left (50,000 đ) does
    part = await world.post(
        f"{ADMIN}/{complaint_id}/resolve", support, {"refund_amount": 50_000, "note": "Hoàn phần còn lại"}
    )
    assert part.status_code == 200, part.text
    assert await world.balance(an_wallet) == 250_000
    await _books_ok(world)
    async with world.db.read() as session:
        holds = await session.scalar(
            select(PayoutHold).where(PayoutHold.reference == f"complaint:{complaint_id}")
        )
    assert holds is None  # a citizen's wallet is never settled: nothing to hold
    async with world.db.read() as session:
        told = await session.scalar(
            select(InboxNotification.body_en).where(
                InboxNotification.user_id == binh.user_id,
                InboxNotification.kind == "wallet.transfer_refunded",
            )
        )
    assert told is not None
    assert "50,000 VND" in told
