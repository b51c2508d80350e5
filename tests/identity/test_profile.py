"""Profile: CCCD declared, unique, sealed and masked; address; consent per purpose (issue 4, items 2-3)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from app.identity.models import Consent, User
from tests.conftest import assert_problem
from tests.factories import in_app, make_user, valid_cccd
from tests.identity.helpers import Client, scalar

BORN = "1990-05-17"


async def _declare(client: Client, headers: dict[str, str], cccd: str, born: str = BORN) -> Any:
    return await client.put(
        "/api/v1/me/identity",
        json={"full_name": "  Hoàng   Thị  Lan ", "cccd": cccd, "date_of_birth": born},
        headers=headers,
    )


async def test_declaring_the_cccd_raises_to_level_one(client: Client) -> None:
    user = await make_user(client, level=0)
    number = "046190123456"
    response = await _declare(client, user.headers, number)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["identity_level"] == 1
    assert body["full_name"] == "Hoàng Thị Lan"
    assert body["cccd_masked"] == "********3456"
    assert number not in response.text
    me = await client.get("/api/v1/me", headers=user.headers)
    assert number not in me.text


async def test_cccd_is_stored_encrypted(client: Client) -> None:
    user = await make_user(client, level=0)
    number = "046190654321"
    await _declare(client, user.headers, number)
    row = await scalar(client, select(User).where(User.id == user.user_id))
    assert row.cccd_ciphertext is not None
    assert number.encode() not in row.cccd_ciphertext
    assert row.cccd_key_id == "dev1"
    assert number not in (row.cccd_lookup or "")
    assert len(row.cccd_lookup or "") == 64


async def test_invalid_cccd_is_refused_with_the_reason(client: Client) -> None:
    user = await make_user(client, level=0)
    for number, reason in (
        ("003190123456", "province_unknown"),
        ("046191123456", "birth_year_mismatch"),
        ("046290123456", "birth_year_mismatch"),
    ):
        problem = assert_problem(await _declare(client, user.headers, number), 422, "cccd_invalid")
        assert problem["reason"] == reason
    assert_problem(await _declare(client, user.headers, "04619012345"), 422, "validation_failed")


async def test_one_cccd_one_account(client: Client) -> None:
    first, second = await make_user(client, level=0), await make_user(client, level=0)
    number = valid_cccd(date(1990, 5, 17))
    assert (await _declare(client, first.headers, number)).status_code == 200
    assert_problem(await _declare(client, second.headers, number), 409, "cccd_taken")
    # Spelled differently, still the same number.
    spaced = f"{number[:3]} {number[3:6]} {number[6:]}"
    assert_problem(await _declare(client, second.headers, spaced), 409, "cccd_taken")


async def test_verified_identity_is_locked(client: Client) -> None:
    user = await make_user(client, level=2)
    other = valid_cccd(date(1990, 5, 17))
    assert_problem(await _declare(client, user.headers, other), 409, "identity_locked")


async def test_address(client: Client) -> None:
    user = await make_user(client)
    address = {"line": "7 Đinh Tiên Hoàng", "commune": "Phường Phú Xuân", "province": "Thành phố Huế"}
    response = await client.put("/api/v1/me/address", json=address, headers=user.headers)
    assert response.status_code == 200, response.text
    assert response.json()["address"] == {**address, "postal_code": None}
    bad = await client.put("/api/v1/me/address", json={**address, "postal_code": "ABC"}, headers=user.headers)
    assert_problem(bad, 422, "validation_failed")


async def test_consent_per_purpose_is_recorded_and_withdrawable(client: Client) -> None:
    user = await make_user(client)
    purposes = (await client.get("/api/v1/consent-purposes")).json()
    assert {p["purpose"] for p in purposes} >= {"account", "ekyc", "marketing"}
    granted = await client.put("/api/v1/me/consents/marketing", json={"granted": True}, headers=user.headers)
    assert granted.status_code == 200, granted.text
    assert granted.json()["granted"] is True
    assert granted.json()["version"] == granted.json()["current_version"]
    withdrawn = await client.put(
        "/api/v1/me/consents/marketing", json={"granted": False}, headers=user.headers
    )
    assert withdrawn.json()["granted"] is False
    states = {c["purpose"]: c for c in (await client.get("/api/v1/me/consents", headers=user.headers)).json()}
    assert states["marketing"]["granted"] is False
    assert states["account"]["granted"] is True

    async def history() -> list[tuple[str, bool]]:
        async with client.app.state.db.read() as session:
            rows = await session.execute(
                select(Consent.purpose, Consent.granted)
                .where(Consent.user_id == user.user_id, Consent.purpose == "marketing")
                .order_by(Consent.created_at)
            )
            return [tuple(r) for r in rows]  # type: ignore[misc]

    assert await in_app(client, history) == [("marketing", True), ("marketing", False)]


async def test_account_consent_cannot_be_withdrawn_while_open(client: Client) -> None:
    user = await make_user(client)
    response = await client.put("/api/v1/me/consents/account", json={"granted": False}, headers=user.headers)
    assert_problem(response, 409, "consent_required")
    assert_problem(
        await client.put("/api/v1/me/consents/nonsense", json={"granted": True}, headers=user.headers),
        404,
        "not_found",
    )
