"""One citizen never reads another's account (every identity route that names an object), and roles are
given and taken only by the admins allowed to (issue 4, item 6)."""

from __future__ import annotations

import dataclasses
from typing import Any

from litestar.testing import AsyncTestClient

from app.core.settings import Settings
from tests.conftest import assert_problem
from tests.factories import make_user
from tests.identity.helpers import Client, ask_step_up, device


async def test_a_citizen_cannot_read_another_citizens_account(client: Client) -> None:
    alice, bob = await make_user(client), await make_user(client)
    bob_devices = (await client.get("/api/v1/me/devices", headers=bob.headers)).json()
    for path in (f"/api/v1/users/{bob.user_id}", f"/api/v1/users/{bob.user_id}/devices"):
        assert_problem(await client.get(path, headers=alice.headers), 404, "not_found")
        assert (await client.get(path, headers=bob.headers)).status_code == 200
    # Removing Bob's device with Alice's token: not found, and Bob stays signed in.
    removal = await client.delete(f"/api/v1/me/devices/{bob_devices[0]['device_id']}", headers=alice.headers)
    assert_problem(removal, 404, "not_found")
    assert (await client.get("/api/v1/me", headers=bob.headers)).status_code == 200
    # The /me routes answer with the caller's own data only.
    mine = (await client.get("/api/v1/me", headers=alice.headers)).json()
    assert mine["user_id"] == str(alice.user_id)
    assert {
        d["device_id"] for d in (await client.get("/api/v1/me/devices", headers=alice.headers)).json()
    }.isdisjoint({d["device_id"] for d in bob_devices})
    export = (await client.get("/api/v1/me/data-export", headers=alice.headers)).json()
    assert export["identity"]["account"]["user_id"] == str(alice.user_id)
    assert bob.phone not in str(export)
    # A code sent to Bob does not close Alice's account (nor Bob's through Alice).
    challenge_id, code = await ask_step_up(client, bob.headers, bob.phone, "close_account")
    response = await client.post(
        "/api/v1/me/close", json={"challenge_id": challenge_id, "code": code}, headers=alice.headers
    )
    assert_problem(response, 422, "otp_expired")
    assert (await client.get("/api/v1/me", headers=bob.headers)).status_code == 200


async def test_officers_and_other_admins_do_not_see_accounts(client: Client) -> None:
    alice = await make_user(client)
    officer = await make_user(client, roles=("officer",), agency_id="ubnd-phuong-thuan-hoa")
    finance = await make_user(client, roles=("admin",), duties=("finance",))
    support = await make_user(client, roles=("admin",), duties=("support",))
    for intruder in (officer, finance):
        assert_problem(
            await client.get(f"/api/v1/users/{alice.user_id}", headers=intruder.headers), 404, "not_found"
        )
    view = await client.get(f"/api/v1/users/{alice.user_id}", headers=support.headers)
    assert view.status_code == 200
    assert alice.phone not in view.text
    assert view.json()["phone_masked"].endswith(alice.phone[-3:])
    assert (
        await client.get(f"/api/v1/users/{alice.user_id}/devices", headers=support.headers)
    ).status_code == 200


async def test_citizens_cannot_use_staff_routes(client: Client) -> None:
    alice, bob = await make_user(client), await make_user(client)
    staff = {
        "phone": "0981112233",
        "full_name": "Ai Đó",
        "role": "officer",
        "agency_id": "x",
        "password": "abcdefgh1",
    }
    for method, path, body in (
        ("POST", "/api/v1/admin/staff", staff),
        ("POST", f"/api/v1/admin/users/{bob.user_id}/lock", None),
        ("POST", f"/api/v1/admin/users/{bob.user_id}/unlock", None),
        ("DELETE", f"/api/v1/admin/users/{bob.user_id}/roles/citizen?scope=", None),
        (
            "POST",
            "/api/v1/officer/identity-verifications",
            {"phone": bob.phone, "cccd": bob.cccd, "full_name": "X Y", "date_of_birth": "1990-05-17"},
        ),
    ):
        response = await client.request(method, path, json=body, headers=alice.headers)
        assert_problem(response, 403, "forbidden")


async def _staff(client: Client, admin: Any, **fields: Any) -> Any:
    body = {"phone": "0981112233", "full_name": "Trương Văn Tâm", "password": "mat-khau-can-bo-1", **fields}
    return await client.post("/api/v1/admin/staff", json=body, headers=admin.headers)


async def test_support_admin_creates_officers_not_admins(client: Client) -> None:
    support = await make_user(client, roles=("admin",), duties=("support",))
    created = await _staff(client, support, role="officer", agency_id="ubnd-phuong-phu-xuan")
    assert created.status_code == 201, created.text
    assert created.json()["roles"] == [{"role": "officer", "scope": "ubnd-phuong-phu-xuan"}]
    signed_in = await client.post(
        "/api/v1/auth/sign-in/password",
        json={"phone": "0981112233", "password": "mat-khau-can-bo-1", "device": device()},
    )
    assert signed_in.status_code == 200
    assert_problem(
        await _staff(client, support, phone="0981112244", role="admin", duty="finance"), 403, "forbidden"
    )
    assert_problem(
        await _staff(client, support, phone="0981112255", role="officer"), 422, "validation_failed"
    )


async def test_superadmin_creates_admins_and_grants_to_existing_accounts(client: Client) -> None:
    root = await make_user(client, roles=("admin",), duties=("superadmin",))
    citizen = await make_user(client)
    response = await _staff(client, root, phone=citizen.phone, role="admin", duty="finance", password=None)
    assert response.status_code == 201, response.text
    assert {"role": "admin", "scope": "finance"} in response.json()["roles"]
    # The grant ended the account's sessions, so no token states a stale set of roles.
    assert_problem(await client.get("/api/v1/me", headers=citizen.headers), 401, "unauthenticated")
    signed_in = await client.post(
        "/api/v1/auth/sign-in/password",
        json={"phone": citizen.phone, "password": citizen.password, "device": device()},
    )
    me = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    )
    assert {"role": "admin", "scope": "finance"} in me.json()["roles"]


async def test_an_officer_serves_one_agency(client: Client) -> None:
    root = await make_user(client, roles=("admin",), duties=("superadmin",))
    officer = await make_user(client, roles=("officer",), agency_id="agency-a")
    response = await _staff(
        client, root, phone=officer.phone, role="officer", agency_id="agency-b", password=None
    )
    assert_problem(response, 409, "role_conflict")


async def test_revoking_a_role(client: Client) -> None:
    root = await make_user(client, roles=("admin",), duties=("superadmin",))
    officer = await make_user(client, roles=("officer",), agency_id="agency-a")
    revoked = await client.delete(
        f"/api/v1/admin/users/{officer.user_id}/roles/officer",
        params={"scope": "agency-a"},
        headers=root.headers,
    )
    assert revoked.status_code == 204
    assert_problem(await client.get("/api/v1/me", headers=officer.headers), 401, "unauthenticated")
    again = await client.delete(
        f"/api/v1/admin/users/{officer.user_id}/roles/officer",
        params={"scope": "agency-a"},
        headers=root.headers,
    )
    assert_problem(again, 404, "not_found")
    own = await client.delete(
        f"/api/v1/admin/users/{root.user_id}/roles/admin",
        params={"scope": "superadmin"},
        headers=root.headers,
    )
    assert_problem(own, 403, "forbidden")


async def test_dev_sms_outbox_is_absent_in_production(settings: Settings) -> None:
    from app.main import create_app

    production = dataclasses.replace(
        settings, environment="production", sms_gateway_url="https://sms.invalid/send"
    )
    app = create_app(production)
    async with AsyncTestClient(app=app) as client:
        assert_problem(await client.get("/api/v1/dev/sms"), 404, "not_found")
    spec_paths = app.openapi_schema.paths or {}
    assert "/api/v1/dev/sms" not in spec_paths
