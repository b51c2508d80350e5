"""The demo seeder gives verified demo citizens a funded wallet, once, with books that balance."""

from __future__ import annotations

import uuid
from typing import Any

from app.core.errors import AppError
from app.wallet import ledger, service
from app.wallet.demo import DEMO_STARTING_BALANCE
from tests.factories import in_app


async def test_demo_wallets_are_funded_once_and_books_balance(client: Any) -> None:
    from app.identity.bootstrap import seed_identity
    from app.wallet.demo import seed_wallets

    db = client.app.state.db
    credentials: dict[str, Any] = {}
    await in_app(client, lambda: seed_identity(db, db.settings, credentials))
    await in_app(client, lambda: seed_wallets(db, db.settings, credentials))
    await in_app(client, lambda: seed_wallets(db, db.settings, credentials))  # idempotent
    citizen = uuid.UUID(credentials["citizen"]["user_id"])

    async def check() -> tuple[int, bool, bool]:
        async with db.read() as session:
            balance = (await service.wallet_balance(session, citizen)).balance
            officer = uuid.UUID(credentials["officer"]["user_id"])
            try:
                await service.wallet_balance(session, officer)
                officer_has_wallet = True
            except AppError:
                officer_has_wallet = False
            return balance, officer_has_wallet, (await ledger.check_books(session)).ok

    balance, officer_has_wallet, books_ok = await in_app(client, check)
    assert balance == DEMO_STARTING_BALANCE
    assert not officer_has_wallet
    assert books_ok
    assert credentials["citizen"]["phone"] in credentials["wallet"]["funded"]
