"""The ledger under forced concurrency, on SQLite and PostgreSQL.

Every task waits at a barrier so that all start together, and each pauses inside its transaction after
posting (holding whatever the posting locked) so that the others pile up behind it instead of running one
after another by luck.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from app.core.db import Database
from app.core.errors import AppError
from app.wallet import ledger
from app.wallet.ledger import Entry, credit, debit
from tests.wallet.conftest import assert_books_balance, booked, new_payable, new_wallet, new_wallets

PAUSE = 0.02
"""Seconds each transaction stays open after posting, holding its locks."""


def payment(src: uuid.UUID, dst: uuid.UUID, amount: int) -> Entry:
    return Entry(kind="transfer", postings=[debit(src, amount), credit(dst, amount)])


async def pay(db: Database, barrier: asyncio.Barrier, src: uuid.UUID, dst: uuid.UUID, amount: int) -> str:
    await barrier.wait()
    try:
        async with db.transaction() as session:
            await ledger.post(session, payment(src, dst, amount))
            await asyncio.sleep(PAUSE)
    except AppError as exc:
        return exc.kind.code
    return "ok"


async def test_fifty_simultaneous_debits_never_overdraw_a_wallet(db: Database) -> None:
    wallet = await new_wallet(db, 20_000)
    shop = await new_payable(db)
    barrier = asyncio.Barrier(50)

    outcomes = await asyncio.gather(*(pay(db, barrier, wallet, shop, 1_000) for _ in range(50)))

    assert outcomes.count("ok") == 20
    assert outcomes.count("insufficient_funds") == 30
    assert await booked(db, wallet) == 0
    assert await booked(db, shop) == 20_000
    await assert_books_balance(db)


async def test_transfers_both_ways_between_two_wallets_never_deadlock(db: Database) -> None:
    alice = await new_wallet(db, 1_000_000)
    bob = await new_wallet(db, 1_000_000)
    barrier = asyncio.Barrier(40)

    outcomes = await asyncio.gather(
        *(pay(db, barrier, *((alice, bob) if i % 2 == 0 else (bob, alice)), 1_000 + i) for i in range(40))
    )

    assert outcomes == ["ok"] * 40
    sent_by_alice = sum(1_000 + i for i in range(0, 40, 2))
    sent_by_bob = sum(1_000 + i for i in range(1, 40, 2))
    assert await booked(db, alice) == 1_000_000 - sent_by_alice + sent_by_bob
    assert await booked(db, bob) == 1_000_000 - sent_by_bob + sent_by_alice
    await assert_books_balance(db)


async def test_sixty_four_payers_crediting_one_account_all_land(db: Database) -> None:
    payers = await new_wallets(db, 64, 10_000)
    shop = await new_payable(db)
    barrier = asyncio.Barrier(64)

    outcomes = await asyncio.gather(*(pay(db, barrier, payer, shop, 7_000) for payer in payers))

    assert outcomes == ["ok"] * 64
    assert await booked(db, shop) == 64 * 7_000
    assert {await booked(db, payer) for payer in payers} == {3_000}
    await ledger.fold_balance_deltas(db)
    assert await booked(db, shop) == 64 * 7_000
    await assert_books_balance(db)


@pytest.mark.postgres_only
async def test_a_receiving_account_is_not_a_lock_but_a_wallet_is(db: Database) -> None:
    """While one payment to a shop is still open, another payer's payment to it commits; a second payment
    from the same wallet waits for the first."""
    first_payer, second_payer = await new_wallets(db, 2, 100_000)
    shop = await new_payable(db)
    posted, finish = asyncio.Event(), asyncio.Event()

    async def slow_payment() -> None:
        async with db.transaction() as session:
            await ledger.post(session, payment(first_payer, shop, 10_000))
            posted.set()
            await finish.wait()

    async def other_payment(src: uuid.UUID) -> None:
        async with db.transaction() as session:
            await ledger.post(session, payment(src, shop, 20_000))

    slow = asyncio.create_task(slow_payment())
    await posted.wait()

    await asyncio.wait_for(other_payment(second_payer), timeout=5)  # not blocked by the open payment

    same_wallet = asyncio.create_task(other_payment(first_payer))
    done, _ = await asyncio.wait({same_wallet}, timeout=0.5)
    assert not done, "a second debit of the same wallet must wait for the first"
    finish.set()
    await slow
    await same_wallet
    assert await booked(db, shop) == 50_000
    assert await booked(db, first_payer) == 70_000
    await assert_books_balance(db)
