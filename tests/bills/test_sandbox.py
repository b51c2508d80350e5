"""Sandbox billers present believable Huế household bills, the same ones every time for a code."""

from __future__ import annotations

from datetime import date

import pytest

from app.bills.connectors import PaymentConfirmation
from app.bills.sandbox import SandboxBiller
from app.core.db import utcnow
from app.core.errors import AppError

JUNE_20 = date(2025, 6, 20)


def biller(profile: str, today: date = JUNE_20) -> SandboxBiller:
    return SandboxBiller(f"SBX_{profile.upper()}", profile, today=lambda: today)


async def test_same_code_same_bills() -> None:
    first = await biller("electricity").fetch_bills("PC03DD0123456")
    again = await biller("electricity").fetch_bills("PC03DD0123456")
    other = await biller("electricity").fetch_bills("PC03HH0765432")
    assert first == again
    assert first.customer_name
    assert first.bills
    assert [b.external_id for b in first.bills] != [b.external_id for b in other.bills]


@pytest.mark.parametrize(
    ("profile", "low", "high"),
    [
        ("electricity", 100_000, 3_000_000),  # a household's month: ~90 to ~600 kWh at 2,000-3,500 đ
        ("water", 40_000, 800_000),
        ("sanitation", 15_000, 60_000),
        ("tuition", 1_000_000, 4_000_000),
    ],
)
async def test_amounts_are_plausible_for_a_household(profile: str, low: int, high: int) -> None:
    sandbox = biller(profile)
    for n in range(40):
        for bill in (await sandbox.fetch_bills(f"HS{n:06d}1")).bills:
            assert isinstance(bill.amount, int)
            assert low <= bill.amount <= high, (profile, bill)


async def test_electricity_is_billed_after_the_month_and_due_later() -> None:
    bills = (await biller("electricity").fetch_bills("PC03DD0123456")).bills
    latest = bills[-1]
    assert latest.period == "2025-05", "on 20 June the May consumption has been billed"
    assert latest.due_date is not None
    assert latest.due_date > date(2025, 6, 1)
    assert "kWh" in (latest.description or "")


async def test_before_the_issue_day_the_previous_month_is_latest() -> None:
    bills = (await biller("electricity", date(2025, 6, 3)).fetch_bills("PC03DD0123456")).bills
    assert bills[-1].period == "2025-04"


async def test_tuition_is_billed_for_the_current_month() -> None:
    bills = (await biller("tuition").fetch_bills("HS250731")).bills
    assert bills[-1].period == "2025-06"


async def test_some_households_also_owe_last_month() -> None:
    sandbox = biller("water")
    counts = {len((await sandbox.fetch_bills(f"01045678{n:02d}")).bills) for n in range(40)}
    assert counts == {1, 2}


async def test_special_codes_play_the_unhappy_paths() -> None:
    sandbox = biller("electricity")
    with pytest.raises(AppError) as unknown:
        await sandbox.fetch_bills("PC03DD0123404")
    assert unknown.value.kind.code == "customer_code_not_found"
    with pytest.raises(AppError) as down:
        await sandbox.fetch_bills("PC03DD0123503")
    assert down.value.kind.code == "biller_unavailable"
    assert (await sandbox.fetch_bills("PC03DD0123000")).bills == []


async def test_confirmations() -> None:
    sandbox = biller("water")
    paid = PaymentConfirmation(
        reference="p1", external_id="HWC-1", customer_code="0104567821", amount=1, paid_at=utcnow()
    )
    accepted = await sandbox.confirm_payment(paid)
    assert accepted.accepted
    assert accepted.biller_reference
    refused = await sandbox.confirm_payment(
        PaymentConfirmation(
            reference="p2", external_id="HWC-2", customer_code="0104567409", amount=1, paid_at=utcnow()
        )
    )
    assert not refused.accepted
    assert refused.reason == "already_paid"
    assert (await sandbox.cancel_payment("p1", "refund")).accepted
