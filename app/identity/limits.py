"""Attempt counters and per-number limits of the identity module, on the shared atomic counters.

Per-address limits are route guards (``rate_limit("otp" | "signin", by="address")`` from
:mod:`app.core.ratelimit`). What is counted here is per phone number or per challenge: codes sent, wrong
codes, password tries. All of it fails closed: with the shared store (Redis) down, the answer is 503
``limiter_unavailable`` rather than unlimited guessing (DESIGN.md). Counter keys never contain a phone
number: numbers are replaced by a keyed hash.
"""

from __future__ import annotations

from app.core.crypto import blind_index
from app.core.errors import AppError, ErrorKind
from app.core.ratelimit import LIMITER_UNAVAILABLE, OUTAGE_RETRY_AFTER_SECONDS
from app.core.stores.base import Hit, StoreUnavailableError
from app.identity.runtime import IdentityRuntime

__all__ = ["count", "peek", "phone_key", "reset", "too_many"]


def phone_key(runtime: IdentityRuntime, phone: str) -> str:
    """A stable, keyed stand-in for ``phone`` in counter keys."""
    return blind_index(runtime.settings.data_keys, "counter-subject", phone.encode())[:32]


def _unavailable() -> AppError:
    error = LIMITER_UNAVAILABLE(retry_after=OUTAGE_RETRY_AFTER_SECONDS)
    error.headers["Retry-After"] = str(OUTAGE_RETRY_AFTER_SECONDS)
    return error


async def count(runtime: IdentityRuntime, key: str, window_seconds: int) -> Hit:
    """Add one to ``key`` (window starting at its first hit), or 503 when the store is down."""
    try:
        return await runtime.counters().hit(f"idn:{key}", window_seconds)
    except StoreUnavailableError as exc:
        raise _unavailable() from exc


async def peek(runtime: IdentityRuntime, key: str) -> Hit | None:
    try:
        return await runtime.counters().peek(f"idn:{key}")
    except StoreUnavailableError as exc:
        raise _unavailable() from exc


async def reset(runtime: IdentityRuntime, key: str) -> None:
    try:
        await runtime.counters().reset(f"idn:{key}")
    except StoreUnavailableError as exc:
        raise _unavailable() from exc


def too_many(
    kind: ErrorKind, retry_after: int, detail_vi: str | None = None, detail_en: str | None = None
) -> AppError:
    """A refusal carrying ``retry_after`` in the body and the Retry-After header."""
    retry_after = max(1, retry_after)
    error = kind(detail_vi, detail_en, retry_after=retry_after)
    error.headers["Retry-After"] = str(retry_after)
    return error
