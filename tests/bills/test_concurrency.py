"""Two presentations of the same bills at once (two lookups, a lookup and a refresh) store each bill once."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

from sqlalchemy import select

from app.bills import service
from app.bills.connectors import PresentedBill
from app.bills.models import Bill, Biller
from app.core.db import Database
from app.core.settings import Settings

BILLS = [PresentedBill(external_id="HEP-2025-06", period="2025-06", amount=30000, due_date=date(2025, 7, 5))]


async def _present(db: Database, biller: Biller, amount: int) -> None:
    bills = [PresentedBill(external_id=b.external_id, period=b.period, amount=amount) for b in BILLS]
    async with db.transaction() as session:
        await service.store_presented(
            session,
            biller,
            "VS00000001",
            bills,
            customer_name="Lê Văn Tâm",
            source="fetch",
            withdraw_absent=True,
        )


async def test_overlapping_presentations_store_one_bill(
    db: Database, settings: Settings, billers: dict[str, Any]
) -> None:
    biller = billers["HEPCO_BATCH"]
    other = Database(settings)
    try:
        async with db.transaction() as first:
            await service.store_presented(
                first,
                biller,
                "VS00000001",
                BILLS,
                customer_name="Lê Văn Tâm",
                source="fetch",
                withdraw_absent=True,
            )
            second = asyncio.create_task(_present(other, biller, 31000))
            await asyncio.sleep(0.3)
            assert not second.done(), "the second presentation waits for the first to commit"
        await asyncio.wait_for(second, 10)
    finally:
        await other.dispose()
    async with db.read() as session:
        stored = (await session.scalars(select(Bill).where(Bill.customer_code == "VS00000001"))).all()
    assert [(b.external_id, b.amount, b.status) for b in stored] == [("HEP-2025-06", 31000, "unpaid")]
