"""Sessions, devices and tokens.

A sign-in opens a session on a device; the session is the family of its refresh tokens and its id is the
``sid`` of every access token issued under it. Refresh tokens are opaque (256 random bits), stored as
SHA-256 and exchanged exactly once: presenting a spent one means it was copied, so the whole session is
revoked (RFC 9700, refresh token rotation). Access tokens are checked against the session on every request
(:func:`session_is_active`, registered with core), through a short per-process cache.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from litestar import Request
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Database, utcnow
from app.core.security import Caller, issue_access_token
from app.identity.errors import INVALID_REFRESH_TOKEN, REFRESH_TOKEN_REUSED
from app.identity.models import AuthSession, Device, RefreshToken, User, UserRole
from app.identity.runtime import IdentityRuntime, runtime_of
from app.identity.security_events import record_security_event

__all__ = [
    "DeviceInfo",
    "TokenPair",
    "caller_for",
    "hash_refresh_token",
    "open_session",
    "revoke_sessions",
    "rotate_refresh_token",
    "session_is_active",
]

_PREFIX = "rt_"
log = structlog.get_logger("app.identity")


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    install_id: str
    name: str
    platform: str


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_at: datetime
    session_id: uuid.UUID
    user_id: uuid.UUID
    device_id: uuid.UUID
    device_is_new: bool


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_refresh_token() -> str:
    return _PREFIX + secrets.token_urlsafe(32)


async def caller_for(session: AsyncSession, user: User, session_id: uuid.UUID) -> Caller:
    """The principal an access token for ``user`` states: roles with their scopes, and identity level."""
    rows = (
        await session.execute(select(UserRole.role, UserRole.scope).where(UserRole.user_id == user.id))
    ).all()
    roles = frozenset(r.role for r in rows)
    duties = frozenset(r.scope for r in rows if r.role == "admin" and r.scope)
    agency = next((r.scope for r in rows if r.role == "officer" and r.scope), None)
    merchant = next(
        (r.scope for r in rows if r.role in ("merchant_owner", "merchant_cashier") and r.scope), None
    )
    return Caller(
        user_id=user.id,
        session_id=session_id,
        roles=roles,
        duties=duties,
        identity_level=user.identity_level,
        agency_id=agency,
        merchant_id=merchant,
    )


async def _device(
    session: AsyncSession, runtime: IdentityRuntime, user_id: uuid.UUID, info: DeviceInfo
) -> Device:
    now = utcnow()
    query = select(Device).where(Device.user_id == user_id, Device.install_id == info.install_id)
    device = (await session.execute(query)).scalar_one_or_none()
    if device is None:
        device = Device(
            user_id=user_id,
            install_id=info.install_id,
            name=info.name,
            platform=info.platform,
            first_seen_at=now,
            last_seen_at=now,
        )
        try:
            async with session.begin_nested():
                session.add(device)
        except IntegrityError:
            # Two sign-ins from one new installation at once: the other one registered it.
            device = (await session.execute(query)).scalar_one()
        else:
            return device
    if device.revoked_at is not None:
        # A device its owner removed counts as new again when it comes back.
        device.revoked_at = None
        device.first_seen_at = now
    device.name, device.platform, device.last_seen_at = info.name, info.platform, now
    await session.flush()
    return device


def _is_new(runtime: IdentityRuntime, first_seen_at: datetime) -> bool:
    return utcnow() - first_seen_at < timedelta(seconds=runtime.policy.new_device_seconds)


async def _issue(
    session: AsyncSession, runtime: IdentityRuntime, user: User, auth: AuthSession, device: Device
) -> TokenPair:
    settings = runtime.settings
    refresh = _new_refresh_token()
    expires_at = utcnow() + timedelta(seconds=settings.refresh_token_ttl_seconds)
    session.add(
        RefreshToken(session_id=auth.id, token_hash=hash_refresh_token(refresh), expires_at=expires_at)
    )
    auth.expires_at = expires_at
    auth.last_seen_at = utcnow()
    await session.flush()
    access, ttl = issue_access_token(settings, await caller_for(session, user, auth.id))
    return TokenPair(
        access_token=access,
        expires_in=ttl,
        refresh_token=refresh,
        refresh_expires_at=expires_at,
        session_id=auth.id,
        user_id=user.id,
        device_id=device.id,
        device_is_new=_is_new(runtime, device.first_seen_at),
    )


async def open_session(session: AsyncSession, user: User, device_info: DeviceInfo, method: str) -> TokenPair:
    """Open a session for ``user`` on the device and issue its first token pair."""
    runtime = runtime_of(session)
    device = await _device(session, runtime, user.id, device_info)
    auth = AuthSession(
        user_id=user.id,
        device_id=device.id,
        method=method,
        expires_at=utcnow() + timedelta(seconds=runtime.settings.refresh_token_ttl_seconds),
    )
    session.add(auth)
    await session.flush()
    return await _issue(session, runtime, user, auth, device)


async def rotate_refresh_token(db: Database, token: str) -> TokenPair:
    """Exchange a refresh token for a new pair. A spent token revokes its whole session (committed before
    the refusal is raised)."""
    runtime = runtime_of(db)
    now = utcnow()
    reused: uuid.UUID | None = None
    async with db.transaction() as session:
        row = (
            await session.execute(
                select(RefreshToken, AuthSession)
                .join(AuthSession, AuthSession.id == RefreshToken.session_id)
                .where(RefreshToken.token_hash == hash_refresh_token(token))
            )
        ).first()
        if row is None:
            raise INVALID_REFRESH_TOKEN()
        refresh, auth = row
        if auth.revoked_at is not None or auth.expires_at <= now or refresh.expires_at <= now:
            raise INVALID_REFRESH_TOKEN()
        spent = refresh.used_at is not None
        if not spent:
            claimed = await session.execute(
                update(RefreshToken)
                .where(RefreshToken.id == refresh.id, RefreshToken.used_at.is_(None))
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            )
            spent = claimed.rowcount != 1  # type: ignore[attr-defined]
        if spent:
            await _revoke(session, [auth.id], "refresh_reuse")
            reused = auth.id
            reused_by = auth.user_id
        else:
            user = await session.get(User, auth.user_id)
            device = await session.get(Device, auth.device_id)
            if user is None or user.status != "active" or device is None or device.revoked_at is not None:
                raise INVALID_REFRESH_TOKEN()
            device.last_seen_at = now
            pair = await _issue(session, runtime, user, auth, device)
    if reused is not None:
        await record_security_event(
            db, "refresh_token_reused", user_id=reused_by, outcome="denied", details={"session": str(reused)}
        )
        runtime.sessions.forget(reused)
        runtime.sessions.put(reused, False, runtime.settings.access_token_ttl_seconds + 60)
        raise REFRESH_TOKEN_REUSED()
    return pair


async def _revoke(session: AsyncSession, session_ids: list[uuid.UUID], reason: str) -> None:
    if not session_ids:
        return
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id.in_(session_ids), AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )


async def revoke_sessions(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    reason: str,
    only: list[uuid.UUID] | None = None,
    device_id: uuid.UUID | None = None,
    keep: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Revoke ``user_id``'s active sessions (all, ``only`` these, those of one device, or all but
    ``keep``); their access tokens stop working in this process at once, elsewhere within the cache time."""
    query = select(AuthSession.id).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    if only is not None:
        query = query.where(AuthSession.id.in_(only))
    if device_id is not None:
        query = query.where(AuthSession.device_id == device_id)
    if keep is not None:
        query = query.where(AuthSession.id != keep)
    ids = list((await session.execute(query)).scalars())
    await _revoke(session, ids, reason)
    runtime = runtime_of(session)
    for sid in ids:
        runtime.sessions.put(sid, False, runtime.settings.access_token_ttl_seconds + 60)
    return ids


async def session_is_active(request: Request[Any, Any, Any], caller: Caller) -> bool:
    """Core's session check: the token's session exists, belongs to its subject, is not revoked or expired.

    A positive answer is trusted for ``session_cache_seconds`` in this process; a negative one until every
    access token of the session has expired."""
    db: Database = request.app.state.db
    runtime = runtime_of(db)
    cached = runtime.sessions.get(caller.session_id)
    if cached is not None:
        return cached
    async with db.read() as session:
        row = (
            await session.execute(
                select(AuthSession.user_id, AuthSession.revoked_at, AuthSession.expires_at).where(
                    AuthSession.id == caller.session_id
                )
            )
        ).first()
    active = (
        row is not None
        and row.user_id == caller.user_id
        and row.revoked_at is None
        and row.expires_at > utcnow()
    )
    ttl = runtime.policy.session_cache_seconds if active else runtime.settings.access_token_ttl_seconds + 60
    runtime.sessions.put(caller.session_id, active, ttl)
    return active
