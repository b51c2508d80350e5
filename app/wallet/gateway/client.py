"""A thin client of a card gateway that speaks the Stripe REST API (``https://api.stripe.com`` shapes).

- Requests are form-encoded (``metadata[topup_id]=...``, ``expand[]=...``), answers are JSON objects.
- Every POST carries an ``Idempotency-Key``; a retry (timeout, dropped connection, 5xx, 429) reuses the
  same key, so the gateway performs the request at most once and answers the retry with the first result.
- Failures come back as the Stripe error object ``{"error": {"type", "code", "decline_code", "message",
  "param", "payment_intent"}}`` and are raised as :class:`GatewayError` subclasses;
  :class:`GatewayUnavailableError` means "no answer after the retries": the outcome is unknown, ask again.
- Amounts are in the currency's smallest unit; VND is zero-decimal, so ``amount`` is in đồng.

The embedded sandbox (:mod:`app.wallet.gateway.sandbox`) serves the same API through an in-process httpx
transport, so development, the demo and reconciliation go through exactly this code.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import httpx
import structlog

__all__ = [
    "CardError",
    "CardGateway",
    "GatewayError",
    "GatewayUnavailableError",
    "IdempotencyError",
    "InvalidRequestError",
    "form_encode",
]

log = structlog.get_logger("app.wallet.gateway")


class GatewayError(Exception):
    """The gateway answered with a Stripe error object."""

    def __init__(self, status: int, error: Mapping[str, Any]) -> None:
        self.status = status
        self.error = dict(error)
        self.type: str = str(error.get("type") or "api_error")
        self.code: str | None = error.get("code")
        self.decline_code: str | None = error.get("decline_code")
        self.param: str | None = error.get("param")
        self.payment_intent: dict[str, Any] | None = error.get("payment_intent")
        super().__init__(f"{status} {self.type}/{self.code}: {error.get('message', '')}")


class CardError(GatewayError):
    """``card_error`` (HTTP 402): the card was declined; ``payment_intent`` carries the intent's state."""


class InvalidRequestError(GatewayError):
    """``invalid_request_error`` (400/404): a bad parameter or an unknown object."""


class IdempotencyError(GatewayError):
    """``idempotency_error``: the same key was reused with different parameters."""


class GatewayUnavailableError(Exception):
    """No usable answer after every retry (timeouts, dropped connections, 5xx): the outcome is unknown."""


def form_encode(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's form encoding: nested mappings as ``a[b]``, lists as ``a[]`` (``a[0][b]`` for objects)."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            pairs.extend(form_encode(value, name))
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    pairs.extend(form_encode(item, f"{name}[{index}]"))
                else:
                    pairs.append((f"{name}[]", _scalar(item)))
        else:
            pairs.append((name, _scalar(value)))
    return pairs


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_RETRYABLE = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class CardGateway:
    """The card gateway (Stripe API). One instance per process: :func:`app.wallet.gateway.get_card_gateway`.

    ``transport`` replaces the network (the embedded sandbox, or respx in tests); ``max_retries`` extra
    attempts are made on a timeout, a dropped connection, a 5xx or a 429, after ``backoff_seconds`` doubling.
    """

    def __init__(
        self,
        base_url: str,
        secret_key: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
        max_retries: int = 2,
        backoff_seconds: float = 0.5,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {secret_key}", "Stripe-Version": "2024-06-20"},
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
        )

    # --- the calls we use -------------------------------------------------------------------------------

    async def retrieve_payment_method(self, payment_method: str) -> dict[str, Any]:
        """A payment method (``pm_...``); ``card.funding``: debit, credit, prepaid or unknown."""
        return await self._request("GET", f"/v1/payment_methods/{payment_method}")

    async def verify_holder(self, payment_method: str, national_id: str, *, idempotency_key: str) -> str:
        """Ask the card's issuer whether ``national_id`` is its holder's personal ID number: ``match``,
        ``mismatch`` or ``unavailable``. (An extension of the Stripe API that Vietnamese acquirers offer for
        wallet linking; the sandbox implements it, see its docstring.)"""
        answer = await self._request(
            "POST",
            f"/v1/payment_methods/{payment_method}/verify_holder",
            params={"national_id": national_id},
            idempotency_key=idempotency_key,
        )
        return str(answer.get("result", "unavailable"))

    async def create_payment_intent(
        self,
        *,
        amount: int,
        payment_method: str,
        idempotency_key: str,
        metadata: Mapping[str, str],
        return_url: str | None = None,
        description: str | None = None,
        currency: str = "vnd",
    ) -> dict[str, Any]:
        """Create and confirm a payment intent at once. Answers the intent (``succeeded``,
        ``requires_action`` with ``next_action.redirect_to_url.url`` for 3-D Secure, ``processing``);
        a decline raises :class:`CardError` whose ``payment_intent`` is the failed intent."""
        if type(amount) is not int or amount <= 0:
            raise ValueError("amount is a positive int in đồng")
        return await self._request(
            "POST",
            "/v1/payment_intents",
            params={
                "amount": amount,
                "currency": currency,
                "payment_method": payment_method,
                "confirm": True,
                "payment_method_types": ["card"],
                "metadata": dict(metadata),
                "return_url": return_url,
                "description": description,
            },
            idempotency_key=idempotency_key,
        )

    async def retrieve_payment_intent(self, intent_id: str) -> dict[str, Any]:
        """The intent with its latest charge and that charge's balance transaction (amount, fee, net)."""
        return await self._request(
            "GET",
            f"/v1/payment_intents/{intent_id}",
            query=[("expand[]", "latest_charge.balance_transaction")],
        )

    async def retrieve_balance_transaction(self, transaction_id: str) -> dict[str, Any]:
        """One balance transaction (``txn_...``)."""
        return await self._request("GET", f"/v1/balance_transactions/{transaction_id}")

    async def list_balance_transactions(
        self,
        created_gte: int,
        created_lt: int,
        limit: int = 100,
        starting_after: str | None = None,
    ) -> dict[str, Any]:
        """One page of balance transactions created in ``[created_gte, created_lt)`` (unix seconds), newest
        first, in Stripe's list shape ``{"object": "list", "data": [...], "has_more": bool, "url": ...}``.
        Each item: ``id`` (``txn_...``), ``amount``, ``fee``, ``net`` (đồng), ``currency`` (``vnd``), ``type``
        (``charge``, ``refund``, ``payout``, ...), ``source`` (``ch_...``), ``created``, ``status``,
        ``reporting_category``. ``starting_after`` is the last id of the previous page."""
        query: list[tuple[str, str]] = [
            ("created[gte]", str(created_gte)),
            ("created[lt]", str(created_lt)),
            ("limit", str(limit)),
        ]
        if starting_after:
            query.append(("starting_after", starting_after))
        return await self._request("GET", "/v1/balance_transactions", query=query)

    async def iter_balance_transactions(
        self, created_gte: int, created_lt: int, *, page_size: int = 100
    ) -> AsyncIterator[dict[str, Any]]:
        """Every balance transaction of ``[created_gte, created_lt)``, following ``has_more`` page by page."""
        after: str | None = None
        while True:
            page = await self.list_balance_transactions(created_gte, created_lt, page_size, after)
            items: Sequence[dict[str, Any]] = page.get("data", [])
            for item in items:
                yield item
            if not page.get("has_more") or not items:
                return
            after = str(items[-1]["id"])

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- transport --------------------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        query: list[tuple[str, str]] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        headers: dict[str, str] = {}
        content: bytes | None = None
        if method == "POST":
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            content = _urlencode(params)
        last: str = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 1))
            try:
                response = await self._client.request(
                    method,
                    path,
                    params=tuple(query) if query else None,
                    content=content,
                    headers=headers,
                )
            except _RETRYABLE as exc:
                last = f"{type(exc).__name__}"
                log.warning("card_gateway_retry", path=path, attempt=attempt + 1, reason=last)
                continue
            if response.status_code >= 500 or response.status_code == 429:
                if response.headers.get("Stripe-Should-Retry") == "false":
                    break
                last = f"HTTP {response.status_code}"
                log.warning("card_gateway_retry", path=path, attempt=attempt + 1, reason=last)
                continue
            try:
                payload = response.json()
            except ValueError as exc:
                raise GatewayUnavailableError(f"unreadable answer from the gateway ({path})") from exc
            if response.status_code >= 400:
                raise _error(response.status_code, payload)
            if not isinstance(payload, dict):
                raise GatewayUnavailableError(f"unexpected answer from the gateway ({path})")
            return payload
        raise GatewayUnavailableError(f"card gateway unavailable ({path}): {last}")


def _urlencode(params: Mapping[str, Any] | None) -> bytes:
    return urlencode(form_encode(params or {})).encode()


def _error(status: int, payload: Any) -> GatewayError:
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        error = {"type": "api_error", "message": str(payload)[:200]}
    kind = error.get("type")
    if kind == "card_error":
        return CardError(status, error)
    if kind == "idempotency_error":
        return IdempotencyError(status, error)
    if kind == "invalid_request_error":
        return InvalidRequestError(status, error)
    return GatewayError(status, error)
