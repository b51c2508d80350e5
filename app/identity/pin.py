"""The payment PIN: six digits, checked on every movement of money a person starts.

Stored as HMAC-SHA256 under a key from ``PIN_KEYS`` (kept outside the database) over a per-user salt, the
user id and the PIN, with the key id beside it: a leaked database alone does not give a PIN away (without the
key there is nothing to brute-force), and a check costs microseconds, cheap enough for every payment.

Wrong tries are counted on the shared atomic counters, not in the payer's database transaction: a payment
refused for a wrong PIN rolls its transaction back, and the try must still count. An attempt is reserved
before the comparison, so parallel guesses cannot exceed the allowance. The 5th wrong try within the lock
period locks the PIN for ``PIN_LOCK_SECONDS``. With the shared store down, payments go on with this process's
counters (DESIGN.md: money paths keep working).
"""

from __future__ import annotations

import hmac
import itertools
import os
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.crypto import keyed_digest
from app.core.db import Database, utcnow
from app.core.settings import KeyRing
from app.identity.errors import PIN_INVALID, PIN_LOCKED, PIN_NOT_SET, PIN_WEAK
from app.identity.models import PaymentPin
from app.identity.runtime import IdentityRuntime, runtime_of
from app.identity.security_events import record_security_event_soon

__all__ = [
    "PinRecord",
    "PinStatus",
    "check_payment_pin",
    "check_pin_format",
    "pin_status",
    "set_pin",
    "verify_payment_pin",
]

_SIX_DIGITS = re.compile(r"^[0-9]{6}$")
log = structlog.get_logger("app.identity")
_PURPOSE = "payment-pin"


def check_pin_format(pin: str) -> None:
    """Six digits, not all the same and not a run like 123456 or 987654 (``pin_weak``)."""
    if not _SIX_DIGITS.match(pin):
        raise PIN_WEAK("Mã PIN phải gồm đúng 6 chữ số", "The PIN must be exactly 6 digits")
    steps = {int(b) - int(a) for a, b in itertools.pairwise(pin)}
    if len(set(pin)) == 1 or steps in ({1}, {-1}):
        raise PIN_WEAK()


def _digest(ring: KeyRing, key_id: str, salt: bytes, user_id: uuid.UUID, pin: str) -> bytes | None:
    secret = ring.get(key_id)
    if secret is None:
        return None
    return keyed_digest(secret, _PURPOSE, salt, user_id.bytes, pin.encode())


async def set_pin(session: AsyncSession, user_id: uuid.UUID, pin: str) -> None:
    """Set or replace the PIN (the caller has already checked the one-time code) and clear its lock."""
    check_pin_format(pin)
    runtime = runtime_of(session)
    ring = runtime.settings.pin_keys
    salt = os.urandom(16)
    digest = _digest(ring, ring.active_kid, salt, user_id, pin)
    assert digest is not None
    row = await session.get(PaymentPin, user_id)
    if row is None:
        # No PIN, so no try was ever counted (verification stops at pin_not_set): nothing to clear.
        session.add(PaymentPin(user_id=user_id, pin_hash=digest, salt=salt, key_id=ring.active_kid))
        await session.flush()
        return
    row.pin_hash, row.salt, row.key_id, row.set_at = digest, salt, ring.active_kid, utcnow()
    await session.flush()
    await runtime.money_reset(_fail_key(user_id))
    await runtime.money_reset(_lock_key(user_id))


def _fail_key(user_id: uuid.UUID) -> str:
    return f"idn:pin:tries:{user_id}"


def _lock_key(user_id: uuid.UUID) -> str:
    return f"idn:pin:lock:{user_id}"


def _locked(until: datetime, retry_after: int) -> Exception:
    error = PIN_LOCKED(
        "Mã PIN tạm bị khóa do nhập sai nhiều lần",
        "The PIN is locked after too many wrong tries",
        locked_until=until,
        retry_after=retry_after,
    )
    error.headers["Retry-After"] = str(max(1, retry_after))
    return error


async def _lock(runtime: IdentityRuntime, db: Database, user_id: uuid.UUID) -> Exception:
    # The count of tries is not reset here: it expires before the lock does (its window started at the
    # first wrong try), and resetting it would let a guess already past the lock check compare again.
    hit = await runtime.money_hit(_lock_key(user_id), runtime.policy.pin_lock_seconds)
    if hit.count == 1:
        record_security_event_soon(db, "pin_locked", user_id=user_id)
    return _locked(utcnow() + timedelta(seconds=hit.retry_after), hit.retry_after)


@dataclass(frozen=True, slots=True)
class PinRecord:
    """The stored PIN of one person (``payment_pins``), as a money path read it with its other data."""

    pin_hash: bytes
    salt: bytes
    key_id: str


async def check_payment_pin(
    runtime: IdentityRuntime, db: Database, user_id: uuid.UUID, pin: str, record: PinRecord | None
) -> bytes | None:
    """The rule of :func:`verify_payment_pin` for a caller that has already read ``record`` (or found no
    PIN): raise ``pin_invalid`` / ``pin_locked`` / ``pin_not_set``, or accept. Returns the PIN's new hash
    when it is still under a retired key (the caller stores it, ``key_id`` = the active one), else None."""
    ring = runtime.settings.pin_keys
    if record is None or ring.get(record.key_id) is None:
        raise PIN_NOT_SET("Hãy thiết lập mã PIN thanh toán", "Set a payment PIN first")
    policy = runtime.policy
    # The lock is checked and this try counted in one step (one Redis round trip), before comparing.
    lock, attempt = await runtime.money_hit_unless(
        _fail_key(user_id), policy.pin_lock_seconds, _lock_key(user_id)
    )
    if lock is not None:
        raise _locked(utcnow() + timedelta(seconds=lock.retry_after), lock.retry_after)
    assert attempt is not None
    if attempt.count > policy.pin_max_attempts:
        raise await _lock(runtime, db, user_id)
    given = _digest(ring, record.key_id, record.salt, user_id, pin) if _SIX_DIGITS.match(pin) else None
    if given is not None and hmac.compare_digest(given, record.pin_hash):
        await runtime.money_reset(_fail_key(user_id))
        return (
            None
            if record.key_id == ring.active_kid
            else _digest(ring, ring.active_kid, record.salt, user_id, pin)
        )
    left = policy.pin_max_attempts - attempt.count
    if left <= 0:
        raise await _lock(runtime, db, user_id)
    raise PIN_INVALID(
        f"Mã PIN không đúng, còn {left} lần thử", f"Wrong PIN; {left} tries left", attempts_left=left
    )


async def verify_payment_pin(session: AsyncSession, user_id: uuid.UUID, pin: str) -> None:
    """Accept ``pin`` as ``user_id``'s payment PIN, or raise ``pin_invalid`` (with ``attempts_left``),
    ``pin_locked`` (with ``locked_until``) or ``pin_not_set``. Never stores or logs the PIN."""
    runtime = runtime_of(session)
    row = await session.get(PaymentPin, user_id)
    record = None if row is None else PinRecord(row.pin_hash, row.salt, row.key_id)
    rehashed = await check_payment_pin(runtime, Database.of(session), user_id, pin, record)
    if row is not None and rehashed is not None:
        row.pin_hash, row.key_id = rehashed, runtime.settings.pin_keys.active_kid


@dataclass(frozen=True, slots=True)
class PinStatus:
    is_set: bool
    locked_until: datetime | None
    attempts_left: int


async def pin_status(session: AsyncSession, user_id: uuid.UUID) -> PinStatus:
    runtime = runtime_of(session)
    row = await session.get(PaymentPin, user_id)
    lock = await runtime.money_peek(_lock_key(user_id))
    tries = await runtime.money_peek(_fail_key(user_id))
    locked_until = (
        utcnow() + timedelta(seconds=lock.retry_after) if lock is not None and lock.count > 0 else None
    )
    used = tries.count if tries is not None else 0
    return PinStatus(
        is_set=row is not None and runtime.settings.pin_keys.get(row.key_id) is not None,
        locked_until=locked_until,
        attempts_left=0 if locked_until else max(0, runtime.policy.pin_max_attempts - used),
    )
