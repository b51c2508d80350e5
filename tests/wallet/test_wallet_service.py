"""pay_from_wallet / refund_to_wallet: level 2, PIN, one entry, refusals write nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from app.core.db import Database
from app.core.errors import AppError
from app.wallet import ledger, limits, service
from app.wallet.ledger import AccountType
from tests.factories import in_app, make_user
from tests.wallet.helpers import balance_of, fund


async def _pay(client: Any, payer: Any, credits: list[tuple[uuid.UUID, int]], *, pin: str = "246810") -> Any:
    db: Database = client.app.state.db

    async def run() -> Any:
        async with db.transaction() as session:
            return await service.pay_from_wallet(
                session,
                payer_id=payer.user_id,
                session_id=payer.session_id,
                pin=pin,
                category="electricity",
                limit_exempt=True,
                credits=credits,
                kind="bill_payment",
                reference="bill-1",
                description="Tiền điện",
                metadata={"bill": "1"},
            )

    return await in_app(client, run)


async def _payable(client: Any) -> uuid.UUID:
    db: Database = client.app.state.db

    async def run() -> uuid.UUID:
        async with db.transaction() as session:
            return await ledger.ensure_account(session, AccountType.BILLER_PAYABLE, uuid.uuid4())

    return await in_app(client, run)


async def _code(client: Any, payer: Any, credits: list[tuple[uuid.UUID, int]], **kw: Any) -> str:
    with pytest.raises(AppError) as info:
        await _pay(client, payer, credits, **kw)
    return info.value.kind.code


async def test_pay_posts_one_entry_split_over_two_accounts(client: Any) -> None:
    payer = await make_user(client)
    wallet = await fund(client, payer.user_id, 1_000_000)
    a, b = await _payable(client), await _payable(client)
    posted = await _pay(client, payer, [(a, 30_000), (b, 60_000)])
    assert posted.debited_account_id == wallet
    assert posted.debited_available == 910_000
    assert await balance_of(client, wallet) == 910_000
    assert await balance_of(client, a) == 30_000
    assert await balance_of(client, b) == 60_000


async def test_refusals_write_nothing(client: Any) -> None:
    payer = await make_user(client)
    wallet = await fund(client, payer.user_id, 100_000)
    biller = await _payable(client)
    assert await _code(client, payer, [(biller, 50_000)], pin="111111") == "pin_invalid"
    assert await _code(client, payer, [(biller, 150_000)]) == "insufficient_funds"
    assert await balance_of(client, wallet) == 100_000
    unverified = await make_user(client, level=1)
    assert await _code(client, unverified, [(biller, 1_000)]) == "identity_level_required"
    no_wallet = await make_user(client)
    assert await _code(client, no_wallet, [(biller, 1_000)]) == "wallet_not_found"


async def test_refund_credits_the_wallet_and_may_take_a_payable_negative(client: Any) -> None:
    user = await make_user(client)
    biller = await _payable(client)
    db: Database = client.app.state.db

    async def run() -> Any:
        async with db.transaction() as session:
            return await service.refund_to_wallet(
                session,
                user_id=user.user_id,
                debits=[(biller, 25_000)],
                kind="refund",
                reference="bill-9",
                description="Hoàn tiền",
                metadata={},
            )

    await in_app(client, run)
    wallet = await fund(client, user.user_id, 0)
    assert await balance_of(client, wallet) == 25_000
    assert await balance_of(client, biller) == -25_000


async def test_a_wallet_holding_money_refuses_account_closure(client: Any) -> None:
    from app.identity.data_rights import closure_checks

    db: Database = client.app.state.db
    rich, empty, none = await make_user(client), await make_user(client), await make_user(client)
    await fund(client, rich.user_id, 1_000)
    await fund(client, empty.user_id, 0)

    async def refusals(user_id: uuid.UUID) -> list[str]:
        async with db.read() as session:
            found = [await check(session, user_id) for check in closure_checks()]
        return [r.code for r in found if r is not None]

    assert "wallet_balance_not_zero" in await in_app(client, lambda: refusals(rich.user_id))
    assert "wallet_balance_not_zero" not in await in_app(client, lambda: refusals(empty.user_id))
    assert "wallet_balance_not_zero" not in await in_app(client, lambda: refusals(none.user_id))


async def test_limit_is_reported_before_funds_and_refused_usage_is_not_kept(client: Any) -> None:
    """The usage count travels with the posting (one call): a payment over both a limit and the balance is
    refused for the limit (what the customer can act on), and no refused payment counts against a limit."""
    db: Database = client.app.state.db

    async def tighten() -> None:
        async with db.transaction() as session:
            await limits.set_limit(session, 2, "electricity", limits.Limits(None, 120_000, None))

    await in_app(client, tighten)
    payer = await make_user(client)
    wallet = await fund(client, payer.user_id, 100_000)
    biller = await _payable(client)
    with pytest.raises(AppError) as refused:
        await _pay(client, payer, [(biller, 150_000)])  # over the day's 120,000 and over the 100,000 held
    assert refused.value.kind.code == "limit_exceeded"
    assert refused.value.extra["limit"] == "per_day"
    assert refused.value.extra["remaining"] == 120_000
    await _pay(client, payer, [(biller, 90_000)])  # the refused 150,000 was not counted
    with pytest.raises(AppError) as again:
        await _pay(client, payer, [(biller, 40_000)])  # 130,000 today: over the limit (and the balance)
    assert again.value.extra["remaining"] == 30_000
    assert await _code(client, payer, [(biller, 20_000)]) == "insufficient_funds"  # within the limit
    assert await balance_of(client, wallet) == 10_000
