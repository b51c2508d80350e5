"""In-process stores: the embedded mode, and the per-process fallback when Redis is down.

State lives in this process only (N processes = N independent copies). Every operation is guarded by a
``threading.Lock`` and never awaits while holding it, so it is atomic across tasks and across threads
(the sync ``TestClient`` and worker threads share the process with the event loop).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from app.core.stores.base import Cache, Counters, Hit, Lock, PubSub, Stores, Subscription

__all__ = [
    "MemoryCache",
    "MemoryCounters",
    "MemoryLock",
    "MemoryPubSub",
    "memory_stores",
]

Clock = Callable[[], float]
_POLL_SECONDS = 0.01
_POLL_MAX_SECONDS = 0.05


def _seconds_left(expires_at: float, now: float) -> int:
    return max(1, math.ceil(expires_at - now))


class MemoryCache(Cache):
    """A bounded LRU cache with per-entry expiry."""

    def __init__(self, max_entries: int = 10_000, clock: Clock = time.monotonic) -> None:
        self._data: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self._max_entries = max_entries
        self._clock = clock
        self._mutex = threading.Lock()

    async def get(self, key: str) -> bytes | None:
        with self._mutex:
            entry = self._data.get(key)
            if entry is None:
                return None
            value, expires_at = entry
            if expires_at is not None and expires_at <= self._clock():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return value

    async def set(self, key: str, value: bytes, ttl_seconds: int | None = None) -> None:
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        with self._mutex:
            expires_at = None if ttl_seconds is None else self._clock() + ttl_seconds
            self._data[key] = (bytes(value), expires_at)
            self._data.move_to_end(key)
            while len(self._data) > self._max_entries:
                self._data.popitem(last=False)

    async def delete(self, key: str) -> None:
        with self._mutex:
            self._data.pop(key, None)


class MemoryCounters(Counters):
    """Counters with a fixed window starting at the first hit; expired counters are swept as it grows."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._data: dict[str, tuple[int, float]] = {}
        self._clock = clock
        self._mutex = threading.Lock()
        self._next_sweep = 1024

    def _sweep(self, now: float) -> None:
        expired = [key for key, (_, expires_at) in self._data.items() if expires_at <= now]
        for key in expired:
            del self._data[key]
        self._next_sweep = max(1024, 2 * len(self._data))

    async def hit(self, key: str, window_seconds: int, amount: int = 1) -> Hit:
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        with self._mutex:
            now = self._clock()
            entry = self._data.get(key)
            if entry is None or entry[1] <= now:
                count, expires_at = amount, now + window_seconds
            else:
                count, expires_at = entry[0] + amount, entry[1]
            self._data[key] = (count, expires_at)
            if len(self._data) >= self._next_sweep:
                self._sweep(now)
            return Hit(count=count, retry_after=_seconds_left(expires_at, now))

    async def peek(self, key: str) -> Hit | None:
        with self._mutex:
            now = self._clock()
            entry = self._data.get(key)
            if entry is None or entry[1] <= now:
                return None
            return Hit(count=entry[0], retry_after=_seconds_left(entry[1], now))

    async def reset(self, key: str) -> None:
        with self._mutex:
            self._data.pop(key, None)


class MemoryLock(Lock):
    """A named lock with a lease: a holder that never releases (a task that died) loses it after the TTL."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._held: dict[str, tuple[str, float]] = {}
        self._clock = clock
        self._mutex = threading.Lock()

    def _try_acquire(self, name: str, token: str, ttl_seconds: float) -> bool:
        with self._mutex:
            now = self._clock()
            current = self._held.get(name)
            if current is not None and current[1] > now:
                return False
            self._held[name] = (token, now + ttl_seconds)
            return True

    def _release(self, name: str, token: str) -> None:
        with self._mutex:
            current = self._held.get(name)
            if current is not None and current[0] == token:
                del self._held[name]

    def hold(
        self, name: str, ttl_seconds: float, wait_seconds: float = 0
    ) -> AbstractAsyncContextManager[bool]:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        return self._hold(name, ttl_seconds, wait_seconds)

    @asynccontextmanager
    async def _hold(self, name: str, ttl_seconds: float, wait_seconds: float) -> AsyncIterator[bool]:
        token = uuid.uuid4().hex
        deadline = time.monotonic() + wait_seconds
        pause = _POLL_SECONDS
        won = self._try_acquire(name, token, ttl_seconds)
        while not won and time.monotonic() < deadline:
            await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, _POLL_MAX_SECONDS)
            won = self._try_acquire(name, token, ttl_seconds)
        try:
            yield won
        finally:
            if won:
                self._release(name, token)


class _MemorySubscription(Subscription):
    def __init__(self, hub: MemoryPubSub, channel: str, max_pending: int) -> None:
        self._hub = hub
        self._channel = channel
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=max_pending)
        self._started = False
        self._closed = False

    def deliver(self, message: bytes) -> None:
        """Called by the publisher (same process): drop the oldest message rather than block it."""
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(message)

    async def start(self) -> None:
        if self._closed:
            raise RuntimeError("subscription closed")
        if not self._started:
            self._hub._attach(self._channel, self)
            self._started = True

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._hub._detach(self._channel, self)

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        await self.start()
        return await self._queue.get()


class MemoryPubSub(PubSub):
    """Channels inside this process: a publisher reaches the subscribers of the same process only, and
    publishes from the event loop its subscribers run on (queues are asyncio's, not thread-safe). A slow
    subscriber loses its oldest pending messages beyond ``max_pending``."""

    def __init__(self, max_pending: int = 1000) -> None:
        self._channels: dict[str, set[_MemorySubscription]] = {}
        self._max_pending = max_pending

    def _attach(self, channel: str, subscription: _MemorySubscription) -> None:
        self._channels.setdefault(channel, set()).add(subscription)

    def _detach(self, channel: str, subscription: _MemorySubscription) -> None:
        subscribers = self._channels.get(channel)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._channels[channel]

    async def publish(self, channel: str, message: bytes) -> None:
        for subscription in list(self._channels.get(channel, ())):
            subscription.deliver(bytes(message))

    def subscribe(self, channel: str) -> Subscription:
        return _MemorySubscription(self, channel, self._max_pending)


def memory_stores() -> Stores:
    """Fresh in-process stores (embedded mode)."""
    return Stores(
        cache=MemoryCache(),
        counters=MemoryCounters(),
        lock=MemoryLock(),
        pubsub=MemoryPubSub(),
        backend="memory",
    )
