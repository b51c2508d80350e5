"""The ledger's rules (DESIGN.md "Money and the ledger"), on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError

from app.core.db import Database, utcnow
from app.core.errors import AppError
from app.wallet import ledger
from app.wallet.errors import LedgerError
from app.wallet.ledger import AccountType, Entry, Posting, credit, debit
from app.wallet.models import LedgerAccount, LedgerBalanceDelta, LedgerHold, LedgerPosting
from tests.conftest import Backend
from tests.wallet.conftest import (
    assert_books_balance,
    available,
    booked,
    entry_count,
    new_payable,
    new_wallet,
)


def transfer(src: uuid.UUID, dst: uuid.UUID, amount: int, kind: str = "transfer", **extra: str) -> Entry:
    return Entry(kind=kind, postings=[debit(src, amount), credit(dst, amount)], **extra)


async def test_transfer_moves_money_and_records_running_balances(db: Database) -> None:
    alice = await new_wallet(db, 500_000)
    bob = await new_wallet(db, 20_000)

    async with db.transaction() as session:
        posted = await ledger.post(
            session, transfer(alice, bob, 120_000, reference="t-1", description="tiền ăn")
        )

    assert posted.debited_account_id == alice
    assert posted.debited_available == 380_000
    assert await booked(db, alice) == 380_000
    assert await booked(db, bob) == 140_000
    async with db.read() as session:
        lines = (
            await session.execute(
                select(LedgerPosting.account_id, LedgerPosting.amount, LedgerPosting.balance_after)
                .where(LedgerPosting.entry_id == posted.entry_id)
                .order_by(LedgerPosting.id)
            )
        ).all()
    assert [tuple(line) for line in lines] == [(alice, -120_000, 380_000), (bob, 120_000, 140_000)]
    await assert_books_balance(db)


async def test_overdraft_is_refused_and_nothing_is_written(db: Database) -> None:
    alice = await new_wallet(db, 50_000)
    bob = await new_wallet(db)
    before = await entry_count(db)

    with pytest.raises(AppError) as refused:
        async with db.transaction() as session:
            await ledger.post(session, transfer(alice, bob, 50_001))

    assert refused.value.kind.code == "insufficient_funds"
    assert refused.value.extra["available"] == 50_000
    assert await entry_count(db) == before
    assert await booked(db, alice) == 50_000
    assert await booked(db, bob) == 0


async def test_refusal_leaves_the_transaction_usable(db: Database) -> None:
    """A refused posting writes nothing, so the caller may go on (e.g. record the failure) and commit."""
    alice = await new_wallet(db, 10_000)
    bob = await new_wallet(db)
    async with db.transaction() as session:
        with pytest.raises(AppError):
            await ledger.post(session, transfer(alice, bob, 20_000))
        await ledger.post(session, transfer(alice, bob, 10_000))
    assert await booked(db, bob) == 10_000
    await assert_books_balance(db)


async def test_whole_balance_can_be_spent_to_exactly_zero(db: Database) -> None:
    alice = await new_wallet(db, 75_000)
    shop = await new_payable(db)
    async with db.transaction() as session:
        await ledger.post(session, transfer(alice, shop, 75_000, kind="qr_payment"))
    assert await booked(db, alice) == 0


async def test_malformed_entries_never_reach_the_database(db: Database) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    malformed = {
        "one posting": [Posting(a, -100)],
        "unbalanced": [Posting(a, -100), Posting(b, 99)],
        "zero amounts": [Posting(a, 0), Posting(b, 0)],
        "float amounts": [Posting(a, -10.0), Posting(b, 10.0)],  # type: ignore[arg-type]
    }
    for name, postings in malformed.items():
        with pytest.raises(LedgerError):
            async with db.transaction() as session:
                await ledger.post(session, Entry(kind="transfer", postings=postings))
        assert await entry_count(db) == 0, name


async def test_posting_to_an_unknown_account_fails_whole(db: Database) -> None:
    alice = await new_wallet(db, 10_000)
    with pytest.raises(LedgerError):
        async with db.transaction() as session:
            await ledger.post(session, transfer(alice, uuid.uuid4(), 1_000))
    assert await booked(db, alice) == 10_000
    await assert_books_balance(db)


async def test_receive_only_accounts_take_no_row_update_but_their_balance_is_exact(
    db: Database, backend_env: Backend
) -> None:
    shop = await new_payable(db)
    payers = [await new_wallet(db, 100_000) for _ in range(3)]
    for payer in payers:
        async with db.transaction() as session:
            await ledger.post(session, transfer(payer, shop, 30_000, kind="qr_payment"))

    assert await booked(db, shop) == 90_000
    async with db.read() as session:
        row_balance = await session.scalar(select(LedgerAccount.balance).where(LedgerAccount.id == shop))
        pending = await session.scalar(select(func.count()).select_from(LedgerBalanceDelta))
    if backend_env.is_postgres:
        # The payments appended deltas and left the shop's row alone: no payment locked it.
        assert row_balance == 0
        assert pending == 3 + 3  # the shop's three credits and the clearing account's three top-ups
    else:
        assert row_balance == 90_000

    folded = await ledger.fold_balance_deltas(db)

    assert folded == (6 if backend_env.is_postgres else 0)
    assert await booked(db, shop) == 90_000
    async with db.read() as session:
        assert await session.scalar(select(LedgerAccount.balance).where(LedgerAccount.id == shop)) == 90_000
        assert await session.scalar(select(func.count()).select_from(LedgerBalanceDelta)) == 0
    await assert_books_balance(db)


async def test_a_payable_may_go_negative_when_a_refund_exceeds_it(db: Database) -> None:
    """Money already settled to the merchant is refunded: the payable is a debt netted at next settlement."""
    alice = await new_wallet(db, 0)
    shop = await new_payable(db)
    async with db.transaction() as session:
        await ledger.post(
            session, Entry(kind="refund", postings=[debit(shop, 40_000), credit(alice, 40_000)])
        )
    assert await booked(db, shop) == -40_000
    assert await booked(db, alice) == 40_000
    await assert_books_balance(db)


async def test_system_accounts_exist_with_their_normal_sides(db: Database) -> None:
    async with db.read() as session:
        result = await session.execute(select(LedgerAccount.type, LedgerAccount.normal_side))
        rows = {row.type: row.normal_side for row in result}
    assert rows["guarantee_bank"] == "debit"
    assert rows["gateway_clearing"] == "debit"
    assert rows["gateway_fees"] == "debit"
    assert rows["fee_revenue"] == "credit"
    assert rows["suspense"] == "credit"


async def test_accounts_per_owner_are_created_once(db: Database) -> None:
    owner = uuid.uuid4()
    async with db.transaction() as session:
        first = await ledger.ensure_account(session, AccountType.BILLER_PAYABLE, owner)
        again = await ledger.ensure_account(session, AccountType.BILLER_PAYABLE, owner)
        treasury = await ledger.ensure_account(session, AccountType.TREASURY_PAYABLE, owner)
    async with db.transaction() as session:
        later = await ledger.ensure_account(session, AccountType.BILLER_PAYABLE, owner)
    assert first == again == later
    assert treasury != first
    with pytest.raises(LedgerError):
        async with db.transaction() as session:
            await ledger.ensure_account(session, AccountType.CITIZEN_WALLET)


async def test_a_rolled_back_account_is_not_remembered(db: Database) -> None:
    owner = uuid.uuid4()

    async def failing_request() -> None:
        async with db.transaction() as session:
            await ledger.ensure_account(session, AccountType.CITIZEN_WALLET, owner)
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError):
        await failing_request()
    async with db.transaction() as session:
        wallet = await ledger.ensure_account(session, AccountType.CITIZEN_WALLET, owner)
    async with db.read() as session:
        assert await session.scalar(select(LedgerAccount.id).where(LedgerAccount.id == wallet)) == wallet


async def test_hold_reduces_available_and_capture_spends_it(db: Database) -> None:
    alice = await new_wallet(db, 100_000)
    biller = await new_payable(db, AccountType.BILLER_PAYABLE)

    async with db.transaction() as session:
        hold_id = await ledger.hold(session, alice, 70_000, kind="bill_payment", reference="bill-1")
    assert await available(db, alice) == 30_000
    assert await booked(db, alice) == 100_000

    # The held money cannot be spent elsewhere ...
    with pytest.raises(AppError) as refused:
        async with db.transaction() as session:
            await ledger.post(session, transfer(alice, biller, 30_001))
    assert refused.value.extra["available"] == 30_000

    # ... but the capture may use it, and capture less than was held: the rest is freed.
    async with db.transaction() as session:
        await ledger.capture(session, hold_id, transfer(alice, biller, 65_000, kind="bill_payment"))
    assert await booked(db, alice) == 35_000
    assert await available(db, alice) == 35_000
    async with db.read() as session:
        status = await session.scalar(select(LedgerHold.status).where(LedgerHold.id == hold_id))
    assert status == "captured"

    # A hold is captured once.
    with pytest.raises(AppError) as again:
        async with db.transaction() as session:
            await ledger.capture(session, hold_id, transfer(alice, biller, 1_000))
    assert again.value.kind.code == "hold_not_active"
    await assert_books_balance(db)


async def test_release_gives_the_money_back_once(db: Database) -> None:
    alice = await new_wallet(db, 10_000)
    async with db.transaction() as session:
        hold_id = await ledger.hold(session, alice, 10_000, kind="withdrawal")
    assert await available(db, alice) == 0

    async with db.transaction() as session:
        after = await ledger.release(session, hold_id)
    assert after.available == 10_000
    with pytest.raises(AppError) as again:
        async with db.transaction() as session:
            await ledger.release(session, hold_id)
    assert again.value.kind.code == "hold_not_active"
    await assert_books_balance(db)


async def test_hold_beyond_available_is_refused(db: Database) -> None:
    alice = await new_wallet(db, 10_000)
    async with db.transaction() as session:
        await ledger.hold(session, alice, 6_000, kind="withdrawal")
    with pytest.raises(AppError) as refused:
        async with db.transaction() as session:
            await ledger.hold(session, alice, 4_001, kind="withdrawal")
    assert refused.value.extra["available"] == 4_000


async def test_expired_holds_are_released(db: Database) -> None:
    alice = await new_wallet(db, 10_000)
    async with db.transaction() as session:
        await ledger.hold(session, alice, 3_000, kind="topup", expires_at=utcnow() - timedelta(minutes=1))
        await ledger.hold(session, alice, 2_000, kind="topup", expires_at=utcnow() + timedelta(hours=1))
    assert await ledger.release_expired_holds(db) == 1
    assert await available(db, alice) == 8_000
    await assert_books_balance(db)


async def test_reversal_is_a_new_mirror_entry_and_happens_once(db: Database) -> None:
    alice = await new_wallet(db, 50_000)
    bob = await new_wallet(db)
    async with db.transaction() as session:
        posted = await ledger.post(session, transfer(alice, bob, 20_000))

    async with db.transaction() as session:
        reversal = await ledger.reverse(session, posted.entry_id, description="sai người nhận")

    assert reversal.entry_id != posted.entry_id
    assert await booked(db, alice) == 50_000
    assert await booked(db, bob) == 0
    with pytest.raises(AppError) as again:
        async with db.transaction() as session:
            await ledger.reverse(session, posted.entry_id)
    assert again.value.kind.code == "conflict"
    # The original entry is still there: nothing is ever updated or deleted.
    async with db.read() as session:
        count = await session.scalar(
            select(func.count()).where(LedgerPosting.entry_id == posted.entry_id).select_from(LedgerPosting)
        )
    assert count == 2
    await assert_books_balance(db)


async def test_reversal_cannot_overdraw_the_receiver(db: Database) -> None:
    alice = await new_wallet(db, 50_000)
    bob = await new_wallet(db)
    shop = await new_payable(db)
    async with db.transaction() as session:
        posted = await ledger.post(session, transfer(alice, bob, 20_000))
        await ledger.post(session, transfer(bob, shop, 15_000))
    with pytest.raises(AppError) as refused:
        async with db.transaction() as session:
            await ledger.reverse(session, posted.entry_id)
    assert refused.value.kind.code == "insufficient_funds"


async def test_database_refuses_a_negative_wallet_even_without_the_ledger(db: Database) -> None:
    """The CHECK constraint is the last line: no code path can store a wallet below zero."""
    alice = await new_wallet(db, 1_000)
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            await session.execute(
                update(LedgerAccount)
                .where(LedgerAccount.id == alice)
                .values(balance=LedgerAccount.balance - 1_001)
            )


@pytest.mark.sqlite_only
async def test_sqlite_writes_need_a_write_transaction(db: Database) -> None:
    alice, bob = await new_wallet(db, 1_000), await new_wallet(db)
    with pytest.raises(LedgerError):
        async with db.read() as session:
            await ledger.post(session, transfer(alice, bob, 10))


@pytest.mark.postgres_only
async def test_postgres_posting_joins_the_callers_transaction(db: Database) -> None:
    """The one-round-trip call runs inside the session's transaction: a rollback undoes it."""
    alice, bob = await new_wallet(db, 1_000), await new_wallet(db)

    async def failing_request() -> None:
        async with db.transaction() as session:
            await ledger.post(session, transfer(alice, bob, 400))
            in_tx = await session.scalar(
                text("SELECT balance FROM ledger_accounts WHERE id = :id"), {"id": alice}
            )
            assert in_tx == 600
            raise RuntimeError("later step failed")

    with pytest.raises(RuntimeError):
        await failing_request()
    assert await booked(db, alice) == 1_000
    assert await booked(db, bob) == 0
