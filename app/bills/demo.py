"""Demo data of bills: Huế's billers (sandboxed) and a household's unpaid bills of four billers.

:func:`seed_bills` is a :data:`app.demo.DemoSeeder`. The household's saved codes belong to a citizen whose id
identity creates: call :func:`seed_saved_codes` with it.
"""

from __future__ import annotations

import json
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

import msgspec

from app.bills import service
from app.bills.gateway import BillerGateway
from app.bills.schemas import BillerIn, SavedCode
from app.core.db import Database
from app.core.settings import Settings

__all__ = ["demo_data", "seed_bills", "seed_saved_codes"]

DATA = Path(__file__).with_name("data") / "hue_billers.json"


@lru_cache(maxsize=1)
def demo_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA.read_text(encoding="utf-8"))
    return data


async def seed_bills(db: Database, settings: Settings, credentials: dict[str, Any]) -> None:
    """Declare the Huế billers and fetch the demo household's bills from their sandboxes (idempotent)."""
    data = demo_data()
    for code, declaration in data["billers"].items():
        await service.put_biller(
            db, code, msgspec.convert(declaration, BillerIn), production=settings.is_production
        )
    gateway = BillerGateway(allow_sandbox=not settings.is_production)
    try:
        for entry in data["household"]:
            await service.refresh_customer(db, gateway, entry["biller"], entry["customer_code"])
    finally:
        await gateway.aclose()
    credentials["bills"] = {
        "billers": sorted(data["billers"]),
        "household_codes": [
            {"biller": e["biller"], "customer_code": e["customer_code"], "nickname": e["nickname"]}
            for e in data["household"]
        ],
        "sandbox_codes": "customer codes ending in 404 (unknown), 503 (biller down), 000 (nothing due)",
    }
    household = credentials.get("citizen")
    if isinstance(household, dict) and household.get("user_id"):
        await seed_saved_codes(db, uuid.UUID(household["user_id"]), allow_sandbox=not settings.is_production)
        credentials["bills"]["saved_for"] = household["phone"]


async def seed_saved_codes(
    db: Database, user_id: uuid.UUID, *, allow_sandbox: bool = True
) -> list[SavedCode]:
    """Save the demo household's codes, with their nicknames, for the citizen ``user_id`` (idempotent)."""
    gateway = BillerGateway(allow_sandbox=allow_sandbox)
    try:
        return [
            await service.save_code(db, gateway, user_id, e["biller"], e["customer_code"], e["nickname"])
            for e in demo_data()["household"]
        ]
    finally:
        await gateway.aclose()
