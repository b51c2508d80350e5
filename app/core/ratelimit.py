"""Rate limits per category, on the atomic counters of :mod:`app.core.stores`.

Categories and their defaults (``RATE_LIMIT_<CATEGORY>="<limit>/<seconds>"`` overrides each):

=========  ===========  =====================================================  ==================
category   default      counts                                                 Redis down
=========  ===========  =====================================================  ==================
signin     20 / 300 s   sign-in attempts per client address (+ per account)    503, fail closed
otp        10 / 3600 s  OTP sends per client address (+ per phone number)      503, fail closed
payments   30 / 60 s    money movements started per caller                     per-process count
default    600 / 60 s   any other request per caller (or address)              per-process count
=========  ===========  =====================================================  ==================

On Redis the count is shared by every process (one Lua script per hit). When Redis is down, payments and
ordinary requests are counted per process (so money keeps moving, DESIGN.md), while sign-in and OTP sending
answer 503 ``limiter_unavailable``: running them without limits would invite brute force and SMS bombing.

Two ways to use it:

- on a route: ``@post(..., guards=[rate_limit("payments")])`` counts per caller (per client address when
  the request carries no valid token); ``rate_limit("otp", by="address")`` counts per address only;
- for keys that are not the caller: ``await limiter.check("otp", key=f"phone:{phone}", limit=5,
  window=3600)``; a handler gets the limiter as ``limiter: NamedDependency[RateLimiter]`` (an app-level
  dependency), other code as ``app.state.limiter``.

A refusal is a 429 ``rate_limited`` problem with ``Retry-After`` (seconds) and ``retry_after`` in the body.
Windows are fixed and start at the first counted request, so a client can reach at most twice the limit
across a window boundary. Keys are stored as keyed hashes: phone numbers and addresses never appear in Redis.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from app.core.errors import RATE_LIMITED, AppError, ErrorKind, error_kind
from app.core.security import get_caller
from app.core.settings import RateRule, Settings
from app.core.stores.base import Counters, Stores, StoreUnavailableError
from app.core.stores.memory import MemoryCounters

__all__ = [
    "FAIL_CLOSED",
    "LIMITER_UNAVAILABLE",
    "Category",
    "RateDecision",
    "RateLimitGuard",
    "RateLimiter",
    "client_address",
    "rate_limit",
]

Category = Literal["signin", "otp", "payments", "default"]
CATEGORIES: tuple[Category, ...] = get_args(Category)
FAIL_CLOSED: frozenset[Category] = frozenset({"signin", "otp"})
"""Categories refused (503) rather than counted per process when the shared counters are unavailable."""

OUTAGE_RETRY_AFTER_SECONDS = 10
"""``Retry-After`` of a ``limiter_unavailable`` answer."""

LIMITER_UNAVAILABLE = error_kind(
    "limiter_unavailable",
    503,
    "Tạm thời chưa thể đăng nhập hoặc gửi mã xác thực, vui lòng thử lại sau ít phút",
    "Sign-in and verification codes are temporarily unavailable; retry in a moment",
)

AddressNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of counting one request."""

    allowed: bool
    limit: int
    count: int
    """Requests counted in the current window, this one included."""
    retry_after: int
    """Seconds until the window ends (and the count starts again from zero)."""
    local_only: bool = False
    """Counted by this process alone because the shared counters are unavailable."""

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)


class RateLimiter:
    """Counts requests per category and key; shared across processes when ``counters`` is Redis."""

    def __init__(
        self,
        counters: Counters,
        rules: Mapping[Category, RateRule],
        *,
        key_secret: bytes,
        fallback: Counters | None = None,
        trusted_proxies: Iterable[str] = (),
    ) -> None:
        missing = set(CATEGORIES) - set(rules)
        if missing:
            raise ValueError(f"no rate rule for {sorted(missing)}")
        self._counters = counters
        self._fallback = fallback
        self._rules = dict(rules)
        self._secret = hashlib.sha256(b"hue-rate-limit-keys\x00" + key_secret).digest()
        self.trusted_proxies: tuple[AddressNetwork, ...] = tuple(
            ipaddress.ip_network(net, strict=False) for net in trusted_proxies
        )

    @classmethod
    def from_settings(cls, settings: Settings, stores: Stores) -> RateLimiter:
        """The limiter of the app: shared counters from ``stores``, per-process fallback when on Redis."""
        return cls(
            stores.counters,
            {
                "signin": settings.rate_limit_signin,
                "otp": settings.rate_limit_otp,
                "payments": settings.rate_limit_payments,
                "default": settings.rate_limit_default,
            },
            key_secret=settings.data_keys.active_key,
            fallback=MemoryCounters() if stores.backend != "memory" else None,
            trusted_proxies=settings.trusted_proxies,
        )

    def rule(self, category: Category) -> RateRule:
        try:
            return self._rules[category]
        except KeyError:
            raise ValueError(f"unknown rate-limit category {category!r}") from None

    def _counter_key(self, category: Category, key: str, window: int) -> str:
        digest = hashlib.blake2b(key.encode(), key=self._secret, digest_size=16).hexdigest()
        return f"rl:{category}:{window}:{digest}"

    def _resolve(self, category: Category, limit: int | None, window: int | None) -> RateRule:
        rule = self.rule(category)
        resolved = RateRule(
            limit=rule.limit if limit is None else limit,
            window_seconds=rule.window_seconds if window is None else window,
        )
        if resolved.limit < 1 or resolved.window_seconds < 1:
            raise ValueError("limit and window must be at least 1")
        return resolved

    async def hit(
        self,
        category: Category,
        key: str,
        *,
        limit: int | None = None,
        window: int | None = None,
        cost: int = 1,
    ) -> RateDecision:
        """Count ``cost`` against ``key`` and say whether it is within the limit (never raises 429).

        ``limit``/``window`` override the category's rule (for keys such as a phone number).
        Raises ``limiter_unavailable`` (503) for a fail-closed category when the counters are unavailable.
        """
        rule = self._resolve(category, limit, window)
        counter_key = self._counter_key(category, key, rule.window_seconds)
        local_only = False
        try:
            hit = await self._counters.hit(counter_key, rule.window_seconds, cost)
        except StoreUnavailableError:
            if category in FAIL_CLOSED or self._fallback is None:
                error = LIMITER_UNAVAILABLE(retry_after=OUTAGE_RETRY_AFTER_SECONDS)
                error.headers["Retry-After"] = str(OUTAGE_RETRY_AFTER_SECONDS)
                raise error from None
            hit = await self._fallback.hit(counter_key, rule.window_seconds, cost)
            local_only = True
        return RateDecision(
            allowed=hit.count <= rule.limit,
            limit=rule.limit,
            count=hit.count,
            retry_after=hit.retry_after,
            local_only=local_only,
        )

    async def check(
        self,
        category: Category,
        key: str,
        *,
        limit: int | None = None,
        window: int | None = None,
        cost: int = 1,
    ) -> RateDecision:
        """Like :meth:`hit`, but raise 429 ``rate_limited`` (with ``Retry-After``) when over the limit."""
        decision = await self.hit(category, key, limit=limit, window=window, cost=cost)
        if not decision.allowed:
            raise too_many_requests(decision.retry_after)
        return decision

    async def reset(self, category: Category, key: str, *, window: int | None = None) -> None:
        """Forget the count of ``key`` (e.g. failed attempts after a success).

        Best effort for categories that fall back; ``limiter_unavailable`` for fail-closed ones."""
        rule = self._resolve(category, None, window)
        counter_key = self._counter_key(category, key, rule.window_seconds)
        if self._fallback is not None:
            await self._fallback.reset(counter_key)
        try:
            await self._counters.reset(counter_key)
        except StoreUnavailableError:
            if category in FAIL_CLOSED:
                error = LIMITER_UNAVAILABLE(retry_after=OUTAGE_RETRY_AFTER_SECONDS)
                error.headers["Retry-After"] = str(OUTAGE_RETRY_AFTER_SECONDS)
                raise error from None


def too_many_requests(retry_after: int) -> AppError:
    """The 429 ``rate_limited`` problem, with ``Retry-After``."""
    error = RATE_LIMITED(
        f"Bạn đã gửi quá nhiều yêu cầu. Vui lòng thử lại sau {retry_after} giây.",
        f"Too many requests; retry in {retry_after} seconds.",
        retry_after=retry_after,
    )
    error.headers["Retry-After"] = str(retry_after)
    return error


def _in_networks(host: str, networks: tuple[AddressNetwork, ...]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)


def client_address(
    connection: ASGIConnection[Any, Any, Any, Any], trusted: tuple[AddressNetwork, ...]
) -> str:
    """The client's address: the TCP peer, or, when the peer is a trusted proxy, the nearest address in
    ``X-Forwarded-For`` that is not itself a trusted proxy (so a client cannot choose its own)."""
    peer = connection.client.host if connection.client else "unknown"
    if not trusted or not _in_networks(peer, trusted):
        return peer
    hops = [
        hop.strip()
        for header in connection.headers.getall("x-forwarded-for", [])
        for hop in header.split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        if not _in_networks(hop, trusted):
            return hop
    return hops[0] if hops else peer


class RateLimitGuard:
    """A Litestar guard counting the request in ``category``; see :func:`rate_limit`."""

    def __init__(
        self,
        category: Category,
        by: Literal["caller", "address"],
        limit: int | None,
        window: int | None,
    ) -> None:
        if category not in CATEGORIES:
            raise ValueError(f"unknown rate-limit category {category!r}")
        if by not in ("caller", "address"):
            raise ValueError("by must be 'caller' or 'address'")
        self.category: Category = category
        self.by = by
        self.limit = limit
        self.window = window
        self.errors: tuple[ErrorKind, ...] = (
            (RATE_LIMITED, LIMITER_UNAVAILABLE) if category in FAIL_CLOSED else (RATE_LIMITED,)
        )
        """Read by the OpenAPI document: the problems this guard adds to its routes."""

    async def _key(self, connection: ASGIConnection[Any, Any, Any, Any], limiter: RateLimiter) -> str:
        if self.by == "caller" and connection.headers.get("authorization"):
            try:
                caller = await get_caller(connection)  # type: ignore[arg-type]
            except NotAuthorizedException:
                pass
            else:
                return f"user:{caller.user_id}"
        return f"addr:{client_address(connection, limiter.trusted_proxies)}"

    async def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        limiter: RateLimiter = connection.app.state.limiter
        key = await self._key(connection, limiter)
        await limiter.check(self.category, key, limit=self.limit, window=self.window)

    def __repr__(self) -> str:
        return f"rate_limit({self.category!r}, by={self.by!r})"


def rate_limit(
    category: Category,
    *,
    by: Literal["caller", "address"] = "caller",
    limit: int | None = None,
    window: int | None = None,
) -> RateLimitGuard:
    """A guard for routes: ``guards=[rate_limit("payments")]``.

    ``by="caller"`` counts per signed-in caller (per client address when there is no valid token);
    ``by="address"`` always per client address. ``limit``/``window`` override the category's rule.
    The guard runs before the body is read, so refused requests cost little.
    """
    return RateLimitGuard(category, by, limit, window)
