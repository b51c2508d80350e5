"""Redis stores: shared by every process of a deployment.

Every key and channel is prefixed with ``Settings.redis_prefix``. Every Redis failure surfaces as
:class:`StoreUnavailableError`; after one, the stores answer "unavailable" at once for a short cool-down
(``REDIS_COOLDOWN_SECONDS``) instead of making every request wait on a dead server, then try again.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub as RedisPubSubClient
from redis.exceptions import MaxConnectionsError, RedisError

from app.core.stores.base import (
    Cache,
    Counters,
    Hit,
    Lock,
    PubSub,
    Stores,
    StoreUnavailableError,
    Subscription,
)

__all__ = [
    "RedisCache",
    "RedisCounters",
    "RedisHealth",
    "RedisLock",
    "RedisPubSub",
    "redis_stores",
]

T = TypeVar("T")
log = structlog.get_logger("app.stores")
_POLL_SECONDS = 0.02
_POLL_MAX_SECONDS = 0.1

# INCRBY, then start the window only if the key has none yet (the first hit): the equivalent of
# INCRBY + EXPIRE NX, atomic, in one round trip, and also correct on Redis < 7 (no EXPIRE NX there).
_HIT = """
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {count, ttl}
"""

_PEEK = """
local count = redis.call('GET', KEYS[1])
if not count then
  return false
end
return {tonumber(count), redis.call('PTTL', KEYS[1])}
"""

# hit_unless: if the guard counter is live, report it and count nothing; else the _HIT of KEYS[1].
_HIT_UNLESS = """
local held = redis.call('GET', KEYS[2])
if held and tonumber(held) > 0 then
  local ttl = redis.call('PTTL', KEYS[2])
  if ttl ~= -2 then
    return {1, tonumber(held), ttl}
  end
end
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {0, count, ttl}
"""

# Delete the lock only if it still holds our token: a holder whose lease ran out must not free the lock
# that someone else has taken since.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisHealth:
    """Shared by the stores of one client: remembers a failure for ``cooldown_seconds``."""

    def __init__(self, cooldown_seconds: float) -> None:
        self._cooldown = cooldown_seconds
        self._down_until = 0.0
        self._down = False

    def check(self) -> None:
        if self._down and time.monotonic() < self._down_until:
            raise StoreUnavailableError("redis unavailable (cooling down after a failure)")

    def failed(self, exc: BaseException) -> None:
        if not self._down:
            log.warning("redis_unavailable", error=type(exc).__name__, cooldown_seconds=self._cooldown)
        self._down = True
        self._down_until = time.monotonic() + self._cooldown

    def succeeded(self) -> None:
        if self._down:
            log.info("redis_recovered")
        self._down = False

    async def run(self, operation: Callable[[], Awaitable[T]], *, gate: bool = True) -> T:
        """Run ``operation``; Redis errors become :class:`StoreUnavailableError`. ``gate=False`` runs it
        even while cooling down (a live subscription keeps reading its own connection)."""
        if gate:
            self.check()
        try:
            result = await operation()
        except MaxConnectionsError as exc:
            # This process's pool is exhausted: a local overload, not a sign that Redis is down.
            raise StoreUnavailableError("redis: no free connection in the pool") from exc
        except (RedisError, OSError) as exc:
            self.failed(exc)
            raise StoreUnavailableError(f"redis: {type(exc).__name__}") from exc
        self.succeeded()
        return result


def _seconds(milliseconds: int) -> int:
    return max(1, math.ceil(milliseconds / 1000))


class _RedisStore:
    def __init__(self, client: Redis, prefix: str, health: RedisHealth) -> None:
        self._client = client
        self._prefix = prefix
        self._health = health

    def _key(self, key: str) -> str:
        return self._prefix + key


class RedisCache(_RedisStore, Cache):
    async def get(self, key: str) -> bytes | None:
        value = await self._health.run(lambda: self._client.get(self._key(key)))
        return value.encode() if isinstance(value, str) else value

    async def set(self, key: str, value: bytes, ttl_seconds: int | None = None) -> None:
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        await self._health.run(lambda: self._client.set(self._key(key), value, ex=ttl_seconds))

    async def delete(self, key: str) -> None:
        await self._health.run(lambda: self._client.delete(self._key(key)))


class RedisCounters(_RedisStore, Counters):
    """Fixed-window counters: one Lua script per hit (INCRBY and the window's expiry, atomically)."""

    def __init__(self, client: Redis, prefix: str, health: RedisHealth) -> None:
        super().__init__(client, prefix, health)
        self._hit = client.register_script(_HIT)
        self._peek = client.register_script(_PEEK)
        self._hit_unless = client.register_script(_HIT_UNLESS)

    async def hit(self, key: str, window_seconds: int, amount: int = 1) -> Hit:
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        count, ttl_ms = await self._health.run(
            lambda: self._hit(keys=[self._key(key)], args=[amount, window_seconds * 1000])
        )
        return Hit(count=int(count), retry_after=_seconds(int(ttl_ms)))

    async def peek(self, key: str) -> Hit | None:
        found = await self._health.run(lambda: self._peek(keys=[self._key(key)]))
        if not found:
            return None
        count, ttl_ms = found
        if int(ttl_ms) == -2:
            return None
        return Hit(count=int(count), retry_after=_seconds(int(ttl_ms)))

    async def reset(self, key: str) -> None:
        await self._health.run(lambda: self._client.delete(self._key(key)))

    async def hit_unless(self, key: str, window_seconds: int, guard: str) -> tuple[Hit | None, Hit | None]:
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        held, count, ttl_ms = await self._health.run(
            lambda: self._hit_unless(keys=[self._key(key), self._key(guard)], args=[1, window_seconds * 1000])
        )
        state = Hit(count=int(count), retry_after=_seconds(int(ttl_ms)))
        return (state, None) if int(held) else (None, state)


class RedisLock(_RedisStore, Lock):
    """``SET name token NX PX ttl`` to take; a token-checked ``DEL`` (Lua) to release."""

    def __init__(self, client: Redis, prefix: str, health: RedisHealth) -> None:
        super().__init__(client, prefix, health)
        self._release = client.register_script(_RELEASE)

    def hold(
        self, name: str, ttl_seconds: float, wait_seconds: float = 0
    ) -> AbstractAsyncContextManager[bool]:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        return self._hold(name, ttl_seconds, wait_seconds)

    async def _try_acquire(self, key: str, token: str, ttl_ms: int) -> bool:
        won = await self._health.run(lambda: self._client.set(key, token, nx=True, px=ttl_ms))
        return bool(won)

    @asynccontextmanager
    async def _hold(self, name: str, ttl_seconds: float, wait_seconds: float) -> AsyncIterator[bool]:
        key = self._key("lock:" + name)
        token = uuid.uuid4().hex
        ttl_ms = max(1, math.ceil(ttl_seconds * 1000))
        deadline = time.monotonic() + wait_seconds
        pause = _POLL_SECONDS
        won = await self._try_acquire(key, token, ttl_ms)
        while not won and time.monotonic() < deadline:
            await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, _POLL_MAX_SECONDS)
            won = await self._try_acquire(key, token, ttl_ms)
        try:
            yield won
        finally:
            if won:
                try:
                    await self._health.run(lambda: self._release(keys=[key], args=[token]))
                except StoreUnavailableError:
                    # The lease runs out by itself; raising here would hide the body's own outcome.
                    log.warning("redis_lock_release_failed", lock=name)


class _RedisSubscription(Subscription):
    def __init__(self, client: Redis, channel: str, health: RedisHealth) -> None:
        self._client = client
        self._channel = channel
        self._health = health
        self._pubsub: RedisPubSubClient | None = None
        self._closed = False

    async def start(self) -> None:
        if self._closed:
            raise RuntimeError("subscription closed")
        if self._pubsub is not None:
            return
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            await self._health.run(lambda: pubsub.subscribe(self._channel))
        except BaseException:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise
        self._pubsub = pubsub

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            except (RedisError, OSError):
                log.warning("redis_unsubscribe_failed")

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        await self.start()
        pubsub = self._pubsub
        assert pubsub is not None
        while True:
            message: dict[str, Any] | None = await self._health.run(
                lambda: pubsub.get_message(timeout=None), gate=False
            )
            if message is not None and message.get("type") == "message":
                data = message["data"]
                return data if isinstance(data, bytes) else str(data).encode()


class RedisPubSub(_RedisStore, PubSub):
    async def publish(self, channel: str, message: bytes) -> None:
        await self._health.run(lambda: self._client.publish(self._key(channel), message))

    def subscribe(self, channel: str) -> Subscription:
        return _RedisSubscription(self._client, self._key(channel), self._health)


def redis_stores(client: Redis, prefix: str, cooldown_seconds: float = 2.0) -> Stores:
    """Stores on ``client`` under ``prefix``; they share one health record (one failure pauses them all)."""
    health = RedisHealth(cooldown_seconds)
    return Stores(
        cache=RedisCache(client, prefix, health),
        counters=RedisCounters(client, prefix, health),
        lock=RedisLock(client, prefix, health),
        pubsub=RedisPubSub(client, prefix, health),
        backend="redis",
    )
