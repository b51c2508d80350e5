"""The bank-transfer interface: a payout is never sent twice, and "no answer" is never taken for "failed"."""

from __future__ import annotations

import httpx
import pytest
import respx

from app.core.bank_transfer import (
    BankTransferRejectedError,
    BankUnavailableError,
    PartnerBankApi,
    SandboxBank,
    TransferNotFoundError,
    TransferOrder,
    TransferStatus,
)
from app.core.settings import ConfigError, load_settings

BANK = "https://bank.test"


def order(account: str = "0123456789", reference: str = "wd_1", amount: int = 250_000) -> TransferOrder:
    return TransferOrder(reference, "970436", account, "NGUYEN VAN AN", amount, "Rut tien vi Hue-S")


def test_an_order_refuses_a_non_positive_or_fractional_amount() -> None:
    for amount in (0, -5, 1.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            order(amount=amount)  # type: ignore[arg-type]


async def test_the_sandbox_pays_a_reference_once_however_often_it_is_sent() -> None:
    bank = SandboxBank()
    first = await bank.send(order())
    again = await bank.send(order())
    assert first.status is TransferStatus.SUCCEEDED
    assert again == first
    assert bank.send_calls == 2
    assert bank.succeeded_total() == 250_000


async def test_the_sandbox_plays_refusal_timeouts_and_late_settlement() -> None:
    bank = SandboxBank()
    assert (await bank.send(order("1110000", "a"))).failure_reason == "account_closed"
    with pytest.raises(BankUnavailableError):
        await bank.send(order("1119999", "b"))
    assert (await bank.status("b")).status is TransferStatus.FAILED
    with pytest.raises(BankUnavailableError):
        await bank.send(order("1118888", "c"))
    assert (await bank.status("c")).status is TransferStatus.SUCCEEDED
    assert (await bank.send(order("1117777", "d"))).status is TransferStatus.PENDING
    bank.settle("d", succeeded=False)
    assert (await bank.status("d")).status is TransferStatus.FAILED
    with pytest.raises(TransferNotFoundError):
        await bank.status("never-sent")
    assert bank.succeeded_total() == 250_000


@respx.mock
async def test_the_partner_api_sends_the_reference_as_idempotency_key() -> None:
    route = respx.post(f"{BANK}/v1/transfers").respond(
        201, json={"reference": "wd_1", "status": "succeeded", "bank_reference": "FT123"}
    )
    bank = PartnerBankApi(BANK, "tok")
    result = await bank.send(order())
    await bank.aclose()
    assert result.status is TransferStatus.SUCCEEDED
    assert result.bank_reference == "FT123"
    request = route.calls.last.request
    assert request.headers["Idempotency-Key"] == "wd_1"
    assert request.headers["Authorization"] == "Bearer tok"


@respx.mock
@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped"), httpx.Response(502)],
)
async def test_no_answer_from_the_partner_is_unknown_not_failed(failure: object) -> None:
    if isinstance(failure, httpx.Response):
        respx.post(f"{BANK}/v1/transfers").mock(return_value=failure)
    else:
        respx.post(f"{BANK}/v1/transfers").mock(side_effect=failure)
    with pytest.raises(BankUnavailableError):
        await PartnerBankApi(BANK, "tok").send(order())


@respx.mock
async def test_the_partner_refusing_an_order_and_not_knowing_a_reference() -> None:
    respx.post(f"{BANK}/v1/transfers").respond(422, json={"message": "unknown BIN"})
    respx.get(f"{BANK}/v1/transfers/wd_9").respond(404)
    respx.get(f"{BANK}/v1/transfers/wd_1").respond(200, json={"reference": "wd_1", "status": "failed"})
    bank = PartnerBankApi(BANK, "tok")
    with pytest.raises(BankTransferRejectedError, match="unknown BIN"):
        await bank.send(order())
    with pytest.raises(TransferNotFoundError):
        await bank.status("wd_9")
    assert (await bank.status("wd_1")).status is TransferStatus.FAILED


def test_production_needs_the_partner_bank() -> None:
    production = {
        "APP_ENV": "production",
        "DATABASE_URL": "postgresql://app@db/hue",
        **dict.fromkeys(
            ("JWT_KEYS", "PIN_KEYS", "DATA_KEYS", "AUDIT_KEYS", "WEBHOOK_KEYS", "RECEIPT_KEYS"),
            f"k1:{'p' * 40}",
        ),
        "SMS_GATEWAY_URL": "https://sms.internal/send",
        "CARD_GATEWAY_URL": "https://api.gateway.internal",
        "CARD_GATEWAY_SECRET_KEY": "sk_live_x",
        "CARD_GATEWAY_WEBHOOK_SECRETS": f"k1:{'g' * 40}",
    }
    with pytest.raises(ConfigError, match="BANK_API_URL"):
        load_settings(production)
    assert load_settings({**production, "BANK_API_URL": "https://bank.internal"}).bank_api_url
