"""Per-application state of the identity module: its policy, the SMS sender, the stores it counts in and the
cache of session checks. Installed once by ``create_app`` on the app's :class:`~app.core.db.Database`, so
service functions that receive only a session (``verify_payment_pin``) reach it too."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Database, utcnow
from app.core.ratelimit import RateLimiter
from app.core.settings import Settings
from app.core.stores.base import Counters, Hit, Stores, StoreUnavailableError
from app.core.stores.memory import MemoryCounters
from app.identity.ekyc import EkycProvider, SandboxEkyc

__all__ = [
    "DevSmsOutbox",
    "HttpSmsGateway",
    "IdentityPolicy",
    "IdentityRuntime",
    "SentSms",
    "SessionCache",
    "SmsError",
    "SmsSender",
    "install",
    "runtime_of",
]

log = structlog.get_logger("app.identity")


@dataclass(frozen=True, slots=True)
class IdentityPolicy:
    """The numbers of the access rules (issue 4), in one place."""

    otp_ttl_seconds: int = 5 * 60
    otp_max_attempts: int = 5
    """Wrong codes allowed per code; the 5th wrong one kills it."""
    otp_resend_seconds: int = 60
    """Cooldown between two codes to one number."""
    otp_sends_per_phone: int = 5
    """Codes per number per window (per client address: the ``otp`` rate-limit category, RATE_LIMIT_OTP)."""
    otp_sends_per_phone_window: int = 60 * 60
    otp_failures_per_phone: int = 10
    """Wrong codes (over all codes) to one number before the number is locked for the window."""
    otp_failures_window: int = 60 * 60
    sign_in_attempts_per_phone: int = 5
    """Password tries per number per window; a success clears the count (per client address: the
    ``signin`` rate-limit category, RATE_LIMIT_SIGNIN)."""
    sign_in_window: int = 15 * 60
    pin_max_attempts: int = 5
    pin_lock_seconds: int = 15 * 60
    new_device_seconds: int = 24 * 3600
    """A device is ``new`` for this long after it was first seen."""
    session_cache_seconds: float = 5.0
    """How long one process trusts a positive session check before asking the database again (the longest a
    session revoked by another process keeps working; the revoking process forgets at once)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> IdentityPolicy:
        return cls(pin_lock_seconds=settings.pin_lock_seconds)


class SmsError(RuntimeError):
    """The SMS could not be handed to the gateway."""


class SmsSender(ABC):
    @abstractmethod
    async def send(self, phone: str, text: str) -> None:
        """Deliver ``text`` to ``phone`` (E.164) or raise :class:`SmsError`."""


@dataclass(frozen=True, slots=True)
class SentSms:
    phone: str
    text: str
    sent_at: datetime


class DevSmsOutbox(SmsSender):
    """Development and test: messages are kept in memory and shown by ``GET /api/v1/dev/sms``."""

    def __init__(self, capacity: int = 200) -> None:
        self.messages: deque[SentSms] = deque(maxlen=capacity)

    async def send(self, phone: str, text: str) -> None:
        self.messages.append(SentSms(phone, text, utcnow()))

    def latest(self, phone: str | None = None, limit: int = 20) -> list[SentSms]:
        found = [m for m in reversed(self.messages) if phone is None or m.phone == phone]
        return found[:limit]


class HttpSmsGateway(SmsSender):
    """A gateway taking ``POST {"to": "+84...", "text": "..."}`` with a bearer token (the common shape of
    Vietnamese brandname-SMS APIs behind an adapter)."""

    def __init__(self, url: str, token: str | None, timeout: float = 5.0) -> None:
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout

    async def send(self, phone: str, text: str) -> None:
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.post(
                    self._url, json={"to": phone, "text": text}, headers=self._headers
                )
        except httpx.HTTPError as exc:
            raise SmsError(type(exc).__name__) from exc
        if response.status_code >= 300:
            raise SmsError(f"gateway answered {response.status_code}")


class SessionCache:
    """Which sessions this process recently found active or revoked (bounded, least recently used out)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._entries: OrderedDict[object, tuple[bool, float]] = OrderedDict()
        self._max = max_entries

    def get(self, session_id: object) -> bool | None:
        entry = self._entries.get(session_id)
        if entry is None:
            return None
        active, until = entry
        if until < time.monotonic():
            del self._entries[session_id]
            return None
        self._entries.move_to_end(session_id)
        return active

    def put(self, session_id: object, active: bool, ttl_seconds: float) -> None:
        self._entries[session_id] = (active, time.monotonic() + ttl_seconds)
        self._entries.move_to_end(session_id)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def forget(self, session_id: object) -> None:
        self._entries.pop(session_id, None)

    def clear(self) -> None:
        self._entries.clear()


@dataclass
class IdentityRuntime:
    settings: Settings
    policy: IdentityPolicy
    sms: SmsSender
    dev_outbox: DevSmsOutbox | None
    stores: Stores
    limiter: RateLimiter
    fallback_counters: Counters | None = None
    """In-process counters used for the payment PIN when the shared store is down (money keeps working)."""
    sessions: SessionCache = field(default_factory=SessionCache)
    ekyc: EkycProvider | None = None
    """The sandbox outside production; production has none until a provider adapter is configured."""

    def counters(self) -> Counters:
        """The shared atomic counters (Redis in production; they raise StoreUnavailableError when down)."""
        return self.stores.counters

    async def money_hit(self, key: str, window_seconds: int) -> Hit:
        """Count on the shared store, or on this process's counters while it is down (payments continue)."""
        try:
            return await self.counters().hit(key, window_seconds)
        except StoreUnavailableError:
            if self.fallback_counters is None:
                raise
            log.warning("pin_counter_fallback", reason="shared store unavailable")
            return await self.fallback_counters.hit(key, window_seconds)

    async def money_hit_unless(
        self, key: str, window_seconds: int, guard: str
    ) -> tuple[Hit | None, Hit | None]:
        """``Counters.hit_unless`` on the shared store, or on this process's counters while it is down."""
        try:
            return await self.counters().hit_unless(key, window_seconds, guard)
        except StoreUnavailableError:
            if self.fallback_counters is None:
                raise
            log.warning("pin_counter_fallback", reason="shared store unavailable")
            return await self.fallback_counters.hit_unless(key, window_seconds, guard)

    async def money_peek(self, key: str) -> Hit | None:
        try:
            return await self.counters().peek(key)
        except StoreUnavailableError:
            if self.fallback_counters is None:
                raise
            return await self.fallback_counters.peek(key)

    async def money_reset(self, key: str) -> None:
        try:
            await self.counters().reset(key)
        except StoreUnavailableError:
            if self.fallback_counters is None:
                raise
        if self.fallback_counters is not None:
            await self.fallback_counters.reset(key)


_KEY = "identity"


def install(
    db: Database,
    settings: Settings,
    *,
    stores: Stores,
    limiter: RateLimiter | None = None,
    sms: SmsSender | None = None,
) -> IdentityRuntime:
    """Create the identity runtime of one application and attach it to its database."""
    dev_outbox: DevSmsOutbox | None = None
    if sms is None:
        if settings.sms_gateway_url:
            sms = HttpSmsGateway(settings.sms_gateway_url, settings.sms_gateway_token)
        else:
            dev_outbox = DevSmsOutbox()
            sms = dev_outbox
    runtime = IdentityRuntime(
        settings=settings,
        policy=IdentityPolicy.from_settings(settings),
        sms=sms,
        dev_outbox=None if settings.is_production else dev_outbox,
        stores=stores,
        limiter=limiter or RateLimiter.from_settings(settings, stores),
        fallback_counters=MemoryCounters() if stores.backend != "memory" else None,
        ekyc=None if settings.is_production else SandboxEkyc(),
    )
    db.extensions[_KEY] = runtime
    return runtime


def runtime_of(source: Database | AsyncSession) -> IdentityRuntime:
    """The identity runtime of the application owning ``source``."""
    db = source if isinstance(source, Database) else Database.of(source)
    runtime = db.extensions.get(_KEY)
    if not isinstance(runtime, IdentityRuntime):
        raise RuntimeError("identity is not installed on this database (create_app installs it)")
    return runtime
