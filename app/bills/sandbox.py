"""Sandbox billers for development: Huế households' electricity, water, sanitation and tuition bills.

Nothing is random: a customer code always presents the same bills in the same month, so a demo, a mobile
developer and a test all see the same thing. The tariffs (``data/sandbox.json``) are illustrative but shaped
like the real ones. Codes ending in a special suffix play the unhappy paths (``404`` unknown customer,
``503`` biller down, ``000`` nothing due, ``409`` confirmation refused as already paid at a counter).
"""

from __future__ import annotations

import calendar
import hashlib
import json
from collections.abc import Callable
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.bills.clock import local_today
from app.bills.connectors import BillerAnswer, CustomerBills, PaymentConfirmation, PresentedBill
from app.bills.errors import BILLER_UNAVAILABLE, CUSTOMER_CODE_NOT_FOUND

__all__ = ["SandboxBiller", "sandbox_data"]

DATA = Path(__file__).with_name("data") / "sandbox.json"


@lru_cache(maxsize=1)
def sandbox_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA.read_text(encoding="utf-8"))
    return data


def _month_before(year: int, month: int, count: int = 1) -> tuple[int, int]:
    index = year * 12 + (month - 1) - count
    return index // 12, index % 12 + 1


def _tiered(quantity: int, tiers: list[list[int | None]]) -> int:
    """Price of ``quantity`` units under a step tariff: each step's units at that step's price."""
    total = 0
    left = quantity
    for size, price in tiers:
        assert price is not None
        used = left if size is None else min(left, size)
        total += used * price
        left -= used
        if left <= 0:
            break
    return total


def _percent(amount: int, percent: int) -> int:
    """``percent`` of ``amount`` in whole đồng, rounded half up."""
    return (amount * percent + 50) // 100


def _school_days(year: int, month: int) -> int:
    return sum(
        1 for day in range(1, calendar.monthrange(year, month)[1] + 1) if date(year, month, day).weekday() < 5
    )


class SandboxBiller:
    """A simulated biller presenting ``profile`` bills (see ``data/sandbox.json``)."""

    def __init__(self, biller_code: str, profile: str, *, today: Callable[[], date] | None = None) -> None:
        self.biller_code = biller_code
        self.profile_name = profile
        self.profile: dict[str, Any] = sandbox_data()["profiles"][profile]
        self._today = today or local_today

    def _seed(self, customer_code: str) -> int:
        digest = hashlib.sha256(f"{self.profile_name}:{customer_code}".encode()).digest()
        return int.from_bytes(digest[:8], "big")

    def _name(self, seed: int) -> str:
        data = sandbox_data()
        family = data["family_names"][seed % len(data["family_names"])]
        middle = data["middle_names"][(seed >> 8) % len(data["middle_names"])]
        given = data["given_names"][(seed >> 16) % len(data["given_names"])]
        return f"{family} {middle} {given}"

    def _latest_period(self, today: date) -> tuple[int, int]:
        """The newest period already billed on ``today``."""
        issue_day = int(self.profile["issue_day"])
        if self.profile["billing"] == "advance":
            year, month = today.year, today.month
            return (year, month) if today.day >= issue_day else _month_before(year, month)
        back = 1 if today.day >= issue_day else 2
        return _month_before(today.year, today.month, back)

    def _issue_date(self, year: int, month: int) -> date:
        if self.profile["billing"] == "advance":
            return date(year, month, int(self.profile["issue_day"]))
        next_year, next_month = _month_before(year, month, -1)
        return date(next_year, next_month, int(self.profile["issue_day"]))

    def bill_for(self, customer_code: str, year: int, month: int) -> PresentedBill:
        """The bill of ``customer_code`` for the period ``year``-``month``."""
        seed = self._seed(customer_code)
        p = self.profile
        fields: dict[str, Any] = {"month": month, "year": year}
        if "tiers" in p:
            quantity = int(p["quantity_min"]) + seed % int(p["quantity_spread"])
            quantity += (seed >> 24) % 7 + (month * 3) % 5
            if month in p["summer_months"]:
                quantity = quantity * int(p["summer_percent"]) // 100
            base = _tiered(quantity, p["tiers"])
            amount = base + _percent(base, int(p["fee_percent"])) + _percent(base, int(p["vat_percent"]))
            fields["quantity"] = quantity
        else:
            fees = p["flat_fees"]
            amount = int(fees[seed % len(fees)])
            if "meal_per_school_day" in p:
                days = _school_days(year, month)
                amount += days * int(p["meal_per_school_day"])
                fields["school_days"] = days
        issued = self._issue_date(year, month)
        return PresentedBill(
            external_id=f"{p['prefix']}-{customer_code}-{year:04d}{month:02d}",
            period=f"{year:04d}-{month:02d}",
            amount=amount,
            due_date=issued + timedelta(days=int(p["due_days"])),
            description=str(p["description_vi"]).format(**fields),
        )

    async def fetch_bills(self, customer_code: str) -> CustomerBills:
        if customer_code.endswith("404"):
            raise CUSTOMER_CODE_NOT_FOUND(
                f"Nhà cung cấp không có khách hàng mã {customer_code}",
                f"The biller has no customer {customer_code}",
                biller=self.biller_code,
            )
        if customer_code.endswith("503"):
            raise BILLER_UNAVAILABLE(
                "Hệ thống của nhà cung cấp tạm thời không phản hồi, vui lòng thử lại sau",
                "The biller's sandbox plays an outage for this code",
                biller=self.biller_code,
            )
        seed = self._seed(customer_code)
        name = self._name(seed)
        if customer_code.endswith("000"):
            return CustomerBills(customer_name=name, bills=[])
        year, month = self._latest_period(self._today())
        bills = [self.bill_for(customer_code, year, month)]
        if seed % 4 == 0:
            bills.insert(0, self.bill_for(customer_code, *_month_before(year, month)))
        return CustomerBills(customer_name=name, bills=bills)

    async def confirm_payment(self, confirmation: PaymentConfirmation) -> BillerAnswer:
        if confirmation.customer_code.endswith("409"):
            return BillerAnswer(
                accepted=False, reason="already_paid", message="Hóa đơn đã được thanh toán tại quầy"
            )
        reference = hashlib.sha256(confirmation.reference.encode()).hexdigest()[:12].upper()
        return BillerAnswer(accepted=True, biller_reference=f"SBX-{reference}")

    async def cancel_payment(self, reference: str, reason: str) -> BillerAnswer:
        return BillerAnswer(accepted=True)
