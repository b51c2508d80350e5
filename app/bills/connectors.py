"""Talking to billers: fetch a customer's bills, confirm a payment, cancel one.

Every biller is reached through a :class:`BillerConnector`, built from the biller's connector configuration
(data, not code) by :class:`app.bills.gateway.BillerGateway`. The generic :class:`HttpBillerConnector`
speaks the platform's biller contract over HTTP:

- ``GET {fetch_path}`` (``{customer_code}`` substituted) -> ``200 {"customer_name": str | null, "bills":
  [{"bill_id": str, "period": str, "amount": int, "due_date": "YYYY-MM-DD" | null, "description": str |
  null}]}`` with every unpaid bill of the customer; ``404`` when the biller has no such customer.
- ``POST {confirm_path}`` ``{"reference", "bill_id", "customer_code", "amount", "paid_at"}`` with an
  ``Idempotency-Key: reference`` header -> ``200/201 {"biller_reference": str | null}`` accepted, or
  ``404/409/422 {"reason": str, "message": str}`` rejected (e.g. paid at a counter meanwhile).
- ``POST {cancel_path}`` (``{reference}`` substituted) ``{"reason"}`` -> ``200`` cancelled, ``404`` nothing to
  cancel (also a success: cancelling is idempotent), ``409/422`` refused.

Timeouts, connection failures and 5xx answers are retried (``retries`` times, exponential backoff) and then
become :data:`BILLER_UNAVAILABLE` (503: the caller may retry later, the outbox does); an answer that breaks
the contract is :data:`BILLER_ERROR` (502). A biller that needs a credential names a secret; its value comes
from the environment variable ``BILLER_SECRET_<NAME>``, never from the database.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Protocol
from urllib.parse import quote

import httpx
import msgspec
import structlog
from msgspec import Meta

from app.bills.errors import BILLER_ERROR, BILLER_UNAVAILABLE, CUSTOMER_CODE_NOT_FOUND
from app.bills.schemas import HttpConnector

__all__ = [
    "BillerAnswer",
    "BillerConnector",
    "CustomerBills",
    "HttpBillerConnector",
    "PaymentConfirmation",
    "PresentedBill",
    "load_biller_secrets",
]

log = structlog.get_logger("app.bills.connectors")

SECRET_PREFIX = "BILLER_SECRET_"  # noqa: S105 - a variable name prefix, not a secret


class PresentedBill(msgspec.Struct, kw_only=True, frozen=True):
    """A bill as a biller presents it."""

    external_id: Annotated[str, Meta(min_length=1, max_length=64)]
    period: Annotated[str, Meta(min_length=1, max_length=32)]
    amount: Annotated[int, Meta(gt=0, le=100_000_000_000)]
    due_date: date | None = None
    description: Annotated[str, Meta(max_length=300)] | None = None


class CustomerBills(msgspec.Struct, kw_only=True, frozen=True):
    """Everything a biller says it is owed by one customer."""

    customer_name: str | None
    bills: list[PresentedBill]


class PaymentConfirmation(msgspec.Struct, kw_only=True, frozen=True):
    """What the biller is told after a bill is paid."""

    reference: str
    """Our payment reference; the biller deduplicates on it."""
    external_id: str
    customer_code: str
    amount: int
    paid_at: datetime


class BillerAnswer(msgspec.Struct, kw_only=True, frozen=True):
    """The biller's verdict on a confirmation or a cancellation."""

    accepted: bool
    biller_reference: str | None = None
    reason: str | None = None
    """Machine reason of a refusal, e.g. ``already_paid``."""
    message: str | None = None


class BillerConnector(Protocol):
    """One biller's system, whatever it speaks."""

    async def fetch_bills(self, customer_code: str) -> CustomerBills:
        """Every unpaid bill of ``customer_code``; :data:`CUSTOMER_CODE_NOT_FOUND` for an unknown customer."""
        ...

    async def confirm_payment(self, confirmation: PaymentConfirmation) -> BillerAnswer:
        """Tell the biller a bill was paid; a refusal is an answer, not an exception."""
        ...

    async def cancel_payment(self, reference: str, reason: str) -> BillerAnswer:
        """Withdraw a confirmation (after a refund); idempotent."""
        ...


class _WireBill(msgspec.Struct, kw_only=True, rename={"external_id": "bill_id"}):
    external_id: Annotated[str, Meta(min_length=1, max_length=64)]
    period: Annotated[str, Meta(min_length=1, max_length=32)]
    amount: Annotated[int, Meta(gt=0, le=100_000_000_000)]
    due_date: date | None = None
    description: Annotated[str, Meta(max_length=300)] | None = None


class _WireBills(msgspec.Struct, kw_only=True):
    bills: list[_WireBill]
    customer_name: Annotated[str, Meta(max_length=200)] | None = None


class _WireAccepted(msgspec.Struct, kw_only=True):
    biller_reference: str | None = None


class _WireRefusal(msgspec.Struct, kw_only=True):
    reason: str = "refused"
    message: str | None = None


def load_biller_secrets(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The billers' credentials from ``BILLER_SECRET_<NAME>`` environment variables, read once at start."""
    env = os.environ if env is None else env
    return {key[len(SECRET_PREFIX) :]: value for key, value in env.items() if key.startswith(SECRET_PREFIX)}


class HttpBillerConnector:
    """The generic connector: the biller contract above, over ``client``, set up by ``config``."""

    def __init__(
        self,
        biller_code: str,
        config: HttpConnector,
        client: httpx.AsyncClient,
        secrets: Mapping[str, str],
    ) -> None:
        self.biller_code = biller_code
        self.config = config
        self._client = client
        self._secrets = secrets

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.config.auth_header and self.config.auth_secret:
            secret = self._secrets.get(self.config.auth_secret)
            if secret is None:
                log.error("biller_secret_missing", biller=self.biller_code, secret=self.config.auth_secret)
                raise BILLER_UNAVAILABLE(
                    "Kết nối tới nhà cung cấp chưa được cấu hình đầy đủ",
                    "The connection to the biller is not fully configured",
                    biller=self.biller_code,
                )
            headers[self.config.auth_header] = secret
        return headers

    def _url(self, path: str) -> str:
        return self.config.base_url.rstrip("/") + "/" + path.lstrip("/")

    async def _send(
        self, method: str, path: str, *, json: Any = None, key: str | None = None
    ) -> httpx.Response:
        headers = self._headers()
        if key is not None:
            headers["Idempotency-Key"] = key
        timeout = httpx.Timeout(self.config.timeout_seconds)
        failure = "no attempt"
        for attempt in range(self.config.retries + 1):
            if attempt:
                await asyncio.sleep(self.config.backoff_seconds * 2 ** (attempt - 1))
            try:
                response = await self._client.request(
                    method, self._url(path), json=json, headers=headers, timeout=timeout
                )
            except httpx.TimeoutException:
                failure = "timeout"
            except httpx.TransportError as exc:
                failure = type(exc).__name__
            else:
                if response.status_code < 500:
                    return response
                failure = f"HTTP {response.status_code}"
            log.warning(
                "biller_attempt_failed", biller=self.biller_code, attempt=attempt + 1, failure=failure
            )
        raise BILLER_UNAVAILABLE(
            "Hệ thống của nhà cung cấp tạm thời không phản hồi, vui lòng thử lại sau",
            f"The biller did not answer ({failure}); try again later",
            biller=self.biller_code,
        )

    def _contract_broken(self, what: str) -> Exception:
        log.error("biller_contract_broken", biller=self.biller_code, problem=what)
        return BILLER_ERROR(
            "Nhà cung cấp trả lời không hợp lệ, vui lòng thử lại sau",
            f"The biller gave an invalid answer ({what})",
            biller=self.biller_code,
        )

    async def fetch_bills(self, customer_code: str) -> CustomerBills:
        path = self.config.fetch_path.replace("{customer_code}", quote(customer_code, safe=""))
        response = await self._send("GET", path)
        if response.status_code == 404:
            raise CUSTOMER_CODE_NOT_FOUND(
                f"Nhà cung cấp không có khách hàng mã {customer_code}",
                f"The biller has no customer {customer_code}",
                biller=self.biller_code,
            )
        if response.status_code != 200:
            raise self._contract_broken(f"HTTP {response.status_code} to a bill fetch")
        try:
            wire = msgspec.json.decode(response.content, type=_WireBills)
        except msgspec.DecodeError as exc:
            raise self._contract_broken(f"bills: {exc}") from exc
        return CustomerBills(
            customer_name=wire.customer_name,
            bills=[
                PresentedBill(
                    external_id=b.external_id,
                    period=b.period,
                    amount=b.amount,
                    due_date=b.due_date,
                    description=b.description,
                )
                for b in wire.bills
            ],
        )

    async def confirm_payment(self, confirmation: PaymentConfirmation) -> BillerAnswer:
        body = {
            "reference": confirmation.reference,
            "bill_id": confirmation.external_id,
            "customer_code": confirmation.customer_code,
            "amount": confirmation.amount,
            "paid_at": confirmation.paid_at.isoformat(),
        }
        response = await self._send("POST", self.config.confirm_path, json=body, key=confirmation.reference)
        return self._verdict(response, accept=(200, 201), idempotent_absent=False)

    async def cancel_payment(self, reference: str, reason: str) -> BillerAnswer:
        path = self.config.cancel_path.replace("{reference}", quote(reference, safe=""))
        response = await self._send("POST", path, json={"reason": reason}, key=f"cancel-{reference}")
        return self._verdict(response, accept=(200, 201, 204), idempotent_absent=True)

    def _verdict(
        self, response: httpx.Response, *, accept: tuple[int, ...], idempotent_absent: bool
    ) -> BillerAnswer:
        status = response.status_code
        if status in accept or (idempotent_absent and status == 404):
            if not response.content:
                return BillerAnswer(accepted=True)
            try:
                accepted = msgspec.json.decode(response.content, type=_WireAccepted)
            except msgspec.DecodeError as exc:
                raise self._contract_broken(f"acceptance: {exc}") from exc
            return BillerAnswer(accepted=True, biller_reference=accepted.biller_reference)
        if status in (404, 409, 422):
            try:
                refusal = msgspec.json.decode(response.content or b"{}", type=_WireRefusal)
            except msgspec.DecodeError:
                refusal = _WireRefusal()
            return BillerAnswer(accepted=False, reason=refusal.reason, message=refusal.message)
        raise self._contract_broken(f"HTTP {status}")
