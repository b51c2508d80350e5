"""Stripe-style webhook signatures, both ways: the card gateway's ``Stripe-Signature`` on the webhooks it
sends us, and our ``Hue-Signature`` on the webhooks we send merchants.

The header is ``t=<unix seconds>,v1=<hex>[,v1=<hex>...]``; each ``v1`` is HMAC-SHA256 over
``"<t>.<raw body>"`` under one webhook signing secret. During a secret rotation the sender adds one ``v1``
per active secret, and an event is accepted when any ``v1`` matches any secret of the receiver's key ring
(ours: ``CARD_GATEWAY_WEBHOOK_SECRETS``). An event whose ``t`` is more than :data:`TOLERANCE_SECONDS`
away from the receiver's clock is refused (a replayed old event), as Stripe's libraries do.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable

__all__ = ["TOLERANCE_SECONDS", "SignatureError", "sign", "signature_header", "verify"]

TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """The webhook's signature is missing, malformed, wrong or too old."""


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``v1`` value for ``body`` sent at ``timestamp``."""
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_header(secrets: Iterable[bytes], body: bytes, timestamp: int | None = None) -> str:
    """A full ``Stripe-Signature`` header, one ``v1`` per secret (what the gateway sends)."""
    t = int(time.time()) if timestamp is None else timestamp
    return ",".join([f"t={t}", *(f"v1={sign(secret, body, t)}" for secret in secrets)])


def verify(
    header: str | None,
    body: bytes,
    secrets: Iterable[bytes],
    *,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check ``header`` against ``body``; returns the signed timestamp or raises :class:`SignatureError`."""
    if not header:
        raise SignatureError("no Stripe-Signature header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError as exc:
                raise SignatureError("malformed timestamp") from exc
        elif name == "v1":
            candidates.append(value.strip())
    if timestamp is None or not candidates:
        raise SignatureError("the header needs t= and at least one v1=")
    moment = time.time() if now is None else now
    if abs(moment - timestamp) > tolerance:
        raise SignatureError("the signature's timestamp is outside the tolerance")
    for secret in secrets:
        expected = sign(secret, body, timestamp)
        if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
            return timestamp
    raise SignatureError("no v1 signature matches")
