"""No PIN, password, one-time code, phone or CCCD number ever reaches the logs (issue 4, item 5)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import Backend
from tests.factories import new_phone, valid_cccd
from tests.identity.helpers import bearer, device, runtime


def _code(client: Any, phone: str) -> str:
    outbox = runtime(client).dev_outbox
    assert outbox is not None
    found = re.search(r"\b([0-9]{6})\b", outbox.latest(phone, 1)[0].text)
    assert found is not None
    return found.group(1)


async def test_flows_leave_no_secret_in_the_logs(
    backend_env: Backend, capfd: pytest.CaptureFixture[str]
) -> None:
    from datetime import date

    from app.main import create_app

    app = create_app(backend_env.settings(LOG_LEVEL="INFO"))
    phone, password, pin = new_phone(), "bi-mat-cua-toi-42", "802413"
    cccd = valid_cccd(date(1990, 5, 17))
    secrets: list[str] = [password, pin, cccd, phone, "0" + phone[3:], phone[1:]]
    async with AsyncTestClient(app=app) as client:
        sent = (await client.post("/api/v1/auth/otp", json={"phone": phone, "purpose": "register"})).json()
        code = _code(client, phone)
        secrets.append(code)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        body = {
            "challenge_id": sent["challenge_id"],
            "device": device(),
            "consents": ["account"],
            "password": password,
        }
        await client.post("/api/v1/auth/register", json={**body, "code": wrong})
        tokens = (await client.post("/api/v1/auth/register", json={**body, "code": code})).json()
        headers = bearer(tokens)
        secrets += [tokens["access_token"], tokens["refresh_token"]]
        await client.post(
            "/api/v1/auth/sign-in/password",
            json={"phone": phone, "password": "wrong-" + password, "device": device()},
        )
        await client.post(
            "/api/v1/auth/sign-in/password", json={"phone": phone, "password": password, "device": device()}
        )
        await client.put(
            "/api/v1/me/identity",
            json={"full_name": "Nguyễn Văn An", "cccd": cccd, "date_of_birth": "1990-05-17"},
            headers=headers,
        )
        step = (await client.post("/api/v1/me/otp", json={"purpose": "pin_change"}, headers=headers)).json()
        pin_code = _code(client, phone)
        secrets.append(pin_code)
        await client.put(
            "/api/v1/me/pin",
            json={"challenge_id": step["challenge_id"], "code": pin_code, "pin": pin},
            headers=headers,
        )
        await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    out, err = capfd.readouterr()
    app_lines = [line for line in (out + err).splitlines() if line.startswith("{")]
    events = [json.loads(line) for line in app_lines]
    assert any(e.get("action") == "registered" for e in events), "security events are logged"
    assert any(e.get("action") == "sign_in_failed" for e in events)
    assert any(e.get("action") == "refresh_token_reused" for e in events)
    for line in app_lines:
        for secret in secrets:
            assert secret not in line, f"a secret leaked into: {line}"
