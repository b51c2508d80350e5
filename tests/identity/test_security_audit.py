"""Security events reach the tamper-evident audit trail (issue 4, item 7): sign-ins, failures, locks,
refresh-token reuse and role changes, each as a chained row an admin can search and verify."""

from __future__ import annotations

from typing import Any

from tests.factories import DEFAULT_PASSWORD, make_user, new_phone, token_with_claims
from tests.identity.helpers import Client, device


async def _audit(client: Client, action: str) -> list[dict[str, Any]]:
    admin = await token_with_claims(client, roles=("admin",), duties=("support",))
    response = await client.get("/api/v1/admin/audit", params={"action": action}, headers=admin)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_sign_ins_and_failures_are_audited(client: Client) -> None:
    user = await make_user(client)
    wrong = {"phone": user.phone, "password": "not-the-password", "device": device()}
    assert (await client.post("/api/v1/auth/sign-in/password", json=wrong)).status_code == 401
    stranger = {"phone": new_phone(), "password": "whatever-123", "device": device()}
    assert (await client.post("/api/v1/auth/sign-in/password", json=stranger)).status_code == 401
    right = {"phone": user.phone, "password": DEFAULT_PASSWORD, "device": device()}
    assert (await client.post("/api/v1/auth/sign-in/password", json=right)).status_code == 200

    failures = await _audit(client, "identity.sign_in_failed")
    assert [f["outcome"] for f in failures] == ["failure", "failure"]
    assert {f["actor_id"] for f in failures} == {str(user.user_id), None}
    signed_in = [e for e in await _audit(client, "identity.signed_in") if e["actor_id"] == str(user.user_id)]
    assert len(signed_in) == 1
    assert user.phone not in str(failures + signed_in)


async def test_refresh_token_reuse_is_audited(client: Client) -> None:
    user = await make_user(client)
    await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    reuse = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert reuse.status_code == 401
    (event,) = await _audit(client, "identity.refresh_token_reused")
    assert event["outcome"] == "denied"
    assert event["object_id"] == str(user.user_id)


async def test_the_chain_verifies_after_security_events(client: Client) -> None:
    user = await make_user(client)
    bad = {"phone": user.phone, "password": "nope-nope-1", "device": device()}
    await client.post("/api/v1/auth/sign-in/password", json=bad)
    admin = await token_with_claims(client, roles=("admin",), duties=("superadmin",))
    report = (await client.get("/api/v1/admin/audit/verify", headers=admin)).json()
    assert report["ok"] is True, report
    assert report["rows_checked"] >= 2
