"""With Redis down, one-time codes and sign-in answer 503 rather than run unlimited, while signed-in people,
token refresh and payment PIN checks keep working (DESIGN.md). A private redis-server is killed mid-test."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from app.core.errors import AppError
from app.identity.service import verify_payment_pin
from tests.conftest import Backend, assert_problem
from tests.core.test_ratelimit import PrivateRedis, private_redis  # noqa: F401 - the fixture
from tests.factories import DEFAULT_PASSWORD, in_app, make_user
from tests.identity.helpers import device


async def test_codes_and_sign_in_fail_closed_money_keeps_going(
    backend_env: Backend,
    private_redis: PrivateRedis,  # noqa: F811
) -> None:
    from app.main import create_app

    app = create_app(backend_env.settings(REDIS_URL=private_redis.url, REDIS_COOLDOWN_SECONDS="0.2"))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        user = await make_user(client)
        assert (
            await client.post("/api/v1/auth/otp", json={"phone": user.phone, "purpose": "sign_in"})
        ).status_code == 202

        private_redis.kill()

        for path, body in (
            ("/api/v1/auth/otp", {"phone": user.phone, "purpose": "sign_in"}),
            (
                "/api/v1/auth/sign-in/password",
                {"phone": user.phone, "password": DEFAULT_PASSWORD, "device": device()},
            ),
            (
                "/api/v1/auth/sign-in/otp",
                {
                    "challenge_id": "00000000-0000-0000-0000-000000000001",
                    "code": "123456",
                    "device": device(),
                },
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
            problem = assert_problem(response, 503, "limiter_unavailable")
            assert response.headers["retry-after"] == str(problem["retry_after"]), path
        step_up = await client.post("/api/v1/me/otp", json={"purpose": "pin_change"}, headers=user.headers)
        assert_problem(step_up, 503, "limiter_unavailable")

        # People already signed in are not affected: their token and their refresh token still work.
        assert (await client.get("/api/v1/me", headers=user.headers)).status_code == 200
        assert (
            await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
        ).status_code == 200

        # The payment PIN keeps working, still locking after 5 wrong tries (this process's counters).
        async def verify(pin: str) -> str:
            async with app.state.db.read() as session:
                try:
                    await verify_payment_pin(session, user.user_id, pin)
                except AppError as exc:
                    return exc.kind.code
            return "ok"

        assert await in_app(client, lambda: verify("246810")) == "ok"
        outcomes = [await in_app(client, lambda: verify("975310")) for _ in range(5)]
        assert outcomes == ["pin_invalid"] * 4 + ["pin_locked"]
        assert await in_app(client, lambda: verify("246810")) == "pin_locked"
