"""Dossiers through the HTTP API: the Must-show flow, isolation between agencies and citizens, uploads.

Fee payment is played by publishing ``BillsPaid`` in a transaction that marks the bill paid, exactly as the
payment route does (the payment route lives on another branch).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
from sqlalchemy import select, update

from app.bills.events import BillsPaid, PaidBill
from app.bills.models import Bill
from app.core.audit_models import AuditEvent
from app.core.db import Database, utcnow
from app.core.events import publish
from app.core.settings import Settings
from app.services.dossier_models import Dossier
from app.services.schemas import FeeCase, FeeLine, FeeSchedule, ProcedureUpdate, RequiredDocument
from app.services.service import update_procedure
from tests.conftest import Backend, assert_problem
from tests.factories import in_app, make_user

HUE = ZoneInfo("Asia/Ho_Chi_Minh")
PROCEDURE = "1.001193"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
MAX_UPLOAD = 4096


@pytest.fixture
def settings(backend_env: Backend, tmp_path: Path) -> Settings:
    return backend_env.settings(MAX_UPLOAD_BYTES=str(MAX_UPLOAD), VAR_DIR=str(tmp_path / "var"))


@pytest.fixture
async def procedure(loaded: Database) -> str:
    """A commune → province procedure of 3 working days with a fee collected first (or an exempt case)."""
    async with loaded.transaction() as session:
        await _update_procedure(session)
    return PROCEDURE


async def _update_procedure(session: Any) -> None:
    await update_procedure(
        session,
        PROCEDURE,
        ProcedureUpdate(
            agency_chain=["PHU-XUAN", "HUE"],
            processing_days=3,
            documents=[RequiredDocument(code="application_form", name_vi="Tờ khai")],
            fee_schedule=FeeSchedule(
                cases=[
                    FeeCase(
                        code="case_1",
                        name_vi="Nộp trực tuyến",
                        collection="first",
                        default=True,
                        lines=[
                            FeeLine(code="le_phi_1", kind="charge", name_vi="Lệ phí", amount_vnd=50_000),
                            FeeLine(
                                code="ban_sao", kind="fee", name_vi="Bản sao", amount_vnd=3_000, optional=True
                            ),
                        ],
                    ),
                    FeeCase(
                        code="exempt_groups",
                        name_vi="Người có công",
                        collection="exempt",
                        lines=[FeeLine(code="le_phi_1", kind="charge", name_vi="Lệ phí", amount_vnd=0)],
                    ),
                ]
            ),
        ),
        uuid.uuid4(),
    )


def _file(name: str, content: bytes, claimed: str = "application/pdf") -> dict[str, Any]:
    return {"file": (name, content, claimed)}


async def _submitted(client: Any, headers: dict[str, str], *, fee_case: str = "case_1") -> dict[str, Any]:
    created = await client.post(
        "/api/v1/me/dossiers", json={"procedure_code": PROCEDURE, "fee_case": fee_case}, headers=headers
    )
    assert created.status_code == 201, created.text
    dossier_id = created.json()["id"]
    attached = await client.post(
        f"/api/v1/me/dossiers/{dossier_id}/documents",
        files=_file("to-khai.pdf", PDF + uuid.uuid4().bytes),
        data={"requirement": "application_form"},
        headers=headers,
    )
    assert attached.status_code == 200, attached.text
    submitted = await client.post(f"/api/v1/me/dossiers/{dossier_id}/submit", headers=headers)
    assert submitted.status_code == 200, submitted.text
    body: dict[str, Any] = submitted.json()
    return body


async def _pay(client: Any, bill_id: str, payer: uuid.UUID, paid_at: datetime) -> None:
    """What the payment does in its transaction: the bill becomes paid and ``BillsPaid`` is announced."""

    async def run() -> None:
        db: Database = client.app.state.db
        async with db.transaction() as session:
            bill = await session.get(Bill, uuid.UUID(bill_id))
            assert bill is not None
            assert bill.status == "unpaid"
            await session.execute(
                update(Bill).where(Bill.id == bill.id).values(status="paid", paid_at=paid_at)
            )
            biller_code = "PSF_PHU_XUAN"
            await publish(
                session,
                BillsPaid(
                    payment_id=uuid.uuid4(),
                    payer_id=payer,
                    paid_at=paid_at,
                    bills=(PaidBill(bill.id, biller_code, bill.external_id, bill.amount),),
                ),
            )

    await in_app(client, run)


async def test_must_show_flow(client: Any, procedure: str) -> None:
    """Submit → commune accepts (fee first) → fee paid → ``new`` with a due date across the National Day
    break → transfer to the province → supplement → resubmitted → approved; timeline and audit show it."""
    citizen = await make_user(client)
    commune = await make_user(client, roles=("officer",), agency_id="PHU-XUAN")
    province = await make_user(client, roles=("officer",), agency_id="HUE")

    dossier = await _submitted(client, citizen.headers)
    dossier_id = dossier["id"]
    assert dossier["status"] == "receiving"
    assert re.fullmatch(r"PHU-XUAN-\d{6}-0001", dossier["code"]), dossier["code"]
    assert dossier["code"][9:15] == utcnow().astimezone(HUE).strftime("%y%m%d")

    queue = await client.get("/api/v1/officer/dossiers?filter=receiving", headers=commune.headers)
    assert [d["id"] for d in queue.json()["items"]] == [dossier_id]

    # An officer cannot skip intake.
    skipped = await client.post(
        f"/api/v1/officer/dossiers/{dossier_id}/process", json={}, headers=commune.headers
    )
    assert_problem(skipped, 409, "illegal_transition")

    accepted = await client.post(
        f"/api/v1/officer/dossiers/{dossier_id}/accept", json={"note": "Đủ hồ sơ"}, headers=commune.headers
    )
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["status"] == "paying"
    assert body["fee_amount"] == 50_000  # the optional copy line is not billed
    assert body["received_at"] is None  # the clock has not started
    assert body["due_at"] is None
    bill = await client.get(f"/api/v1/me/bills/{body['fee_bill_id']}", headers=citizen.headers)
    assert bill.status_code == 200, bill.text
    assert bill.json()["amount"] == 50_000

    # Paid on Friday 28/8/2026 at 09:00 in Huế. 3 working days = 24 working hours:
    # Fri 28/8 09:00-11:30 + 13:30-17:00 = 6 h (18 h left); Sat 29, Sun 30 weekend; Mon 31/8 swapped day
    # off (worked on Sat 22/8); Tue 1/9 and Wed 2/9 National Day; Thu 3/9 8 h (10 left); Fri 4/9 8 h (2 left);
    # Sat 5, Sun 6 weekend; Mon 7/9 07:00 + 2 h = 09:00.
    paid_at = datetime(2026, 8, 28, 9, 0, tzinfo=HUE)
    await _pay(client, body["fee_bill_id"], citizen.user_id, paid_at)
    paid = (await client.get(f"/api/v1/me/dossiers/{dossier_id}", headers=citizen.headers)).json()
    assert paid["status"] == "new"
    assert datetime.fromisoformat(paid["received_at"]) == paid_at
    due = datetime.fromisoformat(paid["due_at"])
    assert due == datetime(2026, 9, 7, 9, 0, tzinfo=HUE)
    assert paid["due_provisional"] is False
    assert paid["fee_paid_at"] is not None

    transferred = await client.post(
        f"/api/v1/officer/dossiers/{dossier_id}/transfer",
        json={"note": "Chuyển tỉnh"},
        headers=commune.headers,
    )
    assert transferred.status_code == 200, transferred.text
    assert transferred.json()["status"] == "processing"
    assert transferred.json()["agency_code"] == "HUE"
    gone = await client.get(f"/api/v1/officer/dossiers/{dossier_id}", headers=commune.headers)
    assert_problem(gone, 404, "not_found")
    no_next = await client.post(
        f"/api/v1/officer/dossiers/{dossier_id}/transfer", json={}, headers=province.headers
    )
    assert_problem(no_next, 409, "no_next_agency")

    asked = await client.post(
        f"/api/v1/officer/dossiers/{dossier_id}/request-supplement",
        json={"reason": "Bổ sung bản sao giấy khai sinh"},
        headers=province.headers,
    )
    assert asked.status_code == 200, asked.text
    assert asked.json()["status"] == "waiting"
    waiting = await client.get("/api/v1/officer/dossiers?filter=waiting", headers=province.headers)
    assert [d["id"] for d in waiting.json()["items"]] == [dossier_id]
    inbox = await client.get("/api/v1/me/inbox/", headers=citizen.headers)
    assert any("Bổ sung bản sao" in n["body_vi"] for n in inbox.json()["items"]), inbox.text

    # The supplement waited since a Monday 09:00 two weeks earlier: at least 10 working days (80 h) paused.
    async def backdate() -> None:
        db: Database = client.app.state.db
        async with db.transaction() as session:
            await session.execute(
                update(Dossier)
                .where(Dossier.id == uuid.UUID(dossier_id))
                .values(paused_at=datetime(2026, 9, 7, 9, 0, tzinfo=HUE))
            )

    await in_app(client, backdate)
    supplement = await client.post(
        f"/api/v1/me/dossiers/{dossier_id}/documents",
        files=_file("khai-sinh.png", PNG, "image/png"),
        headers=citizen.headers,
    )
    assert supplement.status_code == 200, supplement.text
    assert any(a["purpose"] == "supplement" for a in supplement.json()["attachments"])
    resubmitted = await client.post(
        f"/api/v1/me/dossiers/{dossier_id}/resubmit", json={"note": "Đã bổ sung"}, headers=citizen.headers
    )
    assert resubmitted.status_code == 200, resubmitted.text
    resumed = resubmitted.json()
    assert resumed["status"] == "processing"
    assert resumed["paused_seconds"] >= 80 * 3600
    assert datetime.fromisoformat(resumed["due_at"]) > due + timedelta(days=14)

    approved = await client.post(
        f"/api/v1/officer/dossiers/{dossier_id}/approve",
        files=_file("ket-qua.pdf", PDF + b"result"),
        data={"note": "Cấp bản sao"},
        headers=province.headers,
    )
    assert approved.status_code == 200, approved.text
    final = approved.json()
    assert final["status"] == "releasing"
    uploaded = next(a["document"] for a in final["attachments"] if a["document"]["filename"] == "ket-qua.pdf")
    result = await client.get(f"/api/v1/me/documents/{uploaded['id']}/content", headers=citizen.headers)
    assert result.status_code == 200
    assert result.content == PDF + b"result"
    assert result.headers["x-content-sha256"] == hashlib.sha256(PDF + b"result").hexdigest()
    signed = await client.get(
        f"/api/v1/me/documents/{final['result_document_id']}/content", headers=citizen.headers
    )
    assert signed.content.startswith(b"%PDF")  # the signed result (issue 9) carries the officer's file

    steps = [(e["action"], e["from_status"], e["to_status"], e["actor_role"]) for e in final["timeline"]]
    assert steps == [
        ("submit", "draft", "receiving", "citizen"),
        ("accept_fee_first", "receiving", "paying", "officer"),
        ("fee_paid", "paying", "new", "system"),
        ("start_processing", "new", "processing", "officer"),
        ("transfer", "processing", "processing", "officer"),
        ("request_supplement", "processing", "waiting", "officer"),
        ("resubmit", "waiting", "processing", "citizen"),
        ("approve", "processing", "releasing", "officer"),
        ("result_signed", "releasing", "releasing", "officer"),
    ]
    by_action = {e["action"]: e for e in final["timeline"]}
    assert by_action["accept_fee_first"]["actor_id"] == str(commune.user_id)
    assert by_action["accept_fee_first"]["note"] == "Đủ hồ sơ"
    assert by_action["transfer"]["agency_code"] == "PHU-XUAN"
    assert by_action["approve"]["actor_id"] == str(province.user_id)
    assert by_action["approve"]["agency_code"] == "HUE"

    async def audit() -> list[tuple[str, str | None]]:
        db: Database = client.app.state.db
        async with db.read() as session:
            rows = await session.scalars(
                select(AuditEvent).where(AuditEvent.object_id == dossier_id).order_by(AuditEvent.seq)
            )
            return [(r.action, r.actor_id and str(r.actor_id)) for r in rows]

    assert await in_app(client, audit) == [
        ("services.dossier_submit", str(citizen.user_id)),
        ("services.dossier_accept_fee_first", str(commune.user_id)),
        ("services.dossier_fee_paid", None),
        ("services.dossier_transfer", str(commune.user_id)),
        ("services.dossier_request_supplement", str(province.user_id)),
        ("services.dossier_resubmit", str(citizen.user_id)),
        ("services.dossier_approve", str(province.user_id)),
    ]


async def test_withdraw_after_payment_owes_refund_and_exempt_case_starts_clock(
    client: Any, procedure: str
) -> None:
    citizen = await make_user(client)
    commune = await make_user(client, roles=("officer",), agency_id="PHU-XUAN")
    paid = await _submitted(client, citizen.headers)
    accepted = await client.post(
        f"/api/v1/officer/dossiers/{paid['id']}/accept", json={}, headers=commune.headers
    )
    await _pay(client, accepted.json()["fee_bill_id"], citizen.user_id, utcnow())
    withdrawn = await client.post(
        f"/api/v1/me/dossiers/{paid['id']}/withdraw", json={"note": "Không cần nữa"}, headers=citizen.headers
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "cancelled"
    assert withdrawn.json()["refund_state"] == "owed"
    assert [e["action"] for e in withdrawn.json()["timeline"]][-2:] == ["withdraw", "fee_refund_owed"]
    again = await client.post(f"/api/v1/me/dossiers/{paid['id']}/withdraw", json={}, headers=citizen.headers)
    assert_problem(again, 409, "illegal_transition")

    exempt = await _submitted(client, citizen.headers, fee_case="exempt_groups")
    assert exempt["code"] == paid["code"][:-4] + "0002"  # the counter is per agency per day
    started = await client.post(
        f"/api/v1/officer/dossiers/{exempt['id']}/accept", json={}, headers=commune.headers
    )
    assert started.json()["status"] == "new"
    assert started.json()["fee_bill_id"] is None
    assert started.json()["due_at"] is not None

    unknown = await client.post(
        "/api/v1/me/dossiers", json={"procedure_code": PROCEDURE, "fee_case": "nope"}, headers=citizen.headers
    )
    assert_problem(unknown, 422, "unknown_fee_case")


async def test_officer_of_another_agency_sees_and_does_nothing(client: Any, procedure: str) -> None:
    citizen = await make_user(client)
    other = await make_user(client, roles=("officer",), agency_id="THUAN-HOA")
    dossier = await _submitted(client, citizen.headers)
    dossier_id = dossier["id"]
    doc_id = dossier["attachments"][0]["document"]["id"]
    base = f"/api/v1/officer/dossiers/{dossier_id}"

    for path in (base, f"{base}/documents/{doc_id}/content"):
        assert_problem(await client.get(path, headers=other.headers), 404, "not_found")
    json_actions = {
        "accept": {},
        "deny": {"reason": "x"},
        "process": {},
        "transfer": {},
        "request-supplement": {"reason": "x"},
        "fee": {"amount": 1000},
        "stop": {"reason": "x"},
        "collected": {},
    }
    for action, payload in json_actions.items():
        response = await client.post(f"{base}/{action}", json=payload, headers=other.headers)
        assert_problem(response, 404, "not_found")
    approve = await client.post(f"{base}/approve", files=_file("r.pdf", PDF), headers=other.headers)
    assert_problem(approve, 404, "not_found")
    for which in ("all", "receiving", "new", "due_soon", "overdue", "waiting"):
        page = await client.get(f"/api/v1/officer/dossiers?filter={which}", headers=other.headers)
        assert page.status_code == 200, page.text
        assert page.json()["items"] == [], which

    # Still untouched, and a citizen has no officer routes at all.
    mine = await client.get(f"/api/v1/me/dossiers/{dossier_id}", headers=citizen.headers)
    assert mine.json()["status"] == "receiving"
    assert (await client.get(base, headers=citizen.headers)).status_code == 403
    support = await make_user(client, roles=("admin",), duties=("support",))
    assert (await client.get(base, headers=support.headers)).status_code == 200
    assert_problem(await client.post(f"{base}/accept", json={}, headers=support.headers), 404, "not_found")


async def test_citizen_cannot_see_anothers_dossier_or_documents(client: Any, procedure: str) -> None:
    alice = await make_user(client)
    binh = await make_user(client, full_name="Trần Thị Bình")
    dossier = await _submitted(client, alice.headers)
    doc_id = dossier["attachments"][0]["document"]["id"]
    draft = (
        await client.post("/api/v1/me/dossiers", json={"procedure_code": PROCEDURE}, headers=alice.headers)
    ).json()

    for path in (f"/api/v1/me/dossiers/{dossier['id']}", f"/api/v1/me/documents/{doc_id}/content"):
        assert_problem(await client.get(path, headers=binh.headers), 404, "not_found")
    for action in ("submit", "withdraw", "resubmit"):
        response = await client.post(
            f"/api/v1/me/dossiers/{draft['id']}/{action}", json={}, headers=binh.headers
        )
        assert_problem(response, 404, "not_found")
    upload = await client.post(
        f"/api/v1/me/dossiers/{draft['id']}/documents", files=_file("a.pdf", PDF), headers=binh.headers
    )
    assert_problem(upload, 404, "not_found")
    # Bình cannot attach Alice's document to his own dossier either.
    own = (
        await client.post("/api/v1/me/dossiers", json={"procedure_code": PROCEDURE}, headers=binh.headers)
    ).json()
    reuse = await client.post(
        f"/api/v1/me/dossiers/{own['id']}/documents/reuse", json={"document_id": doc_id}, headers=binh.headers
    )
    assert_problem(reuse, 404, "not_found")
    listed = await client.get("/api/v1/me/dossiers", headers=binh.headers)
    assert [d["id"] for d in listed.json()["items"]] == [own["id"]]
    assert (await client.get("/api/v1/me/documents", headers=binh.headers)).json() == []


async def test_uploads_checked_by_content_size_and_reused(client: Any, procedure: str) -> None:
    citizen = await make_user(client)
    headers = citizen.headers
    fake = await client.post(
        "/api/v1/me/documents", files=_file("cv.pdf", b"MZ\x90\x00 not a pdf"), headers=headers
    )
    assert_problem(fake, 415, "unsupported_document_type")
    big = await client.post(
        "/api/v1/me/documents", files=_file("big.pdf", PDF + b"0" * MAX_UPLOAD), headers=headers
    )
    assert_problem(big, 413, "document_too_large")
    as_json = await client.post("/api/v1/me/documents", json={"file": "x"}, headers=headers)
    assert as_json.status_code == 415

    jpeg = await client.post("/api/v1/me/documents", files=_file("cccd.pdf", JPEG), headers=headers)
    assert jpeg.status_code == 201, jpeg.text
    assert jpeg.json()["media_type"] == "image/jpeg"  # by content, not by name or claimed type
    assert jpeg.json()["sha256"] == hashlib.sha256(JPEG).hexdigest()
    again = await client.post(
        "/api/v1/me/documents", files=_file("copy.jpg", JPEG, "image/jpeg"), headers=headers
    )
    assert again.json()["id"] == jpeg.json()["id"]
    exact = await client.post(
        "/api/v1/me/documents", files=_file("edge.pdf", PDF + b"0" * (MAX_UPLOAD - len(PDF))), headers=headers
    )
    assert exact.status_code == 201, exact.text

    # Reuse a stored document in a dossier; a dossier without its required document cannot be submitted.
    created = (
        await client.post("/api/v1/me/dossiers", json={"procedure_code": PROCEDURE}, headers=headers)
    ).json()
    assert created["fee_case"] == "case_1"
    incomplete = await client.post(f"/api/v1/me/dossiers/{created['id']}/submit", headers=headers)
    assert_problem(incomplete, 409, "dossier_incomplete")
    reused = await client.post(
        f"/api/v1/me/dossiers/{created['id']}/documents/reuse",
        json={"document_id": jpeg.json()["id"], "requirement": "application_form"},
        headers=headers,
    )
    assert reused.status_code == 200, reused.text
    assert (
        await client.post(f"/api/v1/me/dossiers/{created['id']}/submit", headers=headers)
    ).status_code == 200
    locked = await client.post(
        f"/api/v1/me/dossiers/{created['id']}/documents/reuse",
        json={"document_id": exact.json()["id"]},
        headers=headers,
    )
    assert_problem(locked, 409, "dossier_locked")
    content = await client.get(f"/api/v1/me/documents/{jpeg.json()['id']}/content", headers=headers)
    assert content.content == JPEG
    assert content.headers["content-type"].startswith("image/jpeg")


async def test_fee_after_processing_releases_on_payment_and_stop_after_payment_owes_refund(
    client: Any, procedure: str
) -> None:
    citizen = await make_user(client)
    commune = await make_user(client, roles=("officer",), agency_id="PHU-XUAN")
    # Exempt at intake, but the commune sets a fee collected after processing (e.g. a copy fee).
    dossier = await _submitted(client, citizen.headers, fee_case="exempt_groups")
    base = f"/api/v1/officer/dossiers/{dossier['id']}"
    assert (await client.post(f"{base}/accept", json={}, headers=commune.headers)).json()["status"] == "new"
    early_fee = await client.post(f"{base}/fee", json={"amount": 8000}, headers=commune.headers)
    assert_problem(early_fee, 409, "dossier_locked")
    assert (await client.post(f"{base}/process", json={}, headers=commune.headers)).status_code == 200
    fee = await client.post(f"{base}/fee", json={"amount": 8000, "note": "Bản sao"}, headers=commune.headers)
    assert fee.status_code == 200, fee.text
    approved = await client.post(
        f"{base}/approve", files=_file("kq.pdf", PDF + b"kq"), headers=commune.headers
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "paying"
    assert approved.json()["fee_amount"] == 8000
    await _pay(client, approved.json()["fee_bill_id"], citizen.user_id, utcnow())
    released = (await client.get(f"/api/v1/me/dossiers/{dossier['id']}", headers=citizen.headers)).json()
    assert released["status"] == "releasing"
    assert [e["action"] for e in released["timeline"]][-4:] == [
        "set_fee",
        "approve_fee_after",
        "result_signed",
        "fee_paid",
    ]

    # Paid first, then stopped: the fee is owed back.
    stopped = await _submitted(client, citizen.headers)
    base = f"/api/v1/officer/dossiers/{stopped['id']}"
    accepted = await client.post(f"{base}/accept", json={}, headers=commune.headers)
    await _pay(client, accepted.json()["fee_bill_id"], citizen.user_id, utcnow())
    await client.post(f"{base}/process", json={}, headers=commune.headers)
    result = await client.post(f"{base}/stop", json={"reason": "Không đủ điều kiện"}, headers=commune.headers)
    assert result.status_code == 200, result.text
    assert result.json()["status"] == "unresolved"
    assert result.json()["refund_state"] == "owed"
    assert result.json()["reason"] == "Không đủ điều kiện"


async def test_dossier_codes_are_unique_under_concurrent_submissions(
    db: Database, backend_env: Backend
) -> None:
    """Eight transactions claim a number for the same agency and day at once (on PostgreSQL they all hold an
    open transaction at the barrier before claiming; SQLite serialises writers at BEGIN IMMEDIATE)."""
    from app.services.dossiers import _next_code

    count = 8
    barrier = asyncio.Barrier(count)
    at = datetime(2026, 9, 3, 10, 0, tzinfo=HUE)

    async def claim() -> str:
        if not backend_env.is_postgres:
            await barrier.wait()
        async with db.transaction() as session:
            if backend_env.is_postgres:
                await session.execute(select(1))
                await barrier.wait()
            code = await _next_code(session, "PHU-XUAN", at)
            await asyncio.sleep(0.01)
            return code

    codes = await asyncio.gather(*(claim() for _ in range(count)))
    assert sorted(codes) == [f"PHU-XUAN-260903-{n:04d}" for n in range(1, count + 1)]


async def test_queue_filters_and_cursor_pages(client: Any, procedure: str) -> None:
    citizen = await make_user(client)
    commune = await make_user(client, roles=("officer",), agency_id="PHU-XUAN")
    ids = []
    for _ in range(3):
        dossier = await _submitted(client, citizen.headers, fee_case="exempt_groups")
        await client.post(
            f"/api/v1/officer/dossiers/{dossier['id']}/accept", json={}, headers=commune.headers
        )
        ids.append(dossier["id"])
    now = utcnow()
    dues = {
        ids[0]: now - timedelta(hours=1),
        ids[1]: now + timedelta(minutes=5),
        ids[2]: now + timedelta(days=30),
    }

    async def set_dues() -> None:
        db: Database = client.app.state.db
        async with db.transaction() as session:
            for dossier_id, due in dues.items():
                await session.execute(
                    update(Dossier).where(Dossier.id == uuid.UUID(dossier_id)).values(due_at=due)
                )

    await in_app(client, set_dues)

    async def listed(which: str) -> list[str]:
        page = await client.get(f"/api/v1/officer/dossiers?filter={which}", headers=commune.headers)
        assert page.status_code == 200, page.text
        return [d["id"] for d in page.json()["items"]]

    assert await listed("overdue") == [ids[0]]
    assert await listed("due_soon") == [ids[1]]
    assert await listed("new") == ids
    assert await listed("receiving") == []

    seen: list[str] = []
    cursor = None
    for _ in range(4):
        query = "/api/v1/officer/dossiers?filter=all&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(query, headers=commune.headers)).json()
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    bad = await client.get("/api/v1/officer/dossiers?cursor=@@", headers=commune.headers)
    assert_problem(bad, 422, "validation_failed")


async def test_fee_paid_in_one_tap_with_two_utility_bills_through_http(client: Any, procedure: str) -> None:
    """The Must-show's payment step through the real payment route: the fee and two household bills in one
    tap; the dossier is ``new`` with the clock started at the payment time."""
    from app.bills import service as bills_service
    from app.bills.demo import demo_data
    from app.bills.schemas import BillerIn
    from tests.factories import DEFAULT_PIN
    from tests.wallet.helpers import fund

    citizen = await make_user(client)
    commune = await make_user(client, roles=("officer",), agency_id="PHU-XUAN")
    await fund(client, citizen.user_id, 2_000_000)

    async def utility_bills() -> list[str]:
        db: Database = client.app.state.db
        billers = demo_data()["billers"]
        ids = []
        for code, customer, amount in (
            ("EVN_CPC_HUE", "PC03DD0123456", 312_500),
            ("HEPCO_VSMT", "VS24051987", 35_000),
        ):
            await bills_service.put_biller(
                db, code, msgspec.convert(billers[code], BillerIn), production=False
            )
            async with db.transaction() as session:
                bill = await bills_service.issue_bill(
                    session,
                    biller_code=code,
                    customer_code=customer,
                    external_id=f"{customer}-{uuid.uuid4().hex[:8]}",
                    period="2026-11",
                    amount=amount,
                    owner_user_id=citizen.user_id,
                )
                ids.append(str(bill.id))
        return ids

    utilities = await in_app(client, utility_bills)
    dossier = await _submitted(client, citizen.headers)
    accepted = await client.post(
        f"/api/v1/officer/dossiers/{dossier['id']}/accept", json={}, headers=commune.headers
    )
    fee_bill = accepted.json()["fee_bill_id"]

    paid = await client.post(
        "/api/v1/payments",
        json={"items": [{"bill_id": fee_bill}, *({"bill_id": b} for b in utilities)], "pin": DEFAULT_PIN},
        headers={**citizen.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert paid.status_code == 201, paid.text
    payment = paid.json()
    assert payment["total"] == 50_000 + 312_500 + 35_000
    paid_at = datetime.fromisoformat(payment["paid_at"])

    after = (await client.get(f"/api/v1/me/dossiers/{dossier['id']}", headers=citizen.headers)).json()
    assert after["status"] == "new"
    assert datetime.fromisoformat(after["received_at"]) == paid_at
    assert datetime.fromisoformat(after["fee_paid_at"]) == paid_at
    estimate = await client.get(
        f"/api/v1/services/procedures/{PROCEDURE}/deadline", params={"received_at": paid_at.isoformat()}
    )
    assert datetime.fromisoformat(after["due_at"]) == datetime.fromisoformat(estimate.json()["due_at"])
    assert datetime.fromisoformat(after["due_at"]) > paid_at
    assert [e["action"] for e in after["timeline"]] == ["submit", "accept_fee_first", "fee_paid"]


async def test_withdrawing_a_dossier_whose_fee_was_paid_refunds_the_wallet(
    client: Any, procedure: str
) -> None:
    """DOMAIN.md: withdrawn before processing starts, the paid fee is refunded automatically — the money
    goes back to the wallet it came from, once, and the fee's payable gives it back."""
    from tests.factories import DEFAULT_PIN
    from tests.wallet.helpers import fund

    citizen = await make_user(client)
    commune = await make_user(client, roles=("officer",), agency_id="PHU-XUAN")
    await fund(client, citizen.user_id, 200_000)
    dossier = await _submitted(client, citizen.headers)
    accepted = await client.post(
        f"/api/v1/officer/dossiers/{dossier['id']}/accept", json={}, headers=commune.headers
    )
    fee_bill = accepted.json()["fee_bill_id"]
    paid = await client.post(
        "/api/v1/payments",
        json={"items": [{"bill_id": fee_bill}], "pin": DEFAULT_PIN},
        headers={**citizen.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert paid.status_code == 201, paid.text
    fee = paid.json()["total"]
    wallet = (await client.get("/api/v1/me/wallet", headers=citizen.headers)).json()
    assert wallet["balance"] == 200_000 - fee

    withdrawn = await client.post(
        f"/api/v1/me/dossiers/{dossier['id']}/withdraw",
        json={"note": "Không cần nữa"},
        headers=citizen.headers,
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["refund_state"] == "refunded"
    assert [e["action"] for e in withdrawn.json()["timeline"]][-2:] == ["withdraw", "fee_refunded"]
    wallet = (await client.get("/api/v1/me/wallet", headers=citizen.headers)).json()
    assert wallet["balance"] == 200_000
    bill = (await client.get(f"/api/v1/me/bills/{fee_bill}", headers=citizen.headers)).json()
    assert bill["status"] == "refunded"

    async def books() -> Any:
        from app.wallet import ledger

        db: Database = client.app.state.db
        async with db.transaction() as session:
            return await ledger.check_books(session)

    assert (await in_app(client, books)).ok

    unpaid = await _submitted(client, citizen.headers)
    accepted = await client.post(
        f"/api/v1/officer/dossiers/{unpaid['id']}/accept", json={}, headers=commune.headers
    )
    unpaid_fee = accepted.json()["fee_bill_id"]
    withdraw = f"/api/v1/me/dossiers/{unpaid['id']}/withdraw"
    assert (await client.post(withdraw, json={}, headers=citizen.headers)).status_code == 200
    late = await client.post(
        "/api/v1/payments",
        json={"items": [{"bill_id": unpaid_fee}], "pin": DEFAULT_PIN},
        headers={**citizen.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert_problem(late, 409, "bill_not_payable")
