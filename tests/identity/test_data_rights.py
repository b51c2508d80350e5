"""Data rights: download everything held about me; close the account unless a module refuses (item 9)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.identity import data_rights
from app.identity.data_rights import ClosureRefusal
from app.identity.models import User
from tests.conftest import assert_problem
from tests.factories import DEFAULT_PASSWORD, make_user
from tests.identity.helpers import Client, ask_step_up, device, register, scalar

_balances: dict[uuid.UUID, int] = {}
_closed: list[uuid.UUID] = []


async def _wallet_export(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    return {"wallet": {"balance": _balances.get(user_id, 0)}}


async def _wallet_check(session: AsyncSession, user_id: uuid.UUID) -> ClosureRefusal | None:
    if _balances.get(user_id, 0):
        return ClosureRefusal("wallet_balance_not_zero", "Ví còn số dư", "The wallet still holds money")
    return None


async def _on_close(session: AsyncSession, user_id: uuid.UUID) -> None:
    _closed.append(user_id)


@pytest.fixture(autouse=True)
def _other_module() -> Iterator[None]:
    """Stand-in for another module plugging into data rights (as wallet will)."""
    data_rights.register_personal_data_exporter(_wallet_export)
    data_rights.register_closure_check(_wallet_check)
    data_rights.register_closure_hook(_on_close)
    yield
    data_rights._exporters.remove(_wallet_export)
    data_rights._checks.remove(_wallet_check)
    data_rights._hooks.remove(_on_close)


async def test_download_everything(client: Client) -> None:
    user = await make_user(client)
    _balances[user.user_id] = 150_000
    response = await client.get("/api/v1/me/data-export", headers=user.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"].startswith("attachment")
    data = response.json()
    account = data["identity"]["account"]
    assert account["phone"] == user.phone
    assert account["cccd"] == user.cccd  # the owner's own download is not masked
    assert account["identity_level"] == 2
    assert {c["purpose"] for c in data["identity"]["consents"]} == {"account", "ekyc"}
    assert data["identity"]["devices"][0]["name"] == "pytest"
    assert data["identity"]["payment_pin"]["is_set"] is True
    assert "246810" not in response.text
    assert data["wallet"] == {"balance": 150_000}


async def _close(client: Client, user: Any) -> Any:
    challenge_id, code = await ask_step_up(client, user.headers, user.phone, "close_account")
    return await client.post(
        "/api/v1/me/close", json={"challenge_id": challenge_id, "code": code}, headers=user.headers
    )


async def test_closure_is_refused_while_a_module_objects(client: Client) -> None:
    user = await make_user(client)
    _balances[user.user_id] = 10_000
    problem = assert_problem(await _close(client, user), 409, "closure_refused")
    assert problem["reasons"] == [
        {"code": "wallet_balance_not_zero", "detail": "The wallet still holds money"}
    ]
    assert (await client.get("/api/v1/me", headers=user.headers)).status_code == 200


async def test_closure_erases_personal_data_and_ends_sessions(client: Client) -> None:
    user = await make_user(client)
    _balances[user.user_id] = 0
    assert (await _close(client, user)).status_code == 204
    assert user.user_id in _closed
    assert_problem(await client.get("/api/v1/me", headers=user.headers), 401, "unauthenticated")
    assert_problem(
        await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}),
        401,
        "invalid_refresh_token",
    )
    signed_in = await client.post(
        "/api/v1/auth/sign-in/password",
        json={"phone": user.phone, "password": DEFAULT_PASSWORD, "device": device()},
    )
    assert_problem(signed_in, 401, "invalid_credentials")
    row = await scalar(client, select(User).where(User.id == user.user_id))
    assert row.status == "closed"
    assert (row.phone, row.full_name, row.cccd_ciphertext, row.cccd_lookup, row.date_of_birth) == (
        None,
        None,
        None,
        None,
        None,
    )
    # The number is free again.
    fresh = await register(client, user.phone)
    assert fresh["user_id"] != str(user.user_id)
