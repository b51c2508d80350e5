"""Verified, funded payers for the HTTP benches, made through the identity and wallet services."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import utcnow
from app.identity.models import Device
from app.identity.service import create_user, declare_identity, get_user, mark_verified, set_pin
from app.identity.tokens import DeviceInfo, TokenPair, open_session
from app.wallet import ledger
from app.wallet import service as wallet_service
from app.wallet.funding import record_source
from app.wallet.ledger import AccountType, Entry, credit, debit

__all__ = ["seed_payer"]

FUNDS = 10**11


async def seed_payer(session: AsyncSession, *, phone: str, cccd: str, full_name: str, pin: str) -> TokenPair:
    """A level-2 citizen with a PIN, a signed-in device old enough to escape the new-device limits, a linked
    debit card (a wallet with no linked source cannot pay) and a wallet holding :data:`FUNDS`."""
    user = await create_user(
        session,
        phone=phone,
        password="mat-khau-Hue-2025",
        full_name=None,
        roles=(("citizen", ""),),
        consents=("account", "ekyc"),
    )
    await declare_identity(session, user, full_name=full_name, cccd=cccd, date_of_birth=date(1990, 5, 17))
    await mark_verified(session, user, "desk", None)
    await set_pin(session, user.id, pin)
    user = await get_user(session, user.id)
    pair = await open_session(
        session, user, DeviceInfo(install_id=uuid.uuid4().hex, name="bench", platform="android"), "password"
    )
    await session.execute(
        update(Device)
        .where(Device.id == pair.device_id)
        .values(first_seen_at=utcnow() - timedelta(days=30))
        .execution_options(synchronize_session=False)
    )
    await record_source(
        session,
        user.id,
        kind="card",
        fingerprint="card:pm_card_visa_debit",
        payment_method="pm_card_visa_debit",
        funding="debit",
    )
    wallet = await wallet_service.wallet_account_id(session, user.id, create=True)
    bank = ledger.system_account(AccountType.GUARANTEE_BANK)
    await ledger.post(session, Entry(kind="topup", postings=[debit(bank, FUNDS), credit(wallet, FUNDS)]))
    return pair
