"""With the shared store (Redis) down, one-time codes and sign-in answer 503 rather than run unlimited;
sessions already open keep working (DESIGN.md)."""

from __future__ import annotations

from tests.conftest import assert_problem
from tests.factories import DEFAULT_PASSWORD, make_user
from tests.identity.helpers import Client, device, runtime
from tests.identity.memory_stores import DownCounters, memory_stores


async def test_codes_and_sign_in_fail_closed(client: Client) -> None:
    user = await make_user(client)
    runtime(client).stores = memory_stores(DownCounters())
    for path, body in (
        ("/api/v1/auth/otp", {"phone": user.phone, "purpose": "sign_in"}),
        (
            "/api/v1/auth/sign-in/password",
            {"phone": user.phone, "password": DEFAULT_PASSWORD, "device": device()},
        ),
        (
            "/api/v1/auth/sign-in/otp",
            {"challenge_id": "00000000-0000-0000-0000-000000000001", "code": "123456", "device": device()},
        ),
        (
            "/api/v1/auth/register",
            {
                "challenge_id": "00000000-0000-0000-0000-000000000001",
                "code": "123456",
                "device": device(),
                "consents": ["account"],
            },
        ),
    ):
        response = await client.post(path, json=body)
        problem = assert_problem(response, 503, "service_unavailable")
        assert response.headers["retry-after"] == "30", path
        assert problem["retry_after"] == 30
    # Already signed-in people are not affected: their token and refresh token still work.
    assert (await client.get("/api/v1/me", headers=user.headers)).status_code == 200
    refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert refreshed.status_code == 200
