"""Property: whatever sequence of transfers, payments, refunds, holds, captures, releases and failed
requests happens, money is never created or lost and no wallet goes below zero.

Each example opens fresh wallets and a shop, runs a random sequence against the ledger and against a
plain-Python model of the rules in DESIGN.md, and checks after every example that
- the ledger accepted or refused exactly what the model says (a wallet pays only from its available
  balance = balance - holds; a hold is captured or released once; a payable may go negative on a refund),
- every balance equals the model's, and
- the books balance: all postings sum to zero, every account's balance equals the sum of its postings,
  every ``held`` equals its active holds, no wallet is negative, every running balance is right.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.core.db import Database
from app.core.errors import AppError
from app.wallet import ledger
from app.wallet.ledger import AccountType, Entry, credit, debit
from tests.wallet.conftest import assert_books_balance, new_payable, new_wallet

WALLETS = 3
amounts = st.one_of(
    st.tuples(st.just("abs"), st.integers(min_value=1, max_value=60_000)),
    # The boundaries where bugs live: exactly the available balance, one đồng over, between available and
    # the booked balance (money that is held).
    st.tuples(st.sampled_from(["available", "balance"]), st.integers(min_value=-1, max_value=1)),
)
"""An amount: absolute, or relative to the paying wallet's available or booked balance at that moment."""
wallet = st.integers(min_value=0, max_value=WALLETS - 1)
operations = st.one_of(
    st.tuples(st.just("transfer"), wallet, wallet, amounts),
    st.tuples(st.just("pay_shop"), wallet, amounts),
    st.tuples(st.just("refund"), wallet, amounts),
    st.tuples(st.just("topup"), wallet, amounts),
    st.tuples(st.just("hold"), wallet, amounts),
    st.tuples(st.just("capture"), st.integers(0, 10), st.integers(1, 100)),
    st.tuples(st.just("release"), st.integers(0, 10)),
    st.tuples(st.just("crash"), wallet, wallet, amounts),
    st.tuples(st.just("fold")),
)


@dataclass
class Model:
    balance: list[int]
    held: list[int] = field(default_factory=lambda: [0] * WALLETS)
    shop: int = 0
    holds: list[tuple[int, int, uuid.UUID]] = field(default_factory=list)
    """(wallet, amount, id) of every hold placed."""
    hold_status: dict[uuid.UUID, str] = field(default_factory=dict)

    def available(self, w: int) -> int:
        return self.balance[w] - self.held[w]

    def amount(self, w: int, spec: tuple[str, int]) -> int:
        kind, value = spec
        if kind == "abs":
            return value
        base = self.available(w) if kind == "available" else self.balance[w]
        return max(1, base + value)


class RequestFailedError(Exception):
    """A request that fails after posting: its transaction rolls back."""


async def run(
    db: Database, op: tuple[object, ...], model: Model, ids: list[uuid.UUID], shop: uuid.UUID
) -> None:
    clearing = ledger.system_account(AccountType.GATEWAY_CLEARING)
    name = op[0]
    expected: str = "ok"
    try:
        async with db.transaction() as session:
            match op:
                case ("transfer", int(a), int(b), tuple(spec)) if a != b:
                    x = model.amount(a, spec)
                    expected = "ok" if model.available(a) >= x else "insufficient_funds"
                    await ledger.post(session, Entry("transfer", [debit(ids[a], x), credit(ids[b], x)]))
                    model.balance[a] -= x
                    model.balance[b] += x
                case ("pay_shop", int(a), tuple(spec)):
                    x = model.amount(a, spec)
                    expected = "ok" if model.available(a) >= x else "insufficient_funds"
                    await ledger.post(session, Entry("qr_payment", [debit(ids[a], x), credit(shop, x)]))
                    model.balance[a] -= x
                    model.shop += x
                case ("refund", int(a), tuple(spec)):
                    x = model.amount(a, spec)
                    await ledger.post(session, Entry("refund", [debit(shop, x), credit(ids[a], x)]))
                    model.shop -= x
                    model.balance[a] += x
                case ("topup", int(a), tuple(spec)):
                    x = model.amount(a, spec)
                    await ledger.post(session, Entry("topup", [debit(clearing, x), credit(ids[a], x)]))
                    model.balance[a] += x
                case ("hold", int(a), tuple(spec)):
                    x = model.amount(a, spec)
                    expected = "ok" if model.available(a) >= x else "insufficient_funds"
                    hold_id = await ledger.hold(session, ids[a], x, kind="withdrawal")
                    model.held[a] += x
                    model.holds.append((a, x, hold_id))
                    model.hold_status[hold_id] = "active"
                case ("capture", int(i), int(percent)) if model.holds:
                    a, held, hold_id = model.holds[i % len(model.holds)]
                    expected = "ok" if model.hold_status[hold_id] == "active" else "hold_not_active"
                    x = max(1, held * percent // 100)
                    await ledger.capture(
                        session, hold_id, Entry("withdrawal", [debit(ids[a], x), credit(shop, x)])
                    )
                    model.held[a] -= held
                    model.balance[a] -= x
                    model.shop += x
                    model.hold_status[hold_id] = "captured"
                case ("release", int(i)) if model.holds:
                    a, held, hold_id = model.holds[i % len(model.holds)]
                    expected = "ok" if model.hold_status[hold_id] == "active" else "hold_not_active"
                    await ledger.release(session, hold_id)
                    model.held[a] -= held
                    model.hold_status[hold_id] = "released"
                case ("crash", int(a), int(b), tuple(spec)) if a != b:
                    x = model.amount(a, spec)
                    expected = "crash" if model.available(a) >= x else "insufficient_funds"
                    await ledger.post(session, Entry("transfer", [debit(ids[a], x), credit(ids[b], x)]))
                    raise RequestFailedError
                case ("fold",):
                    pass
                case _:
                    return
    except AppError as exc:
        outcome = exc.kind.code
    except RequestFailedError:
        outcome = "crash"
    else:
        outcome = "ok"
    assert outcome == expected, (op, outcome)
    if name == "fold":
        await ledger.fold_balance_deltas(db)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(
    # Hold part of a wallet, try to spend the held money, capture, capture again, release, spend to zero, and
    # refund a shop past zero.
    funds=[10_000, 0, 0],
    ops=[
        ("hold", 0, ("abs", 6_000)),
        ("transfer", 0, 1, ("balance", 0)),
        ("transfer", 0, 1, ("available", 1)),
        ("capture", 0, 50),
        ("capture", 0, 100),
        ("release", 0),
        ("pay_shop", 0, ("available", 0)),
        ("refund", 1, ("abs", 50_000)),
        ("fold",),
    ],
)
@given(
    funds=st.lists(st.integers(0, 100_000), min_size=WALLETS, max_size=WALLETS),
    ops=st.lists(operations, min_size=4, max_size=24),
)
async def test_random_sequences_keep_the_books(
    db: Database, funds: list[int], ops: list[tuple[object, ...]]
) -> None:
    ids = [await new_wallet(db, f) for f in funds]
    shop = await new_payable(db)
    model = Model(balance=list(funds))

    for op in ops:
        await run(db, op, model, ids, shop)

    async with db.read() as session:
        found = await ledger.balances(session, [*ids, shop])
    assert [found[w].balance for w in ids] == model.balance
    assert [found[w].held for w in ids] == model.held
    assert found[shop].balance == model.shop
    assert all(found[w].available >= 0 for w in ids)
    await assert_books_balance(db)
