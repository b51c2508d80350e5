"""Money in and out (issue 6) through the HTTP API, with the sandbox card gateway and the sandbox bank.

Expectations come from DOMAIN.md (own debit card or bank account, confirmed holder, no credit cards, a wallet
with no linked source can neither pay nor transfer) and the issue (credit exactly once whatever the webhooks
do; the fee booked from the balance transaction; withdrawals held, captured or released, never sent twice).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar

from app.core.bank_transfer import TransferOrder, TransferResult
from app.core.outbox import Dispatcher, DispatcherConfig, HandlerRegistry
from app.core.settings import Settings
from app.core.webhook_signature import signature_header
from app.wallet import ledger, topup, withdrawals
from app.wallet.funding_models import WalletTopup
from app.wallet.gateway.sandbox import fee_for
from app.wallet.ledger import AccountType
from app.wallet.models import LedgerEntry
from tests.conftest import assert_problem
from tests.factories import DEFAULT_PIN, UserHandle, link_bank_account
from tests.wallet.money_world import MoneyWorld, money_world


@pytest.fixture
async def world(app: Litestar, settings: Settings) -> AsyncIterator[MoneyWorld]:
    async for built in money_world(app, settings):
        yield built


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


async def test_only_the_holders_own_debit_card_or_account_links_and_without_one_nothing_moves(
    world: MoneyWorld,
) -> None:
    person = await world.citizen(funding_source=False)
    friend = await world.citizen()
    # Given a wallet with no linked source, a transfer is refused before anything else (DOMAIN.md).
    transfer = await world.http.post(
        "/api/v1/me/wallet/transfers",
        json={"phone": friend.phone, "amount": 10_000, "pin": DEFAULT_PIN},
        headers={**person.headers, **key()},
    )
    assert_problem(transfer, 409, "funding_source_required")
    wallet = (await world.http.get("/api/v1/me/wallet", headers=person.headers)).json()
    assert wallet["funding_source_linked"] is False
    # A credit card is refused (the gateway reports its funding type), and so is someone else's card/account.
    cards = "/api/v1/me/wallet/funding-sources/cards"
    credit = await world.http.post(
        cards, json={"payment_method": "pm_card_visa"}, headers={**person.headers, **key()}
    )
    assert assert_problem(credit, 422, "credit_card_refused")["funding"] == "credit"
    other = await world.http.post(
        cards, json={"payment_method": "pm_card_otherHolder"}, headers={**person.headers, **key()}
    )
    assert_problem(other, 422, "funding_holder_mismatch")
    account = await world.http.post(
        "/api/v1/me/wallet/funding-sources/bank-accounts",
        json={"bank_bin": "970436", "account_number": "0071000001111", "account_name": "Nguyen Van An"},
        headers={**person.headers, **key()},
    )
    assert_problem(account, 422, "funding_holder_mismatch")
    unverified = await world.citizen(wallet=False, level=1)
    refused = await world.http.post(
        cards, json={"payment_method": "pm_card_visa_debit"}, headers={**unverified.headers, **key()}
    )
    assert_problem(refused, 403, "identity_level_required")
    listed = (await world.http.get("/api/v1/me/wallet/funding-sources", headers=person.headers)).json()
    assert listed["items"] == []
    # Their own debit card links; the wallet is then usable.
    card = await world.card_of(person)
    account = await world.http.post(
        "/api/v1/me/wallet/funding-sources/bank-accounts",
        json={"bank_bin": "970436", "account_number": "0071000123456", "account_name": "Nguyen Van An"},
        headers={**person.headers, **key()},
    )
    assert account.status_code == 201, account.text
    listed = (await world.http.get("/api/v1/me/wallet/funding-sources", headers=person.headers)).json()
    assert [(s["id"], s["kind"], s["funding"]) for s in listed["items"]] == [
        (card, "card", "debit"),
        (account.json()["id"], "bank_account", None),
    ]
    wallet = (await world.http.get("/api/v1/me/wallet", headers=person.headers)).json()
    assert wallet["funding_source_linked"] is True
    # Someone else's card id cannot be used to top up.
    assert_problem(await world.topup(friend, card, 50_000), 404, "funding_source_not_found")
    # Unlinking: only one's own; with none left the wallet cannot pay again.
    gone = f"/api/v1/me/wallet/funding-sources/{card}"
    refused = await world.http.delete(gone, headers={**friend.headers, "Idempotency-Key": "unlink-x"})
    assert_problem(refused, 404, "funding_source_not_found")
    assert (
        await world.http.delete(gone, headers={**person.headers, "Idempotency-Key": "unlink-1"})
    ).status_code == 204
    assert (
        await world.http.delete(
            f"/api/v1/me/wallet/funding-sources/{account.json()['id']}",
            headers={**person.headers, "Idempotency-Key": "unlink-2"},
        )
    ).status_code == 204
    again = await world.http.post(
        "/api/v1/me/wallet/transfers",
        json={"phone": friend.phone, "amount": 10_000, "pin": DEFAULT_PIN},
        headers={**person.headers, **key()},
    )
    assert_problem(again, 409, "funding_source_required")


async def test_a_card_top_up_is_credited_once_whatever_the_webhooks_do(world: MoneyWorld) -> None:
    person = await world.citizen()
    card = await world.card_of(person)
    same = uuid.uuid4().hex
    first = await world.topup(person, card, 150_000, key=same)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "succeeded"
    # The same request again (a retry of the app) is the same top-up: one intent at the gateway.
    again = await world.topup(person, card, 150_000, key=same)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(world.box.intents) == 1
    # Webhooks: twice, in reverse order, and a stale one replayed later: nothing more is credited.
    events = list(world.box.events)
    assert [e["type"] for e in events] == ["payment_intent.succeeded"]
    stale = {**events[0], "id": "evt_stale", "type": "payment_intent.processing"}
    stale["data"] = {"object": {**events[0]["data"]["object"], "status": "processing"}}
    for event in [*events, *reversed(events), stale, stale]:
        response = await world.post_event(event)
        assert response.status_code == 200, response.text
    fee = fee_for(150_000)
    assert (await world.wallet(person)).balance == 150_000
    assert await world.count(LedgerEntry, LedgerEntry.kind == "topup") == 1
    assert await world.clearing() == 150_000 - fee == world.box.net_total()
    assert await world.fees() == fee
    shown = (
        await world.http.get(f"/api/v1/me/wallet/topups/{first.json()['id']}", headers=person.headers)
    ).json()
    assert shown["status"] == "succeeded"
    assert shown["credited_at"]
    statement = (await world.http.get("/api/v1/me/wallet/statement", headers=person.headers)).json()
    assert [(line["kind"], line["amount"]) for line in statement["items"]] == [("topup", 150_000)]
    other = await world.citizen()
    missing = await world.http.get(f"/api/v1/me/wallet/topups/{first.json()['id']}", headers=other.headers)
    assert_problem(missing, 404, "topup_not_found")
    await world.books_ok()


async def test_three_d_secure_waits_for_the_holder_then_the_webhook_credits(world: MoneyWorld) -> None:
    person = await world.citizen()
    card = await world.card_of(person, "pm_card_authenticationRequired")
    started = await world.topup(person, card, 200_000)
    assert started.json()["status"] == "requires_action"
    url = started.json()["next_action_url"]
    assert url.startswith("/api/v1/dev/card-gateway/payment_intents/pi_")
    assert (await world.wallet(person)).balance == 0
    # The holder passes the challenge; the gateway's webhook arrives (twice).
    passed = await world.http.post(url, params={"passed": "true"})
    assert passed.json()["status"] == "succeeded"
    await world.deliver_new_events()
    for event in world.box.events:
        await world.post_event(event)
    assert (await world.wallet(person)).balance == 200_000
    assert await world.count(LedgerEntry, LedgerEntry.kind == "topup") == 1
    # A holder who fails the challenge gets nothing, and is told why.
    failed = await world.topup(person, card, 100_000)
    await world.http.post(failed.json()["next_action_url"], params={"passed": "false"})
    await world.deliver_new_events()
    shown = await world.http.get(f"/api/v1/me/wallet/topups/{failed.json()['id']}", headers=person.headers)
    assert shown.json()["status"] == "failed"
    assert shown.json()["failure_code"] == "authentication_required"
    assert (await world.wallet(person)).balance == 200_000
    assert await world.clearing() == world.box.net_total()


async def test_a_declined_card_credits_nothing(world: MoneyWorld) -> None:
    person = await world.citizen()
    card = await world.card_of(person, "pm_card_chargeDeclined")
    answer = await world.topup(person, card, 100_000)
    assert answer.status_code == 201
    assert (answer.json()["status"], answer.json()["failure_code"]) == ("failed", "generic_decline")
    await world.deliver_new_events()
    assert (await world.wallet(person)).balance == 0
    assert await world.clearing() == 0
    assert_problem(await world.topup(person, card, 5_000), 422, "topup_amount_invalid")


async def test_lost_answers_and_lost_webhooks_are_caught_up_by_the_poll(world: MoneyWorld) -> None:
    person = await world.citizen()
    card = await world.card_of(person)
    # The gateway charges the card but every answer is lost (3 attempts, the same Idempotency-Key).
    world.network.faults = ["lost", "lost", "lost"]
    lost = await world.topup(person, card, 300_000)
    assert lost.json()["status"] == "pending"
    creates = [r for r in world.box.requests if r[:2] == ("POST", "/v1/payment_intents")]
    assert len(creates) == 3
    assert len({r[2] for r in creates}) == 1
    assert len(world.box.intents) == 1  # charged once, however often asked
    # The gateway cannot be reached at all for another top-up: nothing is charged yet.
    world.network.faults = ["timeout", "timeout", "timeout"]
    unreachable = await world.topup(person, card, 50_000)
    assert unreachable.json()["status"] == "pending"
    assert len(world.box.intents) == 1
    # A 5xx once is retried at once.
    world.network.faults = ["5xx"]
    assert (await world.topup(person, card, 20_000)).json()["status"] == "succeeded"
    assert (await world.wallet(person)).balance == 20_000
    # The webhooks never come; the reconciling poll finds both.
    polled = await topup.poll_pending_topups(world.db, world.gateway, older_than=topup.timedelta(0))
    assert polled == 2
    assert (await world.wallet(person)).balance == 370_000
    # ... and when the webhooks do come, late, nothing more happens.
    await world.deliver_new_events()
    await topup.poll_pending_topups(world.db, world.gateway, older_than=topup.timedelta(0))
    assert (await world.wallet(person)).balance == 370_000
    assert await world.count(LedgerEntry, LedgerEntry.kind == "topup") == 3
    assert await world.count(WalletTopup, WalletTopup.status == "succeeded") == 3
    assert await world.clearing() == world.box.net_total()
    await world.books_ok()


async def test_a_forged_or_stale_signature_is_refused(world: MoneyWorld) -> None:
    person = await world.citizen()
    card = await world.card_of(person, "pm_card_authenticationRequired")
    started = await world.topup(person, card, 100_000)
    intent_id = started.json()["next_action_url"].split("/")[-2]
    world.box.authenticate(intent_id)  # succeeded at the gateway; only the webhook would tell us
    event = world.box.events[-1]
    body = json.dumps(event).encode()
    forged = signature_header([b"an-attackers-own-secret-0123456789abcdef"], body)
    stale = signature_header(
        [s for _, s in world.settings.card_gateway_webhook_secrets.keys], body, int(time.time()) - 600
    )
    for header in (forged, stale, "t=1,v1=deadbeef", ""):
        assert_problem(await world.post_event(event, signature=header), 400, "webhook_signature_invalid")
    assert (await world.wallet(person)).balance == 0
    assert (await world.post_event(event)).status_code == 200
    assert (await world.wallet(person)).balance == 100_000


class CountingBank:
    """The sandbox bank, counting sends per reference."""

    def __init__(self, world: MoneyWorld) -> None:
        self.inner = world.bank
        self.sends: dict[str, int] = {}

    async def send(self, order: TransferOrder) -> TransferResult:
        self.sends[order.reference] = self.sends.get(order.reference, 0) + 1
        return await self.inner.send(order)

    async def status(self, reference: str) -> TransferResult:
        return await self.inner.status(reference)

    async def aclose(self) -> None:
        return None


async def test_withdrawals_are_held_then_captured_or_released_and_never_sent_twice(world: MoneyWorld) -> None:
    from app.core.bank_transfer import install_bank_transfers

    bank = CountingBank(world)
    install_bank_transfers(bank)  # type: ignore[arg-type]
    person = await world.citizen()
    card = await world.card_of(person)
    assert (await world.topup(person, card, 1_000_000)).json()["status"] == "succeeded"
    accounts = {
        suffix: str(await link_bank_account(world.app, person.user_id, f"007100012{suffix}"))
        for suffix in ("3456", "0000", "9999", "8888", "7777")
    }
    guarantee = ledger.system_account(AccountType.GUARANTEE_BANK)
    mirror_before = await world.balance(guarantee)

    async def withdraw(suffix: str, amount: int, pin: str = DEFAULT_PIN, who: UserHandle = person) -> Any:
        return await world.http.post(
            "/api/v1/me/wallet/withdrawals",
            json={"funding_source_id": accounts[suffix], "amount": amount, "pin": pin},
            headers={**who.headers, **key()},
        )

    assert_problem(await withdraw("3456", 100_000, pin="000000"), 422, "pin_invalid")
    assert_problem(await withdraw("3456", 5_000_000), 422, "insufficient_funds")
    stranger = await world.citizen()
    assert_problem(await withdraw("3456", 10_000, who=stranger), 404, "funding_source_not_found")
    made = {}
    for suffix, amount in (
        ("3456", 100_000),
        ("0000", 110_000),
        ("9999", 120_000),
        ("8888", 130_000),
        ("7777", 140_000),
    ):
        response = await withdraw(suffix, amount)
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "requested"
        made[suffix] = response.json()
    held = await world.wallet(person)
    assert (held.balance, held.held) == (1_000_000, 600_000)

    handlers = HandlerRegistry()
    handlers.register(withdrawals.PAYOUT_TOPIC, withdrawals._deliver_payout)
    dispatcher = Dispatcher(
        world.db, config=DispatcherConfig(backoff_base_seconds=0.01, backoff_jitter=0), handlers=handlers
    )
    for _ in range(6):  # the first round sends; later rounds only ask the bank about unknown outcomes
        await dispatcher.dispatch_once()
        await asyncio.sleep(0.05)
    world.bank.settle(made["7777"]["reference"], succeeded=False)
    for _ in range(4):
        await dispatcher.dispatch_once()
        await asyncio.sleep(0.05)

    async def status(suffix: str) -> dict[str, Any]:
        answer = await world.http.get(
            f"/api/v1/me/wallet/withdrawals/{made[suffix]['id']}", headers=person.headers
        )
        return dict(answer.json())

    got = {suffix: (await status(suffix))["status"] for suffix in made}
    assert got == {
        "3456": "succeeded",
        "0000": "failed",
        "9999": "failed",
        "8888": "succeeded",
        "7777": "failed",
    }
    after = await world.wallet(person)
    assert (after.balance, after.held) == (1_000_000 - 100_000 - 130_000, 0)
    # Each payout reached the bank once: the timed-out ones were asked about, not resent.
    assert all(count == 1 for count in bank.sends.values())
    assert len(bank.sends) == 5
    assert world.bank.succeeded_total() == 230_000
    assert await world.balance(guarantee) - mirror_before == 230_000  # the guarantee account paid it out
    assert await world.count(LedgerEntry, LedgerEntry.kind == "withdrawal") == 2
    gone = await world.http.get(
        f"/api/v1/me/wallet/withdrawals/{made['3456']['id']}", headers=stranger.headers
    )
    assert_problem(gone, 404, "withdrawal_not_found")
    await world.books_ok()


async def test_a_webhook_and_the_poll_at_once_credit_once(
    world: MoneyWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forced overlap: the first to lock the top-up pauses inside its transaction, after the lock and before
    the posting, while the second arrives; the second must find it credited."""
    person = await world.citizen()
    card = await world.card_of(person, "pm_card_authenticationRequired")
    started = await world.topup(person, card, 400_000)
    intent_id = started.json()["next_action_url"].split("/")[-2]
    world.box.authenticate(intent_id)
    intent = await world.gateway.retrieve_payment_intent(intent_id)
    original = topup._credit
    entered = asyncio.Event()

    async def slow_credit(*args: Any, **kwargs: Any) -> None:
        entered.set()
        await asyncio.sleep(0.3)
        await original(*args, **kwargs)

    monkeypatch.setattr(topup, "_credit", slow_credit)

    async def second() -> str:
        await asyncio.wait_for(entered.wait(), timeout=5)
        return await topup.apply_intent(world.db, world.gateway, intent)

    results = await asyncio.gather(topup.apply_intent(world.db, world.gateway, intent), second())
    assert results == ["succeeded", "succeeded"]
    assert (await world.wallet(person)).balance == 400_000
    assert await world.count(LedgerEntry, LedgerEntry.kind == "topup") == 1
