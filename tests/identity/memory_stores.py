"""A counters store that is down, for unit-level outage tests (the end-to-end outage test kills a real
redis-server: see test_redis_down.py)."""

from __future__ import annotations

import dataclasses

from app.core.stores.base import Counters, Hit, Stores, StoreUnavailableError
from app.core.stores.memory import memory_stores


class DownCounters(Counters):
    """Redis unreachable."""

    async def hit(self, key: str, window_seconds: int, amount: int = 1) -> Hit:
        raise StoreUnavailableError("down")

    async def peek(self, key: str) -> Hit | None:
        raise StoreUnavailableError("down")

    async def reset(self, key: str) -> None:
        raise StoreUnavailableError("down")


def stores_with_counters_down() -> Stores:
    return dataclasses.replace(memory_stores(), counters=DownCounters(), backend="redis")
