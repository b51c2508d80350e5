"""A citizen looks up any household's bills, saves codes with nicknames, and sees one inbox of bills.

Isolation: a citizen never sees another citizen's saved codes or the bills reached only through them (404).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import respx
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update

from app.bills import service
from app.bills.clock import local_today
from app.bills.connectors import PresentedBill
from app.bills.models import Bill, Biller
from app.core.db import Database, utcnow
from app.core.settings import Settings
from tests.bills.conftest import HTTP_BILLER_URL, Citizen, headers_for
from tests.conftest import assert_problem

EVN = "/api/v1/billers/EVN_CPC_HUE/customers"
VNPT_FETCH = f"{HTTP_BILLER_URL}/customers/HUE123456/bills"


def is_masked(name: str) -> bool:
    return all(len(word) == 1 or set(word[1:]) == {"*"} for word in name.split())


# --- lookup by biller + customer code ------------------------------------------------------------------


async def test_lookup_shows_only_what_is_needed_to_pay(
    client: AsyncTestClient[Litestar], settings: Settings, billers: dict[str, Any]
) -> None:
    response = await client.get(f"{EVN}/pc03 dd 0123456/bills", headers=Citizen(settings).headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["customer_code"] == "PC03DD0123456"
    assert body["biller"] == {
        "code": "EVN_CPC_HUE",
        "name": "Điện lực Huế (EVNCPC)",
        "category": "electricity",
    }
    assert body["amount_rule"] == "exact"
    assert is_masked(body["customer_name_masked"])
    assert body["bills"], "the sandbox household owes its May electricity"
    assert body["bills"][-1]["period"] == "2025-05"
    for bill in body["bills"]:
        assert set(bill) == {"id", "period", "amount", "due_date"}
    assert body["total"] == sum(b["amount"] for b in body["bills"])


async def test_looking_up_twice_stores_each_bill_once(
    client: AsyncTestClient[Litestar], settings: Settings, billers: dict[str, Any], db: Database
) -> None:
    citizen = Citizen(settings)
    first = (await client.get(f"{EVN}/PC03DD0123456/bills", headers=citizen.headers)).json()
    again = (await client.get(f"{EVN}/PC03DD0123456/bills", headers=citizen.headers)).json()
    assert first["bills"] == again["bills"]
    async with db.read() as session:
        stored = (await session.scalars(select(Bill).where(Bill.customer_code == "PC03DD0123456"))).all()
    assert len(stored) == len(first["bills"])


LOOKUP_REFUSALS = [
    (f"{EVN}/PC05DD0123456/bills", 422, "invalid_customer_code"),
    (f"{EVN}/PC03DD0123404/bills", 404, "customer_code_not_found"),
    (f"{EVN}/PC03DD0123503/bills", 503, "biller_unavailable"),
    ("/api/v1/billers/NOBODY/customers/PC03DD0123456/bills", 404, "biller_not_found"),
]


async def test_lookup_refusals(
    client: AsyncTestClient[Litestar], settings: Settings, billers: dict[str, Any]
) -> None:
    citizen = Citizen(settings)
    for path, status, code in LOOKUP_REFUSALS:
        assert_problem(await client.get(path, headers=citizen.headers), status, code)


async def test_lookup_needs_a_signed_in_citizen(
    client: AsyncTestClient[Litestar], settings: Settings, billers: dict[str, Any]
) -> None:
    assert_problem(await client.get(f"{EVN}/PC03DD0123456/bills"), 401, "unauthenticated")
    merchant = headers_for(settings, roles=("merchant_cashier",))
    assert_problem(await client.get(f"{EVN}/PC03DD0123456/bills", headers=merchant), 403, "forbidden")


async def test_http_biller_found_then_paid_elsewhere(
    client: AsyncTestClient[Litestar], settings: Settings, billers: dict[str, Any], db: Database
) -> None:
    citizen = Citizen(settings)
    url = "/api/v1/billers/VNPT_HUE/customers/HUE123456/bills"
    async with respx.mock(assert_all_called=False) as biller:
        route = biller.get(VNPT_FETCH)
        first_answer = {
            "customer_name": "Phan Văn Long",
            "bills": [
                {"bill_id": "VNPT-06", "period": "2025-06", "amount": 165000, "due_date": "2025-07-10"}
            ],
        }
        route.respond(200, json=first_answer)
        found = (await client.get(url, headers=citizen.headers)).json()
        assert route.calls.last.request.headers["X-Api-Key"] == "secret-key"
        assert [(b["period"], b["amount"]) for b in found["bills"]] == [("2025-06", 165000)]
        assert found["customer_name_masked"] == "P*** V** L***"
        assert found["amount_rule"] == "at_least"

        route.respond(200, json={"customer_name": "Phan Văn Long", "bills": []})
        assert (await client.get(url, headers=citizen.headers)).json()["bills"] == []
        async with db.read() as session:
            status = await session.scalar(select(Bill.status).where(Bill.external_id == "VNPT-06"))
        assert status == "cancelled", "a bill the biller no longer presents is no longer payable"

        route.respond(200, json=first_answer)
        again = (await client.get(url, headers=citizen.headers)).json()
        assert [b["id"] for b in again["bills"]] == [b["id"] for b in found["bills"]], (
            "presented again: payable"
        )


HTTP_FAILURES = [
    (httpx.Response(404), 404, "customer_code_not_found"),
    (httpx.ReadTimeout("slow"), 503, "biller_unavailable"),
    (httpx.Response(500), 503, "biller_unavailable"),
    (httpx.Response(200, text="<html>"), 502, "biller_error"),
]


async def test_http_biller_failures_are_clear_problems(
    client: AsyncTestClient[Litestar], settings: Settings, billers: dict[str, Any]
) -> None:
    citizen = Citizen(settings)
    for answer, status, code in HTTP_FAILURES:
        async with respx.mock(assert_all_called=False) as biller:
            biller.get(VNPT_FETCH).mock(side_effect=[answer] * 3)
            response = await client.get(
                "/api/v1/billers/VNPT_HUE/customers/HUE123456/bills", headers=citizen.headers
            )
        assert_problem(response, status, code)


async def test_batch_biller_lookup_reads_what_was_imported(
    client: AsyncTestClient[Litestar], settings: Settings, billers: dict[str, Any], db: Database
) -> None:
    citizen = Citizen(settings)
    url = "/api/v1/billers/HEPCO_BATCH/customers/{}/bills"
    assert_problem(
        await client.get(url.format("VS00000001"), headers=citizen.headers), 404, "customer_code_not_found"
    )
    await _present(db, billers["HEPCO_BATCH"], "VS00000001", [("H-1", 30000, 5)], name="Hồ Thị Mai")
    body = (await client.get(url.format("VS00000001"), headers=citizen.headers)).json()
    assert [b["amount"] for b in body["bills"]] == [30000]
    assert body["customer_name_masked"] == "H* T** M**"


# --- saved customer codes ------------------------------------------------------------------------------


async def test_save_rename_list_and_forget_a_code(
    client: AsyncTestClient[Litestar], settings: Settings, billers: dict[str, Any]
) -> None:
    citizen = Citizen(settings)
    url = "/api/v1/me/customer-codes/EVN_CPC_HUE/PC03HH0765432"
    saved = await client.put(url, json={"nickname": "Nhà bố mẹ"}, headers=citizen.headers)
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["nickname"] == "Nhà bố mẹ"
    assert body["biller"]["code"] == "EVN_CPC_HUE"
    assert body["unpaid_count"] >= 1
    assert body["unpaid_total"] > 0

    renamed = (await client.put(url, json={"nickname": "Nhà ông bà"}, headers=citizen.headers)).json()
    assert renamed["id"] == body["id"]
    listed = (await client.get("/api/v1/me/customer-codes", headers=citizen.headers)).json()
    assert [(c["customer_code"], c["nickname"]) for c in listed] == [("PC03HH0765432", "Nhà ông bà")]

    gone = await client.delete(f"/api/v1/me/customer-codes/{body['id']}", headers=citizen.headers)
    assert gone.status_code == 204
    assert (await client.get("/api/v1/me/customer-codes", headers=citizen.headers)).json() == []
    again = await client.delete(f"/api/v1/me/customer-codes/{body['id']}", headers=citizen.headers)
    assert_problem(again, 404, "saved_code_not_found")


UNSAVABLE = [
    ("EVN_CPC_HUE/PC03DD0123404", {"nickname": "Nhà"}, 404, "customer_code_not_found"),
    ("EVN_CPC_HUE/12345", {"nickname": "Nhà"}, 422, "invalid_customer_code"),
    ("NOBODY/PC03DD0123456", {"nickname": "Nhà"}, 404, "biller_not_found"),
    ("EVN_CPC_HUE/PC03DD0123456", {"nickname": ""}, 422, "validation_failed"),
    ("EVN_CPC_HUE/PC03DD0123456", {"nickname": "x" * 61}, 422, "validation_failed"),
    ("EVN_CPC_HUE/PC03DD0123456", {"nickname": "Nhà", "user_id": "x"}, 422, "validation_failed"),
]


async def test_codes_that_cannot_be_saved(
    client: AsyncTestClient[Litestar], settings: Settings, billers: dict[str, Any]
) -> None:
    citizen = Citizen(settings)
    for path, body, status, code in UNSAVABLE:
        response = await client.put(f"/api/v1/me/customer-codes/{path}", json=body, headers=citizen.headers)
        assert_problem(response, status, code)
    assert (await client.get("/api/v1/me/customer-codes", headers=citizen.headers)).json() == []


async def test_a_batch_code_can_be_saved_before_its_first_bill(
    client: AsyncTestClient[Litestar], settings: Settings, billers: dict[str, Any]
) -> None:
    citizen = Citizen(settings)
    response = await client.put(
        "/api/v1/me/customer-codes/HEPCO_BATCH/VS11112222", json={"nickname": "Rác"}, headers=citizen.headers
    )
    assert response.status_code == 200
    assert response.json()["unpaid_count"] == 0


async def test_me_routes_need_a_citizen(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    officer = headers_for(settings, roles=("officer",))
    for method, url in (
        ("GET", "/api/v1/me/customer-codes"),
        ("GET", "/api/v1/me/bills"),
        ("GET", f"/api/v1/me/bills/{uuid.uuid4()}"),
        ("DELETE", f"/api/v1/me/customer-codes/{uuid.uuid4()}"),
        ("PUT", "/api/v1/me/customer-codes/EVN_CPC_HUE/PC03DD0123456"),
    ):
        body = {"nickname": "x"} if method == "PUT" else None
        assert_problem(await client.request(method, url, json=body), 401, "unauthenticated")
        assert_problem(await client.request(method, url, json=body, headers=officer), 403, "forbidden")


# --- the inbox and one bill ----------------------------------------------------------------------------


async def _present(
    db: Database,
    biller: Biller,
    code: str,
    bills: list[tuple[str, int, int | None]],
    *,
    name: str = "Nguyễn Văn An",
    owner: uuid.UUID | None = None,
) -> None:
    """Store bills (external id, amount, days from today to the due date) as the biller would present them."""
    today = local_today()
    presented = [
        PresentedBill(
            external_id=external_id,
            period="2026-10",
            amount=amount,
            due_date=None if days is None else today + timedelta(days=days),
            description=f"Hóa đơn {external_id}",
        )
        for external_id, amount, days in bills
    ]
    async with db.transaction() as session:
        await service.store_presented(
            session, biller, code, presented, customer_name=name, source="batch", owner_user_id=owner
        )


async def _set_status(
    db: Database, external_id: str, status: str, *, paid_days_ago: int | None = None
) -> None:
    paid_at = None if paid_days_ago is None else utcnow() - timedelta(days=paid_days_ago)
    async with db.transaction() as session:
        await session.execute(
            update(Bill).where(Bill.external_id == external_id).values(status=status, paid_at=paid_at)
        )


async def test_inbox_groups_bills_with_totals(
    client: AsyncTestClient[Litestar], settings: Settings, billers: dict[str, Any], db: Database
) -> None:
    citizen = Citizen(settings)
    await client.put(
        "/api/v1/me/customer-codes/HEPCO_BATCH/VS00000042",
        json={"nickname": "Nhà mình"},
        headers=citizen.headers,
    )
    await _present(
        db,
        billers["HEPCO_BATCH"],
        "VS00000042",
        [
            ("late", 30000, -3),
            ("today", 25000, 0),
            ("soon", 20000, 7),
            ("later", 40000, 8),
            ("undated", 10000, None),
            ("paying", 15000, 1),
            ("paid", 35000, -40),
            ("paid-long-ago", 45000, -300),
            ("withdrawn", 50000, 2),
        ],
    )
    await _set_status(db, "paying", "pending")
    await _set_status(db, "paid", "paid", paid_days_ago=2)
    await _set_status(db, "paid-long-ago", "paid", paid_days_ago=200)
    await _set_status(db, "withdrawn", "cancelled")

    inbox = (await client.get("/api/v1/me/bills", headers=citizen.headers)).json()

    def section(name: str) -> list[str]:
        return [item["description"].removeprefix("Hóa đơn ") for item in inbox[name]["items"]]

    assert section("overdue") == ["late"]
    assert section("due_soon") == ["today", "soon"]
    assert section("upcoming") == ["later", "undated"]
    assert section("pending") == ["paying"]
    assert section("paid") == ["paid"]
    assert inbox["overdue"]["total"] == 30000
    assert inbox["due_soon"] == {**inbox["due_soon"], "count": 2, "total": 45000}
    assert inbox["unpaid_count"] == 5
    assert inbox["unpaid_total"] == 30000 + 25000 + 20000 + 40000 + 10000
    assert inbox["as_of"] == local_today().isoformat()
    item = inbox["overdue"]["items"][0]
    assert item["nickname"] == "Nhà mình"
    assert item["customer_name"] == "N***** V** A*"

    narrow = (
        await client.get("/api/v1/me/bills", params={"due_soon_days": 0}, headers=citizen.headers)
    ).json()
    assert [i["description"] for i in narrow["due_soon"]["items"]] == ["Hóa đơn today"]
    assert_problem(
        await client.get("/api/v1/me/bills", params={"due_soon_days": 999}, headers=citizen.headers),
        422,
        "validation_failed",
    )


async def test_bill_detail(
    client: AsyncTestClient[Litestar], settings: Settings, billers: dict[str, Any], db: Database
) -> None:
    citizen = Citizen(settings)
    await _present(db, billers["HEPCO_BATCH"], "VS00000042", [("late", 30000, -3)])
    await client.put(
        "/api/v1/me/customer-codes/HEPCO_BATCH/VS00000042",
        json={"nickname": "Nhà mình"},
        headers=citizen.headers,
    )
    bill_id = (await client.get("/api/v1/me/bills", headers=citizen.headers)).json()["overdue"]["items"][0][
        "id"
    ]
    detail = (await client.get(f"/api/v1/me/bills/{bill_id}", headers=citizen.headers)).json()
    assert detail["external_id"] == "late"
    assert detail["amount"] == 30000
    assert detail["payable"] is True
    assert detail["overdue"] is True
    assert detail["amount_rule"] == "exact"
    assert detail["limit_exempt"] is False, "a sanitation fee counts towards the monthly limit"
    assert detail["customer_name"] == "N***** V** A*"
    assert detail["nickname"] == "Nhà mình"
    assert_problem(
        await client.get(f"/api/v1/me/bills/{uuid.uuid4()}", headers=citizen.headers), 404, "bill_not_found"
    )


async def test_another_citizen_reaches_nothing_of_mine(
    client: AsyncTestClient[Litestar], settings: Settings, billers: dict[str, Any], db: Database
) -> None:
    me, other = Citizen(settings), Citizen(settings)
    saved = (
        await client.put(
            "/api/v1/me/customer-codes/EVN_CPC_HUE/PC03DD0123456",
            json={"nickname": "Nhà"},
            headers=me.headers,
        )
    ).json()
    inbox = (await client.get("/api/v1/me/bills", headers=me.headers)).json()
    my_bills = [i["id"] for s in ("overdue", "due_soon", "upcoming") for i in inbox[s]["items"]]
    assert my_bills

    assert (await client.get("/api/v1/me/customer-codes", headers=other.headers)).json() == []
    other_inbox = (await client.get("/api/v1/me/bills", headers=other.headers)).json()
    assert other_inbox["unpaid_count"] == 0
    assert other_inbox["paid"]["count"] == 0
    for bill_id in my_bills:
        assert_problem(
            await client.get(f"/api/v1/me/bills/{bill_id}", headers=other.headers), 404, "bill_not_found"
        )
    assert_problem(
        await client.delete(f"/api/v1/me/customer-codes/{saved['id']}", headers=other.headers),
        404,
        "saved_code_not_found",
    )
    # The other citizen saving the same household gets an entry of their own; mine keeps its nickname.
    theirs = (
        await client.put(
            "/api/v1/me/customer-codes/EVN_CPC_HUE/PC03DD0123456",
            json={"nickname": "Hàng xóm"},
            headers=other.headers,
        )
    ).json()
    assert theirs["id"] != saved["id"]
    mine = (await client.get("/api/v1/me/customer-codes", headers=me.headers)).json()
    assert [c["nickname"] for c in mine] == ["Nhà"]


async def test_own_bills_are_seen_only_by_their_owner(
    client: AsyncTestClient[Litestar], settings: Settings, billers: dict[str, Any], db: Database
) -> None:
    applicant, stranger = Citizen(settings), Citizen(settings)
    async with db.transaction() as session:
        fee = await service.issue_bill(
            session,
            biller_code="HEPCO_BATCH",
            customer_code="VS20251107",
            external_id="H46-251107-0001",
            period="2025-11",
            amount=100000,
            customer_name="Đặng Thị Thảo",
            owner_user_id=applicant.id,
        )
    inbox = (await client.get("/api/v1/me/bills", headers=applicant.headers)).json()
    items = [i for s in ("overdue", "due_soon", "upcoming") for i in inbox[s]["items"]]
    assert [(i["id"], i["customer_name"]) for i in items] == [(str(fee.id), "Đặng Thị Thảo")]
    detail = await client.get(f"/api/v1/me/bills/{fee.id}", headers=applicant.headers)
    assert detail.json()["customer_name"] == "Đặng Thị Thảo"

    await client.put(
        "/api/v1/me/customer-codes/HEPCO_BATCH/VS20251107", json={"nickname": "?"}, headers=stranger.headers
    )
    assert_problem(
        await client.get(f"/api/v1/me/bills/{fee.id}", headers=stranger.headers), 404, "bill_not_found"
    )
    assert (await client.get("/api/v1/me/bills", headers=stranger.headers)).json()["unpaid_count"] == 0
    looked_up = await client.get(
        "/api/v1/billers/HEPCO_BATCH/customers/VS20251107/bills", headers=stranger.headers
    )
    assert_problem(looked_up, 404, "customer_code_not_found")  # not even its existence leaks

    async with db.transaction() as session:
        again = await service.issue_bill(
            session,
            biller_code="HEPCO_BATCH",
            customer_code="VS20251107",
            external_id="H46-251107-0001",
            period="2025-11",
            amount=100000,
            owner_user_id=applicant.id,
        )
    assert again.id == fee.id, "issuing the same fee twice keeps one bill"


async def test_refresh_of_saved_codes_picks_up_new_bills(
    client: AsyncTestClient[Litestar], settings: Settings, billers: dict[str, Any], db: Database
) -> None:
    citizen = Citizen(settings)
    async with respx.mock(assert_all_called=False) as biller:
        route = biller.get(VNPT_FETCH)
        route.respond(200, json={"bills": []})
        await client.put(
            "/api/v1/me/customer-codes/VNPT_HUE/HUE123456",
            json={"nickname": "Internet"},
            headers=citizen.headers,
        )
        route.respond(200, json={"bills": [{"bill_id": "V-7", "period": "2025-07", "amount": 220000}]})
        report = await service.refresh_saved_codes(db, billers_gateway(client), user_id=citizen.id)
    assert (report.codes, report.refreshed, report.failed) == (1, 1, 0)
    inbox = (await client.get("/api/v1/me/bills", headers=citizen.headers)).json()
    assert inbox["upcoming"]["items"][0]["amount"] == 220000


def billers_gateway(client: AsyncTestClient[Litestar]) -> Any:
    return client.app.state.biller_gateway
