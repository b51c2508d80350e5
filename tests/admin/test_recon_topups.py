"""Reconciliation against what the top-up module really books, end to end: citizens top up through the HTTP
API with the embedded sandbox card gateway (a plain card and a 3-D Secure card), the gateway pays our balance
out to the guarantee account, and a finance admin reconciles the day on demand through the real sandbox
``CardGateway`` (no fake): every gateway line matches, gross, fee and net each compared. A planted fee
difference at the gateway then gives exactly one exception.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import select

from app.admin import reconciliation
from app.core.scheduler import LOCAL_TZ
from app.core.settings import Settings
from app.wallet.gateway.sandbox import fee_for
from app.wallet.models import LedgerEntry
from tests.factories import make_user
from tests.wallet.money_world import MoneyWorld, money_world

RUNS = "/api/v1/admin/reconciliation/runs"
EXCEPTIONS = "/api/v1/admin/reconciliation/exceptions"


@pytest.fixture
async def world(app: Litestar, settings: Settings) -> AsyncIterator[MoneyWorld]:
    async for built in money_world(app, settings):
        reconciliation.install_card_gateway(built.gateway)  # the real adapter over the sandbox
        try:
            yield built
        finally:
            reconciliation.install_card_gateway(None)


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


async def reconcile(world: MoneyWorld, headers: dict[str, str], day: str) -> httpx.Response:
    """Reconcile ``day`` on demand with no file: the gateway's report is fetched through its API."""
    return await world.http.post(RUNS, files={"day": (None, day)}, headers={**headers, **key()})


async def test_top_ups_and_a_payout_reconcile_line_for_line_and_a_planted_fee_difference_is_one_exception(
    world: MoneyWorld,
) -> None:
    finance = await make_user(world.app, roles=("admin",), duties=("finance",))
    person = await world.citizen()
    card = await world.card_of(person)
    plain = await world.topup(person, card, 150_000)
    assert plain.json()["status"] == "succeeded", plain.text
    secure_card = await world.card_of(person, "pm_card_authenticationRequired")
    secure = await world.topup(person, secure_card, 300_000)
    assert secure.json()["status"] == "requires_action"
    passed = await world.http.post(secure.json()["next_action_url"], params={"passed": "true"})
    assert passed.json()["status"] == "succeeded"
    await world.deliver_new_events()
    assert (await world.wallet(person)).balance == 450_000
    # The gateway pays part of what it holds for us out to the guarantee account (nobody has booked it).
    payout = world.box.payout(200_000)

    today = datetime.now(LOCAL_TZ).date().isoformat()
    run = await reconcile(world, finance.headers, today)
    assert run.status_code == 201, run.text
    body = run.json()
    assert body["checks"]["sources"]["gateway"] == "adapter"
    assert body["counts"]["gateway"] == {"lines": 3, "matched": 3}
    assert body["checks"]["payouts_booked"] == [payout["id"]]
    assert body["checks"]["books"]["ok"] is True
    assert body["status"] == "balanced"
    # The books say what the gateway says: clearing = Σ net of its balance transactions, fees = Σ fees.
    assert (
        await world.clearing()
        == world.box.net_total()
        == 450_000 - fee_for(150_000) - fee_for(300_000) - (200_000)
    )
    assert await world.fees() == fee_for(150_000) + fee_for(300_000)
    async with world.db.read() as session:
        references = set(
            await session.scalars(
                select(LedgerEntry.reference).where(LedgerEntry.kind.in_(("topup", "gateway_payout")))
            )
        )
    assert references == {t["source"] for t in world.box.balance_transactions.values()}

    # Reconciling again books the payout no second time and still matches everything.
    again = await reconcile(world, finance.headers, today)
    assert again.json()["counts"]["gateway"] == {"lines": 3, "matched": 3}
    assert again.json()["checks"]["payouts_booked"] == []

    # Planted: the gateway took 500 đồng more fee on the 3-D Secure charge than the ledger booked.
    charge = world.box.intents[passed.json()["id"]]["latest_charge"]
    txn = next(t for t in world.box.balance_transactions.values() if t["source"] == charge)
    txn["fee"] += 500
    txn["net"] -= 500
    planted = await reconcile(world, finance.headers, today)
    assert planted.json()["counts"]["gateway"] == {"lines": 3, "matched": 2, "amount_mismatch": 1}
    assert planted.json()["status"] == "attention"
    found = (await world.http.get(EXCEPTIONS, params={"day": today}, headers=finance.headers)).json()
    assert [
        (e["kind"], e["key"], e["reference"], e["ledger_gross"], e["external_gross"]) for e in found["items"]
    ] == [("amount_mismatch", txn["id"], charge, 300_000, 300_000)]
    (exception,) = found["items"]
    assert (exception["ledger_fee"], exception["external_fee"]) == (fee_for(300_000), fee_for(300_000) + 500)
    assert (exception["ledger_net"], exception["external_net"]) == (txn["net"] + 500, txn["net"])
    await world.books_ok()
