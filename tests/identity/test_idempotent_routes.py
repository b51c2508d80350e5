"""Identity's state-changing POSTs take an Idempotency-Key (DESIGN.md "API conventions"): a request that took
effect is stored and replayed (same status, same body, ``Idempotent-Replayed: true``, nothing done again);
the same key with another request is 422; a refused request leaves the key free; no key is 400. Step-up
codes are spent by the attempt (a wrong code counts even though the key stays free) and not compared.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import func, select

from app.core.audit_models import AuditEvent
from app.core.db import Database
from app.core.models import IdempotencyRecord
from tests.conftest import assert_problem
from tests.factories import in_app, make_user, new_phone, valid_cccd
from tests.identity.helpers import Client, ask_step_up, device

EXPLICIT_IDEMPOTENCY_KEYS = True


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def replayed(first: Any, again: Any) -> None:
    assert again.status_code == first.status_code, again.text
    assert again.content == first.content
    assert again.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers


async def _count(client: Client, statement: Any) -> int:
    async def run() -> int:
        db: Database = client.app.state.db
        async with db.read() as session:
            return int((await session.execute(statement)).scalar_one())

    return await in_app(client, run)


async def _audit_count(client: Client, action: str, object_id: uuid.UUID) -> int:
    return await _count(
        client,
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == action, AuditEvent.object_id == str(object_id)),
    )


async def test_staff_lock_and_desk_verification_take_effect_once_per_key(client: Client) -> None:
    admin = await make_user(client, roles=("admin",), duties=("support", "superadmin"))
    officer = await make_user(client, roles=("officer",), agency_id="PHU-XUAN")
    citizen = await make_user(client, level=0)
    staff = {"phone": new_phone(), "full_name": "Trần Thị Bình", "role": "officer", "agency_id": "PHU-XUAN"}
    staff["password"] = "mat-khau-can-bo-1"

    # No key: refused, nothing done.
    assert_problem(
        await client.post("/api/v1/admin/staff", json=staff, headers=admin.headers),
        400,
        "idempotency_key_required",
    )
    lock = f"/api/v1/admin/users/{citizen.user_id}/lock"
    assert_problem(await client.post(lock, headers=admin.headers), 400, "idempotency_key_required")
    assert (await client.get("/api/v1/me", headers=citizen.headers)).status_code == 200

    # Creating staff: the retry (with another password: not compared) is the first answer; one account.
    first = await client.post("/api/v1/admin/staff", json=staff, headers=keyed(admin.headers, "staff-1"))
    assert first.status_code == 201, first.text
    again = await client.post(
        "/api/v1/admin/staff",
        json={**staff, "password": "mot-mat-khau-khac-2"},
        headers=keyed(admin.headers, "staff-1"),
    )
    replayed(first, again)
    assert_problem(
        await client.post(
            "/api/v1/admin/staff", json={**staff, "agency_id": "HUE"}, headers=keyed(admin.headers, "staff-1")
        ),
        422,
        "idempotency_key_reused",
    )
    staff_id = uuid.UUID(first.json()["user_id"])
    assert await _audit_count(client, "identity.role_granted", staff_id) == 1

    # Locking: one lock, one audit row, the retry is replayed.
    locked = await client.post(lock, headers=keyed(admin.headers, "lock-1"))
    assert locked.status_code == 200, locked.text
    assert locked.json()["status"] == "locked"
    replayed(locked, await client.post(lock, headers=keyed(admin.headers, "lock-1")))
    assert await _audit_count(client, "identity.account_locked", citizen.user_id) == 1
    # The same key on another route is another request.
    unlock = f"/api/v1/admin/users/{citizen.user_id}/unlock"
    assert_problem(
        await client.post(unlock, headers=keyed(admin.headers, "lock-1")), 422, "idempotency_key_reused"
    )
    unlocked = await client.post(unlock, headers=keyed(admin.headers, "unlock-1"))
    assert unlocked.json()["status"] == "active"
    replayed(unlocked, await client.post(unlock, headers=keyed(admin.headers, "unlock-1")))
    assert await _audit_count(client, "identity.account_unlocked", citizen.user_id) == 1

    # Desk verification: a refused one (no account with that phone) leaves the key free.
    born = date(1988, 3, 9)
    card = {
        "phone": citizen.phone,
        "cccd": valid_cccd(born),
        "full_name": "Lê Văn Cường",
        "date_of_birth": "1988-03-09",
    }
    desk = "/api/v1/officer/identity-verifications"
    assert_problem(
        await client.post(
            desk, json={**card, "phone": new_phone()}, headers=keyed(officer.headers, "desk-1")
        ),
        404,
        "not_found",
    )
    verified = await client.post(desk, json=card, headers=keyed(officer.headers, "desk-1"))
    assert verified.status_code == 200, verified.text
    assert verified.json()["identity_level"] == 2
    replayed(verified, await client.post(desk, json=card, headers=keyed(officer.headers, "desk-1")))
    assert await _audit_count(client, "identity.identity_verified", citizen.user_id) == 1
    # Keys are per caller: another officer's "desk-1" is a key of its own.
    colleague = await make_user(client, roles=("officer",), agency_id="HUE")
    neighbour = await make_user(client, level=0)
    theirs = {**card, "phone": neighbour.phone, "cccd": valid_cccd(born, female=True)}
    second = await client.post(desk, json=theirs, headers=keyed(colleague.headers, "desk-1"))
    assert second.status_code == 200, second.text
    assert "idempotent-replayed" not in second.headers


async def test_session_ekyc_and_closure_posts_take_effect_once_per_key(client: Client) -> None:
    user = await make_user(client, level=1)
    # A second session of the same account (another phone).
    signed_in = await client.post(
        "/api/v1/auth/sign-in/password",
        json={"phone": user.phone, "password": user.password, "device": device("iPhone")},
    )
    assert signed_in.status_code == 200, signed_in.text
    other = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}

    ended = await client.post("/api/v1/auth/sign-out-others", headers=keyed(user.headers, "out-1"))
    assert ended.json() == {"signed_out_sessions": 1}
    replayed(ended, await client.post("/api/v1/auth/sign-out-others", headers=keyed(user.headers, "out-1")))
    assert_problem(await client.get("/api/v1/me", headers=other), 401, "unauthenticated")

    # eKYC: a rejection is recorded and leaves the key free; the pass is replayed without asking again.
    ekyc = "/api/v1/me/ekyc"
    assert_problem(
        await client.post(
            ekyc, json={"provider_reference": f"sbx-{user.cccd}-spoof"}, headers=keyed(user.headers, "ekyc-1")
        ),
        422,
        "ekyc_rejected",
    )
    match = {"provider_reference": f"sbx-{user.cccd}-match"}
    passed = await client.post(ekyc, json=match, headers=keyed(user.headers, "ekyc-1"))
    assert passed.status_code == 200, passed.text
    assert passed.json()["identity_level"] == 2
    replayed(passed, await client.post(ekyc, json=match, headers=keyed(user.headers, "ekyc-1")))
    export = (await client.get("/api/v1/me/data-export", headers=user.headers)).json()
    assert [c["outcome"] for c in export["identity"]["ekyc_checks"]] == ["rejected", "verified"]
    assert_problem(await client.post(ekyc, json=match, headers=user.headers), 400, "idempotency_key_required")

    # Closing: a wrong code is counted and refused, the key stays free; the right code closes.
    challenge_id, code = await ask_step_up(client, user.headers, user.phone, "close_account")
    wrong = "000000" if code != "000000" else "111111"
    problem = assert_problem(
        await client.post(
            "/api/v1/me/close",
            json={"challenge_id": challenge_id, "code": wrong},
            headers=keyed(user.headers, "close-1"),
        ),
        422,
        "otp_invalid",
    )
    assert problem["attempts_left"] == 4
    closed = await client.post(
        "/api/v1/me/close",
        json={"challenge_id": challenge_id, "code": code},
        headers=keyed(user.headers, "close-1"),
    )
    assert closed.status_code == 204, closed.text
    stored = (
        select(func.count())
        .select_from(IdempotencyRecord)
        .where(IdempotencyRecord.scope == f"user:{user.user_id}", IdempotencyRecord.key == "close-1")
    )
    assert await _count(client, stored) == 1
    assert await _audit_count(client, "identity.account_closed", user.user_id) == 1
    # The session ended with the account: a retry is refused at the door and does nothing.
    assert_problem(
        await client.post(
            "/api/v1/me/close",
            json={"challenge_id": challenge_id, "code": code},
            headers=keyed(user.headers, "close-1"),
        ),
        401,
        "unauthenticated",
    )


async def test_logout_takes_a_key(client: Client) -> None:
    user = await make_user(client)
    assert_problem(
        await client.post("/api/v1/auth/logout", headers=user.headers), 400, "idempotency_key_required"
    )
    assert (await client.get("/api/v1/me", headers=user.headers)).status_code == 200
    out = await client.post("/api/v1/auth/logout", headers=keyed(user.headers, "bye"))
    assert out.status_code == 204
    assert_problem(await client.get("/api/v1/me", headers=user.headers), 401, "unauthenticated")
