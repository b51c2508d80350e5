"""Statistics of an agency for a month, against figures counted by hand (Must-show of issue 9)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from app.core.db import Database
from app.services.dossier_models import Dossier
from app.services.result_models import DossierRating
from tests.conftest import assert_problem
from tests.factories import in_app, make_user

HUE = ZoneInfo("Asia/Ho_Chi_Minh")
A = "1.001193"
B = "1.000656"


def h(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    """A moment of 2026 in Huế."""
    return datetime(2026, month, day, hour, minute, tzinfo=HUE)


# name, procedure, status, accepted (= clock start), due, finished, channel, fee, paid online,
# supplement requests, paused seconds
SEEDED: list[tuple[Any, ...]] = [
    # Mon 2/11 08:00 → Wed 4/11 10:00, due Thu 5/11: early. 7 + 8 + 3 = 18 working hours.
    ("D1", A, "releasing", h(2, 8), h(5, 8), h(4, 10), "online", 50_000, True, 0, 0),
    # Mon 2/11 09:00 → Thu 5/11 16:00, due Thu 5/11 09:00: on time. 6 + 8 + 8 + 7 = 29 h.
    # Registered at the desk, fee paid there.
    ("D2", A, "done", h(2, 9), h(5, 9), h(5, 16), "desk", 50_000, False, 0, 0),
    # Tue 3/11 08:00 → Mon 9/11 08:00, due Fri 6/11: late. 7 + 8 + 8 + 8 + 1 = 32 h, less a 4 h pause = 28 h.
    ("D3", A, "done", h(3, 8), h(6, 8), h(9, 8), "online", 0, False, 1, 4 * 3600),
    # Wed 4/11 08:00 → stopped Fri 6/11 10:00, before its due date but with 2 supplement requests: late.
    # 7 + 8 + 3 = 18 h.
    ("D4", A, "unresolved", h(4, 8), h(9, 8), h(6, 10), "online", 50_000, True, 2, 0),
    # Thu 5/11, still processing: received, not finished. No fee.
    ("D5", B, "processing", h(5, 8), h(12, 8), None, "online", None, False, 0, 0),
    # Received Fri 30/10 (before the month) → Mon 2/11 15:00, due Tue 3/11: early, finished in the month.
    # Fri 7 h + Mon 4.5 + 1.5 = 13 h.
    ("D6", B, "done", h(30, 8, month=10), h(3, 8), h(2, 15), "online", None, False, 0, 0),
    # Accepted Mon 30/11 23:30 in Huế (16:30 UTC): in November.
    ("D7", A, "new", h(30, 23, 30), h(3, 23, month=12), None, "online", None, False, 0, 0),
    # Accepted Tue 1/12 00:30 in Huế (still 30/11 in UTC): not in November.
    ("D8", A, "new", h(1, 0, 30, month=12), h(4, 8, month=12), None, "online", None, False, 0, 0),
    # Accepted Mon 2/11 10:00, withdrawn Tue 3/11: received; withdrawal is not the end of processing.
    ("D9", A, "cancelled", h(2, 10), h(5, 10), h(3, 9), "online", None, False, 0, 0),
    # Denied at intake on Mon 2/11: never received, never processed.
    ("D10", A, "denied", None, None, h(2, 11), "online", None, False, 0, 0),
    # Another agency's dossier: not counted.
    ("X1", A, "done", h(2, 8), h(5, 8), h(3, 8), "online", 50_000, True, 0, 0),
]
# (dossier, total score, rated at)
RATINGS = [("D1", 18, h(4, 12)), ("D2", 12, h(6, 9)), ("D6", 9, h(2, 16)), ("D3", 18, h(1, 0, 5, month=12))]

# Counted by hand from the table above.
EXPECTED_A = {
    "procedure_code": A,
    "received": 6,  # D1 D2 D3 D4 D7 D9
    "submitted_online": 5,  # all but D2
    "submitted_online_share": 0.8333,
    "with_fee": 3,  # D1 D2 D4
    "paid_online": 2,  # D1 D4
    "paid_online_share": 0.6667,
    "finished": 4,  # D1 D2 D3 D4
    "early": 1,
    "on_time": 1,
    "late": 2,
    "average_processing_hours": 23.25,  # (18 + 29 + 28 + 18) / 4
    "ratings": 2,  # D1 18, D2 12 (D3's is in December)
    "satisfaction_percent": 83.33,  # 30 / 36
}
EXPECTED_B = {
    "procedure_code": B,
    "received": 1,  # D5
    "submitted_online": 1,
    "submitted_online_share": 1.0,
    "with_fee": 0,
    "paid_online": 0,
    "paid_online_share": None,
    "finished": 1,  # D6
    "early": 1,
    "on_time": 0,
    "late": 0,
    "average_processing_hours": 13.0,
    "ratings": 1,
    "satisfaction_percent": 50.0,  # 9 / 18
}
EXPECTED_TOTAL = {
    "procedure_code": None,
    "received": 7,
    "submitted_online": 6,
    "submitted_online_share": 0.8571,
    "with_fee": 3,
    "paid_online": 2,
    "paid_online_share": 0.6667,
    "finished": 5,
    "early": 2,
    "on_time": 1,
    "late": 2,
    "average_processing_hours": 21.2,  # (93 + 13) / 5
    "ratings": 3,
    "satisfaction_percent": 72.22,  # 39 / 54
}
EXPECTED_CSV = (
    "agency_code,date_from,date_to,procedure_code,received,submitted_online,submitted_online_share,with_fee,"
    "paid_online,paid_online_share,finished,early,on_time,late,average_processing_hours,ratings,"
    "satisfaction_percent\r\n"
    f"PHU-XUAN,2026-11-01,2026-11-30,{B},1,1,1.0,0,0,,1,1,0,0,13.0,1,50.0\r\n"
    f"PHU-XUAN,2026-11-01,2026-11-30,{A},6,5,0.8333,3,2,0.6667,4,1,1,2,23.25,2,83.33\r\n"
    "PHU-XUAN,2026-11-01,2026-11-30,TOTAL,7,6,0.8571,3,2,0.6667,5,2,1,2,21.2,3,72.22\r\n"
)


async def _seed(db: Database) -> None:
    ids: dict[str, uuid.UUID] = {}
    async with db.transaction() as session:
        for number, (
            name,
            procedure,
            status,
            accepted,
            due,
            finished,
            channel,
            fee,
            online,
            sup,
            paused,
        ) in enumerate(SEEDED):
            agency = "THUAN-HOA" if name.startswith("X") else "PHU-XUAN"
            dossier = Dossier(
                code=f"{agency}-261101-{number:04d}",
                procedure_code=procedure,
                applicant_id=uuid.uuid4(),
                status=status,
                chain=[agency],
                chain_position=0,
                agency_code=agency,
                fee_collection="first" if fee else None,
                fee_amount=fee,
                fee_paid_at=accepted if fee else None,
                fee_payment_id=uuid.uuid4() if online else None,
                submitted_at=accepted,
                accepted_at=accepted,
                received_at=accepted,
                due_at=due,
                due_provisional=False,
                paused_seconds=paused,
                supplement_requests=sup,
                finished_at=finished,
                submission_channel=channel,
            )
            session.add(dossier)
            await session.flush()
            ids[name] = dossier.id
        for name, total, at in RATINGS:
            procedure = next(p for n, p, *_ in SEEDED if n == name)
            session.add(
                DossierRating(
                    dossier_id=ids[name],
                    agency_code="PHU-XUAN",
                    procedure_code=procedure,
                    scores={"processing_time": total},
                    total=total,
                    rated_by=uuid.uuid4(),
                    created_at=at,
                )
            )


async def test_statistics_of_a_seeded_month_match_the_hand_count(client: Any, loaded: Database) -> None:
    await in_app(client, lambda: _seed(client.app.state.db))
    officer = await make_user(client, roles=("officer",), agency_id="PHU-XUAN")
    elsewhere = await make_user(client, roles=("officer",), agency_id="THUAN-HOA")
    admin = await make_user(client, roles=("admin",), duties=("support",))
    citizen = await make_user(client)
    month = {"from": "2026-11-01", "to": "2026-11-30"}

    response = await client.get("/api/v1/officer/statistics/PHU-XUAN", params=month, headers=officer.headers)
    assert response.status_code == 200, response.text
    stats = response.json()
    assert stats["rows"] == [EXPECTED_B, EXPECTED_A]  # by procedure code
    assert stats["total"] == EXPECTED_TOTAL

    csv = await client.get("/api/v1/officer/statistics/PHU-XUAN/csv", params=month, headers=officer.headers)
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text == EXPECTED_CSV

    only_b = await client.get(
        "/api/v1/officer/statistics/PHU-XUAN", params={**month, "procedure": B}, headers=admin.headers
    )
    assert only_b.json()["rows"] == [EXPECTED_B]
    assert only_b.json()["total"] == {**EXPECTED_B, "procedure_code": None}

    assert_problem(
        await client.get("/api/v1/officer/statistics/PHU-XUAN", params=month, headers=elsewhere.headers),
        404,
        "not_found",
    )
    forbidden = await client.get("/api/v1/officer/statistics/PHU-XUAN", params=month, headers=citizen.headers)
    assert forbidden.status_code == 403
    backwards = await client.get(
        "/api/v1/officer/statistics/PHU-XUAN",
        params={"from": "2026-11-30", "to": "2026-11-01"},
        headers=officer.headers,
    )
    assert_problem(backwards, 422, "validation_failed")
