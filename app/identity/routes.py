"""The identity API: registration and sign-in, the person's own account, officers' desk verification, admins'
staff management, and (outside production) the development SMS outbox.

Every state-changing POST of a signed-in caller takes an ``Idempotency-Key`` (``app.core.idempotency``): a
retry answers the first response again and does nothing more. Exempt (DESIGN.md): sending codes, registering
with a code, signing in and refreshing tokens, which have no caller to scope a key to and consume one-time
codes or tokens. Routes confirmed with a step-up code consume the code before the effect (``prepare``), so a
wrong code is counted even though the key stays free, and a replay does not need the spent code.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.access import ensure_visible
from app.core.db import Database, utcnow
from app.core.deps import AUTHENTICATED
from app.core.errors import (
    FORBIDDEN,
    NOT_FOUND,
    RATE_LIMITED,
    SERVICE_UNAVAILABLE,
    VALIDATION_FAILED,
)
from app.core.idempotency import IDEMPOTENCY_ERRORS, IdempotencyKey, idempotent_response, scope_of
from app.core.ratelimit import rate_limit
from app.core.security import Caller, require_duty, require_roles
from app.identity import service, staff
from app.identity.consent import PURPOSES
from app.identity.errors import (
    ACCOUNT_LOCKED,
    CCCD_INVALID,
    CCCD_TAKEN,
    CLOSURE_REFUSED,
    CONSENT_REQUIRED,
    EKYC_REJECTED,
    EKYC_UNAVAILABLE,
    IDENTITY_LOCKED,
    INVALID_CREDENTIALS,
    INVALID_REFRESH_TOKEN,
    OTP_COOLDOWN,
    OTP_EXPIRED,
    OTP_INVALID,
    OTP_LOCKED,
    PASSWORD_WEAK,
    PHONE_INVALID,
    PHONE_TAKEN,
    PIN_WEAK,
    PROFILE_INCOMPLETE,
    REFRESH_TOKEN_REUSED,
    ROLE_CONFLICT,
    SIGN_IN_LOCKED,
    SMS_UNAVAILABLE,
)
from app.identity.models import AuthSession, Device, User, UserRole
from app.identity.otp import Challenge, request_code
from app.identity.phone import normalize_phone
from app.identity.runtime import runtime_of
from app.identity.schemas import (
    AccountClose,
    AddressIn,
    AdminUserView,
    CodeRequest,
    CodeSent,
    ConsentDecision,
    ConsentOut,
    ConsentPurposeOut,
    DeskVerification,
    DeviceIn,
    DeviceOut,
    DevSms,
    EkycIn,
    IdentityDeclaration,
    OtpSignIn,
    PasswordChange,
    PasswordChanged,
    PasswordSignIn,
    PinChange,
    PinState,
    Profile,
    RefreshIn,
    Registration,
    RoleOut,
    SignedOut,
    StaffCreate,
    StepUpCodeRequest,
    Tokens,
)
from app.identity.tokens import DeviceInfo, TokenPair, revoke_sessions, rotate_refresh_token

__all__ = ["identity_development_routes", "identity_routes"]

_OTP_SEND_ERRORS = [
    PHONE_INVALID,
    OTP_COOLDOWN,
    OTP_LOCKED,
    RATE_LIMITED,
    SMS_UNAVAILABLE,
    SERVICE_UNAVAILABLE,
]
_OTP_CHECK_ERRORS = [OTP_INVALID, OTP_EXPIRED, OTP_LOCKED, RATE_LIMITED, SERVICE_UNAVAILABLE]


def _device(device: DeviceIn) -> DeviceInfo:
    return DeviceInfo(install_id=device.install_id, name=device.name.strip(), platform=device.platform)


def _tokens(pair: TokenPair) -> Tokens:
    return Tokens(
        access_token=pair.access_token,
        expires_in=pair.expires_in,
        refresh_token=pair.refresh_token,
        refresh_expires_at=pair.refresh_expires_at,
        user_id=pair.user_id,
        session_id=pair.session_id,
        device_id=pair.device_id,
        device_is_new=pair.device_is_new,
    )


def _sent(challenge: Challenge) -> CodeSent:
    return CodeSent(
        challenge_id=challenge.challenge_id,
        expires_at=challenge.expires_at,
        resend_after=challenge.resend_after,
        attempts_allowed=challenge.attempts_allowed,
    )


async def _roles(session: Any, user_id: uuid.UUID) -> list[RoleOut]:
    rows = (
        await session.execute(
            select(UserRole.role, UserRole.scope).where(UserRole.user_id == user_id).order_by(UserRole.role)
        )
    ).all()
    return [RoleOut(role=r.role, scope=r.scope) for r in rows]


async def _profile(session: Any, user: User) -> Profile:
    address = (
        AddressIn(
            line=user.address_line,
            commune=user.address_commune or "",
            province=user.address_province or "",
            postal_code=user.postal_code,
        )
        if user.address_line
        else None
    )
    return Profile(
        user_id=user.id,
        phone=user.phone or "",
        full_name=user.full_name,
        cccd_masked=service.masked_cccd(user, session),
        date_of_birth=user.date_of_birth,
        address=address,
        identity_level=user.identity_level,
        verified_at=user.verified_at,
        verification_method=user.verification_method,
        has_password=user.password_hash is not None,
        roles=await _roles(session, user.id),
        created_at=user.created_at,
    )


async def _devices(session: Any, user_id: uuid.UUID, current: uuid.UUID | None) -> list[DeviceOut]:
    runtime = runtime_of(session)
    now = utcnow()
    active = (
        select(AuthSession.device_id, func.count().label("n"))
        .where(
            AuthSession.user_id == user_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > now,
        )
        .group_by(AuthSession.device_id)
        .subquery()
    )
    rows = (
        await session.execute(
            select(Device, func.coalesce(active.c.n, 0))
            .outerjoin(active, active.c.device_id == Device.id)
            .where(Device.user_id == user_id, Device.revoked_at.is_(None))
            .order_by(Device.last_seen_at.desc())
        )
    ).all()
    current_device = None
    if current is not None:
        current_device = (
            await session.execute(select(AuthSession.device_id).where(AuthSession.id == current))
        ).scalar_one_or_none()
    return [
        DeviceOut(
            device_id=device.id,
            name=device.name,
            platform=device.platform,
            first_seen_at=device.first_seen_at,
            last_seen_at=device.last_seen_at,
            is_new=(now - device.first_seen_at).total_seconds() < runtime.policy.new_device_seconds,
            is_current=device.id == current_device,
            active_sessions=int(count),
        )
        for device, count in rows
    ]


async def _keyed(
    request: Request[Any, Any, Any],
    db: Database,
    caller: Caller,
    key: str | None,
    data: Any,
    effect: Callable[[AsyncSession], Awaitable[Any]],
    *,
    status_code: int = 200,
    exclude: tuple[str, ...] = ("pin",),
    prepare: Callable[[], Awaitable[None]] | None = None,
) -> Response[Any]:
    """The route's effect, once per Idempotency-Key of the caller (``app.core.idempotency``)."""
    return await idempotent_response(
        request,
        db,
        scope=scope_of(caller),
        key=key,
        data=data,
        effect=effect,
        status_code=status_code,
        exclude=exclude,
        prepare=prepare,
    )


# --------------------------------------------------------------------------------------- public auth


async def _pin_state(db: Database, user_id: uuid.UUID) -> PinState:
    async with db.read() as session:
        state = await service.pin_status(session, user_id)
    return PinState(is_set=state.is_set, locked_until=state.locked_until, attempts_left=state.attempts_left)


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["identity"]

    @post(
        "/otp",
        operation_id="requestCode",
        guards=[rate_limit("otp", by="address")],
        summary="Send a one-time code",
        status_code=HTTP_202_ACCEPTED,
        opt={"errors": _OTP_SEND_ERRORS},
    )
    async def request_code(self, db: NamedDependency[Database], data: JSONBody[CodeRequest]) -> CodeSent:
        """Sends a 6-digit code by SMS to register or to sign in. The code lives 5 minutes and allows 5 wrong
        tries. Another code for the same number and purpose can be asked after `resend_after` seconds; at most
        5 codes per number per hour and 30 per client address. Whether the number has an account is not
        revealed: the answer is the same, and the SMS explains instead of carrying a code."""
        phone = normalize_phone(data.phone)
        return _sent(await request_code(db, phone=phone, purpose=data.purpose))

    @post(
        "/register",
        operation_id="register",
        guards=[rate_limit("signin", by="address")],
        summary="Open an account",
        status_code=HTTP_201_CREATED,
        opt={"errors": [*_OTP_CHECK_ERRORS, PHONE_TAKEN, PASSWORD_WEAK, CONSENT_REQUIRED, VALIDATION_FAILED]},
    )
    async def register(self, db: NamedDependency[Database], data: JSONBody[Registration]) -> Tokens:
        """Opens an account for the phone number the code was sent to (identity level 0) and signs it in on
        this device. `consents` must include `account`."""
        pair = await service.register(
            db,
            challenge_id=data.challenge_id,
            code=data.code,
            password=data.password,
            device=_device(data.device),
            consents=tuple(data.consents),
        )
        return _tokens(pair)

    @post(
        "/sign-in/password",
        operation_id="signInWithPassword",
        guards=[rate_limit("signin", by="address")],
        summary="Sign in with phone and password",
        status_code=200,
        opt={
            "errors": [INVALID_CREDENTIALS, SIGN_IN_LOCKED, ACCOUNT_LOCKED, RATE_LIMITED, SERVICE_UNAVAILABLE]
        },
    )
    async def sign_in_password(self, db: NamedDependency[Database], data: JSONBody[PasswordSignIn]) -> Tokens:
        """At most 5 tries per number per 15 minutes (then `sign_in_locked` with `retry_after`); a wrong
        number and a wrong password give the same `invalid_credentials`. Answers 503 while the rate-limit
        store is down rather than allow unlimited guessing."""
        pair = await service.sign_in_with_password(
            db,
            phone=data.phone,
            password=data.password,
            device=_device(data.device),
        )
        return _tokens(pair)

    @post(
        "/sign-in/otp",
        operation_id="signInWithCode",
        guards=[rate_limit("signin", by="address")],
        summary="Sign in with a one-time code",
        status_code=200,
        opt={"errors": [*_OTP_CHECK_ERRORS, INVALID_CREDENTIALS, ACCOUNT_LOCKED]},
    )
    async def sign_in_otp(self, db: NamedDependency[Database], data: JSONBody[OtpSignIn]) -> Tokens:
        """Signs in with a code requested with purpose `sign_in`."""
        pair = await service.sign_in_with_otp(
            db,
            challenge_id=data.challenge_id,
            code=data.code,
            device=_device(data.device),
        )
        return _tokens(pair)

    @post(
        "/refresh",
        operation_id="refreshTokens",
        summary="Exchange a refresh token",
        status_code=200,
        opt={"errors": [INVALID_REFRESH_TOKEN, REFRESH_TOKEN_REUSED]},
    )
    async def refresh(self, db: NamedDependency[Database], data: JSONBody[RefreshIn]) -> Tokens:
        """Returns a new access token and a new refresh token; the old refresh token is spent. Presenting a
        spent refresh token again (a copy in someone else's hands, or a client bug) ends the whole session:
        `refresh_token_reused`, and every token of the session stops working."""
        return _tokens(await rotate_refresh_token(db, data.refresh_token))


class SessionController(Controller):
    path = "/api/v1/auth"
    tags = ["identity"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]

    @post(
        "/logout",
        operation_id="logout",
        summary="Sign out this session",
        status_code=HTTP_204_NO_CONTENT,
        opt={"errors": [*IDEMPOTENCY_ERRORS]},
    )
    async def logout(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[None]:
        """Ends the session of the access token: it and its refresh token stop working at once (so a retry
        with the same token answers 401: the session is already gone)."""

        async def effect(session: AsyncSession) -> None:
            await revoke_sessions(session, caller.user_id, reason="logout", only=[caller.session_id])

        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=None,
            effect=effect,
            status_code=204,
        )

    @post(
        "/sign-out-others",
        operation_id="signOutOtherDevices",
        summary="Sign out every other session",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS]},
    )
    async def sign_out_others(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[SignedOut]:
        """Ends every session of the account except this one (all devices, including other sessions on this
        device). A retry with the same Idempotency-Key answers the first count again."""

        async def effect(session: AsyncSession) -> SignedOut:
            ended = await revoke_sessions(
                session, caller.user_id, reason="sign_out_others", keep=caller.session_id
            )
            return SignedOut(signed_out_sessions=len(ended))

        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=None,
            effect=effect,
            status_code=200,
        )


class ConsentPurposeController(Controller):
    path = "/api/v1/consent-purposes"
    tags = ["identity"]

    @get("/", operation_id="listConsentPurposes", summary="Purposes of personal data processing")
    async def list_purposes(self) -> list[ConsentPurposeOut]:
        """Each purpose a person may consent to, with the current text and version (show before registration
        and in privacy settings)."""
        return [
            ConsentPurposeOut(
                purpose=p.code,
                version=p.version,
                title_vi=p.title_vi,
                title_en=p.title_en,
                required=p.required,
            )
            for p in PURPOSES.values()
        ]


# ------------------------------------------------------------------------------------------- the account


class MeController(Controller):
    path = "/api/v1/me"
    tags = ["identity"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]

    @get("/", operation_id="getMyProfile", summary="My account")
    async def get_profile(self, db: NamedDependency[Database], caller: NamedDependency[Caller]) -> Profile:
        """The signed-in person's profile; the CCCD is masked."""
        async with db.read() as session:
            return await _profile(session, await service.get_user(session, caller.user_id))

    @put(
        "/identity",
        operation_id="declareIdentity",
        summary="Declare name, CCCD and date of birth",
        opt={"errors": [*IDEMPOTENCY_ERRORS, CCCD_INVALID, CCCD_TAKEN, IDENTITY_LOCKED]},
    )
    async def declare_identity(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        data: JSONBody[IdentityDeclaration],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Profile]:
        """Raises the account to identity level 1. The CCCD must have one of the 63 province codes and
        century/year digits matching the date of birth; one CCCD belongs to one account. After verification
        (level 2) these can only be corrected at a desk."""

        async def effect(session: AsyncSession) -> Profile:
            user = await service.get_user(session, caller.user_id)
            await service.declare_identity(
                session, user, full_name=data.full_name, cccd=data.cccd, date_of_birth=data.date_of_birth
            )
            return await _profile(session, user)

        return await _keyed(request, db, caller, idempotency_key, data, effect)

    @put(
        "/address",
        operation_id="setMyAddress",
        summary="Set my postal address",
        opt={"errors": [*IDEMPOTENCY_ERRORS]},
    )
    async def set_address(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        data: JSONBody[AddressIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Profile]:
        """Where results and documents are sent by post."""

        async def effect(session: AsyncSession) -> Profile:
            user = await service.get_user(session, caller.user_id)
            await service.set_address(
                session,
                user,
                service.Address(
                    line=data.line, commune=data.commune, province=data.province, postal_code=data.postal_code
                ),
            )
            return await _profile(session, user)

        return await _keyed(request, db, caller, idempotency_key, data, effect)

    @post(
        "/otp",
        operation_id="requestStepUpCode",
        guards=[rate_limit("otp")],
        summary="Send a code to confirm a sensitive action",
        status_code=HTTP_202_ACCEPTED,
        opt={"errors": [OTP_COOLDOWN, OTP_LOCKED, SMS_UNAVAILABLE]},
    )
    async def request_step_up(
        self,
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        data: JSONBody[StepUpCodeRequest],
    ) -> CodeSent:
        """Sends a code to the account's own phone for `pin_change`, `password_change` or `close_account`."""
        async with db.read() as session:
            user = await service.get_user(session, caller.user_id)
        assert user.phone is not None
        challenge = await request_code(db, phone=user.phone, purpose=data.purpose, user_id=user.id)
        return _sent(challenge)

    @get("/pin", operation_id="getMyPinState", summary="Payment PIN state")
    async def pin_state(self, db: NamedDependency[Database], caller: NamedDependency[Caller]) -> PinState:
        """Whether a PIN is set, whether it is locked and until when, and tries left."""
        return await _pin_state(db, caller.user_id)

    @put(
        "/pin",
        operation_id="setMyPin",
        guards=[rate_limit("signin")],
        summary="Set or change the payment PIN",
        opt={"errors": [*IDEMPOTENCY_ERRORS, *_OTP_CHECK_ERRORS, PIN_WEAK]},
    )
    async def set_pin(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        data: JSONBody[PinChange],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[PinState]:
        """Needs a `pin_change` code (spent by the attempt). 6 digits, not all equal and not a run (123456).
        Clears a lock. Neither the PIN nor the code is part of the Idempotency-Key comparison."""

        async def prepare() -> None:
            await service.prepare_pin_change(
                db, caller.user_id, challenge_id=data.challenge_id, code=data.code, pin=data.pin
            )

        async def effect(session: AsyncSession) -> PinState:
            await service.change_pin(session, caller.user_id, data.pin)
            state = await service.pin_status(session, caller.user_id)
            return PinState(
                is_set=state.is_set, locked_until=state.locked_until, attempts_left=state.attempts_left
            )

        return await _keyed(
            request, db, caller, idempotency_key, data, effect, exclude=("pin", "code"), prepare=prepare
        )

    @put(
        "/password",
        operation_id="setMyPassword",
        guards=[rate_limit("signin")],
        summary="Set or change the password",
        opt={"errors": [*IDEMPOTENCY_ERRORS, *_OTP_CHECK_ERRORS, PASSWORD_WEAK]},
    )
    async def set_password(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        data: JSONBody[PasswordChange],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[PasswordChanged]:
        """Needs a `password_change` code (spent by the attempt). Every other session is signed out. Neither
        the password nor the code is part of the Idempotency-Key comparison."""
        hashed: list[str] = []

        async def prepare() -> None:
            hashed.append(
                await service.prepare_password_change(
                    db, caller.user_id, challenge_id=data.challenge_id, code=data.code, password=data.password
                )
            )

        async def effect(session: AsyncSession) -> PasswordChanged:
            ended = await service.change_password(
                session, caller.user_id, password_hash=hashed[0], keep_session=caller.session_id
            )
            return PasswordChanged(signed_out_sessions=ended)

        return await _keyed(
            request, db, caller, idempotency_key, data, effect, exclude=("password", "code"), prepare=prepare
        )

    @get("/consents", operation_id="listMyConsents", summary="My consents")
    async def consents(
        self, db: NamedDependency[Database], caller: NamedDependency[Caller]
    ) -> list[ConsentOut]:
        """The current decision for each purpose. Consent given to an older text version does not count."""
        async with db.read() as session:
            states = await service.current_consents(session, caller.user_id)
        return [
            ConsentOut(
                purpose=s.purpose,
                granted=s.granted,
                version=s.version,
                current_version=s.current_version,
                decided_at=s.decided_at,
            )
            for s in states
        ]

    @put(
        "/consents/{purpose:str}",
        operation_id="decideConsent",
        summary="Give or withdraw consent",
        opt={"errors": [*IDEMPOTENCY_ERRORS, CONSENT_REQUIRED, NOT_FOUND]},
    )
    async def decide_consent(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        purpose: Annotated[str, PathParameter(description="Purpose code", max_length=40)],
        data: JSONBody[ConsentDecision],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ConsentOut]:
        """Records the decision (time and text version); every decision is kept. `account` cannot be withdrawn
        while the account is open (close the account instead)."""
        if purpose not in PURPOSES:
            raise NOT_FOUND(f"Không có mục đích {purpose!r}", f"No consent purpose {purpose!r}")

        async def effect(session: AsyncSession) -> ConsentOut:
            await service.get_user(session, caller.user_id)
            await service.record_consent(session, caller.user_id, purpose, granted=data.granted)
            states = await service.current_consents(session, caller.user_id)
            state = next(s for s in states if s.purpose == purpose)
            return ConsentOut(
                purpose=state.purpose,
                granted=state.granted,
                version=state.version,
                current_version=state.current_version,
                decided_at=state.decided_at,
            )

        return await _keyed(request, db, caller, idempotency_key, data, effect)

    @get("/devices", operation_id="listMyDevices", summary="My devices")
    async def devices(
        self, db: NamedDependency[Database], caller: NamedDependency[Caller]
    ) -> list[DeviceOut]:
        """Devices with a sign-in on this account; `is_new` for 24 hours after first seen."""
        async with db.read() as session:
            return await _devices(session, caller.user_id, caller.session_id)

    @delete(
        "/devices/{device_id:uuid}",
        operation_id="removeMyDevice",
        summary="Remove a device",
        status_code=HTTP_204_NO_CONTENT,
        opt={"errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND]},
    )
    async def remove_device(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        device_id: FromPath[uuid.UUID],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[None]:
        """Signs the device out (all its sessions) and forgets it: signing in from it again makes it new.
        A retry with the same Idempotency-Key answers 204 again (a new request for a removed device: 404)."""

        async def effect(session: AsyncSession) -> None:
            device = await session.get(Device, device_id)
            if device is None or device.revoked_at is not None:
                raise NOT_FOUND("Không tìm thấy thiết bị", "No such device")
            ensure_visible(caller, owner_id=device.user_id, admin_duties=())
            device.revoked_at = utcnow()
            await revoke_sessions(session, caller.user_id, reason="device_removed", device_id=device.id)

        return await _keyed(request, db, caller, idempotency_key, None, effect, status_code=204)

    @post(
        "/ekyc",
        operation_id="verifyWithEkyc",
        summary="Verify identity electronically",
        status_code=200,
        opt={
            "errors": [
                *IDEMPOTENCY_ERRORS,
                EKYC_REJECTED,
                EKYC_UNAVAILABLE,
                CONSENT_REQUIRED,
                PROFILE_INCOMPLETE,
            ]
        },
    )
    async def ekyc(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        data: JSONBody[EkycIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Profile]:
        """Checks an eKYC provider session (document read = declared CCCD, face matches, selfie live) and
        raises the account to level 2. Needs the declared identity (level 1) and consent `ekyc`. New tokens
        (refresh) carry the new level; money rules read it from the account directly. A retry with the same
        Idempotency-Key answers the first result without asking the provider again; a rejection is recorded
        and leaves the key free."""
        verdict: list[service.EkycVerdict] = []

        async def prepare() -> None:
            verdict.append(await service.check_ekyc(db, caller.user_id, data.provider_reference))

        async def effect(session: AsyncSession) -> Profile:
            user = await service.apply_ekyc(session, caller.user_id, verdict[0])
            return await _profile(session, user)

        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=data,
            effect=effect,
            status_code=200,
            prepare=prepare,
        )

    @get("/data-export", operation_id="exportMyData", summary="Download all my data")
    async def export(
        self, db: NamedDependency[Database], caller: NamedDependency[Caller]
    ) -> Response[dict[str, Any]]:
        """Everything held about the signed-in person, as one JSON document (identity and every other module:
        wallet, bills, dossiers, ...), including the unmasked CCCD."""
        async with db.read() as session:
            data = await service.export_personal_data(session, caller.user_id)
        return Response(
            data,
            headers={
                "Content-Disposition": f'attachment; filename="hue-s-data-{caller.user_id}.json"',
                "Cache-Control": "no-store",
            },
        )

    @post(
        "/close",
        operation_id="closeMyAccount",
        guards=[rate_limit("signin")],
        summary="Close my account",
        status_code=HTTP_204_NO_CONTENT,
        opt={"errors": [*IDEMPOTENCY_ERRORS, *_OTP_CHECK_ERRORS, CLOSURE_REFUSED]},
    )
    async def close(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        data: JSONBody[AccountClose],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[None]:
        """Needs a `close_account` code (spent by the attempt, even when closure is then refused). Refused
        (`closure_refused`, with every reason) while another module holds something open, e.g. a wallet
        balance or a dossier in progress. Personal data is erased; records the law requires to be kept
        (payments) stay, no longer linked to a phone or a name. The code is not part of the Idempotency-Key
        comparison."""

        async def prepare() -> None:
            await service.confirm_step_up(
                db, caller.user_id, challenge_id=data.challenge_id, code=data.code, purpose="close_account"
            )

        async def effect(session: AsyncSession) -> None:
            await service.close_account(session, caller.user_id)

        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=data,
            effect=effect,
            status_code=204,
            exclude=("code",),
            prepare=prepare,
        )


# --------------------------------------------------------------------------------- accounts by id


class UserController(Controller):
    path = "/api/v1/users"
    tags = ["identity"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]

    @get("/{user_id:uuid}", operation_id="getUser", summary="An account by id", opt={"errors": [NOT_FOUND]})
    async def get_user(
        self, db: NamedDependency[Database], caller: NamedDependency[Caller], user_id: FromPath[uuid.UUID]
    ) -> AdminUserView:
        """Visible to the account itself and to admins with the `support` duty; `404` for anyone else, as if
        it did not exist."""
        ensure_visible(caller, owner_id=user_id, admin_duties=("support",))
        async with db.read() as session:
            return await staff.account_view(session, await service.get_user(session, user_id))

    @get(
        "/{user_id:uuid}/devices",
        operation_id="listUserDevices",
        summary="An account's devices",
        opt={"errors": [NOT_FOUND]},
    )
    async def devices(
        self, db: NamedDependency[Database], caller: NamedDependency[Caller], user_id: FromPath[uuid.UUID]
    ) -> list[DeviceOut]:
        """Visible to the account itself and to `support` admins; `404` otherwise."""
        ensure_visible(caller, owner_id=user_id, admin_duties=("support",))
        async with db.read() as session:
            await service.get_user(session, user_id)
            return await _devices(session, user_id, caller.session_id if caller.user_id == user_id else None)


# ------------------------------------------------------------------------------------------ officers


class OfficerController(Controller):
    path = "/api/v1/officer"
    tags = ["identity"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]
    guards = [require_roles("officer")]

    @post(
        "/identity-verifications",
        operation_id="verifyIdentityAtDesk",
        summary="Verify a person at the desk",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND, CCCD_INVALID, CCCD_TAKEN, FORBIDDEN, PHONE_INVALID]},
    )
    async def verify(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        data: JSONBody[DeskVerification],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[AdminUserView]:
        """The officer has checked the person and their CCCD card in person: the account of `phone` is
        raised to identity level 2. A person who declared nothing gets the card's data; declared data that
        differs from the card is refused (`cccd_invalid`, reason `declared_mismatch`). Officers cannot verify
        themselves. A retry with the same Idempotency-Key answers the first result."""
        normalize_phone(data.phone)

        async def effect(session: AsyncSession) -> AdminUserView:
            user = await service.verify_at_desk(
                session,
                caller,
                phone=data.phone,
                cccd=data.cccd,
                full_name=data.full_name,
                date_of_birth=data.date_of_birth,
            )
            return await staff.account_view(session, user)

        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=data,
            effect=effect,
            status_code=200,
        )


# -------------------------------------------------------------------------------------------- admins


class AdminIdentityController(Controller):
    path = "/api/v1/admin"
    tags = ["admin"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]
    guards = [require_roles("admin")]

    @post(
        "/staff",
        operation_id="createStaff",
        summary="Create an officer or an admin",
        status_code=HTTP_201_CREATED,
        opt={
            "errors": [
                *IDEMPOTENCY_ERRORS,
                PHONE_INVALID,
                PASSWORD_WEAK,
                ROLE_CONFLICT,
                VALIDATION_FAILED,
                FORBIDDEN,
            ]
        },
    )
    async def create_staff(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        data: JSONBody[StaffCreate],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[AdminUserView]:
        """Officers are created by admins with the `support` duty (or superadmins) and need `agency_id`;
        admins only by superadmins and need `duty`. An existing account with the phone gets the role (its
        sessions end, so new tokens carry it); a new account needs `password` (not part of the
        Idempotency-Key comparison). A retry with the same key answers the first result."""
        _may_manage(caller, data.role)
        scope = data.agency_id if data.role == "officer" else data.duty
        if not scope:
            raise VALIDATION_FAILED(
                "Thiếu agency_id (cán bộ) hoặc duty (quản trị)", "Officers need agency_id; admins need duty"
            )
        phone = normalize_phone(data.phone)

        async def effect(session: AsyncSession) -> AdminUserView:
            user_id = await service.find_user_id_by_phone(session, phone)
            if user_id is None:
                if data.password is None:
                    raise VALIDATION_FAILED("Tài khoản mới cần mật khẩu", "A new account needs a password")
                user = await service.create_user(
                    session,
                    phone=phone,
                    password=data.password,
                    full_name=" ".join(data.full_name.split()),
                    roles=((data.role, scope),),
                    granted_by=caller.user_id,
                )
            else:
                user = await service.get_user(session, user_id)
                await service.grant_role(session, user.id, data.role, scope=scope, granted_by=caller.user_id)
                await revoke_sessions(session, user.id, reason="role_changed")
            return await staff.account_view(session, user)

        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=data,
            effect=effect,
            status_code=201,
            exclude=("password",),
        )

    @delete(
        "/users/{user_id:uuid}/roles/{role:str}",
        operation_id="revokeRole",
        summary="Take a role away",
        status_code=HTTP_204_NO_CONTENT,
        opt={"errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND, FORBIDDEN]},
    )
    async def revoke_role(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        user_id: FromPath[uuid.UUID],
        role: Annotated[
            str, PathParameter(description="`officer`, `admin`, `merchant_owner` or `merchant_cashier`")
        ],
        role_scope: Annotated[
            str, QueryParameter(name="scope", description="The role's scope (duty, agency or merchant id)")
        ],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[None]:
        """Ends the role and every session of the account. Admin roles need a superadmin; others `support`.
        Nobody removes their own superadmin duty (the last superadmin cannot lock everyone out)."""
        _may_manage(caller, role)
        if user_id == caller.user_id and role == "admin" and role_scope == "superadmin":
            raise FORBIDDEN(
                "Không tự gỡ quyền quản trị tối cao", "You cannot remove your own superadmin duty"
            )

        async def effect(session: AsyncSession) -> None:
            await service.get_user(session, user_id)
            if not await service.revoke_role(session, user_id, role, scope=role_scope):
                raise NOT_FOUND("Người dùng không có vai trò này", "The user has no such role")

        return await _keyed(request, db, caller, idempotency_key, None, effect, status_code=204)

    @post(
        "/users/{user_id:uuid}/lock",
        operation_id="lockAccount",
        summary="Lock an account",
        status_code=200,
        guards=[require_duty("support")],
        opt={"errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND, FORBIDDEN]},
    )
    async def lock(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        user_id: FromPath[uuid.UUID],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[AdminUserView]:
        """Every session ends at once and sign-in is refused (`account_locked`) until unlocked. Needs
        `support`. Recorded in the audit trail; a retry with the same Idempotency-Key answers the first
        result."""
        return await _set_lock(request, db, caller, user_id, idempotency_key, locked=True)

    @post(
        "/users/{user_id:uuid}/unlock",
        operation_id="unlockAccount",
        summary="Unlock an account",
        status_code=200,
        guards=[require_duty("support")],
        opt={"errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND]},
    )
    async def unlock(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        user_id: FromPath[uuid.UUID],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[AdminUserView]:
        """Allows sign-in again. Needs `support`. Recorded in the audit trail; a retry with the same
        Idempotency-Key answers the first result."""
        return await _set_lock(request, db, caller, user_id, idempotency_key, locked=False)


async def _set_lock(
    request: Request[Any, Any, Any],
    db: Database,
    caller: Caller,
    user_id: uuid.UUID,
    key: str | None,
    *,
    locked: bool,
) -> Response[AdminUserView]:
    async def effect(session: AsyncSession) -> AdminUserView:
        return await staff.set_lock_as(session, caller, user_id, locked=locked)

    return await idempotent_response(
        request, db, scope=scope_of(caller), key=key, data=None, effect=effect, status_code=200
    )


def _may_manage(caller: NamedDependency[Caller], role: str) -> None:
    needed = "superadmin" if role == "admin" else "support"
    if not caller.duties & {needed, "superadmin"}:
        raise FORBIDDEN(
            f"Cần nhiệm vụ quản trị {needed}", f"Managing the {role} role needs the {needed} duty"
        )


# -------------------------------------------------------------------------------------- development


_CODE = re.compile(r"\b([0-9]{6})\b")


class DevSmsController(Controller):
    """Registered only outside production."""

    path = "/api/v1/dev/sms"
    tags = ["identity"]

    @get("/", operation_id="devListSms", summary="Development: SMS sent", opt={"errors": [NOT_FOUND]})
    async def list_sms(
        self,
        db: NamedDependency[Database],
        phone: Annotated[str | None, QueryParameter(description="Only messages to this number")] = None,
        limit: Annotated[
            int, QueryParameter(ge=1, le=100, description="At most this many, newest first")
        ] = 20,
    ) -> list[DevSms]:
        """The last SMS messages the app sent (development and test only; absent in production), so the demo
        works offline: read your one-time code here."""
        outbox = runtime_of(db).dev_outbox
        if outbox is None:
            raise NOT_FOUND("Không có hộp thư SMS thử nghiệm", "No development SMS outbox")
        wanted = normalize_phone(phone) if phone else None
        return [
            DevSms(
                phone=m.phone,
                text=m.text,
                code=found.group(1) if (found := _CODE.search(m.text)) else None,
                sent_at=m.sent_at,
            )
            for m in outbox.latest(wanted, limit)
        ]


identity_routes: list[type[Controller]] = [
    AuthController,
    SessionController,
    ConsentPurposeController,
    MeController,
    UserController,
    OfficerController,
    AdminIdentityController,
]
"""The identity controllers."""

identity_development_routes: list[type[Controller]] = [DevSmsController]
"""Registered only outside production: the SMS outbox showing one-time codes."""
