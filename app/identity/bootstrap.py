"""Accounts made outside the API: the first superadmin (CLI) and the demo people (``hue demo seed``)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from app.core.db import Database
from app.core.settings import Settings
from app.core.stores.memory import memory_stores
from app.identity import runtime as identity_runtime
from app.identity.models import PaymentPin
from app.identity.phone import normalize_phone
from app.identity.service import (
    Address,
    create_user,
    declare_identity,
    find_user_id_by_phone,
    get_user,
    grant_role,
    mark_verified,
    set_address,
    set_pin,
)

__all__ = ["DEMO_AGENCY_ID", "create_superadmin", "seed_identity"]

DEMO_AGENCY_ID = "THUAN-HOA"
"""The commune-level agency the demo officer serves: the code of the Thuận Hóa ward centre in the services
module's default agencies (an officer's scope is an agency code)."""


def _ensure_installed(db: Database, settings: Settings) -> None:
    if "identity" not in db.extensions:
        identity_runtime.install(db, settings, stores=memory_stores())


async def create_superadmin(
    db: Database, settings: Settings, *, phone: str, password: str, full_name: str
) -> uuid.UUID:
    """Create a superadmin account, or give the duty to the existing account of ``phone`` (its password is
    left unchanged then)."""
    _ensure_installed(db, settings)
    normalized = normalize_phone(phone)
    async with db.transaction() as session:
        user_id = await find_user_id_by_phone(session, normalized)
        if user_id is None:
            user = await create_user(
                session,
                phone=normalized,
                password=password,
                full_name=full_name,
                roles=(("admin", "superadmin"),),
            )
            return user.id
        await grant_role(session, user_id, "admin", scope="superadmin")
        return user_id


_PEOPLE: list[dict[str, Any]] = [
    {
        "key": "citizen",
        "phone": "+84905100001",
        "password": "HueS-demo-2025",
        "pin": "246810",
        "full_name": "Trần Thị Hương",
        "cccd": "046188012345",
        "date_of_birth": date(1988, 3, 12),
        "address": Address(
            line="12 Lê Lợi", commune="Phường Thuận Hóa", province="Thành phố Huế", postal_code="49000"
        ),
        "roles": (("citizen", ""),),
        "level": 2,
        "note": "Huế household member, verified (level 2), PIN set",
    },
    {
        "key": "citizen2",
        "phone": "+84905100002",
        "password": "HueS-demo-2025",
        "pin": "135790",
        "full_name": "Lê Văn Nam",
        "cccd": "046095067890",
        "date_of_birth": date(1995, 11, 2),
        "address": Address(
            line="45 Chi Lăng", commune="Phường Phú Xuân", province="Thành phố Huế", postal_code="49000"
        ),
        "roles": (("citizen", ""),),
        "level": 2,
        "note": "second citizen, verified (level 2), PIN set",
    },
    {
        "key": "officer",
        "phone": "+84905100003",
        "password": "HueS-officer-2025",
        "pin": None,
        "full_name": "Nguyễn Văn Bình",
        "roles": (("officer", DEMO_AGENCY_ID),),
        "level": 0,
        "note": "one-stop officer of Phường Thuận Hóa",
        "agency_id": DEMO_AGENCY_ID,
    },
    {
        "key": "admin",
        "phone": "+84905100004",
        "password": "HueS-admin-2025",
        "pin": None,
        "full_name": "Phạm Minh Quân",
        "roles": (("admin", "superadmin"),),
        "level": 0,
        "note": "admin with the superadmin duty",
    },
]


async def seed_identity(db: Database, settings: Settings, credentials: dict[str, Any]) -> None:
    """The demo people (idempotent: existing accounts are left as they are)."""
    _ensure_installed(db, settings)
    for person in _PEOPLE:
        async with db.transaction() as session:
            user_id = await find_user_id_by_phone(session, person["phone"])
            if user_id is None:
                user = await create_user(
                    session,
                    phone=person["phone"],
                    password=person["password"],
                    full_name=person["full_name"],
                    roles=person["roles"],
                    consents=("account", "ekyc"),
                )
                if person["level"] >= 1:
                    await declare_identity(
                        session,
                        user,
                        full_name=person["full_name"],
                        cccd=person["cccd"],
                        date_of_birth=person["date_of_birth"],
                    )
                    await set_address(session, user, person["address"])
                if person["level"] >= 2:
                    await mark_verified(session, user, "desk", None)
                user_id = user.id
            if person["pin"] and await session.get(PaymentPin, user_id) is None:
                await set_pin(session, user_id, person["pin"])
            user = await get_user(session, user_id)
        entry: dict[str, Any] = {
            "user_id": str(user_id),
            "phone": person["phone"],
            "password": person["password"],
            "identity_level": user.identity_level,
            "note": person["note"],
        }
        if person["pin"]:
            entry["pin"] = person["pin"]
        if "agency_id" in person:
            entry["agency_id"] = person["agency_id"]
        credentials[person["key"]] = entry
    credentials["sign_in"] = "POST /api/v1/auth/sign-in/password with phone, password and a device"
    credentials["sms_codes"] = "GET /api/v1/dev/sms shows one-time codes (development only)"
