"""Dossier POSTs take an Idempotency-Key (DESIGN.md "API conventions"), and dossiers show their clock:
the working time left while open, and once finished whether they were early, on time or late (DOMAIN.md
"Deadlines": calendar days in Asia/Ho_Chi_Minh against the due date moved by pauses; more than one
supplement request is late whatever the dates; the end of processing is processed, stopped or denied).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import func, select, update

from app.bills.models import Bill
from app.core.db import Database, utcnow
from app.services import dossiers
from app.services.dossier_models import Dossier, StoredDocument
from tests.conftest import assert_problem
from tests.factories import in_app, make_user
from tests.services.test_dossiers import PDF, PNG, PROCEDURE, procedure, settings  # noqa: F401 - fixtures

EXPLICIT_IDEMPOTENCY_KEYS = True
HUE = ZoneInfo("Asia/Ho_Chi_Minh")
ME = "/api/v1/me/dossiers"
OFFICER = "/api/v1/officer/dossiers"


def keyed(headers: dict[str, str], key: str | None = None) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key or uuid.uuid4().hex}


def replayed(first: Any, again: Any) -> None:
    assert again.status_code == first.status_code, again.text
    assert again.content == first.content
    assert again.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers


async def _count(client: Any, statement: Any) -> int:
    async def run() -> int:
        db: Database = client.app.state.db
        async with db.read() as session:
            return int((await session.execute(statement)).scalar_one())

    return await in_app(client, run)


async def test_dossier_posts_take_effect_once_per_key(client: Any, procedure: str) -> None:  # noqa: F811
    citizen = await make_user(client)
    officer = await make_user(client, roles=("officer",), agency_id="PHU-XUAN")
    body = {"procedure_code": procedure, "fee_case": "case_1"}

    assert_problem(await client.post(ME, json=body, headers=citizen.headers), 400, "idempotency_key_required")
    created = await client.post(ME, json=body, headers=keyed(citizen.headers, "create-1"))
    assert created.status_code == 201, created.text
    replayed(created, await client.post(ME, json=body, headers=keyed(citizen.headers, "create-1")))
    assert_problem(
        await client.post(ME, json={**body, "note": "khác"}, headers=keyed(citizen.headers, "create-1")),
        422,
        "idempotency_key_reused",
    )
    mine = await client.get(ME, headers=citizen.headers)
    assert len(mine.json()["items"]) == 1  # one draft, not two
    dossier_id = created.json()["id"]

    # Refused (nothing attached yet): the key stays free for the corrected request.
    submit = f"{ME}/{dossier_id}/submit"
    assert_problem(
        await client.post(submit, headers=keyed(citizen.headers, "submit-1")), 409, "dossier_incomplete"
    )

    # An upload is fingerprinted by its content: the same file again is the replay, another file is 422.
    upload = f"{ME}/{dossier_id}/documents"
    form = {"requirement": "application_form"}
    pdf = PDF + b"form"
    attached = await client.post(
        upload,
        files={"file": ("to-khai.pdf", pdf, "application/pdf")},
        data=form,
        headers=keyed(citizen.headers, "up-1"),
    )
    assert attached.status_code == 200, attached.text
    replayed(
        attached,
        await client.post(
            upload,
            files={"file": ("to-khai.pdf", pdf, "application/pdf")},
            data=form,
            headers=keyed(citizen.headers, "up-1"),
        ),
    )
    assert_problem(
        await client.post(
            upload,
            files={"file": ("to-khai.pdf", PDF + b"other", "application/pdf")},
            data=form,
            headers=keyed(citizen.headers, "up-1"),
        ),
        422,
        "idempotency_key_reused",
    )
    documents = (
        select(func.count()).select_from(StoredDocument).where(StoredDocument.owner_id == citizen.user_id)
    )
    assert await _count(client, documents) == 1
    assert len(attached.json()["attachments"]) == 1

    submitted = await client.post(submit, headers=keyed(citizen.headers, "submit-1"))
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "receiving"
    # The retry of a transition that took effect is its answer again, not 409 illegal_transition.
    replayed(submitted, await client.post(submit, headers=keyed(citizen.headers, "submit-1")))

    accept = f"{OFFICER}/{dossier_id}/accept"
    accepted = await client.post(accept, json={"note": "Đủ"}, headers=keyed(officer.headers, "accept-1"))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "paying"
    replayed(
        accepted, await client.post(accept, json={"note": "Đủ"}, headers=keyed(officer.headers, "accept-1"))
    )
    bills = select(func.count()).select_from(Bill).where(Bill.owner_user_id == citizen.user_id)
    assert await _count(client, bills) == 1  # one fee bill
    timeline = (await client.get(f"{ME}/{dossier_id}", headers=citizen.headers)).json()["timeline"]
    assert [e["action"] for e in timeline] == ["submit", "accept_fee_first"]

    # The document store's own upload: 201 first and on the replay.
    store = "/api/v1/me/documents"
    png = {"file": ("cccd.png", PNG, "image/png")}
    stored = await client.post(store, files=png, headers=keyed(citizen.headers, "store-1"))
    assert stored.status_code == 201, stored.text
    replayed(stored, await client.post(store, files=png, headers=keyed(citizen.headers, "store-1")))

    withdrawn = await client.post(
        f"{ME}/{dossier_id}/withdraw", json={}, headers=keyed(citizen.headers, "wd-1")
    )
    assert withdrawn.json()["status"] == "cancelled"
    again = await client.post(f"{ME}/{dossier_id}/withdraw", json={}, headers=keyed(citizen.headers, "wd-1"))
    replayed(withdrawn, again)


@pytest.fixture
async def served(app: Litestar, procedure: str) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    """The app in a started lifespan, driven through ASGI in this event loop (requests really overlap)."""
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
            yield http
    finally:
        stop.set()
        await asyncio.wait_for(lifespan, timeout=10)


async def test_same_key_while_the_first_runs_is_409_then_replayed(
    app: Litestar, served: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    citizen = await make_user(app)
    inside, release = asyncio.Event(), asyncio.Event()
    create = dossiers.create_dossier

    async def held(*args: Any, **kwargs: Any) -> Any:
        inside.set()
        await release.wait()
        return await create(*args, **kwargs)

    monkeypatch.setattr(dossiers, "create_dossier", held)
    body = {"procedure_code": PROCEDURE}
    headers = keyed(citizen.headers, "same")
    first = asyncio.create_task(served.post(ME, json=body, headers=headers))
    await asyncio.wait_for(inside.wait(), timeout=10)  # the first is inside its effect, holding the key
    busy = assert_problem(await served.post(ME, json=body, headers=headers), 409, "idempotency_in_progress")
    assert busy  # the client retries after Retry-After
    release.set()
    done = await asyncio.wait_for(first, timeout=10)
    assert done.status_code == 201, done.text
    replayed(done, await served.post(ME, json=body, headers=headers))
    db: Database = app.state.db
    async with db.read() as session:
        count = await session.scalar(
            select(func.count()).select_from(Dossier).where(Dossier.applicant_id == citizen.user_id)
        )
    assert count == 1


# --- the clock ---------------------------------------------------------------------------------------------


async def _new_dossier(client: Any, citizen: Any, officer: Any) -> str:
    """Submitted with the exempt fee case and accepted now: ``new``, the clock started at acceptance."""
    created = await client.post(
        ME, json={"procedure_code": PROCEDURE, "fee_case": "exempt_groups"}, headers=keyed(citizen.headers)
    )
    dossier_id: str = created.json()["id"]
    attached = await client.post(
        f"{ME}/{dossier_id}/documents",
        files={"file": ("to-khai.pdf", PDF + uuid.uuid4().bytes, "application/pdf")},
        data={"requirement": "application_form"},
        headers=keyed(citizen.headers),
    )
    assert attached.status_code == 200, attached.text
    assert (await client.post(f"{ME}/{dossier_id}/submit", headers=keyed(citizen.headers))).status_code == 200
    accepted = await client.post(f"{OFFICER}/{dossier_id}/accept", json={}, headers=keyed(officer.headers))
    assert accepted.json()["status"] == "new", accepted.text
    return dossier_id


async def _act(client: Any, officer: Any, dossier_id: str, action: str, **body: Any) -> dict[str, Any]:
    response = await client.post(
        f"{OFFICER}/{dossier_id}/{action}", json=body, headers=keyed(officer.headers)
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def _approve(client: Any, officer: Any, dossier_id: str) -> dict[str, Any]:
    response = await client.post(
        f"{OFFICER}/{dossier_id}/approve",
        files={"file": ("ket-qua.pdf", PDF + uuid.uuid4().bytes, "application/pdf")},
        headers=keyed(officer.headers),
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def _set_due(client: Any, dossier_id: str, due: datetime) -> None:
    async def run() -> None:
        db: Database = client.app.state.db
        async with db.transaction() as session:
            await session.execute(
                update(Dossier).where(Dossier.id == uuid.UUID(dossier_id)).values(due_at=due)
            )

    await in_app(client, run)


async def test_open_dossiers_show_time_left_and_finished_ones_early_on_time_or_late(
    client: Any,
    procedure: str,  # noqa: F811
) -> None:
    citizen = await make_user(client)
    officer = await make_user(client, roles=("officer",), agency_id="PHU-XUAN")

    # Open: 3 working days = 24 working hours left at acceptance, whatever the hour (DOMAIN.md).
    early = await _new_dossier(client, citizen, officer)
    view = (await client.get(f"{ME}/{early}", headers=citizen.headers)).json()
    assert 24 * 3600 - 300 <= view["remaining_working_seconds"] <= 24 * 3600
    assert view["overdue"] is False
    assert view["timeliness"] is None
    # Finished days before the due date: early.
    await _act(client, officer, early, "process")
    done = await _approve(client, officer, early)
    assert done["status"] == "releasing"
    assert done["timeliness"] == "early"
    assert done["remaining_working_seconds"] is None
    # Handing over the result later does not move the end of processing.
    await _act(client, officer, early, "collected")
    delivered = (await client.get(f"{ME}/{early}", headers=citizen.headers)).json()
    assert delivered["status"] == "done"
    assert delivered["timeliness"] == "early"
    assert delivered["finished_at"] == done["finished_at"]
    assert [e["action"] for e in delivered["timeline"]][-1] == "deliver"

    # Due earlier today (Huế), finished later the same day: on time (calendar days, not instants).
    on_time = await _new_dossier(client, citizen, officer)
    today = utcnow().astimezone(HUE).date()
    await _set_due(client, on_time, datetime.combine(today, time(0, 0, 1), tzinfo=HUE))
    await _act(client, officer, on_time, "process")
    assert (await _approve(client, officer, on_time))["timeliness"] == "on_time"

    # Past its due date while open: overdue, negative time left, in the overdue queue; stopped: late.
    late = await _new_dossier(client, citizen, officer)
    await _set_due(client, late, utcnow() - timedelta(days=10))
    view = (await client.get(f"{OFFICER}/{late}", headers=officer.headers)).json()
    assert view["overdue"] is True
    assert view["remaining_working_seconds"] < 0
    queue = (await client.get(f"{OFFICER}?filter=overdue", headers=officer.headers)).json()
    assert [d["id"] for d in queue["items"]] == [late]
    assert queue["items"][0]["overdue"] is True
    await _act(client, officer, late, "process")
    stopped = await _act(client, officer, late, "stop", reason="Không đủ điều kiện")
    assert stopped["status"] == "unresolved"
    assert stopped["timeliness"] == "late"

    # Two supplement requests: late, though finished days before the due date. While waiting the time
    # left is frozen.
    twice = await _new_dossier(client, citizen, officer)
    await _act(client, officer, twice, "process")
    for round_ in (1, 2):
        waiting = await _act(client, officer, twice, "request-supplement", reason=f"Bổ sung lần {round_}")
        assert waiting["status"] == "waiting"
        left = waiting["remaining_working_seconds"]
        await asyncio.sleep(0.01)
        again = (await client.get(f"{ME}/{twice}", headers=citizen.headers)).json()
        assert again["remaining_working_seconds"] == left
        resumed = await client.post(f"{ME}/{twice}/resubmit", json={}, headers=keyed(citizen.headers))
        assert resumed.json()["status"] == "processing", resumed.text
    finished = await _approve(client, officer, twice)
    assert finished["supplement_requests"] == 2
    assert datetime.fromisoformat(finished["due_at"]).astimezone(HUE).date() > today
    assert finished["timeliness"] == "late"

    # Denied at intake: the clock never ran, nothing to classify.
    created = await client.post(ME, json={"procedure_code": PROCEDURE}, headers=keyed(citizen.headers))
    denied_id = created.json()["id"]
    await client.post(
        f"{ME}/{denied_id}/documents",
        files={"file": ("to-khai.pdf", PDF + b"deny", "application/pdf")},
        data={"requirement": "application_form"},
        headers=keyed(citizen.headers),
    )
    await client.post(f"{ME}/{denied_id}/submit", headers=keyed(citizen.headers))
    denied = await _act(client, officer, denied_id, "deny", reason="Sai thủ tục")
    assert denied["status"] == "denied"
    assert denied["timeliness"] is None
    listed = {
        d["id"]: d["timeliness"] for d in (await client.get(ME, headers=citizen.headers)).json()["items"]
    }
    assert listed == {early: "early", on_time: "on_time", late: "late", twice: "late", denied_id: None}
