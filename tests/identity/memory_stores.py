"""Test-only in-process stores, used until the shared stores (branch ``stores``) are merged into main."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from app.core.stores.base import Cache, Counters, Hit, Lock, PubSub, Stores, StoreUnavailableError


class MemoryCounters(Counters):
    def __init__(self) -> None:
        self._values: dict[str, tuple[int, float]] = {}

    async def hit(self, key: str, window_seconds: int, amount: int = 1) -> Hit:
        now = time.monotonic()
        count, until = self._values.get(key, (0, 0.0))
        if until <= now:
            count, until = 0, now + window_seconds
        count += amount
        self._values[key] = (count, until)
        return Hit(count, math.ceil(until - now))

    async def peek(self, key: str) -> Hit | None:
        now = time.monotonic()
        count, until = self._values.get(key, (0, 0.0))
        if until <= now:
            return None
        return Hit(count, math.ceil(until - now))

    async def reset(self, key: str) -> None:
        self._values.pop(key, None)


class DownCounters(Counters):
    """Redis unreachable."""

    async def hit(self, key: str, window_seconds: int, amount: int = 1) -> Hit:
        raise StoreUnavailableError("down")

    async def peek(self, key: str) -> Hit | None:
        raise StoreUnavailableError("down")

    async def reset(self, key: str) -> None:
        raise StoreUnavailableError("down")


class MemoryCache(Cache):
    def __init__(self) -> None:
        self._values: dict[str, bytes] = {}

    async def get(self, key: str) -> bytes | None:
        return self._values.get(key)

    async def set(self, key: str, value: bytes, ttl_seconds: int | None = None) -> None:
        self._values[key] = value

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)


class NoLock(Lock):
    def hold(
        self, name: str, ttl_seconds: float, wait_seconds: float = 0
    ) -> AbstractAsyncContextManager[bool]:
        @asynccontextmanager
        async def held() -> AsyncIterator[bool]:
            yield True

        return held()


class NoPubSub(PubSub):
    async def publish(self, channel: str, message: bytes) -> None:
        return None

    async def subscribe(self, channel: str) -> AsyncIterator[bytes]:  # type: ignore[override]
        if False:
            yield b""


def memory_stores(counters: Counters | None = None) -> Stores:
    return Stores(
        cache=MemoryCache(),
        counters=counters or MemoryCounters(),
        lock=NoLock(),
        pubsub=NoPubSub(),
        backend="memory",
    )
