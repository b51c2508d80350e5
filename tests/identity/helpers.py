"""Shared steps of the identity tests, done the way a mobile app does them (over HTTP)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.identity.runtime import IdentityRuntime, runtime_of
from tests.factories import in_app

Client = AsyncTestClient[Litestar]


def device(name: str = "Pixel 8", install_id: str | None = None) -> dict[str, str]:
    return {"install_id": install_id or uuid.uuid4().hex, "name": name, "platform": "android"}


def last_sms(client: Client, phone: str) -> str:
    outbox = runtime_of(client.app.state.db).dev_outbox
    assert outbox is not None
    messages = outbox.latest(phone, 1)
    assert messages, f"no SMS to {phone}"
    return messages[0].text


async def ask_code(client: Client, phone: str, purpose: str = "register") -> tuple[str, str | None]:
    """Request a code and read it from the development outbox: (challenge_id, code or None)."""
    response = await client.post("/api/v1/auth/otp", json={"phone": phone, "purpose": purpose})
    assert response.status_code == 202, response.text
    challenge_id = response.json()["challenge_id"]
    dev = await client.get("/api/v1/dev/sms", params={"phone": phone, "limit": 1})
    assert dev.status_code == 200, dev.text
    return challenge_id, dev.json()[0]["code"]


async def ask_step_up(client: Client, headers: dict[str, str], phone: str, purpose: str) -> tuple[str, str]:
    response = await client.post("/api/v1/me/otp", json={"purpose": purpose}, headers=headers)
    assert response.status_code == 202, response.text
    dev = await client.get("/api/v1/dev/sms", params={"phone": phone, "limit": 1})
    code = dev.json()[0]["code"]
    assert code is not None
    return response.json()["challenge_id"], code


async def register(client: Client, phone: str, password: str | None = "mat-khau-rat-dai-1") -> dict[str, Any]:  # noqa: S107
    challenge_id, code = await ask_code(client, phone)
    body: dict[str, Any] = {
        "challenge_id": challenge_id,
        "code": code,
        "device": device(),
        "consents": ["account"],
    }
    if password is not None:
        body["password"] = password
    response = await client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def bearer(tokens: dict[str, Any] | str) -> dict[str, str]:
    token = tokens if isinstance(tokens, str) else tokens["access_token"]
    return {"Authorization": f"Bearer {token}"}


def runtime(client: Client) -> IdentityRuntime:
    return runtime_of(client.app.state.db)


async def reset_counter(client: Client, key: str) -> None:
    await in_app(client, lambda: runtime(client).counters().reset(key))


def phone_subject(client: Client, phone: str) -> str:
    from app.identity.limits import phone_key

    return phone_key(runtime(client), phone)


async def execute(client: Client, statement: Any) -> None:
    """Run one SQL statement in its own transaction, in the app's event loop."""

    async def run() -> None:
        async with client.app.state.db.transaction() as session:
            await session.execute(statement)

    await in_app(client, run)


async def scalar(client: Client, statement: Any) -> Any:
    async def run() -> Any:
        async with client.app.state.db.read() as session:
            return (await session.execute(statement)).scalar_one_or_none()

    return await in_app(client, run)
