"""`make run` shows a Huế household with unpaid bills of four billers, and can be loaded twice."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from app.bills import service
from app.bills.clock import local_today
from app.bills.demo import seed_bills, seed_saved_codes
from app.bills.models import Bill, Biller
from app.core.db import Database
from app.core.settings import Settings


async def test_demo_household(db: Database, settings: Settings) -> None:
    credentials: dict[str, Any] = {}
    await seed_bills(db, settings, credentials)
    await seed_bills(db, settings, credentials)
    async with db.read() as session:
        billers = (await session.scalars(select(Biller.category))).all()
        unpaid = (
            await session.execute(
                select(Biller.category, func.count(Bill.id))
                .join(Bill)
                .where(Bill.status == "unpaid")
                .group_by(Biller.category)
            )
        ).all()
    assert sorted(billers) == ["electricity", "sanitation_fee", "tuition", "water"]
    assert {category for category, count in unpaid if count} == {
        "electricity",
        "sanitation_fee",
        "tuition",
        "water",
    }
    assert len(credentials["bills"]["household_codes"]) == 5

    citizen = uuid.uuid4()
    saved = await seed_saved_codes(db, citizen)
    await seed_saved_codes(db, citizen)
    assert "Nhà bố mẹ" in {s.nickname for s in saved}
    assert len(await service.list_saved_codes(db, citizen)) == 5
    inbox = await service.inbox(db, citizen, today=local_today())
    categories = {
        item.biller.category
        for group in (inbox.overdue, inbox.due_soon, inbox.upcoming)
        for item in group.items
    }
    assert categories == {"electricity", "sanitation_fee", "tuition", "water"}
    assert inbox.unpaid_total > 0
