"""The embedded sandbox card gateway: the Stripe API in test mode, served in-process (no network).

It is an httpx transport, so :class:`~app.wallet.gateway.client.CardGateway` talks to it exactly as to the
real gateway (form-encoded requests, ``Idempotency-Key``, Stripe error objects). Development, the demo and
reconciliation therefore exercise the production code path. State lives in memory (one process).

Test payment methods (Stripe's test-mode tokens; a real app gets a ``pm_...`` from the gateway's SDK):

| payment method | card | funding | what happens |
|---|---|---|---|
| ``pm_card_visa_debit`` | Visa debit ···5556 | debit | charges succeed |
| ``pm_card_mastercard_debit`` | Mastercard debit ···8210 | debit | charges succeed |
| ``pm_card_chargeDeclined`` | Visa debit ···0002 | debit | charges are declined (``card_declined``) |
| ``pm_card_authenticationRequired`` | Visa debit ···3184 | debit | 3-D Secure: ``requires_action`` |
| ``pm_card_visa`` | Visa credit ···4242 | credit | linking is refused (credit card) |
| ``pm_card_otherHolder`` | Visa debit ···0127 | debit | its issuer says the holder is someone else |

Holder check (``POST /v1/payment_methods/{id}/verify_holder`` with ``national_id``), deterministic: the
issuer of ``pm_card_otherHolder`` answers ``mismatch`` for every number except :data:`OTHER_HOLDER_ID`; every
other test card belongs to whoever links it (``match``) unless the number is not 12 digits (``mismatch``).

3-D Secure: ``next_action.redirect_to_url.url`` points at the sandbox's challenge page; the development
route ``POST /api/v1/dev/card-gateway/payment_intents/{id}/authenticate`` (or
:meth:`SandboxGateway.authenticate`) passes or fails the challenge.

Fees: :func:`fee_for` (2.2 % + 1,000 đồng, rounded up), written on each charge's balance transaction.
Every succeeded charge gets a ``txn_...`` balance transaction (type ``charge``), listed by
``GET /v1/balance_transactions`` newest first with ``created[gte]``, ``created[lt]``, ``limit`` and
``starting_after``. Events (``payment_intent.succeeded``, ``payment_intent.payment_failed``,
``payment_intent.requires_action``) are signed like ``Stripe-Signature`` with every secret of the webhook key
ring and handed to :attr:`SandboxGateway.deliver` (set by the app to its own webhook handler).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import structlog

from app.core.webhook_signature import signature_header

__all__ = [
    "OTHER_HOLDER_ID",
    "SANDBOX_BASE_URL",
    "SANDBOX_SECRET_KEY",
    "SandboxGateway",
    "TestCard",
    "fee_for",
]

log = structlog.get_logger("app.wallet.gateway.sandbox")

SANDBOX_BASE_URL = "https://card-gateway.sandbox.invalid"
SANDBOX_SECRET_KEY = "sk_test_sandbox"  # noqa: S105 - the sandbox's public test key, not a secret
OTHER_HOLDER_ID = "079090000127"
"""The only personal ID number ``pm_card_otherHolder``'s issuer accepts."""


@dataclass(frozen=True, slots=True)
class TestCard:
    brand: str
    last4: str
    funding: str
    behaviour: str
    """``succeed``, ``decline``, ``3ds`` (or ``other_holder``: succeeds, but belongs to someone else)."""


CARDS: dict[str, TestCard] = {
    "pm_card_visa_debit": TestCard("visa", "5556", "debit", "succeed"),
    "pm_card_mastercard_debit": TestCard("mastercard", "8210", "debit", "succeed"),
    "pm_card_chargeDeclined": TestCard("visa", "0002", "debit", "decline"),
    "pm_card_authenticationRequired": TestCard("visa", "3184", "debit", "3ds"),
    "pm_card_visa": TestCard("visa", "4242", "credit", "succeed"),
    "pm_card_otherHolder": TestCard("visa", "0127", "debit", "other_holder"),
}


def fee_for(amount: int) -> int:
    """The sandbox's fee on a charge of ``amount`` đồng: 2.2 % + 1,000, rounded up."""
    return (amount * 22 + 999) // 1000 + 1_000


Deliver = Callable[[bytes, str], Awaitable[None]]


@dataclass
class SandboxGateway:
    """In-process Stripe test mode. ``handler`` is the httpx transport's request handler."""

    secret_key: str = SANDBOX_SECRET_KEY
    webhook_secrets: tuple[bytes, ...] = ()
    deliver: Deliver | None = None
    """Where events go (the app's webhook handler); None keeps them in :attr:`events` only."""
    challenge_url: str = "/api/v1/dev/card-gateway/payment_intents/{id}/authenticate"
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    balance_transactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    """(method, path, Idempotency-Key) of every request, for tests."""
    _idempotent: dict[str, tuple[str, int, bytes]] = field(default_factory=dict)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    clock: Callable[[], float] = time.time

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def _id(self, prefix: str) -> str:
        return f"{prefix}_sbx{next(self._numbers):012d}"

    # --- what "confirmed" means for tests and reconciliation ------------------------------------------

    def confirmed_total(self) -> int:
        """Gross đồng of every succeeded charge."""
        return sum(t["amount"] for t in self.balance_transactions.values() if t["type"] == "charge")

    def net_total(self) -> int:
        """Net đồng of every balance transaction: what the gateway holds for us."""
        return sum(t["net"] for t in self.balance_transactions.values())

    # --- HTTP ------------------------------------------------------------------------------------------

    async def handler(self, request: httpx.Request) -> httpx.Response:
        key = request.headers.get("Idempotency-Key")
        self.requests.append((request.method, request.url.path, key))
        if request.headers.get("Authorization") != f"Bearer {self.secret_key}":
            return _error(401, "invalid_request_error", "api_key_invalid", "Invalid API key provided.")
        body = request.content.decode() if request.method == "POST" else ""
        if request.method == "POST" and key:
            fingerprint = hashlib.sha256(f"{request.url.path}?{body}".encode()).hexdigest()
            if key in self._idempotent:
                seen, status, content = self._idempotent[key]
                if seen != fingerprint:
                    return _error(
                        400,
                        "idempotency_error",
                        None,
                        "Keys for idempotent requests can only be used with the same parameters.",
                    )
                return httpx.Response(status, content=content, headers={"Idempotent-Replayed": "true"})
            response = await self._route(request, dict(parse_qsl(body)))
            self._idempotent[key] = (fingerprint, response.status_code, response.content)
            return response
        return await self._route(request, dict(parse_qsl(body)))

    async def _route(self, request: httpx.Request, form: dict[str, str]) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")
        method = request.method
        if parts[:2] == ["v1", "payment_methods"] and len(parts) == 3 and method == "GET":
            return self._payment_method(parts[2])
        if parts[:2] == ["v1", "payment_methods"] and parts[3:] == ["verify_holder"] and method == "POST":
            return self._verify_holder(parts[2], form.get("national_id", ""))
        if parts == ["v1", "payment_intents"] and method == "POST":
            return self._create_intent(form)
        if parts[:2] == ["v1", "payment_intents"] and len(parts) == 3 and method == "GET":
            intent = self.intents.get(parts[2])
            if intent is None:
                return _missing("payment_intent", parts[2])
            expand = request.url.params.get_list("expand[]")
            return _json(self._expanded(intent, "latest_charge.balance_transaction" in expand))
        if parts == ["v1", "balance_transactions"] and method == "GET":
            return self._list_balance(request.url.params)
        if parts[:2] == ["v1", "balance_transactions"] and len(parts) == 3 and method == "GET":
            txn = self.balance_transactions.get(parts[2])
            return _json(txn) if txn else _missing("balance_transaction", parts[2])
        return _error(404, "invalid_request_error", "resource_missing", f"Unrecognized request URL {method}")

    def _payment_method(self, pm: str) -> httpx.Response:
        card = CARDS.get(pm)
        if card is None:
            return _missing("payment_method", pm)
        return _json(
            {
                "id": pm,
                "object": "payment_method",
                "type": "card",
                "livemode": False,
                "card": {
                    "brand": card.brand,
                    "last4": card.last4,
                    "funding": card.funding,
                    "country": "VN",
                    "exp_month": 12,
                    "exp_year": 2030,
                },
            }
        )

    def _verify_holder(self, pm: str, national_id: str) -> httpx.Response:
        card = CARDS.get(pm)
        if card is None:
            return _missing("payment_method", pm)
        if not (len(national_id) == 12 and national_id.isdigit()):
            result = "mismatch"
        elif card.behaviour == "other_holder":
            result = "match" if national_id == OTHER_HOLDER_ID else "mismatch"
        else:
            result = "match"
        return _json({"object": "holder_verification", "payment_method": pm, "result": result})

    def _create_intent(self, form: dict[str, str]) -> httpx.Response:
        try:
            amount = int(form.get("amount", ""))
        except ValueError:
            return _error(
                400, "invalid_request_error", "parameter_missing", "Missing amount.", param="amount"
            )
        if amount < 1 or form.get("currency") != "vnd":
            return _error(400, "invalid_request_error", "parameter_invalid", "Invalid amount or currency.")
        pm = form.get("payment_method", "")
        card = CARDS.get(pm)
        if card is None:
            return _missing("payment_method", pm)
        intent_id = self._id("pi")
        metadata = {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")}
        intent: dict[str, Any] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "currency": "vnd",
            "payment_method": pm,
            "status": "processing",
            "created": int(self.clock()),
            "metadata": metadata,
            "latest_charge": None,
            "last_payment_error": None,
            "next_action": None,
            "livemode": False,
        }
        self.intents[intent_id] = intent
        if card.behaviour == "decline":
            self._fail(intent, "card_declined", "generic_decline", "Your card was declined.")
            return _error(
                402,
                "card_error",
                "card_declined",
                "Your card was declined.",
                decline_code="generic_decline",
                payment_intent=dict(intent),
            )
        if card.behaviour == "3ds":
            intent["status"] = "requires_action"
            intent["next_action"] = {
                "type": "redirect_to_url",
                "redirect_to_url": {
                    "url": self.challenge_url.format(id=intent_id),
                    "return_url": form.get("return_url"),
                },
            }
            self._event("payment_intent.requires_action", intent)
            return _json(dict(intent))
        self._succeed(intent)
        return _json(dict(intent))

    def _succeed(self, intent: dict[str, Any]) -> None:
        amount = int(intent["amount"])
        charge_id, txn_id = self._id("ch"), self._id("txn")
        fee = fee_for(amount)
        created = int(self.clock())
        self.balance_transactions[txn_id] = {
            "id": txn_id,
            "object": "balance_transaction",
            "amount": amount,
            "fee": fee,
            "net": amount - fee,
            "currency": "vnd",
            "type": "charge",
            "source": charge_id,
            "created": created,
            "available_on": created + 2 * 86400,
            "status": "pending",
            "reporting_category": "charge",
            "description": intent["id"],
            "fee_details": [{"amount": fee, "currency": "vnd", "type": "stripe_fee"}],
        }
        self.charges[charge_id] = {
            "id": charge_id,
            "object": "charge",
            "amount": amount,
            "currency": "vnd",
            "payment_intent": intent["id"],
            "balance_transaction": txn_id,
            "status": "succeeded",
            "paid": True,
            "created": created,
        }
        intent.update(status="succeeded", amount_received=amount, latest_charge=charge_id, next_action=None)
        self._event("payment_intent.succeeded", intent)

    def payout(self, amount: int) -> dict[str, Any]:
        """The gateway pays ``amount`` đồng of our balance out to our bank account (the guarantee account):
        a ``po_...`` payout and its balance transaction (type ``payout``, amount and net negative, no fee)."""
        payout_id, txn_id = self._id("po"), self._id("txn")
        created = int(self.clock())
        self.balance_transactions[txn_id] = {
            "id": txn_id,
            "object": "balance_transaction",
            "amount": -amount,
            "fee": 0,
            "net": -amount,
            "currency": "vnd",
            "type": "payout",
            "source": payout_id,
            "created": created,
            "available_on": created,
            "status": "available",
            "reporting_category": "payout",
            "description": "STRIPE PAYOUT",
            "fee_details": [],
        }
        return {"id": payout_id, "object": "payout", "amount": amount, "balance_transaction": txn_id}

    def _fail(self, intent: dict[str, Any], code: str, decline_code: str, message: str) -> None:
        intent.update(
            status="requires_payment_method",
            next_action=None,
            last_payment_error={
                "type": "card_error",
                "code": code,
                "decline_code": decline_code,
                "message": message,
            },
        )
        self._event("payment_intent.payment_failed", intent)

    def authenticate(self, intent_id: str, *, passed: bool = True) -> dict[str, Any]:
        """The card holder passes (or fails) the 3-D Secure challenge of ``intent_id``."""
        intent = self.intents[intent_id]
        if intent["status"] == "requires_action":
            if passed:
                self._succeed(intent)
            else:
                self._fail(
                    intent,
                    "payment_intent_authentication_failure",
                    "authentication_required",
                    "The card holder did not complete 3-D Secure.",
                )
        return dict(intent)

    def _expanded(self, intent: dict[str, Any], expand: bool) -> dict[str, Any]:
        out = dict(intent)
        if expand and intent.get("latest_charge"):
            charge = dict(self.charges[intent["latest_charge"]])
            charge["balance_transaction"] = dict(self.balance_transactions[charge["balance_transaction"]])
            out["latest_charge"] = charge
        return out

    def _list_balance(self, params: httpx.QueryParams) -> httpx.Response:
        gte = int(params.get("created[gte]", "0"))
        lt = int(params.get("created[lt]", str(2**62)))
        limit = max(1, min(100, int(params.get("limit", "10"))))
        items = sorted(
            (t for t in self.balance_transactions.values() if gte <= t["created"] < lt),
            key=lambda t: (t["created"], t["id"]),
            reverse=True,
        )
        after = params.get("starting_after")
        if after:
            ids = [t["id"] for t in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        page = items[:limit]
        return _json(
            {
                "object": "list",
                "data": page,
                "has_more": len(items) > limit,
                "url": "/v1/balance_transactions",
            }
        )

    # --- webhooks --------------------------------------------------------------------------------------

    def _event(self, kind: str, intent: dict[str, Any]) -> None:
        event = {
            "id": self._id("evt"),
            "object": "event",
            "type": kind,
            "created": int(self.clock()),
            "livemode": False,
            "data": {"object": dict(intent)},
        }
        self.events.append(event)
        if self.deliver is not None and self.webhook_secrets:
            body = json.dumps(event, separators=(",", ":")).encode()
            header = signature_header(self.webhook_secrets, body, int(self.clock()))
            task = asyncio.get_running_loop().create_task(self._send(body, header))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, body: bytes, header: str) -> None:
        await asyncio.sleep(0.05)  # like the real one: after the API answered
        assert self.deliver is not None
        for attempt in range(3):
            try:
                await self.deliver(body, header)
                return
            except Exception:
                log.warning("sandbox_webhook_failed", attempt=attempt + 1)
                await asyncio.sleep(1.0 * (attempt + 1))


def _json(payload: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=payload)


def _error(status: int, kind: str, code: str | None, message: str, **extra: Any) -> httpx.Response:
    error: dict[str, Any] = {"type": kind, "message": message}
    if code:
        error["code"] = code
    error.update(extra)
    return _json({"error": error}, status)


def _missing(kind: str, ident: str) -> httpx.Response:
    return _error(404, "invalid_request_error", "resource_missing", f"No such {kind}: '{ident}'", param="id")
