"""The card gateway adapter against a gateway played by respx, and webhook signatures (no database).

Expectations come from the Stripe API's documented behaviour: form-encoded bodies, the same
Idempotency-Key on every retry of one request, the error object, zero-decimal VND, list pagination.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import respx

from app.core.webhook_signature import SignatureError, signature_header, verify
from app.wallet.gateway import CardError, CardGateway, GatewayUnavailableError

BASE = "https://api.gateway.test"
INTENT = {
    "id": "pi_1",
    "object": "payment_intent",
    "amount": 150_000,
    "currency": "vnd",
    "status": "succeeded",
}


def gateway(retries: int = 2) -> CardGateway:
    return CardGateway(BASE, "sk_test_abc", max_retries=retries, backoff_seconds=0, timeout=0.5)


async def create(gw: CardGateway) -> dict[str, Any]:
    return await gw.create_payment_intent(
        amount=150_000,
        payment_method="pm_card_visa_debit",
        idempotency_key="topup_42",
        metadata={"topup_id": "42"},
    )


@respx.mock
async def test_a_payment_intent_is_form_encoded_with_key_and_secret() -> None:
    route = respx.post(f"{BASE}/v1/payment_intents").mock(return_value=httpx.Response(200, json=INTENT))
    assert (await create(gateway()))["status"] == "succeeded"
    request = route.calls.last.request
    assert request.headers["Idempotency-Key"] == "topup_42"
    assert request.headers["Authorization"] == "Bearer sk_test_abc"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = dict(parse_qsl(request.content.decode()))
    assert form["amount"] == "150000"  # VND is zero-decimal: đồng, not hundredths
    assert form["currency"] == "vnd"
    assert form["confirm"] == "true"
    assert form["metadata[topup_id]"] == "42"
    assert form["payment_method_types[]"] == "card"


@respx.mock
async def test_a_decline_is_a_card_error_carrying_the_intent() -> None:
    failed = {**INTENT, "status": "requires_payment_method"}
    error = {
        "type": "card_error",
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.",
        "payment_intent": failed,
    }
    respx.post(f"{BASE}/v1/payment_intents").mock(return_value=httpx.Response(402, json={"error": error}))
    with pytest.raises(CardError) as raised:
        await create(gateway())
    assert raised.value.decline_code == "insufficient_funds"
    assert raised.value.payment_intent == failed
    assert len(respx.calls) == 1  # a decline is an answer: never retried


@respx.mock
async def test_three_d_secure_answers_requires_action() -> None:
    action = {"type": "redirect_to_url", "redirect_to_url": {"url": "https://acs.test/3ds/pi_1"}}
    body = {**INTENT, "status": "requires_action", "next_action": action}
    respx.post(f"{BASE}/v1/payment_intents").mock(return_value=httpx.Response(200, json=body))
    answer = await create(gateway())
    assert answer["status"] == "requires_action"
    assert answer["next_action"]["redirect_to_url"]["url"] == "https://acs.test/3ds/pi_1"


@pytest.mark.parametrize(
    "first",
    [
        httpx.ReadTimeout("slow"),
        httpx.Response(500, json={"error": {"type": "api_error", "message": "boom"}}),
        httpx.Response(503, text="upstream down"),
        httpx.RemoteProtocolError("peer closed connection without sending a response"),
    ],
    ids=["timeout", "500", "503", "dropped"],
)
@respx.mock
async def test_a_failed_attempt_is_retried_with_the_same_key(first: Any) -> None:
    route = respx.post(f"{BASE}/v1/payment_intents").mock(
        side_effect=[first, httpx.Response(200, json=INTENT)]
    )
    assert (await create(gateway()))["id"] == "pi_1"
    keys = {call.request.headers["Idempotency-Key"] for call in route.calls}
    bodies = {call.request.content for call in route.calls}
    assert route.call_count == 2
    assert keys == {"topup_42"}
    assert len(bodies) == 1


@respx.mock
async def test_no_answer_after_every_retry_is_unknown_not_failed() -> None:
    route = respx.post(f"{BASE}/v1/payment_intents").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(GatewayUnavailableError):
        await create(gateway(retries=2))
    assert route.call_count == 3


@respx.mock
async def test_balance_transactions_are_listed_page_by_page() -> None:
    def txn(n: int) -> dict[str, Any]:
        return {
            "id": f"txn_{n}",
            "object": "balance_transaction",
            "amount": 100_000,
            "fee": 3_200,
            "net": 96_800,
            "currency": "vnd",
            "type": "charge",
            "source": f"ch_{n}",
            "created": 1_700_000_000 + n,
            "status": "available",
            "reporting_category": "charge",
        }

    pages = [
        {"object": "list", "data": [txn(3), txn(2)], "has_more": True},
        {"object": "list", "data": [txn(1)], "has_more": False},
    ]
    route = respx.get(f"{BASE}/v1/balance_transactions").mock(
        side_effect=[httpx.Response(200, json=page) for page in pages]
    )
    seen = [
        t["id"] async for t in gateway().iter_balance_transactions(1_700_000_000, 1_700_086_400, page_size=2)
    ]
    assert seen == ["txn_3", "txn_2", "txn_1"]
    first, second = (call.request.url.params for call in route.calls)
    assert first["created[gte]"] == "1700000000"
    assert first["created[lt]"] == "1700086400"
    assert first["limit"] == "2"
    assert "starting_after" not in first
    assert second["starting_after"] == "txn_2"


def test_stripe_signatures_rotation_forgery_and_staleness() -> None:
    old, new = b"whsec_old_" + b"o" * 32, b"whsec_new_" + b"n" * 32
    body = b'{"id":"evt_1","type":"payment_intent.succeeded"}'
    now = int(time.time())
    # During a rotation the gateway signs with both secrets; we know only one of them: accepted.
    header = signature_header([new, old], body, now)
    assert header.count("v1=") == 2
    assert verify(header, body, [old]) == now
    assert verify(header, body, [new]) == now
    with pytest.raises(SignatureError):
        verify(signature_header([b"x" * 40], body, now), body, [old, new])  # forged
    with pytest.raises(SignatureError):
        verify(header, body + b" ", [old])  # body changed
    with pytest.raises(SignatureError):
        verify(signature_header([old], body, now - 301), body, [old])  # older than 5 minutes
    assert verify(signature_header([old], body, now - 299), body, [old]) == now - 299
    for bad in (None, "", "t=abc,v1=00", f"t={now}"):
        with pytest.raises(SignatureError):
            verify(bad, body, [old])
