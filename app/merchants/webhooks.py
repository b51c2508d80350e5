"""Signed webhooks to merchants' servers, delivered through the outbox (retries with backoff, a delivery
log per event, a resend action).

Each event (``payment.succeeded``, ``refund.succeeded``) is a ``merchant_webhook_events`` row written in the
transaction of the payment or refund, with an outbox message (topic ``merchants.webhook``) when the merchant
has an endpoint. The handler POSTs the event's JSON body with::

    Hue-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
    Hue-Event-Id: <event id>          (the receiver's deduplication key: the same on every retry and resend)

like Stripe-Signature. The merchant's secret is ``whsec_`` + base64url(HMAC-SHA256(WEBHOOK_KEYS[kid],
"merchant:<id>")): derived from configuration (the key id is kept on the merchant), never stored, shown to
the owner when the endpoint is set. A 2xx answer is delivered; anything else raises, so the outbox retries
with exponential backoff up to :data:`MAX_ATTEMPTS`, then the event is ``failed`` (staff can resend).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid

import httpx
import msgspec
import structlog
from sqlalchemy import select

from app.core import webhook_signature
from app.core.db import Database, utcnow
from app.core.outbox import Envelope, enqueue, register_handler
from app.core.settings import KeyRing, Settings
from app.merchants.models import Merchant, MerchantWebhookEvent
from app.merchants.service import WEBHOOK_TOPIC

__all__ = [
    "MAX_ATTEMPTS",
    "SIGNATURE_HEADER",
    "deliver_webhook",
    "install",
    "resend",
    "sign",
    "signing_secret",
    "verify",
]

log = structlog.get_logger("app.merchants.webhooks")

SIGNATURE_HEADER = "Hue-Signature"
MAX_ATTEMPTS = 8


def signing_secret(keys: KeyRing, kid: str, merchant_id: uuid.UUID) -> str:
    """The merchant's webhook secret under key ``kid``."""
    key = keys.get(kid)
    if key is None:
        raise KeyError(f"no webhook key {kid!r}")
    mac = hmac.new(key, f"merchant:{merchant_id}".encode(), hashlib.sha256).digest()
    return "whsec_" + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``Hue-Signature`` header value for ``body`` sent at ``timestamp`` (the Stripe-style scheme of
    :mod:`app.core.webhook_signature`, one ``v1``)."""
    return webhook_signature.signature_header([secret.encode()], body, timestamp)


def verify(secret: str, body: bytes, header: str, *, now: int | None = None) -> bool:
    """What a merchant's server does: check the signature and that it is recent (5 minutes)."""
    try:
        webhook_signature.verify(header, body, [secret.encode()], now=now)
    except webhook_signature.SignatureError:
        return False
    return True


class _Runtime:
    def __init__(self, db: Database, settings: Settings, client: httpx.AsyncClient) -> None:
        self.db = db
        self.settings = settings
        self.client = client


_runtime: _Runtime | None = None


def install(db: Database, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
    """Make this process's webhook deliveries use ``db`` and ``client`` (tests pass a mock transport)."""
    global _runtime
    _runtime = _Runtime(db, settings, client or httpx.AsyncClient(timeout=10))


def _current() -> _Runtime:
    if _runtime is None:
        from app.core.settings import get_settings

        settings = get_settings()
        install(Database(settings), settings)
    assert _runtime is not None
    return _runtime


async def deliver_webhook(envelope: Envelope) -> None:
    """Deliver one event to its merchant's endpoint (see the module docstring)."""
    runtime = _current()
    event_id = uuid.UUID(envelope.payload["event_id"])
    async with runtime.db.read() as session:
        event = await session.get(MerchantWebhookEvent, event_id)
        merchant = await session.get(Merchant, event.merchant_id) if event else None
    if event is None or merchant is None or not merchant.webhook_url or not merchant.webhook_key_id:
        return
    body = msgspec.json.encode(event.payload)
    secret = signing_secret(runtime.settings.webhook_keys, merchant.webhook_key_id, merchant.id)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body, int(time.time())),
        "Hue-Event-Id": str(event.id),
        "User-Agent": "Hue-S-Webhooks/1",
    }
    status: int | None = None
    error: str | None = None
    try:
        response = await runtime.client.post(merchant.webhook_url, content=body, headers=headers)
        status = response.status_code
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except httpx.HTTPError as exc:
        error = type(exc).__name__
    await _log_attempt(runtime.db, event_id, status, error, last=envelope.attempt >= MAX_ATTEMPTS)
    if error is not None:
        raise RuntimeError(f"webhook {event_id} not delivered: {error}")


async def _log_attempt(
    db: Database, event_id: uuid.UUID, status: int | None, error: str | None, *, last: bool
) -> None:
    async with db.transaction() as session:
        event = await session.get(MerchantWebhookEvent, event_id)
        if event is None:
            return
        event.attempts += 1
        event.last_status_code = status
        event.last_error = error
        if error is None:
            event.status = "delivered"
            event.delivered_at = utcnow()
        elif last:
            event.status = "failed"


async def resend(db: Database, merchant_id: uuid.UUID, event_id: uuid.UUID) -> MerchantWebhookEvent | None:
    """Queue another delivery of an event (same id and body, fresh signature); None if it is not the
    merchant's or the merchant has no endpoint."""
    async with db.transaction() as session:
        event = await session.scalar(
            select(MerchantWebhookEvent)
            .where(MerchantWebhookEvent.id == event_id, MerchantWebhookEvent.merchant_id == merchant_id)
            .with_for_update()
        )
        merchant = await session.get(Merchant, merchant_id)
        if event is None or merchant is None or not merchant.webhook_url:
            return None
        event.resends += 1
        event.status = "pending"
        await enqueue(session, WEBHOOK_TOPIC, {"event_id": str(event.id)}, key=f"{event.id}:{event.resends}")
        await session.flush()
        return event


register_handler(WEBHOOK_TOPIC, deliver_webhook, max_attempts=MAX_ATTEMPTS, timeout_seconds=15)
