"""Test harness: every test that asks for ``settings`` (or ``client``) runs on both backends.

- ``sqlite``: the embedded mode (SQLite file, in-process stores).
- ``postgres``: PostgreSQL + Redis at 127.0.0.1 (or TEST_DATABASE_URL / TEST_REDIS_URL).

Each test gets its own freshly created database, cloned from a template migrated once per run, and its own
Redis key prefix, so tests never see each other's data. Under CI (``CI=true``) an unreachable PostgreSQL or
Redis fails the run; elsewhere the real-backend tests are skipped and the reason is printed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis import Redis as SyncRedis

from app.core.migrate import upgrade
from app.core.settings import Settings, load_settings

PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://root@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
RUN_ID = uuid.uuid4().hex[:8]
_skipped_reason: list[str] = []
_SKIP_PREFIX = "real backend skipped: "


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    if database is None:
        return dsn
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{database}"


def _sqlalchemy_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


async def _pg_execute(sql: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(PG_ADMIN_URL), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _real_backend_problem() -> str | None:
    try:
        asyncio.run(_pg_execute("SELECT 1"))
    except Exception as exc:
        return f"PostgreSQL unreachable at {PG_ADMIN_URL} ({type(exc).__name__}: {exc})"
    try:
        SyncRedis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        return f"Redis unreachable at {REDIS_URL} ({type(exc).__name__}: {exc})"
    return None


@dataclass
class Templates:
    sqlite_file: Path
    pg_template: str | None
    pg_problem: str | None


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    folder = tmp_path_factory.mktemp("db")
    sqlite_file = folder / "template.db"
    upgrade(f"sqlite+aiosqlite:///{sqlite_file}")
    problem = _real_backend_problem()
    pg_template = None
    if problem is None:
        pg_template = f"hue_tpl_{RUN_ID}"
        asyncio.run(_pg_execute(f'CREATE DATABASE "{pg_template}"'))
        upgrade(_sqlalchemy_url(_asyncpg_dsn(PG_ADMIN_URL, pg_template)))
    yield Templates(sqlite_file, pg_template, problem)
    if pg_template:
        asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{pg_template}" WITH (FORCE)'))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = ["sqlite", "postgres"]
        if metafunc.definition.get_closest_marker("postgres_only"):
            backends = ["postgres"]
        if metafunc.definition.get_closest_marker("sqlite_only"):
            backends = ["sqlite"]
        metafunc.parametrize("backend", backends)


@dataclass
class Backend:
    name: str
    database_url: str
    redis_url: str | None
    redis_prefix: str

    @property
    def is_postgres(self) -> bool:
        return self.name == "postgres"

    def settings(self, **overrides: str) -> Settings:
        env = {
            "APP_ENV": "test",
            "DATABASE_URL": self.database_url,
            "REDIS_PREFIX": self.redis_prefix,
            "LOG_LEVEL": "WARNING",
            "RUN_WORKER_IN_PROCESS": "false",
        }
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        env.update(overrides)
        return load_settings(env)


@pytest.fixture
def backend_env(backend: str, templates: Templates, tmp_path: Path) -> Iterator[Backend]:
    prefix = f"test:{RUN_ID}:{uuid.uuid4().hex[:8]}:"
    if backend == "sqlite":
        target = tmp_path / "app.db"
        shutil.copyfile(templates.sqlite_file, target)
        yield Backend("sqlite", f"sqlite+aiosqlite:///{target}", None, prefix)
        return
    if templates.pg_problem is not None:
        if IN_CI:
            pytest.fail(f"CI=true but the real backend is unavailable: {templates.pg_problem}")
        _skipped_reason.append(templates.pg_problem)
        pytest.skip(f"{_SKIP_PREFIX}{templates.pg_problem}")
    name = f"hue_t_{RUN_ID}_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_execute(f'CREATE DATABASE "{name}" TEMPLATE "{templates.pg_template}"'))
    try:
        yield Backend("postgres", _sqlalchemy_url(_asyncpg_dsn(PG_ADMIN_URL, name)), REDIS_URL, prefix)
    finally:
        asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        client = SyncRedis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def settings(backend_env: Backend) -> Settings:
    return backend_env.settings()


@pytest.fixture
def app(settings: Settings) -> Litestar:
    from app.main import create_app

    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as test_client:
        yield test_client


@pytest.fixture
def tokens_without_sessions(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """For suites that sign callers in with tokens of their own making (any user id, any role): those name
    sessions identity never opened, so identity's session check (tested in tests/identity) is set aside.
    Signature, expiry, issuer and audience are still verified. Use with
    ``pytestmark = pytest.mark.usefixtures("tokens_without_sessions")``."""
    if "app" in request.fixturenames:
        request.getfixturevalue("app")  # the app registers identity's check when it is built
    monkeypatch.setattr("app.core.security._session_checks", [])
    monkeypatch.setattr("app.main.register_session_check", lambda _check: None)  # apps built later


class Rendezvous:
    """Holds each arrival until ``parties`` have arrived, or ``timeout`` seconds: patched into a path just
    inside its critical section, it keeps the first of two concurrent requests there until the second gets
    there too (or is blocked from it), so that their overlap is forced, not hoped for (DESIGN.md)."""

    def __init__(self, parties: int = 2, timeout: float = 0.5) -> None:
        self.parties = parties
        self.timeout = timeout
        self.arrived = 0
        self._all_in = asyncio.Event()

    async def arrive(self) -> None:
        self.arrived += 1
        if self.arrived >= self.parties:
            self._all_in.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_in.wait(), timeout=self.timeout)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with ``status`` and ``code``; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["type"] == f"/api/v1/problems/{code}"
    assert body["title"]
    assert body["detail"]
    return body


def _real_backend_skips(terminalreporter: Any) -> list[str]:
    """Reasons of the real-backend skips, read from the skip reports themselves so that the summary also
    works when the tests ran in ``pytest -n`` worker processes (whose module state the controller never
    sees)."""
    reasons: list[str] = []
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        message = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        if _SKIP_PREFIX in message:
            reasons.append(message.split(_SKIP_PREFIX, 1)[1])
    return reasons or list(_skipped_reason)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    reasons = _real_backend_skips(terminalreporter)
    if reasons:
        terminalreporter.write_sep("=", "real-backend tests skipped", yellow=True)
        terminalreporter.write_line(f"{len(reasons)} PostgreSQL + Redis test(s) skipped: {reasons[0]}")
        terminalreporter.write_line(
            "Start PostgreSQL and Redis (see README) to run them; CI=true makes this fatal."
        )
