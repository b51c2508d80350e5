"""The generic HTTP connector against billers played by respx: found, none, unknown, slow, broken."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import httpx
import pytest
import respx

from app.bills.connectors import HttpBillerConnector, PaymentConfirmation, load_biller_secrets
from app.bills.gateway import BillerGateway
from app.bills.schemas import HttpConnector, SandboxConnector
from app.core.errors import AppError

BASE = "https://billing.vnpt-hue.test/api"
FETCH = f"{BASE}/customers/HUE123456/bills"
CONFIG = HttpConnector(
    base_url=BASE,
    auth_header="X-Api-Key",
    auth_secret="VNPT_HUE",
    timeout_seconds=0.2,
    retries=2,
    backoff_seconds=0,
)


@pytest.fixture
async def connector() -> AsyncIterator[HttpBillerConnector]:
    async with httpx.AsyncClient() as client:
        yield HttpBillerConnector("VNPT_HUE", CONFIG, client, {"VNPT_HUE": "secret-key"})


def _problem(caught: pytest.ExceptionInfo[AppError]) -> tuple[str, int]:
    return caught.value.kind.code, caught.value.kind.status


@respx.mock
async def test_bills_found(connector: HttpBillerConnector) -> None:
    route = respx.get(FETCH).respond(
        200,
        json={
            "customer_name": "Trần Thị Hoa",
            "bills": [
                {"bill_id": "T-2025-05", "period": "2025-05", "amount": 187000, "due_date": "2025-06-15"},
                {
                    "bill_id": "T-2025-06",
                    "period": "2025-06",
                    "amount": 165000,
                    "description": "Cước tháng 6",
                },
            ],
        },
    )
    answer = await connector.fetch_bills("HUE123456")
    assert route.calls.last.request.headers["X-Api-Key"] == "secret-key"
    assert answer.customer_name == "Trần Thị Hoa"
    assert [(b.external_id, b.amount, b.due_date) for b in answer.bills] == [
        ("T-2025-05", 187000, date(2025, 6, 15)),
        ("T-2025-06", 165000, None),
    ]


@respx.mock
async def test_nothing_due(connector: HttpBillerConnector) -> None:
    respx.get(FETCH).respond(200, json={"customer_name": "Trần Thị Hoa", "bills": []})
    assert (await connector.fetch_bills("HUE123456")).bills == []


@respx.mock
async def test_unknown_customer_code(connector: HttpBillerConnector) -> None:
    respx.get(FETCH).respond(404, json={"error": "not found"})
    with pytest.raises(AppError) as caught:
        await connector.fetch_bills("HUE123456")
    assert _problem(caught) == ("customer_code_not_found", 404)


@respx.mock
async def test_timeout_is_retried_then_unavailable(connector: HttpBillerConnector) -> None:
    route = respx.get(FETCH).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(AppError) as caught:
        await connector.fetch_bills("HUE123456")
    assert _problem(caught) == ("biller_unavailable", 503)
    assert route.call_count == 3, "one attempt and two retries"


@respx.mock
async def test_server_error_is_retried_then_unavailable(connector: HttpBillerConnector) -> None:
    route = respx.get(FETCH).respond(500)
    with pytest.raises(AppError) as caught:
        await connector.fetch_bills("HUE123456")
    assert _problem(caught) == ("biller_unavailable", 503)
    assert route.call_count == 3


@respx.mock
async def test_a_passing_outage_is_ridden_out(connector: HttpBillerConnector) -> None:
    respx.get(FETCH).mock(
        side_effect=[
            httpx.Response(502),
            httpx.ConnectError("refused"),
            httpx.Response(200, json={"bills": []}),
        ]
    )
    assert (await connector.fetch_bills("HUE123456")).bills == []


@respx.mock
@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, content=b"<html>maintenance</html>"),
        httpx.Response(200, json={"bills": [{"bill_id": "X", "period": "2025-06", "amount": -5}]}),
        httpx.Response(200, json={"bills": [{"bill_id": "X", "period": "2025-06", "amount": 1.5}]}),
        httpx.Response(401, json={"error": "bad key"}),
    ],
)
async def test_answers_outside_the_contract_are_bad_gateway(
    connector: HttpBillerConnector, response: httpx.Response
) -> None:
    respx.get(FETCH).mock(return_value=response)
    with pytest.raises(AppError) as caught:
        await connector.fetch_bills("HUE123456")
    assert _problem(caught) == ("biller_error", 502)


async def test_missing_credential_is_unavailable_and_sends_nothing() -> None:
    async with respx.mock(assert_all_called=False) as mock, httpx.AsyncClient() as client:
        route = mock.get(FETCH).respond(200, json={"bills": []})
        connector = HttpBillerConnector("VNPT_HUE", CONFIG, client, {})
        with pytest.raises(AppError) as caught:
            await connector.fetch_bills("HUE123456")
    assert _problem(caught) == ("biller_unavailable", 503)
    assert not route.called


CONFIRMATION = PaymentConfirmation(
    reference="pay_01",
    external_id="T-2025-06",
    customer_code="HUE123456",
    amount=165000,
    paid_at=datetime(2025, 6, 20, 3, 0, tzinfo=UTC),
)


@respx.mock
async def test_confirmation_accepted_carries_an_idempotency_key(connector: HttpBillerConnector) -> None:
    route = respx.post(f"{BASE}/payments").respond(201, json={"biller_reference": "VNPT-77"})
    answer = await connector.confirm_payment(CONFIRMATION)
    assert answer.accepted
    assert answer.biller_reference == "VNPT-77"
    sent = route.calls.last.request
    assert sent.headers["Idempotency-Key"] == "pay_01"
    assert b'"bill_id":"T-2025-06"' in sent.content
    assert b'"amount":165000' in sent.content


@respx.mock
async def test_confirmation_refused_when_paid_at_a_counter(connector: HttpBillerConnector) -> None:
    respx.post(f"{BASE}/payments").respond(409, json={"reason": "already_paid", "message": "Đã thu tại quầy"})
    answer = await connector.confirm_payment(CONFIRMATION)
    assert not answer.accepted
    assert answer.reason == "already_paid"


@respx.mock
async def test_cancelling_twice_is_fine(connector: HttpBillerConnector) -> None:
    respx.post(f"{BASE}/payments/pay_01/cancel").mock(side_effect=[httpx.Response(200), httpx.Response(404)])
    assert (await connector.cancel_payment("pay_01", "refunded")).accepted
    assert (await connector.cancel_payment("pay_01", "refunded")).accepted


@respx.mock
async def test_confirmation_during_an_outage_is_unavailable(connector: HttpBillerConnector) -> None:
    respx.post(f"{BASE}/payments").respond(503)
    with pytest.raises(AppError) as caught:
        await connector.confirm_payment(CONFIRMATION)
    assert _problem(caught) == ("biller_unavailable", 503)


def test_secrets_come_from_prefixed_variables() -> None:
    env = {"BILLER_SECRET_VNPT_HUE": "k1", "OTHER": "x", "BILLER_SECRET_EVN": "k2"}
    assert load_biller_secrets(env) == {"VNPT_HUE": "k1", "EVN": "k2"}


async def test_sandboxes_exist_only_outside_production() -> None:
    sandbox = SandboxConnector(profile="water")
    assert BillerGateway(allow_sandbox=True).connector("HUEWACO", sandbox) is not None
    with pytest.raises(AppError) as caught:
        BillerGateway(allow_sandbox=False).connector("HUEWACO", sandbox)
    assert _problem(caught) == ("biller_unavailable", 503)
    with pytest.raises(AppError):
        BillerGateway(allow_sandbox=True).connector("HEPCO_BATCH", None)
