"""Demo wallets: each verified demo citizen gets a wallet with a starting balance (idempotent), and has
linked the sandbox debit card ``pm_card_visa_debit`` and a sandbox bank account (a wallet with no linked
source can neither pay nor transfer; the sandbox issuer and bank confirm the demo holders' CCCD).

The starting balance is a clearly labelled ``demo_funding`` entry from the guarantee-bank mirror account (as
if the citizen had topped up from a bank), so the books still balance: the bank mirror shows the money the
provider would hold for them.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from app.core.db import Database
from app.core.settings import Settings
from app.identity.service import get_user_brief
from app.wallet import funding, ledger, service
from app.wallet.ledger import AccountType, Entry, credit, debit
from app.wallet.models import LedgerEntry

__all__ = ["DEMO_STARTING_BALANCE", "seed_wallets"]

DEMO_STARTING_BALANCE = 5_000_000
"""Đồng put in each demo citizen's wallet (enough for the demo household's bills and a few transfers)."""


async def seed_wallets(db: Database, settings: Settings, credentials: dict[str, Any]) -> None:
    """Open a wallet for every verified demo citizen and fund it once."""
    funded: list[str] = []
    for entry in list(credentials.values()):
        if not isinstance(entry, dict) or not entry.get("user_id") or entry.get("identity_level", 0) < 2:
            continue
        user_id = uuid.UUID(entry["user_id"])
        async with db.transaction() as session:
            brief = await get_user_brief(session, user_id)
            if brief is None or "citizen" not in brief.roles:
                continue
            wallet = await service.open_wallet(session, user_id)
            card = await funding.record_source(
                session,
                user_id,
                kind="card",
                fingerprint="card:pm_card_visa_debit",
                payment_method="pm_card_visa_debit",
                brand="visa",
                last4="5556",
                funding="debit",
            )
            account_number = f"0071{user_id.int % 10**9:09d}"
            if account_number.endswith(("0000", "1111", "7777", "8888", "9999")):
                account_number = account_number[:-1] + "5"
            bank = await funding.record_source(
                session,
                user_id,
                kind="bank_account",
                fingerprint=f"bank:970436:{account_number}",
                bank_bin="970436",
                account_number=account_number,
                account_name="DEMO HUE-S",
                last4=account_number[-4:],
            )
            entry["card_funding_source_id"] = str(card.id)
            entry["bank_funding_source_id"] = str(bank.id)
            reference = f"demo_funding:{user_id}"
            done = await session.scalar(select(LedgerEntry.id).where(LedgerEntry.reference == reference))
            if done is None:
                bank_mirror = ledger.system_account(AccountType.GUARANTEE_BANK)
                await ledger.post(
                    session,
                    Entry(
                        kind="demo_funding",
                        postings=[
                            debit(bank_mirror, DEMO_STARTING_BALANCE),
                            credit(wallet, DEMO_STARTING_BALANCE),
                        ],
                        reference=reference,
                        description="Số dư mẫu (dữ liệu demo) / Demo starting balance",
                        metadata={"demo": True},
                    ),
                )
        entry["wallet_balance"] = DEMO_STARTING_BALANCE if done is None else "unchanged (already funded)"
        funded.append(entry["phone"])
    credentials["wallet"] = {
        "funded": funded,
        "starting_balance": DEMO_STARTING_BALANCE,
        "transfer": "POST /api/v1/me/wallet/transfers with phone, amount, pin and an Idempotency-Key",
        "topup": "POST /api/v1/me/wallet/topups with funding_source_id (card_funding_source_id), amount "
        "and an Idempotency-Key; sandbox card pm_card_visa_debit (see README: Demo)",
        "withdraw": "POST /api/v1/me/wallet/withdrawals with funding_source_id (bank_funding_source_id), "
        "amount, pin and an Idempotency-Key",
    }
