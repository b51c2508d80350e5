"""Issue 9 through the HTTP API: signed results and their verification (Must-show), return by post with the
postage paid in the same tap as the fee, desk hand-over, apology with a new date, the satisfaction rating."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from app.core.db import Database
from app.core.settings import Settings
from app.services.postal import SandboxPostal, get_postal_service, poll_postal, webhook_signature
from app.services.result_models import SignedResult
from app.services.schemas import FeeCase, FeeLine, FeeSchedule, ProcedureUpdate, RequiredDocument
from app.services.service import update_procedure
from app.services.signing import verify_result
from tests.conftest import Backend, assert_problem
from tests.factories import DEFAULT_PIN, in_app, make_user

HUE = ZoneInfo("Asia/Ho_Chi_Minh")
PROCEDURE = "1.001193"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
SCORES = {
    "processing_time": 2,
    "trips": 2,
    "agencies_contacted": 2,
    "staff_attitude": 1,
    "guidance": 2,
    "disclosure": 2,
    "documents_as_listed": 2,
    "correct_result": 2,
    "feedback_handled": 0,
}


@pytest.fixture
def settings(backend_env: Backend, tmp_path: Path) -> Settings:
    return backend_env.settings(VAR_DIR=str(tmp_path / "var"), PUBLIC_BASE_URL="https://dvc.hue.example")


@pytest.fixture
async def procedure(loaded: Database) -> str:
    """One desk (PHU-XUAN), 3 working days, a 50,000 đ fee collected first (or exempt); every channel."""
    async with loaded.transaction() as session:
        await update_procedure(
            session,
            PROCEDURE,
            ProcedureUpdate(
                agency_chain=["PHU-XUAN"],
                processing_days=3,
                return_channels=["desk", "online", "post"],
                documents=[RequiredDocument(code="application_form", name_vi="Tờ khai")],
                fee_schedule=FeeSchedule(
                    cases=[
                        FeeCase(
                            code="case_1",
                            name_vi="Nộp trực tuyến",
                            collection="first",
                            default=True,
                            lines=[
                                FeeLine(code="le_phi", kind="charge", name_vi="Lệ phí", amount_vnd=50_000)
                            ],
                        ),
                        FeeCase(
                            code="exempt_groups",
                            name_vi="Miễn",
                            collection="exempt",
                            lines=[FeeLine(code="le_phi", kind="charge", name_vi="Lệ phí", amount_vnd=0)],
                        ),
                    ]
                ),
            ),
            uuid.uuid4(),
        )
    return PROCEDURE


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


async def _submitted(client: Any, headers: dict[str, str], fee_case: str) -> str:
    created = await client.post(
        "/api/v1/me/dossiers", json={"procedure_code": PROCEDURE, "fee_case": fee_case}, headers=headers
    )
    assert created.status_code == 201, created.text
    dossier_id: str = created.json()["id"]
    attached = await client.post(
        f"/api/v1/me/dossiers/{dossier_id}/documents",
        files={"file": ("to-khai.pdf", PDF + uuid.uuid4().bytes, "application/pdf")},
        data={"requirement": "application_form"},
        headers=headers,
    )
    assert attached.status_code == 200, attached.text
    submitted = await client.post(f"/api/v1/me/dossiers/{dossier_id}/submit", headers=headers)
    assert submitted.status_code == 200, submitted.text
    return dossier_id


async def _officer(client: Any, officer: Any, dossier_id: str, action: str, **kwargs: Any) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/officer/dossiers/{dossier_id}/{action}", headers=officer.headers, **kwargs
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _approved(client: Any, citizen: Any, officer: Any, result: bytes) -> str:
    """An exempt dossier taken to ``releasing`` with ``result`` as the officer's file."""
    dossier_id = await _submitted(client, citizen.headers, "exempt_groups")
    await _officer(client, officer, dossier_id, "accept", json={})
    await _officer(client, officer, dossier_id, "process", json={})
    approved = await _officer(
        client, officer, dossier_id, "approve", files={"file": ("quyet-dinh.pdf", result, "application/pdf")}
    )
    assert approved["status"] == "releasing"
    return dossier_id


async def test_signed_result_verifies_and_fails_for_a_changed_byte_field_or_revoked_key(
    client: Any, procedure: str, settings: Settings
) -> None:
    """Must-show: the result is signed by the agency over its hash and metadata; anyone verifies it (QR
    address or file); a changed byte, a changed metadata field and a revoked key each fail."""
    citizen = await make_user(client, full_name="Trần Thị Bình")
    officer = await make_user(client, roles=("officer",), agency_id="PHU-XUAN")
    admin = await make_user(client, roles=("admin",), duties=("superadmin",))
    dossier_id = await _approved(client, citizen, officer, PDF + b"giay-chung-nhan")

    view = (await client.get(f"/api/v1/me/dossiers/{dossier_id}", headers=citizen.headers)).json()
    assert [e["action"] for e in view["timeline"]][-2:] == ["approve", "result_signed"]
    downloaded = await client.get(f"/api/v1/me/dossiers/{dossier_id}/result", headers=citizen.headers)
    assert downloaded.status_code == 200, downloaded.text
    pdf = downloaded.content
    assert pdf.startswith(b"%PDF")
    assert b"/EmbeddedFile" in pdf
    result_id = downloaded.headers["x-result-id"]
    # No channel was chosen: online. Downloading returned the result.
    done = (await client.get(f"/api/v1/me/dossiers/{dossier_id}", headers=citizen.headers)).json()
    assert done["status"] == "done"
    assert done["timeline"][-1]["action"] == "deliver"

    # Stored in the citizen's document store, reusable in a new dossier.
    mine = (await client.get("/api/v1/me/documents", headers=citizen.headers)).json()
    assert view["result_document_id"] in [d["id"] for d in mine]
    draft = await client.post(
        "/api/v1/me/dossiers", json={"procedure_code": PROCEDURE}, headers=citizen.headers
    )
    reused = await client.post(
        f"/api/v1/me/dossiers/{draft.json()['id']}/documents/reuse",
        json={"document_id": view["result_document_id"], "requirement": "application_form"},
        headers=citizen.headers,
    )
    assert reused.status_code == 200, reused.text

    # The QR code's address, no sign-in.
    public = await client.get(f"/api/v1/results/{result_id}")
    assert public.status_code == 200, public.text
    record = public.json()
    assert record["valid"] is True
    assert record["verdict"] == "valid"
    assert record["holder"] == "Trần Thị Bình"
    assert record["dossier_code"] == done["code"]
    assert record["procedure_code"] == PROCEDURE
    assert record["agency_code"] == "PHU-XUAN"
    keys = (await client.get("/api/v1/results/keys/PHU-XUAN")).json()
    assert [k["public_key"] for k in keys if k["key_id"] == record["key_id"]] == [record["public_key"]]
    other_agency = (await client.get("/api/v1/results/keys/THUAN-HOA")).json()
    assert other_agency[0]["public_key"] != keys[0]["public_key"]  # a key per agency

    async def check(content: bytes, with_id: bool = True) -> dict[str, Any]:
        response = await client.post(
            "/api/v1/results/verify",
            files={"file": ("kq.pdf", content, "application/pdf")},
            data={"result_id": result_id} if with_id else {},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    assert (await check(pdf))["valid"] is True
    assert (await check(pdf, with_id=False))["verdict"] == "valid"  # found by its hash
    changed = bytearray(pdf)
    changed[len(changed) // 2] ^= 0x01
    assert (await check(bytes(changed)))["verdict"] == "document_changed"
    assert (await check(bytes(changed), with_id=False))["verdict"] == "unknown_document"

    # A changed metadata field: offline, and in the stored record.
    forged = copy.deepcopy(record["content"])
    forged["holder"] = "Lê Văn Giả"
    ring = settings.result_ring
    assert (
        verify_result(ring, record["content"], record["key_id"], record["signature"], revoked=False)
        == "valid"
    )
    assert (
        verify_result(ring, forged, record["key_id"], record["signature"], revoked=False)
        == "signature_invalid"
    )

    async def tamper(field: str, value: str) -> None:
        db: Database = client.app.state.db
        async with db.transaction() as session:
            row = await session.get(SignedResult, uuid.UUID(result_id))
            assert row is not None
            original = dict(row.content)
            await session.execute(
                update(SignedResult)
                .where(SignedResult.id == row.id)
                .values(content={**original, field: value})
            )

    await in_app(client, lambda: tamper("dossier_code", "PHU-XUAN-261123-9999"))
    tampered = (await client.get(f"/api/v1/results/{result_id}")).json()
    assert (tampered["valid"], tampered["verdict"]) == (False, "signature_invalid")
    await in_app(client, lambda: tamper("dossier_code", done["code"]))
    assert (await client.get(f"/api/v1/results/{result_id}")).json()["valid"] is True

    # Revocation: only a superadmin; then the agency's results no longer verify and it cannot sign.
    path = f"/api/v1/admin/results/keys/PHU-XUAN/{record['key_id']}/revoke"
    refused = await client.post(path, json={"reason": "lộ khóa"}, headers={**officer.headers, **_key()})
    assert refused.status_code == 403
    headers = {**admin.headers, **_key()}
    revoked = await client.post(path, json={"reason": "Khóa bị lộ"}, headers=headers)
    assert revoked.status_code == 200, revoked.text
    replay = await client.post(path, json={"reason": "Khóa bị lộ"}, headers=headers)
    assert replay.json() == revoked.json()
    assert replay.headers.get("idempotent-replayed") == "true"
    after = (await client.get(f"/api/v1/results/{result_id}")).json()
    assert (after["valid"], after["verdict"]) == (False, "key_revoked")
    assert (await check(pdf))["verdict"] == "key_revoked"
    thuan_hoa = (await client.get("/api/v1/results/keys/THUAN-HOA")).json()
    assert thuan_hoa[0]["revoked_at"] is None  # revoked for one agency only
    next_id = await _submitted(client, citizen.headers, "exempt_groups")
    await _officer(client, officer, next_id, "accept", json={})
    await _officer(client, officer, next_id, "process", json={})
    blocked = await client.post(
        f"/api/v1/officer/dossiers/{next_id}/approve",
        files={"file": ("kq.pdf", PDF + b"2", "application/pdf")},
        headers=officer.headers,
    )
    assert_problem(blocked, 409, "result_key_revoked")
    still = (await client.get(f"/api/v1/me/dossiers/{next_id}", headers=citizen.headers)).json()
    assert still["status"] == "processing"  # the approval rolled back with the signature


async def test_postage_paid_with_the_fee_in_one_tap_then_posted_delivered_and_rated(
    client: Any, procedure: str, settings: Settings
) -> None:
    """Post: the postage bill sits next to the fee and both are paid in one ``POST /api/v1/payments``; the
    poll posts the released result and follows it to delivery (releasing → done); an apology with a new
    date reaches the inbox and the timeline; the citizen rates once."""
    from tests.wallet.helpers import fund

    citizen = await make_user(client)
    stranger = await make_user(client)
    officer = await make_user(client, roles=("officer",), agency_id="PHU-XUAN")
    elsewhere = await make_user(client, roles=("officer",), agency_id="THUAN-HOA")
    await fund(client, citizen.user_id, 500_000)
    dossier_id = await _submitted(client, citizen.headers, "case_1")
    accepted = await _officer(client, officer, dossier_id, "accept", json={})
    assert accepted["status"] == "paying"

    choice = {"channel": "post", "recipient_name": "Nguyễn Văn An", "address": "12 Lê Lợi, Phú Xuân, Huế"}
    no_address = await client.post(
        f"/api/v1/me/dossiers/{dossier_id}/return",
        json={"channel": "post"},
        headers={**citizen.headers, **_key()},
    )
    assert_problem(no_address, 422, "validation_failed")
    not_mine = await client.post(
        f"/api/v1/me/dossiers/{dossier_id}/return", json=choice, headers={**stranger.headers, **_key()}
    )
    assert_problem(not_mine, 404, "not_found")
    chosen = await client.post(
        f"/api/v1/me/dossiers/{dossier_id}/return", json=choice, headers={**citizen.headers, **_key()}
    )
    assert chosen.status_code == 200, chosen.text
    postage_bill = chosen.json()["postage_bill_id"]
    assert chosen.json()["postage_amount"] == settings.result_postage_vnd == 30_000
    bills = (await client.get("/api/v1/me/bills", headers=citizen.headers)).json()
    unpaid = [b["id"] for group in ("overdue", "due_soon", "upcoming") for b in bills[group]["items"]]
    assert {accepted["fee_bill_id"], postage_bill} <= set(unpaid)
    assert bills["unpaid_total"] == 80_000

    paid = await client.post(
        "/api/v1/payments",
        json={"items": [{"bill_id": accepted["fee_bill_id"]}, {"bill_id": postage_bill}], "pin": DEFAULT_PIN},
        headers={**citizen.headers, **_key()},
    )
    assert paid.status_code == 201, paid.text
    assert paid.json()["total"] == 80_000
    ret = (await client.get(f"/api/v1/me/dossiers/{dossier_id}/return", headers=citizen.headers)).json()
    assert ret["postage_paid_at"] is not None
    assert ret["state"] == "chosen"
    switched = await client.post(
        f"/api/v1/me/dossiers/{dossier_id}/return",
        json={"channel": "desk"},
        headers={**citizen.headers, **_key()},
    )
    assert_problem(switched, 409, "return_locked")  # postage paid: the post it is

    # Late: the officer apologises with a new date after the due date.
    dossier = (await client.get(f"/api/v1/me/dossiers/{dossier_id}", headers=citizen.headers)).json()
    assert dossier["status"] == "new"
    due_day = datetime.fromisoformat(dossier["due_at"]).astimezone(HUE).date()
    too_early = await client.post(
        f"/api/v1/officer/dossiers/{dossier_id}/apology",
        json={"new_due_date": due_day.isoformat(), "reason": "Chờ xác minh"},
        headers={**officer.headers, **_key()},
    )
    assert_problem(too_early, 422, "validation_failed")
    new_day = due_day + timedelta(days=5)
    other = await client.post(
        f"/api/v1/officer/dossiers/{dossier_id}/apology",
        json={"new_due_date": new_day.isoformat(), "reason": "Chờ xác minh"},
        headers={**elsewhere.headers, **_key()},
    )
    assert_problem(other, 404, "not_found")
    apology = await client.post(
        f"/api/v1/officer/dossiers/{dossier_id}/apology",
        json={"new_due_date": new_day.isoformat(), "reason": "Chờ xác minh của cơ quan liên quan"},
        headers={**officer.headers, **_key()},
    )
    assert apology.status_code == 201, apology.text
    promised = datetime.fromisoformat(apology.json()["new_due_at"]).astimezone(HUE)
    assert (promised.date(), promised.hour) == (new_day, 17)
    listed_apologies = await client.get(
        f"/api/v1/me/dossiers/{dossier_id}/apologies", headers=citizen.headers
    )
    assert [a["id"] for a in listed_apologies.json()] == [apology.json()["id"]]
    inbox = (await client.get("/api/v1/me/inbox/", headers=citizen.headers)).json()["items"]
    assert any(n["kind"] == "dossier.apology" and new_day.strftime("%d/%m/%Y") in n["body_vi"] for n in inbox)
    dossier = (await client.get(f"/api/v1/me/dossiers/{dossier_id}", headers=citizen.headers)).json()
    assert dossier["timeline"][-1]["action"] == "apology"
    assert dossier["due_at"] is not None
    assert datetime.fromisoformat(dossier["due_at"]).date() <= due_day

    too_soon = await client.post(
        f"/api/v1/me/dossiers/{dossier_id}/rating",
        json={"scores": SCORES},
        headers={**citizen.headers, **_key()},
    )
    assert_problem(too_soon, 409, "rating_not_open")

    await _officer(client, officer, dossier_id, "process", json={})
    await _officer(
        client, officer, dossier_id, "approve", files={"file": ("kq.pdf", PDF + b"kq", "application/pdf")}
    )
    db: Database = client.app.state.db
    sandbox = get_postal_service(settings)
    assert isinstance(sandbox, SandboxPostal)
    assert await in_app(client, lambda: poll_postal(db, settings)) == {
        "dispatched": 1,
        "delivered": 0,
        "closed": 0,
    }
    posted = (await client.get(f"/api/v1/me/dossiers/{dossier_id}/return", headers=citizen.headers)).json()
    assert posted["state"] == "dispatched"
    tracking = posted["tracking_number"]
    assert tracking.startswith("EB")
    assert tracking.endswith("VN")
    seen_by_officer = await client.get(
        f"/api/v1/officer/dossiers/{dossier_id}/return", headers=officer.headers
    )
    assert seen_by_officer.json()["tracking_number"] == tracking
    collect = await client.post(
        f"/api/v1/officer/dossiers/{dossier_id}/collected", headers={**officer.headers, **_key()}
    )
    assert_problem(collect, 409, "return_locked")  # it is with the post
    assert await in_app(client, lambda: poll_postal(db, settings)) == {
        "dispatched": 0,
        "delivered": 0,
        "closed": 0,
    }
    # The operator's webhook: signed, deduplicated by event id.
    event = {
        "event_id": "vnpost-evt-1",
        "tracking_number": tracking,
        "code": "in_transit",
        "description": "Đến bưu cục Huế",
        "at": "2026-11-23T03:00:00+00:00",
    }
    body = json.dumps(event).encode()
    json_type = {"Content-Type": "application/json"}
    forged = await client.post(
        "/api/v1/webhooks/postal", content=body, headers={**json_type, "X-Postal-Signature": "dev1=00"}
    )
    assert_problem(forged, 400, "webhook_signature_invalid")
    signed = {**json_type, "X-Postal-Signature": webhook_signature(settings.webhook_keys, body)}
    first = await client.post("/api/v1/webhooks/postal", content=body, headers=signed)
    assert first.status_code == 200, first.text
    assert first.json() == {"duplicate": False}
    again = await client.post("/api/v1/webhooks/postal", content=body, headers=signed)
    assert again.json() == {"duplicate": True}
    travelling = (
        await client.get(f"/api/v1/me/dossiers/{dossier_id}/return", headers=citizen.headers)
    ).json()
    assert [e["description"] for e in travelling["events"]].count("Đến bưu cục Huế") == 1
    sandbox.deliver(tracking)
    assert await in_app(client, lambda: poll_postal(db, settings)) == {
        "dispatched": 0,
        "delivered": 1,
        "closed": 0,
    }
    final = (await client.get(f"/api/v1/me/dossiers/{dossier_id}", headers=citizen.headers)).json()
    assert final["status"] == "done"
    assert [e["action"] for e in final["timeline"]][-3:] == ["result_signed", "result_posted", "deliver"]
    delivered = (await client.get(f"/api/v1/me/dossiers/{dossier_id}/return", headers=citizen.headers)).json()
    assert delivered["state"] == "delivered"
    assert [e["code"] for e in delivered["events"]][-1] == "delivered"

    # Satisfaction: nine criteria, once.
    criteria = (await client.get("/api/v1/results/satisfaction-criteria")).json()
    assert sorted(c["code"] for c in criteria) == sorted(SCORES)
    partial = {k: v for k, v in SCORES.items() if k != "trips"}
    missing = await client.post(
        f"/api/v1/me/dossiers/{dossier_id}/rating",
        json={"scores": partial},
        headers={**citizen.headers, **_key()},
    )
    assert_problem(missing, 422, "validation_failed")
    out_of_range = await client.post(
        f"/api/v1/me/dossiers/{dossier_id}/rating",
        json={"scores": {**SCORES, "trips": 3}},
        headers={**citizen.headers, **_key()},
    )
    assert_problem(out_of_range, 422, "validation_failed")
    key = _key()
    rated = await client.post(
        f"/api/v1/me/dossiers/{dossier_id}/rating",
        json={"scores": SCORES, "comment": "Nhanh, tận tình"},
        headers={**citizen.headers, **key},
    )
    assert rated.status_code == 201, rated.text
    assert (rated.json()["total"], rated.json()["max_total"]) == (15, 18)
    replay = await client.post(
        f"/api/v1/me/dossiers/{dossier_id}/rating",
        json={"scores": SCORES, "comment": "Nhanh, tận tình"},
        headers={**citizen.headers, **key},
    )
    assert replay.status_code == 201
    assert replay.json() == rated.json()
    twice = await client.post(
        f"/api/v1/me/dossiers/{dossier_id}/rating",
        json={"scores": SCORES},
        headers={**citizen.headers, **_key()},
    )
    assert_problem(twice, 409, "already_rated")
    assert (
        await client.get(f"/api/v1/me/dossiers/{dossier_id}/rating", headers=stranger.headers)
    ).status_code == 404


async def test_result_collected_at_the_desk(client: Any, procedure: str, settings: Settings) -> None:
    """Desk: only the holding agency's officer hands it over (releasing → done), once. A dossier withdrawn
    after its postage was paid gets the postage back in the wallet."""
    from tests.wallet.helpers import fund

    citizen = await make_user(client)
    officer = await make_user(client, roles=("officer",), agency_id="PHU-XUAN")
    elsewhere = await make_user(client, roles=("officer",), agency_id="THUAN-HOA")
    dossier_id = await _submitted(client, citizen.headers, "exempt_groups")
    desk = await client.post(
        f"/api/v1/me/dossiers/{dossier_id}/return",
        json={"channel": "desk"},
        headers={**citizen.headers, **_key()},
    )
    assert desk.status_code == 200
    assert desk.json()["postage_bill_id"] is None
    early = await client.post(
        f"/api/v1/officer/dossiers/{dossier_id}/collected", headers={**officer.headers, **_key()}
    )
    assert_problem(early, 409, "illegal_transition")
    await _officer(client, officer, dossier_id, "accept", json={})
    await _officer(client, officer, dossier_id, "process", json={})
    await _officer(
        client, officer, dossier_id, "approve", files={"file": ("kq.pdf", PDF + b"d", "application/pdf")}
    )
    # Downloading a desk result keeps the dossier releasing until the hand-over.
    got = await client.get(f"/api/v1/me/dossiers/{dossier_id}/result", headers=citizen.headers)
    assert got.status_code == 200
    assert (await client.get(f"/api/v1/me/dossiers/{dossier_id}", headers=citizen.headers)).json()[
        "status"
    ] == "releasing"
    foreign = await client.post(
        f"/api/v1/officer/dossiers/{dossier_id}/collected", headers={**elsewhere.headers, **_key()}
    )
    assert_problem(foreign, 404, "not_found")
    collected = await client.post(
        f"/api/v1/officer/dossiers/{dossier_id}/collected", headers={**officer.headers, **_key()}
    )
    assert collected.status_code == 200, collected.text
    assert collected.json()["state"] == "delivered"
    assert collected.json()["channel"] == "desk"
    view = (await client.get(f"/api/v1/me/dossiers/{dossier_id}", headers=citizen.headers)).json()
    assert view["status"] == "done"
    assert view["timeline"][-1]["action"] == "deliver"
    assert view["timeline"][-1]["actor_role"] == "officer"
    again = await client.post(
        f"/api/v1/officer/dossiers/{dossier_id}/collected", headers={**officer.headers, **_key()}
    )
    assert_problem(again, 409, "illegal_transition")

    # Withdrawn after paying the postage: the poll refunds it to the wallet, once.
    await fund(client, citizen.user_id, 100_000)
    withdrawn_id = await _submitted(client, citizen.headers, "exempt_groups")
    choice = {"channel": "post", "recipient_name": "Nguyễn Văn An", "address": "12 Lê Lợi, Phú Xuân, Huế"}
    posted = await client.post(
        f"/api/v1/me/dossiers/{withdrawn_id}/return", json=choice, headers={**citizen.headers, **_key()}
    )
    postage = posted.json()["postage_bill_id"]
    paid = await client.post(
        "/api/v1/payments",
        json={"items": [{"bill_id": postage}], "pin": DEFAULT_PIN},
        headers={**citizen.headers, **_key()},
    )
    assert paid.status_code == 201, paid.text
    balance = (await client.get("/api/v1/me/wallet", headers=citizen.headers)).json()["balance"]
    withdrawn = await client.post(
        f"/api/v1/me/dossiers/{withdrawn_id}/withdraw", json={}, headers=citizen.headers
    )
    assert withdrawn.status_code == 200, withdrawn.text
    db: Database = client.app.state.db
    assert (await in_app(client, lambda: poll_postal(db, settings)))["closed"] == 1
    assert (await in_app(client, lambda: poll_postal(db, settings)))["closed"] == 0
    after = (await client.get("/api/v1/me/wallet", headers=citizen.headers)).json()["balance"]
    assert after == balance + 30_000
    bill = (await client.get(f"/api/v1/me/bills/{postage}", headers=citizen.headers)).json()
    assert bill["status"] == "refunded"
    ret = (await client.get(f"/api/v1/me/dossiers/{withdrawn_id}/return", headers=citizen.headers)).json()
    assert ret["state"] == "cancelled"


def test_rotation_keeps_old_results_verifiable() -> None:
    """Key ring rotation: a new key in front signs; results of the old key still verify while it stays."""
    from app.core.settings import KeyRing
    from app.services.signing import result_content, sign_result

    old = KeyRing.parse("RESULT_KEYS", f"k1:{'a' * 40}")
    rotated = KeyRing.parse("RESULT_KEYS", f"k2:{'b' * 40},k1:{'a' * 40}")
    content = result_content(
        result_id=str(uuid.uuid4()),
        sha256="0" * 64,
        dossier_code="PHU-XUAN-261123-0001",
        procedure_code=PROCEDURE,
        procedure_name="Thủ tục",
        holder="A",
        agency_code="PHU-XUAN",
        agency_name="UBND phường Phú Xuân",
        issued_at=datetime(2026, 11, 23, 9, tzinfo=HUE),
    )
    kid, signature = sign_result(old, content)
    assert verify_result(rotated, content, kid, signature, revoked=False) == "valid"
    assert sign_result(rotated, content)[0] == "k2"
    other_agency = {**content, "agency_code": "THUAN-HOA"}
    assert verify_result(rotated, other_agency, kid, signature, revoked=False) == "signature_invalid"
    assert content["issued_on"] == date(2026, 11, 23).isoformat()


async def test_two_ratings_at_once_keep_one(
    app: Any, procedure: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One rating per dossier under a forced overlap: both requests have read "not rated yet" before either
    writes (a barrier after the dossier is loaded); the unique constraint leaves one 201 and one 409. On
    SQLite the writers are serialised, so the barrier times out and the second sees the first's rating."""
    import asyncio

    import httpx

    from app.services import satisfaction
    from app.services.result_models import DossierRating

    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    lifespan = asyncio.get_running_loop().create_task(run_lifespan())
    await asyncio.wait_for(started.wait(), timeout=10)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as http:
            citizen = await make_user(app)
            officer = await make_user(app, roles=("officer",), agency_id="PHU-XUAN")
            dossier_id = await _approved(http, citizen, officer, PDF + b"r")
            barrier = asyncio.Barrier(2)
            original = satisfaction._mine

            met: list[bool] = []

            async def overlapping(*args: Any) -> Any:
                dossier = await original(*args)
                try:
                    await asyncio.wait_for(barrier.wait(), timeout=2)
                    met.append(True)
                except TimeoutError:
                    met.append(False)
                return dossier

            monkeypatch.setattr(satisfaction, "_mine", overlapping)
            answers = await asyncio.gather(
                *(
                    http.post(
                        f"/api/v1/me/dossiers/{dossier_id}/rating",
                        json={"scores": SCORES},
                        headers={**citizen.headers, **_key()},
                    )
                    for _ in range(2)
                )
            )
            assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
            assert next(a for a in answers if a.status_code == 409).json()["code"] == "already_rated"

            async def count() -> int:
                db: Database = app.state.db
                async with db.read() as session:
                    return len(list(await session.scalars(select(DossierRating.id))))

            assert await in_app(app, count) == 1
            if not settings.is_sqlite:
                assert met == [True, True]  # both had read "not rated" before either wrote
    finally:
        stop.set()
        await asyncio.wait_for(lifespan, timeout=10)
