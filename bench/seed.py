"""A fresh application database for the benchmarks: migrated, with funded wallets and one busy shop.

The opening balances are one balanced journal entry (the card gateway's clearing account against every
wallet), so the books check at the end of a run covers the seed as well.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from app.core.migrate import upgrade
from app.wallet.ledger.base import SYSTEM_ACCOUNT_IDS, AccountType
from bench.pg import HOT_WALLET_BALANCE, dsn_for, sqlalchemy_url

WALLETS = 10_000

_WALLETS = """
INSERT INTO ledger_accounts (id, created_at, key, type, owner_id, currency, normal_side, allow_negative,
                             balance, held)
SELECT w.id, now(), 'citizen_wallet:' || w.owner, 'citizen_wallet', w.owner, 'VND', 'credit', false, $2, 0
  FROM (SELECT gen_random_uuid() AS id, gen_random_uuid() AS owner FROM generate_series(1, $1)) w
"""
_ENTRY = """
INSERT INTO ledger_entries (id, created_at, kind, reference, description, metadata)
VALUES ($1, now(), 'opening', 'bench', 'opening balances', '{}')
"""
_POSTINGS = """
INSERT INTO ledger_postings (entry_id, account_id, amount, balance_after, created_at)
SELECT $1::uuid, $2::uuid, -(count(*) * $3::bigint), NULL::bigint, now()
  FROM ledger_accounts WHERE type = 'citizen_wallet'
UNION ALL
SELECT $1::uuid, a.id, $3::bigint, $3::bigint, now() FROM ledger_accounts a WHERE a.type = 'citizen_wallet'
"""
_CLEARING = """
UPDATE ledger_accounts SET balance = balance - (SELECT count(*) * $2 FROM ledger_accounts
                                                 WHERE type = 'citizen_wallet')
 WHERE id = $1
"""
_SHOP = """
INSERT INTO ledger_accounts (id, created_at, key, type, owner_id, currency, normal_side, allow_negative,
                             balance, held)
VALUES ($1, now(), $3, 'merchant_payable', $2, 'VND', 'credit', true, 0, 0)
"""


async def _seed(database: str, wallets: int) -> None:
    conn = await asyncpg.connect(dsn_for(database))
    clearing = SYSTEM_ACCOUNT_IDS[AccountType.GATEWAY_CLEARING]
    try:
        async with conn.transaction():
            await conn.execute(_WALLETS, wallets, HOT_WALLET_BALANCE)
            entry = uuid.uuid4()
            await conn.execute(_ENTRY, entry)
            await conn.execute(_POSTINGS, entry, clearing, HOT_WALLET_BALANCE)
            await conn.execute(_CLEARING, clearing, HOT_WALLET_BALANCE)
            owner = uuid.uuid4()
            await conn.execute(_SHOP, uuid.uuid4(), owner, f"merchant_payable:{owner}")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def seed_app_database(database: str, wallets: int = WALLETS) -> None:
    upgrade(sqlalchemy_url(database))
    asyncio.run(_seed(database, wallets))
