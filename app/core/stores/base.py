"""Short-lived state behind small interfaces, each with an in-process and a Redis implementation.

Redis is an accelerator, never the source of truth (DESIGN.md): nothing about money may depend on these.
Keys are namespaced by ``Settings.redis_prefix`` inside the implementations; callers pass bare keys.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

__all__ = ["Cache", "Counters", "Hit", "Lock", "PubSub", "StoreUnavailableError", "Stores"]


class StoreUnavailableError(RuntimeError):
    """The backing store (Redis) cannot be reached.

    Callers decide: fail closed (OTP, sign-in) or fall back (payment rate limits)."""


@dataclass(frozen=True, slots=True)
class Hit:
    """The value of a counter after an increment, and the seconds until its window expires."""

    count: int
    retry_after: int


class Cache(ABC):
    @abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    @abstractmethod
    async def set(self, key: str, value: bytes, ttl_seconds: int | None = None) -> None: ...

    @abstractmethod
    async def delete(self, key: str) -> None: ...


class Counters(ABC):
    """Atomic counters with expiry: the basis of rate limits and attempt counters."""

    @abstractmethod
    async def hit(self, key: str, window_seconds: int, amount: int = 1) -> Hit:
        """Add ``amount`` atomically; the window starts at the first hit and the counter vanishes after it."""

    @abstractmethod
    async def peek(self, key: str) -> Hit | None: ...

    @abstractmethod
    async def reset(self, key: str) -> None: ...


class Lock(ABC):
    @abstractmethod
    def hold(
        self, name: str, ttl_seconds: float, wait_seconds: float = 0
    ) -> AbstractAsyncContextManager[bool]:
        """Hold ``name`` at most ``ttl_seconds`` (a crashed holder frees it); yields whether it was won."""


class PubSub(ABC):
    @abstractmethod
    async def publish(self, channel: str, message: bytes) -> None: ...

    @abstractmethod
    def subscribe(self, channel: str) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True, slots=True)
class Stores:
    """The process's short-lived state: available as ``app.state.stores``."""

    cache: Cache
    counters: Counters
    lock: Lock
    pubsub: PubSub
    backend: str
    """``memory`` or ``redis``."""
