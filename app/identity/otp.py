"""One-time codes sent by SMS: 6 digits, valid 5 minutes, at most 5 tries, a resend cooldown, and limits per
number and per client address.

A code is stored only as HMAC-SHA256 under a key from ``PIN_KEYS`` (a six-digit space falls to any unkeyed
hash). Tries are counted in the challenge's row, in a transaction committed before a refusal is answered, so
a wrong code always counts; the 5th wrong code kills the challenge. Wrong codes are also counted per number
across challenges: past the limit, the number gets no new code for the window.

Asking for a registration code for a number that already has an account, or a sign-in code for one that has
none, answers exactly the same; the SMS says what happened instead of carrying a code, so the endpoint does
not reveal who has an account.
"""

from __future__ import annotations

import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.crypto import keyed_digest
from app.core.db import Database, utcnow
from app.core.errors import AppError
from app.identity import limits
from app.identity.errors import OTP_COOLDOWN, OTP_EXPIRED, OTP_INVALID, OTP_LOCKED, SMS_UNAVAILABLE
from app.identity.models import OtpChallenge, User
from app.identity.runtime import IdentityRuntime, SmsError, runtime_of

__all__ = ["PUBLIC_PURPOSES", "STEP_UP_PURPOSES", "Challenge", "OtpPurpose", "check_code", "request_code"]

OtpPurpose = Literal["register", "sign_in", "pin_change", "password_change", "close_account"]
PUBLIC_PURPOSES: tuple[OtpPurpose, ...] = ("register", "sign_in")
STEP_UP_PURPOSES: tuple[OtpPurpose, ...] = ("pin_change", "password_change", "close_account")
_DIGITS = re.compile(r"^[0-9]{6}$")
log = structlog.get_logger("app.identity")

_TEXT = {
    "code": "Ma xac thuc Hue-S cua ban la {code}. Hieu luc 5 phut. Khong chia se ma nay voi bat ky ai.",
    "already_registered": "So dien thoai nay da co tai khoan Hue-S. Hay dang nhap hoac dat lai mat khau.",
    "no_account": "So dien thoai nay chua co tai khoan Hue-S. Hay dang ky trong ung dung.",
}


@dataclass(frozen=True, slots=True)
class Challenge:
    """What the client learns about a code it asked for."""

    challenge_id: uuid.UUID
    expires_at: datetime
    resend_after: int
    attempts_allowed: int


def _digest(runtime: IdentityRuntime, key_id: str, challenge_id: uuid.UUID, code: str) -> bytes | None:
    secret = runtime.settings.pin_keys.get(key_id)
    if secret is None:
        return None
    return keyed_digest(secret, "otp", challenge_id.bytes, code.encode())


async def request_code(
    db: Database,
    *,
    phone: str,
    purpose: OtpPurpose,
    user_id: uuid.UUID | None = None,
) -> Challenge:
    """Send a code for ``purpose`` to ``phone`` (normalised), within the per-number limits (the route
    limits per client address). Step-up purposes name the signed-in ``user_id`` the code is valid for."""
    runtime = runtime_of(db)
    policy = runtime.policy
    subject = limits.phone_key(runtime, phone)
    failures = await limits.peek(runtime, f"otp:fail:{subject}")
    if failures is not None and failures.count >= policy.otp_failures_per_phone:
        raise limits.too_many(OTP_LOCKED, failures.retry_after)
    cooldown = await limits.count(runtime, f"otp:cool:{subject}:{purpose}", policy.otp_resend_seconds)
    if cooldown.count > 1:
        raise limits.too_many(OTP_COOLDOWN, cooldown.retry_after)
    await runtime.limiter.check(
        "otp", f"phone:{phone}", limit=policy.otp_sends_per_phone, window=policy.otp_sends_per_phone_window
    )

    code = f"{secrets.randbelow(1_000_000):06d}"
    now = utcnow()
    challenge_id = uuid.uuid4()
    key_id = runtime.settings.pin_keys.active_kid
    async with db.transaction() as session:
        message = await _message_for(session, phone, purpose, user_id)
        digest = _digest(runtime, key_id, challenge_id, code if message == "code" else secrets.token_hex(8))
        assert digest is not None
        await session.execute(
            update(OtpChallenge)
            .where(
                OtpChallenge.phone == phone,
                OtpChallenge.purpose == purpose,
                OtpChallenge.consumed_at.is_(None),
            )
            .values(consumed_at=now)
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            delete(OtpChallenge)
            .where(OtpChallenge.phone == phone, OtpChallenge.expires_at < now - timedelta(days=1))
            .execution_options(synchronize_session=False)
        )
        session.add(
            OtpChallenge(
                id=challenge_id,
                phone=phone,
                purpose=purpose,
                user_id=user_id,
                code_hash=digest,
                key_id=key_id,
                expires_at=now + timedelta(seconds=policy.otp_ttl_seconds),
            )
        )
    try:
        await runtime.sms.send(phone, _TEXT[message].format(code=code))
    except SmsError as exc:
        log.warning("sms_failed", purpose=purpose, error=str(exc))
        async with db.transaction() as session:
            await session.execute(
                update(OtpChallenge).where(OtpChallenge.id == challenge_id).values(consumed_at=utcnow())
            )
        await limits.reset(runtime, f"otp:cool:{subject}:{purpose}")
        raise SMS_UNAVAILABLE() from exc
    return Challenge(
        challenge_id=challenge_id,
        expires_at=now + timedelta(seconds=policy.otp_ttl_seconds),
        resend_after=policy.otp_resend_seconds,
        attempts_allowed=policy.otp_max_attempts,
    )


async def _message_for(
    session: AsyncSession, phone: str, purpose: OtpPurpose, user_id: uuid.UUID | None
) -> str:
    if purpose not in PUBLIC_PURPOSES:
        return "code"
    exists = (
        await session.execute(select(User.id).where(User.phone == phone, User.status != "closed"))
    ).scalar_one_or_none() is not None
    if purpose == "register" and exists:
        return "already_registered"
    if purpose == "sign_in" and not exists:
        return "no_account"
    return "code"


async def check_code(
    db: Database,
    *,
    challenge_id: uuid.UUID,
    code: str,
    purpose: OtpPurpose,
    user_id: uuid.UUID | None = None,
) -> str:
    """Consume the challenge when ``code`` is right and return its phone number; otherwise raise
    ``otp_invalid`` (with ``attempts_left``), ``otp_locked`` or ``otp_expired``. The try is committed
    before the refusal."""
    runtime = runtime_of(db)
    policy = runtime.policy
    now = utcnow()
    refusal: AppError | None = None
    phone: str | None = None
    async with db.transaction() as session:
        conditions = [
            OtpChallenge.id == challenge_id,
            OtpChallenge.purpose == purpose,
            OtpChallenge.consumed_at.is_(None),
        ]
        if user_id is not None:
            conditions.append(OtpChallenge.user_id == user_id)
        row = (
            await session.execute(
                update(OtpChallenge)
                .where(*conditions)
                .values(attempts=OtpChallenge.attempts + 1)
                .returning(
                    OtpChallenge.attempts,
                    OtpChallenge.expires_at,
                    OtpChallenge.code_hash,
                    OtpChallenge.key_id,
                    OtpChallenge.phone,
                )
                .execution_options(synchronize_session=False)
            )
        ).first()
        if row is None or row.expires_at <= now:
            raise OTP_EXPIRED()
        failed_phone = row.phone
        if row.attempts > policy.otp_max_attempts:
            refusal = OTP_LOCKED(
                "Mã đã bị vô hiệu do nhập sai quá nhiều lần", "Too many wrong codes: ask for a new one"
            )
        else:
            given = _digest(runtime, row.key_id, challenge_id, code) if _DIGITS.match(code) else None
            if given is not None and hmac.compare_digest(given, row.code_hash):
                await session.execute(
                    update(OtpChallenge).where(OtpChallenge.id == challenge_id).values(consumed_at=now)
                )
                phone = row.phone
            else:
                left = policy.otp_max_attempts - row.attempts
                if left <= 0:
                    refusal = OTP_LOCKED(
                        "Nhập sai mã quá số lần cho phép; hãy yêu cầu mã mới",
                        "Too many wrong codes: ask for a new one",
                    )
                else:
                    refusal = OTP_INVALID(
                        f"Mã xác thực không đúng, còn {left} lần thử",
                        f"Wrong code; {left} tries left",
                        attempts_left=left,
                    )
    if refusal is not None:
        await limits.count(
            runtime, f"otp:fail:{limits.phone_key(runtime, failed_phone)}", policy.otp_failures_window
        )
        raise refusal
    assert phone is not None
    return phone
