"""Wallet test helpers: fund a citizen's wallet through the guarantee bank mirror (so the books balance)."""

from __future__ import annotations

import uuid
from typing import Any

from app.core.db import Database
from app.wallet import ledger, service
from app.wallet.ledger import AccountType, Entry, credit, debit
from tests.factories import in_app


async def fund(client: Any, user_id: uuid.UUID, amount: int) -> uuid.UUID:
    """Open ``user_id``'s wallet and put ``amount`` đồng in it (a top-up mirrored on the bank account)."""
    db: Database = client.app.state.db

    async def run() -> uuid.UUID:
        async with db.transaction() as session:
            wallet = await service.wallet_account_id(session, user_id, create=True)
            if amount:
                bank = ledger.system_account(AccountType.GUARANTEE_BANK)
                await ledger.post(
                    session, Entry(kind="topup", postings=[debit(bank, amount), credit(wallet, amount)])
                )
            return wallet

    return await in_app(client, run)


async def balance_of(client: Any, account_id: uuid.UUID) -> int:
    db: Database = client.app.state.db

    async def run() -> int:
        async with db.read() as session:
            return (await ledger.balance(session, account_id)).balance

    return await in_app(client, run)
