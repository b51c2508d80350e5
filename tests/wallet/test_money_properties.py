"""Property: whatever mix of top-ups, withdrawals and gateway/bank failures happens, the ledger agrees with
the outside world (issue 6's Must-show).

Hypothesis draws a sequence of operations: top-ups by card (succeeding, declined, 3-D Secure) through a
network that times out, drops answers after the gateway acted, or answers 5xx; the holder passing or failing
3-D Secure; webhooks delivered again, in reverse, or not at all; the reconciling poll; withdrawals to
accounts whose payouts succeed, fail, time out (then fail or succeed) or stay pending; the bank settling.
After the dust settles (poll, webhooks, payouts resolved):
- the gateway's confirmed total (net of its fees) equals the ledger's gateway-clearing account, and its fees
  equal the gateway-fee account;
- every succeeded payment intent is credited exactly once, and nothing else is credited;
- every payout reached the bank once, and what the bank paid out equals what left the guarantee account;
- the books balance.

Hypothesis cannot drive async tests, so the app runs in an event loop of its own (an anyio blocking
portal) and every example calls into it.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from litestar import Litestar
from sqlalchemy import select

from app.core.bank_transfer import TransferStatus, install_bank_transfers
from app.core.settings import Settings
from app.wallet import ledger, topup, withdrawals
from app.wallet.funding import record_source
from app.wallet.funding_models import WalletWithdrawal
from app.wallet.ledger import AccountType
from app.wallet.models import LedgerEntry
from tests.factories import DEFAULT_PIN
from tests.wallet.money_world import MoneyWorld, money_world
from tests.wallet.test_topup import CountingBank

CARDS = {
    "ok": "pm_card_visa_debit",
    "decline": "pm_card_chargeDeclined",
    "3ds": "pm_card_authenticationRequired",
}
ACCOUNTS = ("3456", "0000", "9999", "8888", "7777")

faults = st.lists(st.sampled_from(["timeout", "lost", "5xx"]), max_size=3)
amounts = st.integers(min_value=1, max_value=40).map(lambda n: n * 25_000)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("topup"), st.sampled_from(sorted(CARDS)), amounts, faults),
        st.tuples(st.just("authenticate"), st.booleans()),
        st.tuples(st.just("webhooks"), st.booleans()),
        st.tuples(st.just("poll"), faults),
        st.tuples(st.just("withdraw"), st.sampled_from(ACCOUNTS), amounts),
        st.tuples(st.just("payouts")),
        st.tuples(st.just("settle"), st.booleans()),
    ),
    min_size=1,
    max_size=12,
)


async def _person(world: MoneyWorld) -> tuple[Any, dict[str, str], dict[str, str]]:
    person = await world.citizen()
    cards, accounts = {}, {}
    async with world.db.transaction() as session:
        for name, pm in CARDS.items():
            source = await record_source(
                session,
                person.user_id,
                kind="card",
                fingerprint=f"card:{pm}",
                payment_method=pm,
                funding="debit",
            )
            cards[name] = str(source.id)
        for suffix in ACCOUNTS:
            number = f"0071{uuid.uuid4().int % 10**5:05d}{suffix}"
            source = await record_source(
                session,
                person.user_id,
                kind="bank_account",
                fingerprint=f"bank:970436:{number}",
                bank_bin="970436",
                account_number=number,
                account_name="NGUYEN VAN AN",
            )
            accounts[suffix] = str(source.id)
    return person, cards, accounts


async def _run(world: MoneyWorld, bank: CountingBank, ops: list[tuple[Any, ...]]) -> None:
    person, cards, accounts = await _person(world)
    for op in ops:
        kind = op[0]
        if kind == "topup":
            world.network.faults = list(op[3])
            answer = await world.topup(person, cards[op[1]], op[2])
            assert answer.status_code == 201, answer.text
        elif kind == "authenticate":
            waiting = [i for i in world.box.intents.values() if i["status"] == "requires_action"]
            if waiting:
                world.box.authenticate(waiting[0]["id"], passed=op[1])
        elif kind == "webhooks":
            events = list(world.box.events)
            for event in reversed(events) if op[1] else events:
                assert (await world.post_event(event)).status_code in (200, 503)
        elif kind == "poll":
            world.network.faults = list(op[1])
            await topup.poll_pending_topups(world.db, world.gateway, older_than=topup.timedelta(0))
        elif kind == "withdraw":
            answer = await world.http.post(
                "/api/v1/me/wallet/withdrawals",
                json={"funding_source_id": accounts[op[1]], "amount": op[2], "pin": DEFAULT_PIN},
                headers={**person.headers, "Idempotency-Key": uuid.uuid4().hex},
            )
            assert answer.status_code in (201, 422), answer.text
            if answer.status_code == 422:
                assert answer.json()["code"] == "insufficient_funds"
        elif kind == "payouts":
            await withdrawals.resolve_open_withdrawals(world.db, bank, older_than=topup.timedelta(0))  # type: ignore[arg-type]
        elif kind == "settle":
            for reference, (_order, result) in list(world.bank.transfers.items()):
                if result.status is TransferStatus.PENDING:
                    world.bank.settle(reference, succeeded=op[1])
                    break
    # The dust settles: the network heals, late webhooks arrive, the jobs run, the bank decides.
    world.network.faults = []
    await topup.poll_pending_topups(world.db, world.gateway, older_than=topup.timedelta(0))
    for event in world.box.events:
        assert (await world.post_event(event)).status_code == 200
    for _ in range(2):
        await withdrawals.resolve_open_withdrawals(world.db, bank, older_than=topup.timedelta(0))  # type: ignore[arg-type]
        for reference, (_order, result) in list(world.bank.transfers.items()):
            if result.status is TransferStatus.PENDING:
                world.bank.settle(reference, succeeded=True)
    await _check(world, bank)


async def _check(world: MoneyWorld, bank: CountingBank) -> None:
    charges = [t for t in world.box.balance_transactions.values() if t["type"] == "charge"]
    assert await world.clearing() == sum(t["net"] for t in charges) == world.box.net_total()
    assert await world.fees() == sum(t["fee"] for t in charges)
    async with world.db.read() as session:
        credited = Counter(
            await session.scalars(select(LedgerEntry.reference).where(LedgerEntry.kind == "topup"))
        )
        open_payouts = list(
            await session.scalars(
                select(WalletWithdrawal.id).where(
                    WalletWithdrawal.status.in_(("requested", "unknown", "pending"))
                )
            )
        )
        withdrawn = await session.scalars(
            select(LedgerEntry.reference).where(LedgerEntry.kind == "withdrawal")
        )
        withdrawn_refs = Counter(withdrawn)
        mirror = (await ledger.balance(session, ledger.system_account(AccountType.GUARANTEE_BANK))).balance
    # the entry's reference is the charge's id (the balance transaction's source, what reconciliation matches)
    succeeded = {i["latest_charge"] for i in world.box.intents.values() if i["status"] == "succeeded"}
    assert set(credited) == succeeded  # every confirmed intent credited, nothing else
    assert all(n == 1 for n in credited.values())  # ... exactly once
    assert open_payouts == []
    assert all(n == 1 for n in bank.sends.values())  # no payout sent twice
    paid = {ref for ref, (_o, r) in world.bank.transfers.items() if r.status is TransferStatus.SUCCEEDED}
    assert set(withdrawn_refs) == paid
    assert all(n == 1 for n in withdrawn_refs.values())
    assert mirror == world.bank.succeeded_total()  # the guarantee mirror moved only by payouts here
    await world.books_ok()


def test_top_ups_withdrawals_and_failures_keep_the_ledger_equal_to_the_world(
    app: Litestar, settings: Settings
) -> None:
    with start_blocking_portal() as portal:
        worlds = money_world(app, settings)
        world = portal.call(worlds.__anext__)
        bank = CountingBank(world)
        install_bank_transfers(bank)  # type: ignore[arg-type]
        try:

            @hypothesis_settings(
                max_examples=12 if settings.is_sqlite else 6,
                deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
            )
            @given(ops=operations)
            def check(ops: list[tuple[Any, ...]]) -> None:
                portal.call(_run, world, bank, ops)

            check()
        finally:
            portal.call(worlds.aclose)
