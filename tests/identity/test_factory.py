"""The shared factory gives a person as the issue describes them: level, PIN, roles, a working token."""

from __future__ import annotations

from litestar import Litestar

from app.identity.pin import verify_payment_pin
from app.identity.service import device_is_new, find_user_id_by_phone, get_user_brief, identity_level
from tests.factories import make_user


async def test_make_user_defaults(app: Litestar) -> None:
    handle = await make_user(app)
    async with app.state.db.read() as session:
        assert await identity_level(session, handle.user_id) == 2
        assert await find_user_id_by_phone(session, handle.phone) == handle.user_id
        brief = await get_user_brief(session, handle.user_id)
        assert brief is not None
        assert brief.roles == frozenset({"citizen"})
        assert handle.session_id is not None
        assert await device_is_new(session, handle.session_id) is False
        await verify_payment_pin(session, handle.user_id, "246810")


async def test_make_officer_and_new_device(app: Litestar) -> None:
    handle = await make_user(
        app, roles=("officer",), agency_id="hue-phu-xuan", level=1, new_device=True, pin=None
    )
    async with app.state.db.read() as session:
        assert await identity_level(session, handle.user_id) == 1
        assert handle.session_id is not None
        assert await device_is_new(session, handle.session_id) is True
