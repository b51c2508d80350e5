"""Fixtures for tests/core.

``store_env``: lighter than ``backend_env`` for tests that need the stores but no database. It runs on both
backends like ``backend_env`` (``[sqlite]``: in-process stores; ``[postgres]``: the shared test Redis under
a fresh key prefix, removed afterwards) without cloning a database per test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from redis import Redis as SyncRedis

from app.core.settings import Settings, load_settings
from tests.conftest import IN_CI, REDIS_URL, RUN_ID, Templates, _skipped_reason


@dataclass
class StoreEnv:
    redis_url: str | None
    redis_prefix: str

    @property
    def is_redis(self) -> bool:
        return self.redis_url is not None

    def settings(self, **overrides: str) -> Settings:
        env = {"APP_ENV": "test", "REDIS_PREFIX": self.redis_prefix, "LOG_LEVEL": "WARNING"}
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        env.update(overrides)
        return load_settings(env)


@pytest.fixture
def store_env(backend: str, templates: Templates) -> Iterator[StoreEnv]:
    prefix = f"test:{RUN_ID}:{uuid.uuid4().hex[:8]}:"
    if backend == "sqlite":
        yield StoreEnv(None, prefix)
        return
    if templates.pg_problem is not None:
        if IN_CI:
            pytest.fail(f"CI=true but the real backend is unavailable: {templates.pg_problem}")
        _skipped_reason.append(templates.pg_problem)
        pytest.skip(f"real backend skipped: {templates.pg_problem}")
    yield StoreEnv(REDIS_URL, prefix)
    client = SyncRedis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
