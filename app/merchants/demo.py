"""Demo merchant for ``make run``: a Huế noodle shop with one store, its owner and a cashier, approved, with
its static QR printed (idempotent)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import select

from app.core.db import Database, new_id
from app.core.security import Caller
from app.core.settings import Settings
from app.identity.models import PaymentPin
from app.identity.service import (
    create_user,
    declare_identity,
    find_user_id_by_phone,
    grant_role,
    mark_verified,
    set_pin,
)
from app.merchants import service
from app.merchants.models import Merchant, MerchantStore
from app.merchants.schemas import MerchantIn, StoreIn

__all__ = ["seed_merchants"]

OWNER = {
    "phone": "+84905100021",
    "password": "HueS-merchant-2025",
    "pin": "864200",
    "full_name": "Hồ Thị Xuân",
    "cccd": "046170054321",
    "date_of_birth": date(1970, 4, 8),
}
CASHIER = {"phone": "+84905100022", "password": "HueS-cashier-2025", "full_name": "Đặng Văn Lộc"}
TAX_CODE = "046170054321"
"""A household business registers with its owner's 12-digit personal ID number (DOMAIN.md)."""


async def _person(db: Database, person: dict[str, Any], *, verified: bool) -> uuid.UUID:
    async with db.transaction() as session:
        user_id = await find_user_id_by_phone(session, person["phone"])
        if user_id is None:
            user = await create_user(
                session,
                phone=person["phone"],
                password=person["password"],
                full_name=person["full_name"],
                roles=(("citizen", ""),),
                consents=("account", "ekyc"),
            )
            if verified:
                await declare_identity(
                    session,
                    user,
                    full_name=person["full_name"],
                    cccd=person["cccd"],
                    date_of_birth=person["date_of_birth"],
                )
                await mark_verified(session, user, "desk", None)
            user_id = user.id
        if person.get("pin") and await session.get(PaymentPin, user_id) is None:
            await set_pin(session, user_id, person["pin"])
    return user_id


async def seed_merchants(db: Database, settings: Settings, credentials: dict[str, Any]) -> None:
    """Quán Bún Bò O Xuân (household business, MCC 5812) at 11 Lý Thường Kiệt, approved."""
    owner_id = await _person(db, OWNER, verified=True)
    cashier_id = await _person(db, CASHIER, verified=False)
    async with db.transaction() as session:
        merchant = await session.scalar(select(Merchant).where(Merchant.tax_code == TAX_CODE))
        if merchant is None:
            owner = Caller(user_id=owner_id, session_id=new_id(), roles=frozenset({"citizen"}))
            created = await service.register_merchant(
                session,
                owner,
                MerchantIn(
                    name="Quán Bún Bò O Xuân",
                    tax_code=TAX_CODE,
                    mcc="5812",
                    city="Huế",
                    settlement_bank_bin="970436",
                    settlement_account_number="0041000123456",
                    settlement_account_name="HO THI XUAN",
                    stores=[StoreIn(code="QUAY-1", name="Quầy chính", address="11 Lý Thường Kiệt, Huế")],
                ),
                settings,
            )
            admin_id = uuid.UUID(credentials["admin"]["user_id"]) if "admin" in credentials else owner_id
            admin = Caller(user_id=admin_id, session_id=new_id(), roles=frozenset({"admin"}))
            await service.decide(session, admin, created.id, "approve", "demo", None)
            merchant = await service.get_merchant(session, created.id)
        await grant_role(session, cashier_id, "merchant_cashier", scope=merchant.id)
        store = await session.scalar(select(MerchantStore).where(MerchantStore.merchant_id == merchant.id))
        assert store is not None
        payload = service.store_qr_payload(merchant, store, settings)
        merchant_id, store_id = merchant.id, store.id
    base = f"/api/v1/merchants/{merchant_id}"
    credentials["merchant_owner"] = {
        "user_id": str(owner_id),
        "phone": OWNER["phone"],
        "password": OWNER["password"],
        "pin": OWNER["pin"],
        "identity_level": 2,
        "note": "owner of Quán Bún Bò O Xuân (merchant_owner)",
    }
    credentials["merchant_cashier"] = {
        "user_id": str(cashier_id),
        "phone": CASHIER["phone"],
        "password": CASHIER["password"],
        "note": "cashier of Quán Bún Bò O Xuân (merchant_cashier)",
    }
    credentials["merchants"] = {
        "merchant_id": str(merchant_id),
        "name": "Quán Bún Bò O Xuân",
        "static_qr": payload,
        "static_qr_png": f"{base}/stores/{store_id}/qr/png",
        "pay": "POST /api/v1/qr/preview {payload}, then POST /api/v1/qr/payments {payload, amount, pin} "
        "with an Idempotency-Key (as a demo citizen)",
        "stream": f"GET {base}/stream (owner or cashier, SSE)",
    }
