"""The console's merchant desk (:class:`app.console.desks.MerchantDesk`) over the merchants module's service
functions: the same review list, look-up and decision (rules, role grant, audit) as the admin API
(``/api/v1/admin/merchants``). Installed by ``create_app``."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.console.desks import MerchantRow
from app.core.db import Database
from app.core.security import Caller
from app.identity.phone import mask_phone
from app.identity.service import get_user_brief
from app.merchants import service
from app.merchants.models import Merchant

__all__ = ["MerchantServiceDesk"]


async def _rows(session: AsyncSession, merchants: list[Merchant]) -> list[MerchantRow]:
    phones: dict[uuid.UUID, str | None] = {}  # one identity look-up per owner
    rows = []
    for m in merchants:
        if m.owner_id not in phones:
            brief = await get_user_brief(session, m.owner_id)
            phones[m.owner_id] = mask_phone(brief.phone) if brief and brief.phone else None
        rows.append(
            MerchantRow(
                id=m.id,
                name=m.name,
                tax_code=m.tax_code,
                status=m.status,
                owner_phone_masked=phones[m.owner_id],
                mdr_bps=m.mdr_bps if m.status != "pending" else None,
                created_at=m.created_at,
            )
        )
    return rows


class MerchantServiceDesk:
    """Merchant review for support (the console's guard checks the duty, as the API's does)."""

    async def list_merchants(
        self, db: Database, caller: Caller, *, status: str, limit: int
    ) -> list[MerchantRow]:
        async with db.read() as session:
            return await _rows(session, await service.list_merchants_by_status(session, status, limit=limit))

    async def find_merchant(self, db: Database, caller: Caller, query: str) -> list[MerchantRow]:
        async with db.read() as session:
            return await _rows(session, await service.find_merchants(session, query))

    async def decide(
        self, db: Database, caller: Caller, merchant_id: uuid.UUID, *, action: str, reason: str
    ) -> None:
        async with db.transaction() as session:
            await service.decide(session, caller, merchant_id, action, reason, None)
