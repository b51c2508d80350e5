"""Changing the password (code needed, other sessions end) and the SMS gateway (failures answered 503)."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from app.identity.runtime import HttpSmsGateway, SmsError, SmsSender
from tests.conftest import assert_problem
from tests.factories import DEFAULT_PASSWORD, make_user, new_phone
from tests.identity.helpers import Client, ask_step_up, device, runtime


async def _sign_in(client: Client, phone: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/sign-in/password", json={"phone": phone, "password": password, "device": device()}
    )


async def test_changing_the_password(client: Client) -> None:
    user = await make_user(client)
    other = (await _sign_in(client, user.phone, DEFAULT_PASSWORD)).json()
    challenge_id, code = await ask_step_up(client, user.headers, user.phone, "password_change")
    weak = await client.put(
        "/api/v1/me/password",
        json={"challenge_id": challenge_id, "code": code, "password": "aaaaaaaaaa"},
        headers=user.headers,
    )
    assert_problem(weak, 422, "password_weak")
    changed = await client.put(
        "/api/v1/me/password",
        json={"challenge_id": challenge_id, "code": code, "password": "mat-khau-moi-2026"},
        headers=user.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"signed_out_sessions": 1}
    assert (await client.get("/api/v1/me", headers=user.headers)).status_code == 200
    assert_problem(
        await client.get("/api/v1/me", headers={"Authorization": f"Bearer {other['access_token']}"}),
        401,
        "unauthenticated",
    )
    assert_problem(await _sign_in(client, user.phone, DEFAULT_PASSWORD), 401, "invalid_credentials")
    assert (await _sign_in(client, user.phone, "mat-khau-moi-2026")).status_code == 200


class _Broken(SmsSender):
    async def send(self, phone: str, text: str) -> None:
        raise SmsError("gateway down")


async def test_sms_failure_is_a_503_and_frees_the_cooldown(client: Client) -> None:
    rt = runtime(client)
    working = rt.sms
    rt.sms = _Broken()
    phone = new_phone()
    failed = await client.post("/api/v1/auth/otp", json={"phone": phone, "purpose": "register"})
    assert_problem(failed, 503, "sms_unavailable")
    rt.sms = working
    retried = await client.post("/api/v1/auth/otp", json={"phone": phone, "purpose": "register"})
    assert retried.status_code == 202, "no cooldown for a code that was never sent"


@respx.mock
async def test_http_gateway_posts_json_with_its_token() -> None:
    route = respx.post("https://sms.example.vn/send").mock(return_value=httpx.Response(202))
    await HttpSmsGateway("https://sms.example.vn/send", "t0ken").send("+84905123456", "Ma xac thuc 123456")
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer t0ken"
    assert json.loads(request.content) == {"to": "+84905123456", "text": "Ma xac thuc 123456"}
    respx.post("https://sms.example.vn/fail").mock(return_value=httpx.Response(500))
    with pytest.raises(SmsError):
        await HttpSmsGateway("https://sms.example.vn/fail", None).send("+84905123456", "x")
    respx.post("https://sms.example.vn/timeout").mock(side_effect=httpx.ConnectTimeout("slow"))
    with pytest.raises(SmsError):
        await HttpSmsGateway("https://sms.example.vn/timeout", None).send("+84905123456", "x")


def test_production_needs_an_sms_gateway() -> None:
    from app.core.settings import ConfigError, load_settings

    production = {
        "APP_ENV": "production",
        "DATABASE_URL": "postgresql://app@db/hue",
        **dict.fromkeys(
            ("JWT_KEYS", "PIN_KEYS", "DATA_KEYS", "AUDIT_KEYS", "WEBHOOK_KEYS", "RECEIPT_KEYS"),
            f"k1:{'p' * 40}",
        ),
        "BANK_API_URL": "https://bank.internal",
        "CARD_GATEWAY_URL": "https://api.gateway.internal",
        "CARD_GATEWAY_SECRET_KEY": "sk_live_x",
        "CARD_GATEWAY_WEBHOOK_SECRETS": f"k1:{'g' * 40}",
    }
    with pytest.raises(ConfigError, match="SMS_GATEWAY_URL"):
        load_settings(production)
    assert load_settings({**production, "SMS_GATEWAY_URL": "https://sms.internal/send"}).sms_gateway_url
    with pytest.raises(ConfigError, match="SMS_GATEWAY_URL"):
        load_settings({**production, "SMS_GATEWAY_URL": "ftp://sms"})
