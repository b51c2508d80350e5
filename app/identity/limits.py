"""Rate limits and attempt counters of the identity module, on the shared atomic counters.

They fail closed: with the shared store (Redis) down, OTP sending, code checks and sign-in answer 503 rather
than run unlimited (DESIGN.md). Keys never contain a phone number: numbers are replaced by a keyed hash.
"""

from __future__ import annotations

from app.core.crypto import blind_index
from app.core.errors import RATE_LIMITED, SERVICE_UNAVAILABLE, AppError, ErrorKind
from app.core.stores.base import Hit, StoreUnavailableError
from app.identity.runtime import IdentityRuntime

__all__ = ["address_key", "count", "limit", "peek", "phone_key", "reset", "too_many"]


def phone_key(runtime: IdentityRuntime, phone: str) -> str:
    """A stable, keyed stand-in for ``phone`` in counter keys."""
    return blind_index(runtime.settings.data_keys, "counter-subject", phone.encode())[:32]


def address_key(address: str | None) -> str:
    return (address or "unknown")[:64]


def _unavailable() -> AppError:
    error = SERVICE_UNAVAILABLE(
        "Tạm thời không thể xác thực, vui lòng thử lại sau",
        "Sign-in and one-time codes are unavailable for a moment; retry later",
        retry_after=30,
    )
    error.headers["Retry-After"] = "30"
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


async def limit(runtime: IdentityRuntime, key: str, allowed: int, window_seconds: int) -> None:
    """Count one request under ``key``; more than ``allowed`` in the window is ``rate_limited``."""
    hit = await count(runtime, key, window_seconds)
    if hit.count > allowed:
        raise too_many(RATE_LIMITED, hit.retry_after)
