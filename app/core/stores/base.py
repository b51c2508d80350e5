"""Short-lived state behind small interfaces, each with an in-process and a Redis implementation.

Redis is an accelerator, never the source of truth (DESIGN.md): nothing about money may depend on these.
Keys are namespaced by ``Settings.redis_prefix`` inside the implementations; callers pass bare keys.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType

__all__ = [
    "Cache",
    "Counters",
    "Hit",
    "Lock",
    "PubSub",
    "StoreUnavailableError",
    "Stores",
    "Subscription",
]


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

    async def hit_unless(self, key: str, window_seconds: int, guard: str) -> tuple[Hit | None, Hit | None]:
        """If counter ``guard`` is live (count > 0): ``(guard's state, None)``, counting nothing; otherwise
        :meth:`hit` ``key``: ``(None, its state)``. A lock checked and an attempt counted in one step (one
        round trip on Redis, where it is also atomic)."""
        held = await self.peek(guard)
        if held is not None and held.count > 0:
            return held, None
        return None, await self.hit(key, window_seconds)


class Lock(ABC):
    @abstractmethod
    def hold(
        self, name: str, ttl_seconds: float, wait_seconds: float = 0
    ) -> AbstractAsyncContextManager[bool]:
        """Hold ``name`` at most ``ttl_seconds`` (a crashed holder frees it); yields whether it was won."""


class Subscription(AsyncIterator[bytes]):
    """Messages of one channel, in publication order, from the moment the subscription is live.

    ``async with pubsub.subscribe(ch) as messages:`` is live on entering the block (publish after that and the
    message arrives) and unsubscribes on leaving it; a bare ``async for`` subscribes on the first iteration.
    Delivery is at most once: a subscriber that is not listening (or too slow) misses messages, so pub/sub
    carries hints ("something changed, look again"), never the only copy of a fact.
    Raises :class:`StoreUnavailableError` when the connection to the store is lost."""

    @abstractmethod
    async def start(self) -> None:
        """Subscribe now (idempotent)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Unsubscribe and free the connection (idempotent)."""

    def __aiter__(self) -> Subscription:
        return self

    async def __aenter__(self) -> Subscription:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


class PubSub(ABC):
    @abstractmethod
    async def publish(self, channel: str, message: bytes) -> None:
        """Send ``message`` to every live subscriber of ``channel`` (none listening: it is dropped)."""

    @abstractmethod
    def subscribe(self, channel: str) -> Subscription: ...


@dataclass(frozen=True, slots=True)
class Stores:
    """The process's short-lived state: available as ``app.state.stores``."""

    cache: Cache
    counters: Counters
    lock: Lock
    pubsub: PubSub
    backend: str
    """``memory`` or ``redis``."""
