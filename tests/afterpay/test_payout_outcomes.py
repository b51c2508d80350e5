"""Payouts whose outcome the bank did not give at once: stored first, asked later, never sent twice; a failed
payout is reversed in the books and carried to the next day's settlement."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select, update

from app.bills.clock import local_today
from app.bills.models import Biller
from app.core.bank_transfer import SandboxBank, TransferStatus
from app.settlement import service as settlement
from app.settlement.models import Settlement
from app.wallet import ledger
from tests.afterpay.conftest import World
from tests.factories import make_user


async def _settlement(world: World, code: str, day: object) -> Settlement:
    async with world.db.read() as session:
        found = await session.scalar(
            select(Settlement).where(Settlement.payee_code == code, Settlement.business_day == day)
        )
    assert found is not None
    return found


async def test_unknown_outcomes_are_asked_later_and_a_failure_is_carried(world: World) -> None:
    # Given two billers whose banks time out: EVN's payout went through, HUEWACO's failed
    async with world.db.transaction() as session:
        for code, account in (("EVN_CPC_HUE", "0011008888"), ("HUEWACO", "0022009999")):
            await session.execute(
                update(Biller).where(Biller.code == code).values(settlement_account_number=account)
            )
    citizen = await make_user(world.app)
    await world.fund(citizen.user_id, 1_000_000)
    bills = [
        await world.bill("EVN_CPC_HUE", "PC03DD0123456", 210_000),
        await world.bill("HUEWACO", "0104567821", 90_000),
    ]
    assert (await world.pay(citizen, bills)).status_code == 201
    bank = SandboxBank()
    today = local_today()

    # When the day is settled, both sends time out: stored, booked, outcome unknown
    await settlement.settle_day(world.db, bank, today, kinds=("biller",))
    evn, water = await _settlement(world, "EVN_CPC_HUE", today), await _settlement(world, "HUEWACO", today)
    assert (evn.status, water.status) == ("unknown", "unknown")
    assert await world.balance(evn.account_id) == 0

    # Then the resolver asks the bank: EVN succeeded, HUEWACO failed and is reversed; nothing was resent
    await settlement.resolve_payouts(world.db, bank)
    evn, water = await _settlement(world, "EVN_CPC_HUE", today), await _settlement(world, "HUEWACO", today)
    assert evn.status == "succeeded"
    assert evn.bank_reference
    assert water.status == "failed"
    assert water.reversal_entry_id is not None
    assert bank.send_calls == 2
    assert len(bank.transfers) == 2
    assert await world.balance(water.account_id) == 90_000  # the money is owed again
    async with world.db.read() as session:
        assert (await ledger.check_books(session)).ok

    # And the next day's settlement carries the failed amount (paid to a corrected account)
    async with world.db.transaction() as session:
        await session.execute(
            update(Biller).where(Biller.code == "HUEWACO").values(settlement_account_number="0022001234")
        )
    tomorrow = today + timedelta(days=1)
    await settlement.settle_day(world.db, bank, tomorrow, kinds=("biller",))
    carried = await _settlement(world, "HUEWACO", tomorrow)
    assert (carried.carried, carried.amount, carried.status) == (90_000, 90_000, "succeeded")
    assert "carried" in carried.file_csv
    assert await world.balance(water.account_id) == 0
    assert bank.succeeded_total() == 300_000
    assert {r.status for _o, r in bank.transfers.values()} == {
        TransferStatus.SUCCEEDED,
        TransferStatus.FAILED,
    }


async def test_two_workers_settling_the_same_day_pay_each_biller_once(world: World) -> None:
    # Given a day with bills paid to two billers
    citizen = await make_user(world.app)
    await world.fund(citizen.user_id, 1_000_000)
    bills = [
        await world.bill("EVN_CPC_HUE", "PC03DD0123456", 210_000),
        await world.bill("HUEWACO", "0104567821", 90_000),
    ]
    assert (await world.pay(citizen, bills)).status_code == 201
    bank = SandboxBank()
    today = local_today()

    # When two workers settle it, the second starting while the first holds an uncommitted settlement
    inside = asyncio.Event()

    async def hold(_payee: str) -> None:
        inside.set()
        await asyncio.sleep(0.4)

    first = asyncio.create_task(settlement.settle_day(world.db, bank, today, kinds=("biller",), pause=hold))
    await asyncio.wait_for(inside.wait(), timeout=10)
    second = asyncio.create_task(settlement.settle_day(world.db, bank, today, kinds=("biller",)))
    created_first, created_second = await asyncio.gather(first, second)

    # Then each biller was paid once, by one settlement
    assert len(created_first) + len(created_second) == 2
    assert sorted(o.amount for o, _r in bank.transfers.values()) == [90_000, 210_000]
    assert bank.send_calls == 2
    async with world.db.read() as session:
        assert (await ledger.check_books(session)).ok
    for code in ("EVN_CPC_HUE", "HUEWACO"):
        assert await world.balance((await _settlement(world, code, today)).account_id) == 0
