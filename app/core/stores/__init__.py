"""Short-lived state: cache, atomic counters, locks with a lease, pub/sub channels.

``build_stores(settings, redis_client)`` gives the Redis stores when a client is configured, the in-process
ones otherwise; the app keeps the result as ``app.state.stores`` (and handlers may ask for ``stores``).
"""

from __future__ import annotations

from redis.asyncio import Redis

from app.core.settings import Settings
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
from app.core.stores.memory import memory_stores
from app.core.stores.redis import redis_stores

__all__ = [
    "Cache",
    "Counters",
    "Hit",
    "Lock",
    "PubSub",
    "StoreUnavailableError",
    "Stores",
    "Subscription",
    "build_stores",
]


def build_stores(settings: Settings, redis_client: Redis | None) -> Stores:
    """Redis stores under ``settings.redis_prefix`` when ``redis_client`` is given, in-process otherwise."""
    if redis_client is None:
        return memory_stores()
    return redis_stores(redis_client, settings.redis_prefix, settings.redis_cooldown_seconds)
