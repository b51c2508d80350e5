"""The payment PIN: keyed hash, 5 wrong tries lock it, changing it needs a code (issue 4, item 5)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from typing import Any

import pytest
from litestar import Litestar
from sqlalchemy import select

from app.core.errors import AppError
from app.core.stores.memory import MemoryCounters
from app.identity.models import PaymentPin
from app.identity.runtime import runtime_of
from app.identity.service import verify_payment_pin
from tests.conftest import assert_problem
from tests.factories import in_app, make_user
from tests.identity.helpers import Client, ask_step_up, runtime
from tests.identity.memory_stores import stores_with_counters_down


async def _verify(app: Litestar, user_id: Any, pin: str) -> str:
    async with app.state.db.read() as session:
        try:
            await verify_payment_pin(session, user_id, pin)
        except AppError as exc:
            return exc.kind.code
    return "ok"


async def test_right_pin_passes_wrong_pin_counts_down_then_locks(app: Litestar) -> None:
    user = await make_user(app)
    assert await _verify(app, user.user_id, "246810") == "ok"
    lefts = []
    for _ in range(4):
        async with app.state.db.read() as session:
            with pytest.raises(AppError) as wrong:
                await verify_payment_pin(session, user.user_id, "111112")
        assert wrong.value.kind.code == "pin_invalid"
        lefts.append(wrong.value.extra["attempts_left"])
    assert lefts == [4, 3, 2, 1]
    async with app.state.db.read() as session:
        with pytest.raises(AppError) as fifth:
            await verify_payment_pin(session, user.user_id, "111112")
    assert fifth.value.kind.code == "pin_locked"
    assert fifth.value.extra["retry_after"] > 0
    assert fifth.value.extra["locked_until"] is not None
    # Locked: even the right PIN is refused until the lock ends.
    assert await _verify(app, user.user_id, "246810") == "pin_locked"
    await app.state.db.dispose()


async def test_a_right_pin_clears_earlier_mistakes(app: Litestar) -> None:
    user = await make_user(app)
    for _ in range(4):
        assert await _verify(app, user.user_id, "999990") == "pin_invalid"
    assert await _verify(app, user.user_id, "246810") == "ok"
    for _ in range(4):
        assert await _verify(app, user.user_id, "999990") == "pin_invalid"
    assert await _verify(app, user.user_id, "246810") == "ok"
    await app.state.db.dispose()


async def test_parallel_guesses_cannot_exceed_five(app: Litestar) -> None:
    """Twenty wrong guesses at once: at most five are compared (four answered pin_invalid, the fifth
    locks), every other one is refused unseen, and then even the right PIN is locked out."""
    user = await make_user(app)
    gate = asyncio.Event()

    async def guess(pin: str) -> str:
        await gate.wait()
        return await _verify(app, user.user_id, pin)

    tasks = [asyncio.create_task(guess(f"{n:06d}")) for n in range(100001, 100021)]
    await asyncio.sleep(0)
    gate.set()
    outcomes = await asyncio.gather(*tasks)
    assert outcomes.count("pin_invalid") <= 4
    assert outcomes.count("pin_invalid") + outcomes.count("pin_locked") == 20
    assert await _verify(app, user.user_id, "246810") == "pin_locked"
    await app.state.db.dispose()


async def test_lock_ends_after_the_configured_time(backend_env: Any) -> None:
    from app.main import create_app

    app = create_app(backend_env.settings(PIN_LOCK_SECONDS="1"))
    user = await make_user(app)
    for _ in range(5):
        await _verify(app, user.user_id, "000001")
    assert await _verify(app, user.user_id, "246810") == "pin_locked"
    await asyncio.sleep(2.1)
    assert await _verify(app, user.user_id, "246810") == "ok"
    await app.state.db.dispose()


async def test_no_pin(app: Litestar) -> None:
    user = await make_user(app, pin=None)
    assert await _verify(app, user.user_id, "246810") == "pin_not_set"
    await app.state.db.dispose()


async def test_stored_pin_is_useless_without_the_key(app: Litestar) -> None:
    """A leaked row does not give the PIN away: an unkeyed hash of any of the 10^6 PINs never matches it."""
    user = await make_user(app)
    async with app.state.db.read() as session:
        row = (
            await session.execute(select(PaymentPin).where(PaymentPin.user_id == user.user_id))
        ).scalar_one()
    assert b"246810" not in row.pin_hash
    candidates = {
        hashlib.sha256(b"246810").digest(),
        hashlib.sha256(row.salt + b"246810").digest(),
        hashlib.sha256(row.salt + user.user_id.bytes + b"246810").digest(),
        hmac.new(row.salt, b"246810", hashlib.sha256).digest(),
    }
    assert row.pin_hash not in candidates
    assert row.key_id == "dev1"
    await app.state.db.dispose()


async def test_two_people_with_one_pin_have_different_hashes(app: Litestar) -> None:
    first, second = await make_user(app), await make_user(app)
    async with app.state.db.read() as session:
        hashes = (
            await session.execute(
                select(PaymentPin.pin_hash).where(PaymentPin.user_id.in_([first.user_id, second.user_id]))
            )
        ).scalars()
        assert len(set(hashes)) == 2
    await app.state.db.dispose()


async def test_pin_keeps_working_with_the_shared_store_down(app: Litestar) -> None:
    """Money paths keep working without Redis: the PIN falls back to this process's counters."""
    user = await make_user(app)
    rt = runtime_of(app.state.db)
    rt.stores = stores_with_counters_down()
    rt.fallback_counters = MemoryCounters()
    assert await _verify(app, user.user_id, "246810") == "ok"
    outcomes = [await _verify(app, user.user_id, "135791") for _ in range(5)]
    assert outcomes == ["pin_invalid"] * 4 + ["pin_locked"]
    await app.state.db.dispose()


async def test_change_pin_needs_a_code(client: Client) -> None:
    user = await make_user(client)
    without = await client.put(
        "/api/v1/me/pin",
        json={"challenge_id": "00000000-0000-0000-0000-000000000000", "code": "123456", "pin": "802413"},
        headers=user.headers,
    )
    assert_problem(without, 422, "otp_expired")
    challenge_id, code = await ask_step_up(client, user.headers, user.phone, "pin_change")
    for weak in ("111111", "123456", "987654"):
        response = await client.put(
            "/api/v1/me/pin",
            json={"challenge_id": challenge_id, "code": code, "pin": weak},
            headers=user.headers,
        )
        assert_problem(response, 422, "pin_weak")
    response = await client.put(
        "/api/v1/me/pin",
        json={"challenge_id": challenge_id, "code": code, "pin": "802413"},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"is_set": True, "locked_until": None, "attempts_left": 5}
    assert await in_app(client, lambda: _verify(client.app, user.user_id, "802413")) == "ok"
    assert await in_app(client, lambda: _verify(client.app, user.user_id, "246810")) == "pin_invalid"


async def test_a_code_of_someone_else_does_not_change_my_pin(client: Client) -> None:
    me, other = await make_user(client), await make_user(client)
    challenge_id, code = await ask_step_up(client, other.headers, other.phone, "pin_change")
    response = await client.put(
        "/api/v1/me/pin",
        json={"challenge_id": challenge_id, "code": code, "pin": "802413"},
        headers=me.headers,
    )
    assert_problem(response, 422, "otp_expired")


async def test_changing_the_pin_clears_a_lock(client: Client) -> None:
    user = await make_user(client)
    for _ in range(5):
        await in_app(client, lambda: _verify(client.app, user.user_id, "000001"))
    state = (await client.get("/api/v1/me/pin", headers=user.headers)).json()
    assert state["locked_until"] is not None
    assert state["attempts_left"] == 0
    challenge_id, code = await ask_step_up(client, user.headers, user.phone, "pin_change")
    await client.put(
        "/api/v1/me/pin",
        json={"challenge_id": challenge_id, "code": code, "pin": "802413"},
        headers=user.headers,
    )
    assert await in_app(client, lambda: _verify(client.app, user.user_id, "802413")) == "ok"
    assert runtime(client).policy.pin_max_attempts == 5
