"""Who is calling: access tokens (JWT with a key id) and the guards every module uses.

Identity issues tokens; every other module only needs :class:`Caller` and the guards here, so ``core``
depends on no domain. Tokens are HS256 with the key named by ``kid`` in the header; issuer, audience, expiry
and algorithm are always checked, so ``alg: none``, a foreign key or a token for another audience is 401.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import jwt
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from app.core.db import utcnow
from app.core.settings import Settings

__all__ = [
    "ROLES",
    "Caller",
    "decode_access_token",
    "get_caller",
    "issue_access_token",
    "require_duty",
    "require_roles",
]

ROLES = frozenset({"citizen", "merchant_owner", "merchant_cashier", "officer", "admin"})
DUTIES = frozenset({"support", "finance", "superadmin"})
ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated principal of a request, as stated by its access token."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    roles: frozenset[str] = field(default_factory=frozenset)
    duties: frozenset[str] = field(default_factory=frozenset)
    identity_level: int = 0
    agency_id: str | None = None
    merchant_id: str | None = None

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def issue_access_token(settings: Settings, caller: Caller) -> tuple[str, int]:
    """A signed access token for ``caller`` and its lifetime in seconds."""
    now = utcnow()
    ttl = settings.access_token_ttl_seconds
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(caller.user_id),
        "sid": str(caller.session_id),
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
        "jti": uuid.uuid4().hex,
        "roles": sorted(caller.roles),
        "lvl": caller.identity_level,
    }
    if caller.duties:
        claims["duties"] = sorted(caller.duties)
    if caller.agency_id:
        claims["agency"] = caller.agency_id
    if caller.merchant_id:
        claims["merchant"] = caller.merchant_id
    token = jwt.encode(
        claims,
        settings.jwt_keys.active_key,
        algorithm=ALGORITHM,
        headers={"kid": settings.jwt_keys.active_kid},
    )
    return token, ttl


LEEWAY_SECONDS = 5
VERIFIED_TOKENS_KEPT = 10_000
"""Verified tokens remembered by this process (oldest forgotten first): a client sends the same access
token with every request for its lifetime, and checking its signature and claims again each time cost
~0.3 ms of the ~3 ms a transfer costs the server (measured, bench/profile.py)."""
_verified: dict[tuple[Any, ...], tuple[Caller, float, float]] = {}


def decode_access_token(settings: Settings, token: str) -> Caller:
    """Verify ``token`` completely or raise :class:`NotAuthorizedException`.

    A token verified before under the same keys, issuer and audience is answered from memory while its
    validity window holds (the signature cannot have changed: the token is the cache key)."""
    remembered = (settings.jwt_keys, settings.jwt_issuer, settings.jwt_audience, token)
    known = _verified.get(remembered)
    if known is not None:
        caller, not_before, expires = known
        if not_before - LEEWAY_SECONDS <= time.time() < expires + LEEWAY_SECONDS:
            return caller
        _verified.pop(remembered, None)
    caller, claims = _verify(settings, token)
    if len(_verified) >= VERIFIED_TOKENS_KEPT:
        _verified.pop(next(iter(_verified)))
    _verified[remembered] = (caller, float(max(claims["iat"], claims.get("nbf", 0))), float(claims["exp"]))
    return caller


def _verify(settings: Settings, token: str) -> tuple[Caller, dict[str, Any]]:
    try:
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        key = settings.jwt_keys.get(kid) if isinstance(kid, str) else None
        if key is None or header.get("alg") != ALGORITHM:
            raise NotAuthorizedException("unknown signing key")
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "iat", "sub", "sid", "iss", "aud"]},
            leeway=LEEWAY_SECONDS,
        )
        roles = frozenset(r for r in claims.get("roles", []) if r in ROLES)
        caller = Caller(
            user_id=uuid.UUID(claims["sub"]),
            session_id=uuid.UUID(claims["sid"]),
            roles=roles,
            duties=frozenset(d for d in claims.get("duties", []) if d in DUTIES),
            identity_level=int(claims.get("lvl", 0)),
            agency_id=claims.get("agency"),
            merchant_id=claims.get("merchant"),
        )
        return caller, claims
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise NotAuthorizedException("invalid access token") from exc


SessionCheck = Callable[[Request[Any, Any, Any], Caller], Awaitable[bool]]
_session_checks: list[SessionCheck] = []


def register_session_check(check: SessionCheck) -> None:
    """Let identity veto tokens of sessions it has revoked (logout, sign-out elsewhere, locked account)."""
    if check not in _session_checks:
        _session_checks.append(check)


async def get_caller(request: Request[Any, Any, Any]) -> Caller:
    """Dependency: the verified caller, or 401. Cached on the request so guards and handlers share it."""
    cached = request.scope.get("state", {}).get("caller")
    if isinstance(cached, Caller):
        return cached
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotAuthorizedException("missing bearer token")
    settings: Settings = request.app.state.settings
    caller = decode_access_token(settings, token.strip())
    for check in _session_checks:
        if not await check(request, caller):
            raise NotAuthorizedException("session revoked")
    request.scope.setdefault("state", {})["caller"] = caller
    return caller


def require_roles(
    *roles: str,
) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]:
    """A guard admitting callers holding any of ``roles``."""
    wanted = frozenset(roles)
    unknown = wanted - ROLES
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        caller = await get_caller(connection)  # type: ignore[arg-type]
        if not caller.roles & wanted:
            raise PermissionDeniedException("role required: " + ", ".join(sorted(wanted)))

    guard.__name__ = f"require_roles_{'_'.join(sorted(wanted))}"
    return guard


def require_duty(
    *duties: str,
) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]:
    """A guard admitting admins with any of ``duties`` (a superadmin holds every duty)."""
    wanted = frozenset(duties)

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        caller = await get_caller(connection)  # type: ignore[arg-type]
        if not caller.is_admin or not (caller.duties & (wanted | {"superadmin"})):
            raise PermissionDeniedException("admin duty required: " + ", ".join(sorted(wanted)))

    return guard


def roles_of(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v for v in values if v in ROLES)
