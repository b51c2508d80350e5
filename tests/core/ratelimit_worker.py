"""A separate OS process hitting one rate-limit key, for tests/core/test_ratelimit.py.

Usage: ``python -m tests.core.ratelimit_worker REDIS_URL PREFIX ATTEMPTS LIMIT``. Prints ``ready`` once
connected, waits for a line on stdin (so both processes start together), fires ATTEMPTS concurrent hits,
then prints one JSON line: ``{"allowed": n, "counts": [...]}``.
"""

from __future__ import annotations

import asyncio
import json
import sys

from redis.asyncio import Redis

from app.core.ratelimit import RateLimiter
from app.core.settings import load_settings
from app.core.stores import build_stores


async def main(redis_url: str, prefix: str, attempts: int, limit: int) -> None:
    settings = load_settings({"APP_ENV": "test", "REDIS_URL": redis_url, "REDIS_PREFIX": prefix})
    client = Redis.from_url(redis_url)
    try:
        limiter = RateLimiter.from_settings(settings, build_stores(settings, client))
        await client.ping()
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        decisions = await asyncio.gather(
            *(limiter.hit("payments", "shared-key", limit=limit, window=60) for _ in range(attempts))
        )
        assert not any(d.local_only for d in decisions)
        print(
            json.dumps(
                {"allowed": sum(d.allowed for d in decisions), "counts": [d.count for d in decisions]}
            ),
            flush=True,
        )
    finally:
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
