"""Helpers for the wallet tests: a database per test, wallets funded from the card gateway."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from app.core.db import Database
from app.core.settings import Settings
from app.wallet import ledger
from app.wallet.ledger import AccountType, Entry, credit, debit
from app.wallet.models import LedgerEntry


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings)
    try:
        yield database
    finally:
        await database.dispose()


async def new_wallet(db: Database, funds: int = 0) -> uuid.UUID:
    """A citizen's wallet, topped up with ``funds`` đồng through the card gateway's clearing account."""
    async with db.transaction() as session:
        wallet = await ledger.ensure_account(session, AccountType.CITIZEN_WALLET, uuid.uuid4())
        if funds:
            clearing = ledger.system_account(AccountType.GATEWAY_CLEARING)
            await ledger.post(
                session, Entry(kind="topup", postings=[debit(clearing, funds), credit(wallet, funds)])
            )
    return wallet


async def new_payable(db: Database, account_type: AccountType = AccountType.MERCHANT_PAYABLE) -> uuid.UUID:
    async with db.transaction() as session:
        return await ledger.ensure_account(session, account_type, uuid.uuid4())


async def available(db: Database, account: uuid.UUID) -> int:
    async with db.read() as session:
        return (await ledger.balance(session, account)).available


async def booked(db: Database, account: uuid.UUID) -> int:
    async with db.read() as session:
        return (await ledger.balance(session, account)).balance


async def entry_count(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(LedgerEntry)) or 0)


async def assert_books_balance(db: Database) -> None:
    async with db.read() as session:
        report = await ledger.check_books(session)
    assert report.ok, report


async def new_wallets(db: Database, count: int, funds: int) -> list[uuid.UUID]:
    """``count`` wallets with ``funds`` each, opened and topped up in one transaction."""
    clearing = ledger.system_account(AccountType.GATEWAY_CLEARING)
    wallets = []
    async with db.transaction() as session:
        for _ in range(count):
            wallet = await ledger.ensure_account(session, AccountType.CITIZEN_WALLET, uuid.uuid4())
            await ledger.post(
                session, Entry(kind="topup", postings=[debit(clearing, funds), credit(wallet, funds)])
            )
            wallets.append(wallet)
    return wallets
