"""The holiday table through the API: admins edit it, and the due dates citizens see follow."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.core.db import Database
from tests.conftest import assert_problem

DEADLINE = "/api/v1/services/procedures/{code}/deadline"


async def _due(client: AsyncTestClient[Litestar], code: str, received_at: str) -> dict[str, object]:
    response = await client.get(DEADLINE.format(code=code), params={"received_at": received_at})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_due_date_across_tet_and_after_closing(
    loaded: Database, client: AsyncTestClient[Litestar]
) -> None:
    # Birth registration, 1 working day. Fri 13/02/2026 16:30 (+07): 30 min that day, the Tết break
    # Sat 14 – Sun 22/02, then Mon 23/02 07:00–11:30 and 13:30–16:30 -> 16:30 (+07) = 09:30 UTC.
    body = await _due(client, "1.001193", "2026-02-13T16:30:00+07:00")
    assert body["received_at"] == "2026-02-13T09:30:00Z"
    assert body["due_at"] == "2026-02-23T09:30:00Z"
    assert body["provisional"] is False
    assert body["processing_days"] == 1
    # After closing on Mon 10/03/2025 (17:30 +07): the clock starts Tue 07:00 (+07) = 00:00 UTC.
    body = await _due(client, "1.001193", "2025-03-10T10:30:00Z")
    assert body["clock_starts_at"] == "2025-03-11T00:00:00Z"
    assert body["due_at"] == "2025-03-11T10:00:00Z"


async def test_due_date_in_an_unannounced_year_is_provisional_until_announced(
    loaded: Database, client: AsyncTestClient[Litestar], superadmin: dict[str, str]
) -> None:
    # Judicial record, 10 working days, from Mon 01/02/2027 10:00 (+07). 2027 is not announced: the
    # statutory fallback has Tết off Thu 04 – Wed 10/02 (5 weekdays): 2 + 8 days -> Thu 11/02 is day 3,
    # ... Wed 17/02 day 7, Thu 18 day 8, Fri 19 day 9, Mon 22/02 day 10 -> 10:00 (+07) = 03:00 UTC.
    body = await _due(client, "3.000333", "2027-02-01T10:00:00+07:00")
    assert body == {**body, "due_at": "2027-02-22T03:00:00Z", "provisional": True}
    # The Government announces 2027 with Tết Thu 04 – Fri 12/02 (a made-up schedule for the test).
    days = [
        {"date": f"2027-02-{d:02d}", "kind": "holiday", "name_vi": "Tết Nguyên đán"}
        for d in (4, 5, 6, 7, 8, 9, 10, 11, 12)
    ]
    put = await client.put(
        "/api/v1/admin/services/calendar/2027", json={"announced": True, "days": days}, headers=superadmin
    )
    assert put.status_code == 200, put.text
    assert put.json()["announced"] is True
    # Now Tue 02 and Wed 03 are days 1–2, Mon 15/02 day 3 ... Fri 19 day 7, Mon 22 day 8, Tue 23 day 9,
    # Wed 24/02 day 10.
    body = await _due(client, "3.000333", "2027-02-01T10:00:00+07:00")
    assert body["due_at"] == "2027-02-24T03:00:00Z"
    assert body["provisional"] is False


async def test_admin_edits_single_days(
    loaded: Database, client: AsyncTestClient[Litestar], superadmin: dict[str, str]
) -> None:
    year = (await client.get("/api/v1/admin/services/calendar/2026", headers=superadmin)).json()
    assert year["announced"] is True
    kinds = {d["date"]: d["kind"] for d in year["days"]}
    assert kinds["2026-01-02"] == "swap_off"
    assert kinds["2026-01-10"] == "swap_work"
    assert kinds["2026-02-17"] == "holiday"
    # Worked Saturday: Fri 09/01/2026 10:00 + 1 day -> Sat 10/01 10:00 (+07).
    assert (await _due(client, "1.001193", "2026-01-09T10:00:00+07:00"))["due_at"] == "2026-01-10T03:00:00Z"
    # The admin removes that swap: Saturday is a rest day again -> Mon 12/01 10:00.
    removed = await client.delete("/api/v1/admin/services/calendar/days/2026-01-10", headers=superadmin)
    assert removed.status_code == 204
    again = await client.delete("/api/v1/admin/services/calendar/days/2026-01-10", headers=superadmin)
    assert again.status_code == 204
    assert (await _due(client, "1.001193", "2026-01-09T10:00:00+07:00"))["due_at"] == "2026-01-12T03:00:00Z"
    # ... and declares Mon 12/01 a day off: -> Tue 13/01 10:00.
    put = await client.put(
        "/api/v1/admin/services/calendar/days/2026-01-12",
        json={"kind": "holiday", "name_vi": "Nghỉ đột xuất", "name_en": "Unscheduled day off"},
        headers=superadmin,
    )
    assert put.status_code == 200, put.text
    assert (await _due(client, "1.001193", "2026-01-09T10:00:00+07:00"))["due_at"] == "2026-01-13T03:00:00Z"
    # A day in a year not in the table yet: the year is added, not announced.
    assert (
        await client.put(
            "/api/v1/admin/services/calendar/days/2030-05-02",
            json={"kind": "swap_off", "name_vi": "Nghỉ hoán đổi"},
            headers=superadmin,
        )
    ).status_code == 200
    year_2030 = (await client.get("/api/v1/admin/services/calendar/2030", headers=superadmin)).json()
    assert year_2030["announced"] is False
    assert [d["date"] for d in year_2030["days"]] == ["2030-05-02"]


async def test_refusals(
    loaded: Database, client: AsyncTestClient[Litestar], superadmin: dict[str, str]
) -> None:
    # 2026-01-13 is a Tuesday: working it "in exchange" means nothing.
    weekday_work = await client.put(
        "/api/v1/admin/services/calendar/days/2026-01-13",
        json={"kind": "swap_work", "name_vi": "Làm bù"},
        headers=superadmin,
    )
    assert_problem(weekday_work, 422, "invalid_calendar")
    weekend_swap_off = await client.put(
        "/api/v1/admin/services/calendar/days/2026-01-17",
        json={"kind": "swap_off", "name_vi": "Nghỉ"},
        headers=superadmin,
    )
    assert_problem(weekend_swap_off, 422, "invalid_calendar")
    wrong_year = await client.put(
        "/api/v1/admin/services/calendar/2026",
        json={"days": [{"date": "2025-05-01", "kind": "holiday", "name_vi": "Lao động"}]},
        headers=superadmin,
    )
    assert_problem(wrong_year, 422, "invalid_calendar")
    twice = await client.put(
        "/api/v1/admin/services/calendar/2026",
        json={
            "days": [
                {"date": "2026-05-01", "kind": "holiday", "name_vi": "A"},
                {"date": "2026-05-01", "kind": "holiday", "name_vi": "B"},
            ]
        },
        headers=superadmin,
    )
    assert_problem(twice, 422, "invalid_calendar")
    bad_status = await client.put(
        "/api/v1/admin/services/calendar/days/2026-05-04",
        json={"kind": "holiday", "name_vi": "A", "status": "rumour"},
        headers=superadmin,
    )
    assert_problem(bad_status, 422, "validation_failed")
    # Nothing changed: 2026 still has its 21 rows from the file.
    year = (await client.get("/api/v1/admin/services/calendar/2026", headers=superadmin)).json()
    assert len(year["days"]) == 21
    await _deadline_refusals(client)


async def _deadline_refusals(client: AsyncTestClient[Litestar]) -> None:
    # Certification of transactions has no published processing time.
    no_time = await client.get(
        DEADLINE.format(code="2.001035"), params={"received_at": "2026-03-02T09:00:00+07:00"}
    )
    assert_problem(no_time, 409, "no_processing_time")
    naive = await client.get(DEADLINE.format(code="1.001193"), params={"received_at": "2026-03-02T09:00:00"})
    assert_problem(naive, 422, "validation_failed")
    missing = await client.get(DEADLINE.format(code="1.001193"))
    assert_problem(missing, 422, "validation_failed")
    unknown = await client.get(DEADLINE.format(code="9.9"), params={"received_at": "2026-03-02T09:00:00Z"})
    assert_problem(unknown, 404, "procedure_not_found")
