"""Sign-in with phone + password or phone + code; brute force ends in a lock (issue 4, item 4)."""

from __future__ import annotations

from typing import Any

from tests.conftest import assert_problem
from tests.factories import DEFAULT_PASSWORD, make_user, new_phone
from tests.identity.helpers import Client, ask_code, bearer, device, register


async def _sign_in(client: Client, phone: str, password: str) -> Any:
    return await client.post(
        "/api/v1/auth/sign-in/password", json={"phone": phone, "password": password, "device": device()}
    )


async def test_password_sign_in(client: Client) -> None:
    user = await make_user(client)
    local = "0" + user.phone[3:]
    response = await _sign_in(client, local, DEFAULT_PASSWORD)
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["user_id"] == str(user.user_id)
    me = await client.get("/api/v1/me", headers=bearer(tokens))
    assert me.json()["identity_level"] == 2


async def test_wrong_password_and_unknown_number_look_the_same(client: Client) -> None:
    user = await make_user(client)
    wrong = assert_problem(await _sign_in(client, user.phone, "not-the-password"), 401, "invalid_credentials")
    unknown = assert_problem(
        await _sign_in(client, new_phone(), "not-the-password"), 401, "invalid_credentials"
    )
    assert wrong["detail"] == unknown["detail"]
    assert wrong["attempts_left"] == unknown["attempts_left"] == 4


async def test_password_brute_force_ends_in_a_lock(client: Client) -> None:
    user = await make_user(client)
    for left in (4, 3, 2, 1, 0):
        problem = assert_problem(
            await _sign_in(client, user.phone, "guess-guess-1"), 401, "invalid_credentials"
        )
        assert problem["attempts_left"] == left
    locked = await _sign_in(client, user.phone, DEFAULT_PASSWORD)
    problem = assert_problem(locked, 423, "sign_in_locked")
    assert 0 < problem["retry_after"] <= 15 * 60
    assert locked.headers["retry-after"] == str(problem["retry_after"])


async def test_success_clears_the_count(client: Client) -> None:
    user = await make_user(client)
    for _ in range(4):
        await _sign_in(client, user.phone, "guess-guess-1")
    assert (await _sign_in(client, user.phone, DEFAULT_PASSWORD)).status_code == 200
    for _ in range(4):
        await _sign_in(client, user.phone, "guess-guess-1")
    assert (await _sign_in(client, user.phone, DEFAULT_PASSWORD)).status_code == 200


async def test_account_without_password_cannot_sign_in_with_one(client: Client) -> None:
    phone = new_phone()
    await register(client, phone, password=None)
    assert_problem(await _sign_in(client, phone, "anything-at-all"), 401, "invalid_credentials")


async def test_code_sign_in(client: Client) -> None:
    user = await make_user(client)
    challenge_id, code = await ask_code(client, user.phone, "sign_in")
    response = await client.post(
        "/api/v1/auth/sign-in/otp", json={"challenge_id": challenge_id, "code": code, "device": device()}
    )
    assert response.status_code == 200, response.text
    assert response.json()["user_id"] == str(user.user_id)


async def test_code_sign_in_for_unknown_number_sends_no_code(client: Client) -> None:
    challenge_id, code = await ask_code(client, new_phone(), "sign_in")
    assert code is None
    response = await client.post(
        "/api/v1/auth/sign-in/otp", json={"challenge_id": challenge_id, "code": "123456", "device": device()}
    )
    assert_problem(response, 422, "otp_invalid")


async def test_code_for_registration_does_not_sign_in(client: Client) -> None:
    phone = new_phone()
    challenge_id, code = await ask_code(client, phone, "register")
    response = await client.post(
        "/api/v1/auth/sign-in/otp", json={"challenge_id": challenge_id, "code": code, "device": device()}
    )
    assert_problem(response, 422, "otp_expired")


async def test_locked_account_cannot_sign_in(client: Client) -> None:
    admin = await make_user(client, roles=("admin",), duties=("support",))
    user = await make_user(client)
    locked = await client.post(f"/api/v1/admin/users/{user.user_id}/lock", headers=admin.headers)
    assert locked.status_code == 200, locked.text
    assert locked.json()["status"] == "locked"
    assert_problem(await client.get("/api/v1/me", headers=user.headers), 401, "unauthenticated")
    assert_problem(await _sign_in(client, user.phone, DEFAULT_PASSWORD), 423, "account_locked")
    await client.post(f"/api/v1/admin/users/{user.user_id}/unlock", headers=admin.headers)
    assert (await _sign_in(client, user.phone, DEFAULT_PASSWORD)).status_code == 200
