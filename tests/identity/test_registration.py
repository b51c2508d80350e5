"""Registration with a Vietnamese mobile number and a one-time code (issue 4, item 1)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from app.core.db import utcnow
from app.identity.models import OtpChallenge
from tests.conftest import assert_problem
from tests.factories import new_phone
from tests.identity.helpers import (
    Client,
    ask_code,
    bearer,
    device,
    execute,
    last_sms,
    phone_subject,
    register,
    reset_counter,
    runtime,
    scalar,
)


async def test_register_with_code_opens_a_signed_in_account(client: Client) -> None:
    tokens = await register(client, "0981234567")
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 900
    assert tokens["device_is_new"] is True
    me = await client.get("/api/v1/me", headers=bearer(tokens))
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["phone"] == "+84981234567"
    assert body["identity_level"] == 0
    assert body["roles"] == [{"role": "citizen", "scope": ""}]
    assert body["has_password"] is True


async def test_number_spellings_are_normalised(client: Client) -> None:
    phone = new_phone()  # +8498xxxxxxx
    local = "0" + phone[3:]
    _, code = await ask_code(client, f"{local[:4]} {local[4:7]} {local[7:]}")
    assert code is not None
    assert "Hue-S" in last_sms(client, phone)


async def test_invalid_and_landline_numbers_are_refused(client: Client) -> None:
    for raw in ("123456789", "0241234567", "+14155550100", "09051234567890"):
        response = await client.post("/api/v1/auth/otp", json={"phone": raw, "purpose": "register"})
        assert_problem(response, 422, "phone_invalid")


async def test_code_is_stored_only_as_a_keyed_hash(client: Client) -> None:
    phone = new_phone()
    _, code = await ask_code(client, phone)
    assert code is not None
    stored = await scalar(client, select(OtpChallenge.code_hash).where(OtpChallenge.phone == phone))
    assert code.encode() not in stored
    assert code not in stored.hex()
    assert len(stored) == 32


async def test_five_wrong_codes_kill_the_code(client: Client) -> None:
    phone = new_phone()
    challenge_id, code = await ask_code(client, phone)
    assert code is not None
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    body = {"challenge_id": challenge_id, "code": wrong, "device": device(), "consents": ["account"]}
    lefts = []
    for _ in range(4):
        problem = assert_problem(await client.post("/api/v1/auth/register", json=body), 422, "otp_invalid")
        lefts.append(problem["attempts_left"])
    assert lefts == [4, 3, 2, 1]
    assert_problem(await client.post("/api/v1/auth/register", json=body), 423, "otp_locked")
    # Even the right code no longer works: the brute force ended in a lock.
    body["code"] = code
    assert_problem(await client.post("/api/v1/auth/register", json=body), 423, "otp_locked")


async def test_wrong_codes_across_codes_lock_the_number(client: Client) -> None:
    phone = new_phone()
    policy = runtime(client).policy
    rounds = policy.otp_failures_per_phone // policy.otp_max_attempts
    for _ in range(rounds):
        challenge_id, code = await ask_code(client, phone)
        wrong = f"{(int(code or '0') + 1) % 1_000_000:06d}"
        body = {"challenge_id": challenge_id, "code": wrong, "device": device(), "consents": ["account"]}
        for _ in range(policy.otp_max_attempts):
            await client.post("/api/v1/auth/register", json=body)
        # Skip the resend cooldown (not the point of this test).
        await reset_counter(client, f"idn:otp:cool:{phone_subject(client, phone)}:register")
    response = await client.post("/api/v1/auth/otp", json={"phone": phone, "purpose": "register"})
    problem = assert_problem(response, 423, "otp_locked")
    assert problem["retry_after"] > 0


async def test_resend_cooldown(client: Client) -> None:
    phone = new_phone()
    await ask_code(client, phone)
    again = await client.post("/api/v1/auth/otp", json={"phone": phone, "purpose": "register"})
    problem = assert_problem(again, 429, "otp_cooldown")
    assert 0 < problem["retry_after"] <= 60
    assert again.headers["retry-after"] == str(problem["retry_after"])


async def test_codes_per_number_are_limited(client: Client) -> None:
    phone = new_phone()
    allowed = runtime(client).policy.otp_sends_per_phone
    statuses = []
    for _ in range(allowed + 1):
        response = await client.post("/api/v1/auth/otp", json={"phone": phone, "purpose": "register"})
        statuses.append(response.status_code)
        await reset_counter(client, f"idn:otp:cool:{phone_subject(client, phone)}:register")
    assert statuses == [202] * allowed + [429]


async def test_codes_per_client_address_are_limited(client: Client) -> None:
    allowed = runtime(client).settings.rate_limit_otp.limit
    statuses = []
    for _ in range(allowed + 1):
        response = await client.post("/api/v1/auth/otp", json={"phone": new_phone(), "purpose": "register"})
        statuses.append(response.status_code)
    assert statuses == [202] * allowed + [429]


async def test_expired_code_is_refused(client: Client) -> None:
    phone = new_phone()
    challenge_id, code = await ask_code(client, phone)
    await execute(
        client,
        update(OtpChallenge)
        .where(OtpChallenge.phone == phone)
        .values(expires_at=utcnow() - timedelta(seconds=1)),
    )
    body = {"challenge_id": challenge_id, "code": code, "device": device(), "consents": ["account"]}
    assert_problem(await client.post("/api/v1/auth/register", json=body), 422, "otp_expired")


async def test_a_code_works_once(client: Client) -> None:
    phone = new_phone()
    challenge_id, code = await ask_code(client, phone)
    body = {"challenge_id": challenge_id, "code": code, "device": device(), "consents": ["account"]}
    assert (await client.post("/api/v1/auth/register", json=body)).status_code == 201
    assert_problem(await client.post("/api/v1/auth/register", json=body), 422, "otp_expired")


async def test_registration_needs_the_account_consent(client: Client) -> None:
    phone = new_phone()
    challenge_id, code = await ask_code(client, phone)
    body = {"challenge_id": challenge_id, "code": code, "device": device(), "consents": ["marketing"]}
    problem = assert_problem(await client.post("/api/v1/auth/register", json=body), 409, "consent_required")
    assert problem["purpose"] == "account"


async def test_weak_password_is_refused(client: Client) -> None:
    phone = new_phone()
    challenge_id, code = await ask_code(client, phone)
    body = {
        "challenge_id": challenge_id,
        "code": code,
        "device": device(),
        "consents": ["account"],
        "password": "12345678",
    }
    assert_problem(await client.post("/api/v1/auth/register", json=body), 422, "password_weak")


async def test_existing_number_is_not_revealed(client: Client) -> None:
    phone = new_phone()
    await register(client, phone)
    await reset_counter(client, f"idn:otp:cool:{phone_subject(client, phone)}:register")
    fresh = new_phone()
    taken = await client.post("/api/v1/auth/otp", json={"phone": phone, "purpose": "register"})
    free = await client.post("/api/v1/auth/otp", json={"phone": fresh, "purpose": "register"})
    assert taken.status_code == free.status_code == 202
    assert set(taken.json()) == set(free.json())
    # The owner of the number learns it by SMS; no code is sent for it.
    assert "da co tai khoan" in last_sms(client, phone)
    dev = await client.get("/api/v1/dev/sms", params={"phone": phone, "limit": 1})
    assert dev.json()[0]["code"] is None


async def test_unknown_fields_are_refused(client: Client) -> None:
    response = await client.post(
        "/api/v1/auth/otp", json={"phone": new_phone(), "purpose": "register", "is_admin": True}
    )
    assert_problem(response, 422, "validation_failed")
