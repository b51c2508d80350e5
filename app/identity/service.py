"""Identity rules, and the functions other modules use (the only door into identity).

For other modules:
    verify_payment_pin(session, user_id, pin) -> None          raises pin_invalid / pin_locked / pin_not_set
    get_user_brief(session, user_id) -> UserBrief | None
    find_user_id_by_phone(session, phone) -> uuid.UUID | None
    identity_level(session, user_id) -> int                    0, 1 or 2 (0 for unknown or closed accounts)
    device_is_new(session, session_id) -> bool                 the device of a session, first seen < 24 h ago
    grant_role(session, user_id, role, scope=..., granted_by=...) / revoke_role(...)
    register_closure_check(fn) / register_closure_hook(fn) / register_personal_data_exporter(fn)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.audit import AuditActor
from app.core.crypto import blind_index, blind_indexes, seal, unseal
from app.core.db import Database, utcnow
from app.core.errors import FORBIDDEN, NOT_FOUND, VALIDATION_FAILED
from app.core.security import DUTIES, ROLES, Caller
from app.identity import limits
from app.identity.cccd import mask_cccd, validate_cccd
from app.identity.consent import PURPOSES
from app.identity.data_rights import (
    ClosureRefusal,
    closure_checks,
    closure_hooks,
    personal_data_exporters,
    register_closure_check,
    register_closure_hook,
    register_personal_data_exporter,
)
from app.identity.ekyc import judge
from app.identity.errors import (
    ACCOUNT_LOCKED,
    CCCD_TAKEN,
    CLOSURE_REFUSED,
    CONSENT_REQUIRED,
    EKYC_REJECTED,
    EKYC_UNAVAILABLE,
    IDENTITY_LOCKED,
    INVALID_CREDENTIALS,
    PASSWORD_WEAK,
    PHONE_TAKEN,
    PROFILE_INCOMPLETE,
    ROLE_CONFLICT,
    SIGN_IN_LOCKED,
)
from app.identity.models import (
    AuthSession,
    Consent,
    Device,
    EkycCheck,
    OtpChallenge,
    PaymentPin,
    RefreshToken,
    User,
    UserRole,
)
from app.identity.otp import OtpPurpose, check_code
from app.identity.passwords import check_strength, hash_password, verify_password
from app.identity.phone import try_normalize_phone
from app.identity.pin import pin_status, set_pin, verify_payment_pin
from app.identity.runtime import runtime_of
from app.identity.security_events import record_security_event, security_event_in
from app.identity.tokens import DeviceInfo, TokenPair, open_session, revoke_sessions

__all__ = [
    "Address",
    "ClosureRefusal",
    "ConsentState",
    "EkycVerdict",
    "UserBrief",
    "apply_ekyc",
    "cccd_of",
    "change_password",
    "change_pin",
    "check_ekyc",
    "close_account",
    "confirm_step_up",
    "create_user",
    "current_consents",
    "declare_identity",
    "device_is_new",
    "export_personal_data",
    "find_user_id_by_phone",
    "get_user",
    "get_user_brief",
    "grant_role",
    "has_consent",
    "identity_level",
    "mark_verified",
    "masked_cccd",
    "pin_status",
    "prepare_password_change",
    "prepare_pin_change",
    "record_consent",
    "register",
    "register_closure_check",
    "register_closure_hook",
    "register_personal_data_exporter",
    "revoke_role",
    "set_account_lock",
    "set_address",
    "set_pin",
    "sign_in_with_otp",
    "sign_in_with_password",
    "verify_at_desk",
    "verify_payment_pin",
]

log = structlog.get_logger("app.identity")
_CCCD = "cccd"


# ---------------------------------------------------------------------------------------------- for others


@dataclass(frozen=True, slots=True)
class UserBrief:
    """What another module may know about a person without reading identity's tables."""

    user_id: uuid.UUID
    full_name: str | None
    phone: str | None
    identity_level: int
    status: str
    """``active``, ``locked`` or ``closed``."""
    roles: frozenset[str]

    @property
    def is_active(self) -> bool:
        return self.status == "active"


async def get_user_brief(session: AsyncSession, user_id: uuid.UUID) -> UserBrief | None:
    user = await session.get(User, user_id)
    if user is None:
        return None
    roles = frozenset(
        (await session.execute(select(UserRole.role).where(UserRole.user_id == user_id))).scalars()
    )
    return UserBrief(user.id, user.full_name, user.phone, user.identity_level, user.status, roles)


async def find_user_id_by_phone(session: AsyncSession, phone: str) -> uuid.UUID | None:
    """The active account of ``phone`` (any common spelling of a Vietnamese mobile number), or ``None``."""
    normalized = try_normalize_phone(phone)
    if normalized is None:
        return None
    found: uuid.UUID | None = (
        await session.execute(select(User.id).where(User.phone == normalized, User.status == "active"))
    ).scalar_one_or_none()
    return found


async def identity_level(session: AsyncSession, user_id: uuid.UUID) -> int:
    """0 = phone only, 1 = CCCD declared, 2 = verified; 0 for an unknown, locked or closed account."""
    row = (await session.execute(select(User.identity_level, User.status).where(User.id == user_id))).first()
    if row is None or row.status != "active":
        return 0
    return int(row.identity_level)


async def device_is_new(session: AsyncSession, session_id: uuid.UUID) -> bool:
    """Whether the device of sign-in session ``session_id`` (``Caller.session_id``) was first seen less than
    24 hours ago. Unknown sessions count as new (the careful answer)."""
    first_seen = (
        await session.execute(
            select(Device.first_seen_at)
            .join(AuthSession, AuthSession.device_id == Device.id)
            .where(AuthSession.id == session_id)
        )
    ).scalar_one_or_none()
    if first_seen is None:
        return True
    window = runtime_of(session).policy.new_device_seconds
    return bool(utcnow() - first_seen < timedelta(seconds=window))


def _staff(user_id: uuid.UUID | None) -> AuditActor:
    """The member of staff who acted, or the platform itself (CLI, demo seeding, registration)."""
    return AuditActor.user(user_id, "staff") if user_id else AuditActor.system("identity")


async def grant_role(
    session: AsyncSession,
    user_id: uuid.UUID,
    role: str,
    *,
    scope: str | uuid.UUID = "",
    granted_by: uuid.UUID | None = None,
) -> None:
    """Give ``role`` to a user. ``scope``: the duty of an admin, the agency of an officer, the merchant of
    merchant staff; empty for a citizen. An officer serves one agency and staff one merchant."""
    scope = str(scope)
    if role not in ROLES:
        raise VALIDATION_FAILED(f"Vai trò không tồn tại: {role}", f"Unknown role {role!r}")
    needs_scope = role != "citizen"
    if needs_scope != bool(scope) or (role == "admin" and scope not in DUTIES):
        raise VALIDATION_FAILED(
            "Phạm vi vai trò không hợp lệ", f"Role {role!r} needs {'a' if needs_scope else 'no'} valid scope"
        )
    rows = (await session.execute(select(UserRole).where(UserRole.user_id == user_id))).scalars().all()
    if any(r.role == role and r.scope == scope for r in rows):
        return
    single = {"officer": ("officer",), "merchant_owner": _STAFF, "merchant_cashier": _STAFF}.get(role, ())
    if any(r.role in single and r.scope != scope for r in rows):
        raise ROLE_CONFLICT(
            "Người dùng đã thuộc một đơn vị khác", "The user already serves another agency or merchant"
        )
    session.add(UserRole(user_id=user_id, role=role, scope=scope, granted_by=granted_by))
    await session.flush()
    await security_event_in(
        session,
        "role_granted",
        user_id=user_id,
        actor=_staff(granted_by),
        details={"role": role, "scope": scope},
    )


_STAFF = ("merchant_owner", "merchant_cashier")


async def revoke_role(
    session: AsyncSession, user_id: uuid.UUID, role: str, *, scope: str | uuid.UUID = ""
) -> bool:
    """Take ``role`` (with ``scope``) away; the user's sessions are ended so tokens stop stating it."""
    result = await session.execute(
        delete(UserRole)
        .where(UserRole.user_id == user_id, UserRole.role == role, UserRole.scope == str(scope))
        .execution_options(synchronize_session=False)
    )
    removed = bool(result.rowcount)  # type: ignore[attr-defined]
    if removed:
        await revoke_sessions(session, user_id, reason="role_changed")
        await security_event_in(session, "role_revoked", user_id=user_id, details={"role": role})
    return removed


# ------------------------------------------------------------------------------------------------ accounts


@dataclass(frozen=True, slots=True)
class Address:
    line: str
    commune: str
    province: str
    postal_code: str | None = None


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    """The account ``user_id`` unless closed (``not_found``)."""
    user = await session.get(User, user_id)
    if user is None or user.status == "closed":
        raise NOT_FOUND("Không tìm thấy tài khoản", "No such account")
    return user


def _check_password(password: str) -> None:
    reason = check_strength(password)
    if reason is not None:
        raise PASSWORD_WEAK(f"Mật khẩu quá yếu: {reason}", f"Password too weak: {reason}", reason=reason)


async def create_user(
    session: AsyncSession,
    *,
    phone: str,
    password: str | None = None,
    full_name: str | None = None,
    roles: tuple[tuple[str, str], ...] = (("citizen", ""),),
    granted_by: uuid.UUID | None = None,
    consents: tuple[str, ...] = ("account",),
) -> User:
    """A new active account for ``phone`` (already normalised and proven by a code, or created by an
    admin). ``phone_taken`` if an open account holds the number."""
    settings = runtime_of(session).settings
    if password is not None:
        _check_password(password)
    taken = (await session.execute(select(User.id).where(User.phone == phone))).scalar_one_or_none()
    if taken is not None:
        raise PHONE_TAKEN()
    user = User(
        phone=phone,
        full_name=full_name,
        password_hash=await hash_password(settings, password) if password is not None else None,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise PHONE_TAKEN() from exc
    for role, scope in roles:
        await grant_role(session, user.id, role, scope=scope, granted_by=granted_by)
    for purpose in consents:
        await record_consent(session, user.id, purpose, granted=True)
    return user


def cccd_of(user: User, session: AsyncSession) -> str | None:
    """The decrypted citizen ID number of ``user`` (for the owner's own view and export only)."""
    if user.cccd_ciphertext is None or user.cccd_key_id is None:
        return None
    ring = runtime_of(session).settings.data_keys
    return unseal(ring, _CCCD, user.cccd_key_id, user.cccd_ciphertext, aad=user.id.bytes).decode()


def masked_cccd(user: User, session: AsyncSession) -> str | None:
    number = cccd_of(user, session)
    return mask_cccd(number) if number else None


async def _store_cccd(session: AsyncSession, user: User, number: str) -> None:
    ring = runtime_of(session).settings.data_keys
    owners = (
        (
            await session.execute(
                select(User.id).where(
                    User.cccd_lookup.in_(blind_indexes(ring, _CCCD, number.encode())), User.id != user.id
                )
            )
        )
        .scalars()
        .first()
    )
    if owners is not None:
        raise CCCD_TAKEN()
    user.cccd_key_id, user.cccd_ciphertext = seal(ring, _CCCD, number.encode(), aad=user.id.bytes)
    user.cccd_lookup = blind_index(ring, _CCCD, number.encode())
    try:
        await session.flush()
    except IntegrityError as exc:
        raise CCCD_TAKEN() from exc


async def declare_identity(
    session: AsyncSession, user: User, *, full_name: str, cccd: str, date_of_birth: date
) -> None:
    """Declare name, citizen ID and date of birth (level 0 -> 1). Once verified (level 2) they can only be
    changed at a desk: ``identity_locked``, unless the values are the same."""
    facts = validate_cccd(cccd, date_of_birth)
    if date_of_birth > utcnow().date():
        raise VALIDATION_FAILED("Ngày sinh ở tương lai", "Date of birth is in the future")
    full_name = " ".join(full_name.split())
    if user.identity_level >= 2:
        if (full_name, facts.number, date_of_birth) != (
            user.full_name,
            cccd_of(user, session),
            user.date_of_birth,
        ):
            raise IDENTITY_LOCKED()
        return
    await _store_cccd(session, user, facts.number)
    user.full_name, user.date_of_birth = full_name, date_of_birth
    user.identity_level = max(user.identity_level, 1)
    await session.flush()


async def set_address(session: AsyncSession, user: User, address: Address) -> None:
    user.address_line, user.address_commune = address.line.strip(), address.commune.strip()
    user.address_province, user.postal_code = address.province.strip(), address.postal_code
    await session.flush()


async def mark_verified(session: AsyncSession, user: User, method: str, by: uuid.UUID | None) -> None:
    """Identity level 2: ``method`` is ``desk`` (``by`` the officer) or ``ekyc``."""
    user.identity_level = 2
    user.verified_at = utcnow()
    user.verification_method = method
    user.verified_by = by
    await session.flush()
    await security_event_in(
        session, "identity_verified", user_id=user.id, actor=_staff(by), details={"method": method}
    )


# -------------------------------------------------------------------------------------------------- consent


async def record_consent(session: AsyncSession, user_id: uuid.UUID, purpose: str, *, granted: bool) -> None:
    """Append a decision for ``purpose`` at its current text version. The account purpose cannot be
    withdrawn (close the account instead)."""
    spec = PURPOSES.get(purpose)
    if spec is None:
        raise VALIDATION_FAILED(f"Mục đích không tồn tại: {purpose}", f"Unknown consent purpose {purpose!r}")
    if spec.required and not granted:
        raise CONSENT_REQUIRED(
            "Không thể rút đồng ý này; hãy đóng tài khoản nếu muốn dừng xử lý",
            "This consent cannot be withdrawn while the account is open; close the account instead",
            purpose=purpose,
        )
    session.add(Consent(user_id=user_id, purpose=purpose, version=spec.version, granted=granted))
    await session.flush()


@dataclass(frozen=True, slots=True)
class ConsentState:
    purpose: str
    granted: bool
    version: str | None
    """The version of the text last decided on (``None``: never asked)."""
    current_version: str
    decided_at: datetime | None


async def current_consents(session: AsyncSession, user_id: uuid.UUID) -> list[ConsentState]:
    rows = (
        await session.execute(
            select(Consent).where(Consent.user_id == user_id).order_by(Consent.created_at, Consent.id)
        )
    ).scalars()
    latest: dict[str, Consent] = {}
    for row in rows:
        latest[row.purpose] = row
    states = []
    for code, spec in PURPOSES.items():
        last = latest.get(code)
        granted = last is not None and last.granted and last.version == spec.version
        states.append(
            ConsentState(
                purpose=code,
                granted=granted,
                version=last.version if last else None,
                current_version=spec.version,
                decided_at=last.created_at if last else None,
            )
        )
    return states


async def has_consent(session: AsyncSession, user_id: uuid.UUID, purpose: str) -> bool:
    return any(s.purpose == purpose and s.granted for s in await current_consents(session, user_id))


# ------------------------------------------------------------------------------------------- sign-in flows


async def register(
    db: Database,
    *,
    challenge_id: uuid.UUID,
    code: str,
    password: str | None,
    device: DeviceInfo,
    consents: tuple[str, ...],
) -> TokenPair:
    """Finish a registration: the code proves the number; the account opens signed in on this device."""
    if "account" not in consents:
        raise CONSENT_REQUIRED(
            "Cần đồng ý xử lý dữ liệu để mở tài khoản",
            "Consent to the 'account' purpose is needed to open an account",
            purpose="account",
        )
    if password is not None:
        _check_password(password)
    phone = await check_code(db, challenge_id=challenge_id, code=code, purpose="register")
    async with db.transaction() as session:
        user = await create_user(
            session, phone=phone, password=password, consents=tuple(dict.fromkeys(consents))
        )
        pair = await open_session(session, user, device, "register")
    await record_security_event(db, "registered", user_id=pair.user_id)
    return pair


async def sign_in_with_password(db: Database, *, phone: str, password: str, device: DeviceInfo) -> TokenPair:
    """Phone + password. At most 5 tries per number per 15 minutes (a success clears them); every answer
    for a wrong number or password is the same ``invalid_credentials``."""
    runtime = runtime_of(db)
    policy = runtime.policy
    normalized = try_normalize_phone(phone)
    subject = limits.phone_key(runtime, normalized or phone)
    attempt = await limits.count(runtime, f"signin:{subject}", policy.sign_in_window)
    if attempt.count > policy.sign_in_attempts_per_phone:
        await record_security_event(db, "sign_in_locked", user_id=None, outcome="denied")
        raise limits.too_many(SIGN_IN_LOCKED, attempt.retry_after)
    async with db.read() as session:
        user = (
            (
                await session.execute(select(User).where(User.phone == normalized, User.status != "closed"))
            ).scalar_one_or_none()
            if normalized
            else None
        )
    ok, upgraded = await verify_password(runtime.settings, user.password_hash if user else None, password)
    if not ok or user is None:
        left = max(0, policy.sign_in_attempts_per_phone - attempt.count)
        await record_security_event(
            db, "sign_in_failed", user_id=user.id if user else None, outcome="failure"
        )
        raise INVALID_CREDENTIALS(attempts_left=left)
    await limits.reset(runtime, f"signin:{subject}")
    if user.status == "locked":
        raise ACCOUNT_LOCKED()
    async with db.transaction() as session:
        fresh = await get_user(session, user.id)
        if upgraded:
            fresh.password_hash = upgraded
        pair = await open_session(session, fresh, device, "password")
    await record_security_event(db, "signed_in", user_id=pair.user_id, details={"method": "password"})
    return pair


async def sign_in_with_otp(
    db: Database, *, challenge_id: uuid.UUID, code: str, device: DeviceInfo
) -> TokenPair:
    phone = await check_code(db, challenge_id=challenge_id, code=code, purpose="sign_in")
    async with db.transaction() as session:
        user = (
            await session.execute(select(User).where(User.phone == phone, User.status != "closed"))
        ).scalar_one_or_none()
        if user is None:
            raise INVALID_CREDENTIALS()
        if user.status == "locked":
            raise ACCOUNT_LOCKED()
        pair = await open_session(session, user, device, "otp")
    await record_security_event(db, "signed_in", user_id=pair.user_id, details={"method": "otp"})
    return pair


async def prepare_pin_change(
    db: Database, user_id: uuid.UUID, *, challenge_id: uuid.UUID, code: str, pin: str
) -> None:
    """Before :func:`change_pin`: the new PIN's format (a weak PIN does not spend the code), then the
    ``pin_change`` code sent to the account's own phone (a wrong try is committed before the refusal)."""
    from app.identity.pin import check_pin_format

    check_pin_format(pin)
    await check_code(db, challenge_id=challenge_id, code=code, purpose="pin_change", user_id=user_id)


async def change_pin(session: AsyncSession, user_id: uuid.UUID, pin: str) -> None:
    """Set or change the payment PIN (after :func:`prepare_pin_change`); clears a lock."""
    await get_user(session, user_id)
    await set_pin(session, user_id, pin)
    await security_event_in(session, "pin_changed", user_id=user_id)


async def prepare_password_change(
    db: Database, user_id: uuid.UUID, *, challenge_id: uuid.UUID, code: str, password: str
) -> str:
    """Before :func:`change_password`: the new password's strength, the ``password_change`` code, and the
    password's argon2id hash (slow, so computed outside the unit of work); returns the hash."""
    _check_password(password)
    await check_code(db, challenge_id=challenge_id, code=code, purpose="password_change", user_id=user_id)
    return await hash_password(runtime_of(db).settings, password)


async def change_password(
    session: AsyncSession, user_id: uuid.UUID, *, password_hash: str, keep_session: uuid.UUID
) -> int:
    """Set the new password (hash from :func:`prepare_password_change`); every other session is signed
    out. Returns how many were."""
    user = await get_user(session, user_id)
    user.password_hash = password_hash
    ended = await revoke_sessions(session, user_id, reason="password_changed", keep=keep_session)
    await security_event_in(session, "password_changed", user_id=user_id)
    return len(ended)


# ---------------------------------------------------------------------------------------------- levels


@dataclass(frozen=True, slots=True)
class EkycVerdict:
    """What :func:`check_ekyc` found: the provider's session passed (or the account was already verified)."""

    provider: str
    reference: str
    already_verified: bool


async def check_ekyc(db: Database, user_id: uuid.UUID, reference: str) -> EkycVerdict:
    """Ask the eKYC provider about ``reference`` and judge it against the declared identity. A rejection is
    recorded (its own transaction, so the refusal keeps its trace) and raised as ``ekyc_rejected``; a pass
    is returned for :func:`apply_ekyc` to record in the caller's unit of work."""
    runtime = runtime_of(db)
    provider = runtime.ekyc
    if provider is None:
        raise EKYC_UNAVAILABLE()
    async with db.read() as session:
        user = await get_user(session, user_id)
        if not await has_consent(session, user_id, "ekyc"):
            raise CONSENT_REQUIRED(
                "Cần đồng ý xử lý ảnh giấy tờ và khuôn mặt (ekyc)",
                "Consent to the 'ekyc' purpose is needed first",
                purpose="ekyc",
            )
        declared = cccd_of(user, session)
        if declared is None or user.date_of_birth is None or not user.full_name:
            raise PROFILE_INCOMPLETE()
    if user.identity_level >= 2:
        return EkycVerdict(provider.name, reference, already_verified=True)
    result = await provider.fetch(reference)
    reason = judge(result, declared)
    if reason is not None:
        async with db.transaction() as session:
            session.add(
                EkycCheck(
                    user_id=user_id,
                    provider=provider.name,
                    reference=reference[:128],
                    outcome="rejected",
                    reason=reason,
                )
            )
        raise EKYC_REJECTED(_EKYC_VI[reason], _EKYC_EN[reason], reason=reason)
    return EkycVerdict(provider.name, reference, already_verified=False)


async def apply_ekyc(session: AsyncSession, user_id: uuid.UUID, verdict: EkycVerdict) -> User:
    """Record a passed eKYC check (from :func:`check_ekyc`) and raise the account to level 2."""
    user = await get_user(session, user_id)
    if verdict.already_verified or user.identity_level >= 2:
        return user
    session.add(
        EkycCheck(
            user_id=user_id,
            provider=verdict.provider,
            reference=verdict.reference[:128],
            outcome="verified",
            reason=None,
        )
    )
    await mark_verified(session, user, "ekyc", None)
    return user


_EKYC_VI = {
    "unknown_session": "Phiên xác thực không tồn tại",
    "not_live": "Ảnh chân dung không phải người thật",
    "document_mismatch": "Giấy tờ không khớp với số CCCD đã khai",
    "face_mismatch": "Khuôn mặt không khớp với ảnh trên giấy tờ",
}
_EKYC_EN = {
    "unknown_session": "The provider does not know this verification session",
    "not_live": "The selfie failed the liveness check",
    "document_mismatch": "The document read is not the declared citizen ID",
    "face_mismatch": "The face does not match the document photo",
}


async def verify_at_desk(
    session: AsyncSession, officer: Caller, *, phone: str, cccd: str, full_name: str, date_of_birth: date
) -> User:
    """An officer has seen the person and their card: the account of ``phone`` becomes level 2. A person
    who had declared nothing gets the card's data; one who declared other data is refused (``cccd_invalid``
    mismatch) so the officer can correct it deliberately."""
    from app.identity.errors import CCCD_INVALID

    normalized = try_normalize_phone(phone)
    facts = validate_cccd(cccd, date_of_birth)
    user_id = await find_user_id_by_phone(session, normalized or "") if normalized else None
    if user_id is None:
        raise NOT_FOUND("Không có tài khoản với số điện thoại này", "No account with this phone number")
    if user_id == officer.user_id:
        raise FORBIDDEN("Không tự xác thực cho chính mình", "Officers cannot verify themselves")
    user = await get_user(session, user_id)
    declared = cccd_of(user, session)
    if declared is None:
        await _store_cccd(session, user, facts.number)
        user.full_name, user.date_of_birth = " ".join(full_name.split()), date_of_birth
    elif declared != facts.number or user.date_of_birth != date_of_birth:
        raise CCCD_INVALID(
            "Số CCCD hoặc ngày sinh trên thẻ khác với thông tin đã khai",
            "The card's number or date of birth differs from the declared data",
            reason="declared_mismatch",
        )
    await mark_verified(session, user, "desk", officer.user_id)
    return user


async def set_account_lock(session: AsyncSession, user_id: uuid.UUID, *, locked: bool, by: uuid.UUID) -> User:
    """Lock (every session ends, no sign-in) or unlock an account; the security event is recorded in the
    same unit of work."""
    user = await get_user(session, user_id)
    if locked and user.status == "active":
        user.status, user.locked_at = "locked", utcnow()
        await revoke_sessions(session, user_id, reason="account_locked")
    elif not locked and user.status == "locked":
        user.status, user.locked_at = "active", None
    await session.flush()
    await security_event_in(
        session, "account_locked" if locked else "account_unlocked", user_id=user_id, actor=_staff(by)
    )
    return user


# ------------------------------------------------------------------------------------------- data rights


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


async def export_personal_data(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    """Everything held about the person, as JSON-ready data: identity's own tables, then every section the
    other modules registered."""
    user = await get_user(session, user_id)
    roles = (await session.execute(select(UserRole).where(UserRole.user_id == user_id))).scalars().all()
    consents = (
        (
            await session.execute(
                select(Consent).where(Consent.user_id == user_id).order_by(Consent.created_at)
            )
        )
        .scalars()
        .all()
    )
    devices = (await session.execute(select(Device).where(Device.user_id == user_id))).scalars().all()
    sessions = (
        (await session.execute(select(AuthSession).where(AuthSession.user_id == user_id))).scalars().all()
    )
    checks = (await session.execute(select(EkycCheck).where(EkycCheck.user_id == user_id))).scalars().all()
    pin = await session.get(PaymentPin, user_id)
    data: dict[str, Any] = {
        "generated_at": utcnow().isoformat(),
        "identity": {
            "account": {
                "user_id": str(user.id),
                "created_at": _iso(user.created_at),
                "phone": user.phone,
                "full_name": user.full_name,
                "cccd": cccd_of(user, session),
                "date_of_birth": _iso(user.date_of_birth),
                "address": {
                    "line": user.address_line,
                    "commune": user.address_commune,
                    "province": user.address_province,
                    "postal_code": user.postal_code,
                },
                "identity_level": user.identity_level,
                "verified_at": _iso(user.verified_at),
                "verification_method": user.verification_method,
                "status": user.status,
                "has_password": user.password_hash is not None,
            },
            "roles": [{"role": r.role, "scope": r.scope, "granted_at": _iso(r.created_at)} for r in roles],
            "consents": [
                {"purpose": c.purpose, "version": c.version, "granted": c.granted, "at": _iso(c.created_at)}
                for c in consents
            ],
            "devices": [
                {
                    "device_id": str(d.id),
                    "name": d.name,
                    "platform": d.platform,
                    "first_seen_at": _iso(d.first_seen_at),
                    "last_seen_at": _iso(d.last_seen_at),
                    "revoked_at": _iso(d.revoked_at),
                }
                for d in devices
            ],
            "sessions": [
                {
                    "session_id": str(s.id),
                    "device_id": str(s.device_id),
                    "method": s.method,
                    "opened_at": _iso(s.created_at),
                    "last_seen_at": _iso(s.last_seen_at),
                    "revoked_at": _iso(s.revoked_at),
                    "revoked_reason": s.revoked_reason,
                }
                for s in sessions
            ],
            "ekyc_checks": [
                {"provider": c.provider, "outcome": c.outcome, "reason": c.reason, "at": _iso(c.created_at)}
                for c in checks
            ],
            "payment_pin": {"is_set": pin is not None, "set_at": _iso(pin.set_at) if pin else None},
        },
    }
    for exporter in personal_data_exporters():
        for section, content in (await exporter(session, user_id)).items():
            if section not in data:
                data[section] = content
    return data


async def confirm_step_up(
    db: Database, user_id: uuid.UUID, *, challenge_id: uuid.UUID, code: str, purpose: OtpPurpose
) -> None:
    """Consume a step-up code sent to the account's own phone (``pin_change``, ``password_change``,
    ``close_account``); a wrong try is committed before the refusal."""
    await check_code(db, challenge_id=challenge_id, code=code, purpose=purpose, user_id=user_id)


async def close_account(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Close the account (after :func:`confirm_step_up` with ``close_account``) unless a module refuses
    (``closure_refused`` with every reason). Personal data is erased in place; the row stays so records
    other laws make us keep (payments) still name an account, and consent history stays as proof."""
    user = await get_user(session, user_id)
    refusals = [r for check in closure_checks() if (r := await check(session, user_id)) is not None]
    if refusals:
        raise CLOSURE_REFUSED(
            "Chưa thể đóng tài khoản: " + "; ".join(r.detail_vi for r in refusals),
            "The account cannot be closed: " + "; ".join(r.detail_en for r in refusals),
            reasons=[{"code": r.code, "detail": r.detail_en} for r in refusals],
        )
    for hook in closure_hooks():
        await hook(session, user_id)
    await revoke_sessions(session, user_id, reason="account_closed")
    session_ids = select(AuthSession.id).where(AuthSession.user_id == user_id).scalar_subquery()
    await session.execute(delete(RefreshToken).where(RefreshToken.session_id.in_(session_ids)))
    await session.execute(delete(AuthSession).where(AuthSession.user_id == user_id))
    await session.execute(delete(Device).where(Device.user_id == user_id))
    await session.execute(delete(PaymentPin).where(PaymentPin.user_id == user_id))
    await session.execute(delete(UserRole).where(UserRole.user_id == user_id))
    await session.execute(delete(EkycCheck).where(EkycCheck.user_id == user_id))
    if user.phone:
        await session.execute(delete(OtpChallenge).where(OtpChallenge.phone == user.phone))
    for state in await current_consents(session, user_id):
        if state.granted:
            spec = PURPOSES[state.purpose]
            session.add(Consent(user_id=user_id, purpose=state.purpose, version=spec.version, granted=False))
    user.phone = user.password_hash = user.full_name = None
    user.cccd_ciphertext = user.cccd_key_id = user.cccd_lookup = None
    user.date_of_birth = None
    user.address_line = user.address_commune = user.address_province = user.postal_code = None
    user.status, user.closed_at = "closed", utcnow()
    user.identity_level = 0
    await security_event_in(session, "account_closed", user_id=user_id)
