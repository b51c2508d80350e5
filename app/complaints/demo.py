"""Demo of what follows a payment: an auto-pay mandate on the demo citizen's electricity code, and an open
complaint about a water bill they paid (idempotent)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from app.bills import autopay
from app.bills.autopay_models import AutopayMandate
from app.bills.models import Bill, Biller, SavedCustomerCode
from app.bills.payments import PayItem, pay_bills
from app.complaints import service as complaints
from app.complaints.models import Complaint
from app.complaints.schemas import ComplaintIn
from app.core.db import Database
from app.core.security import Caller
from app.core.settings import Settings

__all__ = ["seed_after_payment"]


async def seed_after_payment(db: Database, settings: Settings, credentials: dict[str, Any]) -> None:
    """Mandate on ``EVN_CPC_HUE`` (3 days before, up to 1,500,000 đ) and a logged complaint on a paid bill."""
    citizen = credentials.get("citizen")
    if not isinstance(citizen, dict) or not citizen.get("user_id") or not citizen.get("pin"):
        return
    user_id, pin = uuid.UUID(citizen["user_id"]), str(citizen["pin"])
    caller = Caller(user_id=user_id, session_id=uuid.uuid4(), roles=frozenset({"citizen"}), identity_level=2)
    shown: dict[str, Any] = {}
    async with db.transaction() as session:
        saved = await session.scalar(
            select(SavedCustomerCode)
            .join(Biller, Biller.id == SavedCustomerCode.biller_id)
            .where(SavedCustomerCode.user_id == user_id, Biller.code == "EVN_CPC_HUE")
            .order_by(SavedCustomerCode.created_at)
            .limit(1)
        )
        if saved is not None:
            mandate = await session.scalar(
                select(AutopayMandate).where(AutopayMandate.saved_code_id == saved.id)
            )
            if mandate is None:
                view = await autopay.confirm_mandate(
                    session,
                    user_id=user_id,
                    saved_code_id=saved.id,
                    days_before=3,
                    max_amount=1_500_000,
                    pin=pin,
                )
                shown["mandate_id"] = str(view.id)
            else:
                shown["mandate_id"] = str(mandate.id)
            shown["mandate"] = f"EVN_CPC_HUE {saved.customer_code}: 3 days before due, up to 1.500.000 đ"
    async with db.transaction() as session:
        existing = await session.scalar(select(Complaint).where(Complaint.user_id == user_id).limit(1))
        if existing is None:
            bill = await session.scalar(
                select(Bill)
                .join(Biller, Biller.id == Bill.biller_id)
                .where(Biller.code == "HUEWACO", Bill.status == "unpaid", Bill.owner_user_id.is_(None))
                .order_by(Bill.due_date)
                .limit(1)
            )
            if bill is not None:
                await pay_bills(
                    session,
                    caller=caller,
                    items=[PayItem(bill.id)],
                    pin=pin,
                    receipt_keys=settings.receipt_keys,
                )
                view_c = await complaints.open_complaint(
                    session,
                    settings,
                    caller,
                    ComplaintIn(
                        kind="bill",
                        payment_id=str(bill.id),
                        reason="wrong_amount",
                        description="Chỉ số đồng hồ nước tháng này cao bất thường, đề nghị kiểm tra lại.",
                        amount=max(1, bill.amount // 2),
                    ),
                )
                shown["complaint"] = (
                    f"{view_c.code} (logged; support: GET /api/v1/admin/complaints as the admin)"
                )
        else:
            shown["complaint"] = f"{existing.code} ({existing.status})"
    shown["settlements"] = "GET /api/v1/admin/settlements as the admin (finance duty); job settlement.daily"
    credentials["after_payment"] = shown
