"""Access tokens are checked completely; refresh tokens rotate and a reused one revokes its session; logout,
signing out elsewhere and removing a device end sessions at once (issue 4, item 4)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from typing import Any

import jwt
import pytest

from app.core.security import Caller, issue_access_token
from app.core.settings import KeyRing, Settings
from tests.conftest import assert_problem
from tests.factories import DEFAULT_PASSWORD, make_user
from tests.identity.helpers import Client, bearer, device


def _claims(user_id: uuid.UUID, session_id: uuid.UUID, settings: Settings, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(user_id),
        "sid": str(session_id),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "roles": ["citizen", "admin"],
        "duties": ["superadmin"],
        "lvl": 2,
    }
    claims.update(changes)
    return claims


def _sign(claims: dict[str, Any], key: bytes, kid: str = "dev1", alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def _flip(signature: str) -> str:
    """Change one character that carries signature bits (not the last, which may hold padding bits only)."""
    middle = len(signature) // 2
    return signature[:middle] + ("A" if signature[middle] != "A" else "B") + signature[middle + 1 :]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def _me(client: Client, token: str) -> Any:
    return await client.get("/api/v1/me", headers=bearer(token))


async def test_a_genuine_token_works(client: Client, settings: Settings) -> None:
    user = await make_user(client)
    token = _sign(
        _claims(user.user_id, user.session_id or uuid.uuid4(), settings), settings.jwt_keys.active_key
    )
    assert (await _me(client, token)).status_code == 200


async def test_forged_tokens_are_refused(client: Client, settings: Settings) -> None:
    user = await make_user(client)
    sid = user.session_id or uuid.uuid4()
    good = _claims(user.user_id, sid, settings)
    key = settings.jwt_keys.active_key
    unsigned = (
        _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "dev1"}).encode())
        + "."
        + _b64(json.dumps(good).encode())
    )
    header, payload, signature = user.access_token.split(".")
    tampered_payload = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    tampered_payload["roles"] = ["citizen", "admin"]
    forged = {
        "alg none": unsigned + ".",
        "alg none, no dot": unsigned,
        "wrong key": _sign(good, b"x" * 48),
        "unknown kid": _sign(good, key, kid="other"),
        "wrong audience": _sign(_claims(user.user_id, sid, settings, aud="another-app"), key),
        "wrong issuer": _sign(_claims(user.user_id, sid, settings, iss="someone-else"), key),
        "expired": _sign(_claims(user.user_id, sid, settings, exp=int(time.time()) - 60), key),
        "not yet valid": _sign(_claims(user.user_id, sid, settings, nbf=int(time.time()) + 600), key),
        "no session": _sign({k: v for k, v in good.items() if k != "sid"}, key),
        "unknown session": _sign(_claims(user.user_id, uuid.uuid4(), settings), key),
        "session of someone else": _sign(_claims(uuid.uuid4(), sid, settings), key),
        "tampered payload": f"{header}.{_b64(json.dumps(tampered_payload).encode())}.{signature}",
        "tampered signature": f"{header}.{payload}.{_flip(signature)}",
        "garbage": "not-a-jwt",
    }
    for name, token in forged.items():
        response = await _me(client, token)
        assert response.status_code == 401, f"{name}: {response.status_code} {response.text}"
        assert_problem(response, 401, "unauthenticated")
    assert_problem(await client.get("/api/v1/me"), 401, "unauthenticated")
    assert_problem(
        await client.get("/api/v1/me", headers={"Authorization": "Basic abc"}), 401, "unauthenticated"
    )


async def test_a_rotated_out_key_no_longer_verifies(client: Client, settings: Settings) -> None:
    user = await make_user(client)
    old = Settings(jwt_keys=KeyRing.parse("JWT_KEYS", "old1:" + "o" * 40))
    token, _ = issue_access_token(
        old,
        Caller(
            user_id=user.user_id, session_id=user.session_id or uuid.uuid4(), roles=frozenset({"citizen"})
        ),
    )
    assert_problem(await _me(client, token), 401, "unauthenticated")


async def test_refresh_rotates(client: Client) -> None:
    user = await make_user(client)
    first = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert first.status_code == 200, first.text
    pair = first.json()
    assert pair["refresh_token"] != user.refresh_token
    assert pair["session_id"] == str(user.session_id)
    assert (await _me(client, pair["access_token"])).status_code == 200
    second = await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert second.status_code == 200


async def test_reusing_a_spent_refresh_token_revokes_the_family(client: Client) -> None:
    user = await make_user(client)
    fresh = (await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})).json()
    # Someone replays the spent token: the whole session dies.
    reuse = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert_problem(reuse, 401, "refresh_token_reused")
    # The legitimate client's newer refresh token and both access tokens stop working too.
    assert_problem(
        await client.post("/api/v1/auth/refresh", json={"refresh_token": fresh["refresh_token"]}),
        401,
        "invalid_refresh_token",
    )
    assert_problem(await _me(client, fresh["access_token"]), 401, "unauthenticated")
    assert_problem(await _me(client, user.access_token), 401, "unauthenticated")


async def test_unknown_refresh_token(client: Client) -> None:
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": "rt_" + "x" * 43})
    assert_problem(response, 401, "invalid_refresh_token")


@pytest.mark.parametrize("parallel", [8])
async def test_concurrent_refreshes_with_one_token(app: Any, parallel: int) -> None:
    """Two clients racing with one refresh token: at most one wins, and the race itself is a reuse."""
    from app.core.errors import AppError
    from app.identity.errors import INVALID_REFRESH_TOKEN, REFRESH_TOKEN_REUSED
    from app.identity.tokens import rotate_refresh_token

    user = await make_user(app)
    db = app.state.db
    gate = asyncio.Event()

    async def attempt() -> str:
        await gate.wait()
        try:
            await rotate_refresh_token(db, user.refresh_token)
        except AppError as exc:
            return exc.kind.code
        return "ok"

    tasks = [asyncio.create_task(attempt()) for _ in range(parallel)]
    await asyncio.sleep(0)
    gate.set()
    outcomes = await asyncio.gather(*tasks)
    assert outcomes.count("ok") <= 1
    assert "refresh_token_reused" in outcomes
    assert set(outcomes) <= {"ok", REFRESH_TOKEN_REUSED.code, INVALID_REFRESH_TOKEN.code}
    from app.identity.models import AuthSession

    async with db.read() as session:
        revoked = (await session.get(AuthSession, user.session_id)).revoked_at  # type: ignore[union-attr]
    assert revoked is not None
    await db.dispose()


async def test_logout_ends_the_session(client: Client) -> None:
    user = await make_user(client)
    assert (await client.post("/api/v1/auth/logout", headers=user.headers)).status_code == 204
    assert_problem(await _me(client, user.access_token), 401, "unauthenticated")
    assert_problem(
        await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}),
        401,
        "invalid_refresh_token",
    )


async def _second_session(client: Client, phone: str, name: str = "iPhone 15") -> dict[str, Any]:
    response = await client.post(
        "/api/v1/auth/sign-in/password",
        json={"phone": phone, "password": DEFAULT_PASSWORD, "device": device(name)},
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def test_sign_out_other_devices(client: Client) -> None:
    user = await make_user(client)
    other = await _second_session(client, user.phone)
    third = await _second_session(client, user.phone, "Tablet")
    response = await client.post("/api/v1/auth/sign-out-others", headers=user.headers)
    assert response.json() == {"signed_out_sessions": 2}
    assert (await _me(client, user.access_token)).status_code == 200
    for tokens in (other, third):
        assert_problem(await _me(client, tokens["access_token"]), 401, "unauthenticated")


async def test_devices_are_listed_flagged_and_removable(client: Client) -> None:
    user = await make_user(client)
    other = await _second_session(client, user.phone)
    assert other["device_is_new"] is True
    devices = (await client.get("/api/v1/me/devices", headers=user.headers)).json()
    by_name = {d["name"]: d for d in devices}
    assert set(by_name) == {"pytest", "iPhone 15"}
    assert by_name["pytest"]["is_current"] is True
    assert by_name["pytest"]["is_new"] is False
    assert by_name["iPhone 15"]["is_new"] is True
    assert by_name["iPhone 15"]["is_current"] is False
    removed = await client.delete(
        f"/api/v1/me/devices/{by_name['iPhone 15']['device_id']}", headers=user.headers
    )
    assert removed.status_code == 204
    assert_problem(await _me(client, other["access_token"]), 401, "unauthenticated")
    assert_problem(
        await client.post("/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}),
        401,
        "invalid_refresh_token",
    )
    names = [d["name"] for d in (await client.get("/api/v1/me/devices", headers=user.headers)).json()]
    assert names == ["pytest"]


async def test_a_removed_device_is_new_again(client: Client) -> None:
    user = await make_user(client)
    install = uuid.uuid4().hex
    first = (
        await client.post(
            "/api/v1/auth/sign-in/password",
            json={"phone": user.phone, "password": DEFAULT_PASSWORD, "device": device("Old", install)},
        )
    ).json()
    await client.delete(f"/api/v1/me/devices/{first['device_id']}", headers=user.headers)
    again = (
        await client.post(
            "/api/v1/auth/sign-in/password",
            json={"phone": user.phone, "password": DEFAULT_PASSWORD, "device": device("Old", install)},
        )
    ).json()
    assert again["device_id"] == first["device_id"]
    assert again["device_is_new"] is True


async def test_two_sign_ins_from_one_new_installation_at_once(app: Any) -> None:
    from app.identity.service import sign_in_with_password
    from app.identity.tokens import DeviceInfo

    user = await make_user(app)
    info = DeviceInfo(install_id=uuid.uuid4().hex, name="Galaxy", platform="android")
    gate = asyncio.Event()

    async def sign_in() -> uuid.UUID:
        await gate.wait()
        pair = await sign_in_with_password(
            app.state.db, phone=user.phone, password=DEFAULT_PASSWORD, device=info
        )
        return pair.device_id

    tasks = [asyncio.create_task(sign_in()) for _ in range(4)]
    await asyncio.sleep(0)
    gate.set()
    device_ids = await asyncio.gather(*tasks)
    assert len(set(device_ids)) == 1, "one installation is one device"
    await app.state.db.dispose()
