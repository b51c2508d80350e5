"""Short-lived state: the same behaviour from the in-process stores ([sqlite]) and Redis ([postgres])."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from app.core.stores import Stores, StoreUnavailableError, build_stores
from app.core.stores.memory import MemoryCache, MemoryCounters, MemoryLock
from app.core.stores.redis import redis_stores
from tests.core.conftest import StoreEnv


@pytest.fixture
async def stores(store_env: StoreEnv) -> AsyncIterator[Stores]:
    settings = store_env.settings()
    client = Redis.from_url(settings.redis_url) if settings.redis_url else None
    yield build_stores(settings, client)
    if client is not None:
        await client.aclose()


@pytest.fixture
async def raw_redis(store_env: StoreEnv) -> AsyncIterator[Redis]:
    """A plain client on the shared test Redis, to look at keys the way an operator would."""
    assert store_env.redis_url
    client = Redis.from_url(store_env.redis_url)
    yield client
    await client.aclose()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_backend_follows_configuration(store_env: StoreEnv) -> None:
    settings = store_env.settings()
    client = Redis.from_url(settings.redis_url) if settings.redis_url else None
    assert build_stores(settings, client).backend == ("redis" if store_env.is_redis else "memory")


# --- cache -----------------------------------------------------------------------------------------------


async def test_cache_set_get_delete(stores: Stores) -> None:
    assert await stores.cache.get("profile:1") is None
    await stores.cache.set("profile:1", b"first", ttl_seconds=60)
    assert await stores.cache.get("profile:1") == b"first"
    await stores.cache.set("profile:1", b"second", ttl_seconds=60)
    assert await stores.cache.get("profile:1") == b"second"
    await stores.cache.delete("profile:1")
    assert await stores.cache.get("profile:1") is None
    await stores.cache.delete("profile:1")


async def test_cache_refuses_a_non_positive_ttl(stores: Stores) -> None:
    with pytest.raises(ValueError):
        await stores.cache.set("k", b"v", ttl_seconds=0)


async def test_memory_cache_entries_expire_and_stay_bounded() -> None:
    clock = FakeClock()
    cache = MemoryCache(max_entries=3, clock=clock)
    await cache.set("short", b"1", ttl_seconds=10)
    await cache.set("forever", b"2")
    clock.now += 9.9
    assert await cache.get("short") == b"1"
    clock.now += 0.2
    assert await cache.get("short") is None
    assert await cache.get("forever") == b"2"
    for name in ("a", "b", "c"):
        await cache.set(name, b"x")
    assert await cache.get("forever") is None, "the least recently used entry makes room"
    assert [await cache.get(n) for n in ("a", "b", "c")] == [b"x", b"x", b"x"]


@pytest.mark.postgres_only
async def test_redis_cache_is_prefixed_and_expires(
    stores: Stores, raw_redis: Redis, store_env: StoreEnv
) -> None:
    await stores.cache.set("page", b"html", ttl_seconds=30)
    assert await raw_redis.get(store_env.redis_prefix + "page") == b"html"
    assert await raw_redis.get("page") is None
    assert 0 < await raw_redis.pttl(store_env.redis_prefix + "page") <= 30_000


# --- counters --------------------------------------------------------------------------------------------


async def test_counter_counts_within_its_window(stores: Stores) -> None:
    first = await stores.counters.hit("otp:a", window_seconds=60)
    assert first.count == 1
    assert 59 <= first.retry_after <= 60
    assert (await stores.counters.hit("otp:a", window_seconds=60, amount=4)).count == 5
    assert (await stores.counters.hit("otp:b", window_seconds=60)).count == 1, "keys are independent"
    peeked = await stores.counters.peek("otp:a")
    assert peeked is not None
    assert peeked.count == 5
    assert 1 <= peeked.retry_after <= 60
    await stores.counters.reset("otp:a")
    assert await stores.counters.peek("otp:a") is None
    assert (await stores.counters.hit("otp:a", window_seconds=60)).count == 1


async def test_memory_counter_window_starts_at_first_hit_and_is_not_extended() -> None:
    clock = FakeClock()
    counters = MemoryCounters(clock=clock)
    await counters.hit("k", window_seconds=10)
    clock.now += 6
    later = await counters.hit("k", window_seconds=10)
    assert (later.count, later.retry_after) == (2, 4), "a later hit does not push the window back"
    clock.now += 4
    assert await counters.peek("k") is None
    assert (await counters.hit("k", window_seconds=10)).count == 1, "a new window starts from zero"


async def test_memory_counters_forget_expired_keys() -> None:
    clock = FakeClock()
    counters = MemoryCounters(clock=clock)
    for i in range(1000):
        await counters.hit(f"old:{i}", window_seconds=1)
    clock.now += 2
    for i in range(1100):
        await counters.hit(f"new:{i}", window_seconds=60)
    assert len(counters._data) == 1100, "expired counters are swept as new ones arrive"


@pytest.mark.postgres_only
async def test_redis_counter_vanishes_after_its_window(
    stores: Stores, raw_redis: Redis, store_env: StoreEnv
) -> None:
    await stores.counters.hit("burst", window_seconds=1)
    await asyncio.sleep(0.4)
    await stores.counters.hit("burst", window_seconds=1)
    assert await raw_redis.pttl(store_env.redis_prefix + "burst") <= 600, "the window was not extended"
    await asyncio.sleep(0.7)
    assert await stores.counters.peek("burst") is None
    assert await raw_redis.exists(store_env.redis_prefix + "burst") == 0
    assert (await stores.counters.hit("burst", window_seconds=1)).count == 1


async def test_concurrent_hits_each_see_a_distinct_count(stores: Stores) -> None:
    """50 hits released together by a barrier: an increment that read-then-wrote would repeat counts."""
    barrier = asyncio.Barrier(50)

    async def one() -> int:
        await barrier.wait()
        return (await stores.counters.hit("race", window_seconds=60)).count

    counts = await asyncio.gather(*(one() for _ in range(50)))
    assert sorted(counts) == list(range(1, 51))
    peeked = await stores.counters.peek("race")
    assert peeked is not None
    assert peeked.count == 50


class PausingDict(dict[str, Any]):
    """Pauses right after every read, i.e. between the read and the write of an increment, so another
    thread gets the chance to slip in if nothing stops it."""

    def get(self, key: str, default: Any = None) -> Any:
        value = super().get(key, default)
        time.sleep(0.0001)
        return value


def test_memory_counters_are_atomic_across_threads() -> None:
    """Eight threads, each with its own event loop, hit one counter, with a pause forced inside the
    increment: every count from 1 to 800 is handed out exactly once."""
    counters = MemoryCounters()
    counters._data = PausingDict()
    barrier = threading.Barrier(8)
    results: list[list[int]] = []

    def worker() -> None:
        async def run() -> list[int]:
            return [(await counters.hit("shared", window_seconds=60)).count for _ in range(100)]

        barrier.wait()
        results.append(asyncio.run(run()))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert sorted(c for r in results for c in r) == list(range(1, 801))


@pytest.mark.postgres_only
async def test_redis_counters_atomic_across_separate_clients(store_env: StoreEnv) -> None:
    """Two independent connection pools (as two processes would have) increment the same counter."""
    settings = store_env.settings()
    clients = [Redis.from_url(store_env.redis_url or ""), Redis.from_url(store_env.redis_url or "")]
    try:
        both = [build_stores(settings, c) for c in clients]
        barrier = asyncio.Barrier(40)

        async def one(i: int) -> int:
            await barrier.wait()
            return (await both[i % 2].counters.hit("two-pools", window_seconds=60)).count

        counts = await asyncio.gather(*(one(i) for i in range(40)))
        assert sorted(counts) == list(range(1, 41))
    finally:
        for client in clients:
            await client.aclose()


# --- lock ------------------------------------------------------------------------------------------------


async def test_lock_is_exclusive_while_held(stores: Stores) -> None:
    async with stores.lock.hold("settle:2026-01-01", ttl_seconds=10) as first:
        assert first is True
        async with stores.lock.hold("settle:2026-01-01", ttl_seconds=10) as second:
            assert second is False
        async with stores.lock.hold("settle:2026-01-02", ttl_seconds=10) as other:
            assert other is True, "other names are independent"
    async with stores.lock.hold("settle:2026-01-01", ttl_seconds=10) as again:
        assert again is True, "released on leaving the block"


async def test_lock_waiter_wins_after_release(stores: Stores) -> None:
    inside = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with stores.lock.hold("job", ttl_seconds=10) as won:
            assert won
            inside.set()
            await release.wait()

    task = asyncio.create_task(holder())
    await inside.wait()
    loop = asyncio.get_running_loop()
    loop.call_later(0.15, release.set)
    started = loop.time()
    async with stores.lock.hold("job", ttl_seconds=10, wait_seconds=3) as won:
        assert won
        assert loop.time() - started >= 0.1
    await task


async def test_lock_gives_mutual_exclusion_under_contention(stores: Stores) -> None:
    """Ten tasks released together, each pausing inside the critical section: never two inside at once."""
    barrier = asyncio.Barrier(10)
    inside = 0
    most_inside = 0
    wins = 0

    async def contender() -> None:
        nonlocal inside, most_inside, wins
        await barrier.wait()
        async with stores.lock.hold("critical", ttl_seconds=10, wait_seconds=5) as won:
            if won:
                wins += 1
                inside += 1
                most_inside = max(most_inside, inside)
                await asyncio.sleep(0.01)
                inside -= 1

    await asyncio.gather(*(contender() for _ in range(10)))
    assert wins == 10
    assert most_inside == 1


async def test_crashed_holder_frees_the_lock_after_its_ttl(stores: Stores) -> None:
    crashed = stores.lock.hold("payout", ttl_seconds=0.3)
    assert await crashed.__aenter__() is True  # the holder dies here and never leaves the block
    async with stores.lock.hold("payout", ttl_seconds=5) as blocked:
        assert blocked is False
    async with stores.lock.hold("payout", ttl_seconds=5, wait_seconds=3) as successor:
        assert successor is True, "the lease ran out"
        # The old holder wakes up and "releases": it must not free the successor's lock.
        await crashed.__aexit__(None, None, None)
        async with stores.lock.hold("payout", ttl_seconds=5) as intruder:
            assert intruder is False


async def test_memory_lock_lease_uses_its_clock() -> None:
    clock = FakeClock()
    lock = MemoryLock(clock=clock)
    held = lock.hold("x", ttl_seconds=30)
    assert await held.__aenter__() is True
    clock.now += 29
    async with lock.hold("x", ttl_seconds=30) as won:
        assert won is False
    clock.now += 2
    async with lock.hold("x", ttl_seconds=30) as won:
        assert won is True


@pytest.mark.postgres_only
async def test_redis_lock_is_prefixed_with_a_lease(
    stores: Stores, raw_redis: Redis, store_env: StoreEnv
) -> None:
    async with stores.lock.hold("nightly", ttl_seconds=7) as won:
        assert won
        key = store_env.redis_prefix + "lock:nightly"
        assert await raw_redis.exists(key) == 1
        assert 0 < await raw_redis.pttl(key) <= 7000
    assert await raw_redis.exists(key) == 0


# --- pub/sub ---------------------------------------------------------------------------------------------


async def test_pubsub_delivers_to_every_live_subscriber(stores: Stores) -> None:
    async with (
        stores.pubsub.subscribe("bills") as a,
        stores.pubsub.subscribe("bills") as b,
        stores.pubsub.subscribe("dossiers") as other,
    ):
        await stores.pubsub.publish("bills", b"paid:1")
        await stores.pubsub.publish("bills", b"paid:2")
        assert [await asyncio.wait_for(anext(a), 3) for _ in range(2)] == [b"paid:1", b"paid:2"]
        assert [await asyncio.wait_for(anext(b), 3) for _ in range(2)] == [b"paid:1", b"paid:2"]
        await stores.pubsub.publish("dossiers", b"moved")
        assert await asyncio.wait_for(anext(other), 3) == b"moved", "only its own channel's messages"


async def test_pubsub_message_without_subscriber_is_dropped(stores: Stores) -> None:
    await stores.pubsub.publish("nobody", b"lost")
    subscription = stores.pubsub.subscribe("nobody")
    async with subscription:
        await stores.pubsub.publish("nobody", b"seen")
        assert await asyncio.wait_for(anext(subscription), 3) == b"seen"
    with pytest.raises(StopAsyncIteration):
        await anext(subscription)


async def test_pubsub_async_for_subscribes_on_first_iteration(stores: Stores) -> None:
    received: list[bytes] = []
    subscription = stores.pubsub.subscribe("feed")

    async def consume() -> None:
        async for message in subscription:
            received.append(message)
            if len(received) == 2:
                break

    task = asyncio.create_task(consume())
    for _ in range(100):  # keep publishing until the consumer is live, then two more
        await stores.pubsub.publish("feed", b"tick")
        await asyncio.sleep(0.01)
        if received:
            break
    await stores.pubsub.publish("feed", b"tick")
    await asyncio.wait_for(task, 3)
    await subscription.aclose()
    assert received == [b"tick", b"tick"]


@pytest.mark.postgres_only
async def test_redis_channels_are_prefixed(stores: Stores, raw_redis: Redis, store_env: StoreEnv) -> None:
    async with stores.pubsub.subscribe("alerts") as messages:
        assert await raw_redis.publish("alerts", b"foreign") == 0, "an unprefixed channel is someone else's"
        assert await raw_redis.publish(store_env.redis_prefix + "alerts", b"ours") == 1
        assert await asyncio.wait_for(anext(messages), 3) == b"ours"


# --- Redis unavailable -----------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_every_redis_store_reports_unavailability() -> None:
    client = Redis.from_url(f"redis://127.0.0.1:{_closed_port()}/0", socket_connect_timeout=1)
    stores = redis_stores(client, "test:down:", cooldown_seconds=30)
    operations: list[Any] = [
        lambda: stores.cache.get("k"),
        lambda: stores.cache.set("k", b"v", 10),
        lambda: stores.cache.delete("k"),
        lambda: stores.counters.hit("k", 10),
        lambda: stores.counters.peek("k"),
        lambda: stores.counters.reset("k"),
        lambda: stores.pubsub.publish("c", b"m"),
    ]
    try:
        for operation in operations:
            with pytest.raises(StoreUnavailableError):
                await operation()
        with pytest.raises(StoreUnavailableError):
            async with stores.lock.hold("l", ttl_seconds=5):
                pass
        with pytest.raises(StoreUnavailableError):
            async with stores.pubsub.subscribe("c"):
                pass
    finally:
        await client.aclose()


async def test_after_a_failure_redis_is_not_asked_again_during_the_cooldown() -> None:
    client = Redis.from_url(f"redis://127.0.0.1:{_closed_port()}/0", socket_connect_timeout=1)
    stores = redis_stores(client, "test:down:", cooldown_seconds=30)
    calls = 0
    original = client.execute_command

    async def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return await original(*args, **kwargs)

    client.execute_command = counting  # type: ignore[method-assign]
    try:
        with pytest.raises(StoreUnavailableError):
            await stores.cache.get("k")
        assert calls == 1
        for _ in range(5):
            with pytest.raises(StoreUnavailableError, match="cooling down"):
                await stores.counters.hit("k", 10)
        assert calls == 1, "the cool-down answered without touching the network"
    finally:
        await client.aclose()
