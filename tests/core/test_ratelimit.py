"""Rate limits: 429 with Retry-After, per caller and per address, across processes on Redis, and the
behaviour DESIGN.md asks for when Redis is down (payments keep a per-process limit; OTP and sign-in 503)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient
from redis import Redis as SyncRedis
from redis.asyncio import Redis as RedisClient

from app.core.errors import AppError
from app.core.ratelimit import (
    LIMITER_UNAVAILABLE,
    RateLimiter,
    client_address,
    rate_limit,
)
from app.core.settings import ConfigError, RateRule, Settings, load_settings
from app.core.stores import Stores, StoreUnavailableError, build_stores
from app.core.stores.memory import memory_stores
from tests.conftest import IN_CI, Backend, assert_problem
from tests.core.conftest import StoreEnv
from tests.factories import make_user

ROOT = Path(__file__).resolve().parents[2]
LIMITS = {
    "RATE_LIMIT_PAYMENTS": "3/60",
    "RATE_LIMIT_OTP": "2/600",
    "RATE_LIMIT_SIGNIN": "2/300",
    "RATE_LIMIT_DEFAULT": "5/60",
}


class PhoneBody(msgspec.Struct, forbid_unknown_fields=True):
    phone: str


@post("/api/v1/_test/pay", status_code=200, guards=[rate_limit("payments")])
async def pay() -> dict[str, bool]:
    return {"paid": True}


@post("/api/v1/_test/otp", status_code=200, guards=[rate_limit("otp", by="address")])
async def send_otp(data: JSONBody[PhoneBody], limiter: NamedDependency[RateLimiter]) -> dict[str, bool]:
    # The address guard above, plus a per-phone-number limit a guard cannot express.
    await limiter.check("otp", f"phone:{data.phone}", limit=2, window=600)
    return {"sent": True}


@post("/api/v1/_test/signin", status_code=200, guards=[rate_limit("signin", by="address")])
async def sign_in() -> dict[str, bool]:
    return {"signed_in": True}


@get("/api/v1/_test/read", guards=[rate_limit("default")])
async def read(stores: NamedDependency[Stores]) -> dict[str, bool]:
    # Reads may use the cache when it is there, and must not fail when it is not.
    with contextlib.suppress(StoreUnavailableError):
        await stores.cache.set("last-read", b"1", ttl_seconds=60)
    return {"read": True}


TEST_ROUTES = [pay, send_otp, sign_in, read]


async def token_for(client: AsyncTestClient[Litestar]) -> dict[str, str]:
    """A signed-in citizen's headers (a real session: identity refuses tokens of unknown sessions)."""
    return (await make_user(client, pin=None)).headers


@pytest.fixture
async def limited(backend_env: Backend) -> AsyncIterator[tuple[AsyncTestClient[Litestar], Settings]]:
    from app.main import create_app

    settings = backend_env.settings(**LIMITS)
    app = create_app(settings)
    for route in TEST_ROUTES:
        app.register(route)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        yield client, settings


@pytest.fixture
async def limiter(store_env: StoreEnv) -> AsyncIterator[RateLimiter]:
    """The limiter as the app builds it, on this test's own event loop and Redis client."""
    settings = store_env.settings(**LIMITS)
    client = RedisClient.from_url(settings.redis_url) if settings.redis_url else None
    yield RateLimiter.from_settings(settings, build_stores(settings, client))
    if client is not None:
        await client.aclose()


# --- configuration ---------------------------------------------------------------------------------------


def test_limits_have_documented_defaults_and_can_be_configured() -> None:
    defaults = load_settings({})
    assert defaults.rate_limit_signin == RateRule(20, 300)
    assert defaults.rate_limit_otp == RateRule(10, 3600)
    assert defaults.rate_limit_payments == RateRule(30, 60)
    assert defaults.rate_limit_default == RateRule(600, 60)
    custom = load_settings({"RATE_LIMIT_OTP": "3/900", "TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.5"})
    assert custom.rate_limit_otp == RateRule(3, 900)
    assert custom.trusted_proxies == ("10.0.0.0/8", "192.168.1.5/32")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RATE_LIMIT_PAYMENTS": "30"}, "RATE_LIMIT_PAYMENTS"),
        ({"RATE_LIMIT_SIGNIN": "0/60"}, "RATE_LIMIT_SIGNIN"),
        ({"RATE_LIMIT_OTP": "5/soon"}, "RATE_LIMIT_OTP"),
        ({"TRUSTED_PROXIES": "proxy.local"}, "TRUSTED_PROXIES"),
        ({"REDIS_COOLDOWN_SECONDS": "-1"}, "REDIS_COOLDOWN_SECONDS"),
    ],
)
def test_bad_limit_configuration_is_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


# --- through HTTP ----------------------------------------------------------------------------------------


async def test_payments_over_the_limit_get_429_with_retry_after(
    limited: tuple[AsyncTestClient[Litestar], Settings],
) -> None:
    client, _ = limited
    alice, bob = await token_for(client), await token_for(client)
    for _ in range(3):
        assert (await client.post("/api/v1/_test/pay", headers=alice)).status_code == 200
    refused = await client.post("/api/v1/_test/pay", headers={**alice, "Accept-Language": "en"})
    body = assert_problem(refused, 429, "rate_limited")
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert body["retry_after"] == retry_after
    assert body["title"] == "Too many requests"
    assert (await client.post("/api/v1/_test/pay", headers=bob)).status_code == 200, "per caller"


async def test_otp_limits_per_address_and_per_phone_number(
    limited: tuple[AsyncTestClient[Litestar], Settings],
) -> None:
    client, _ = limited
    assert (await client.post("/api/v1/_test/otp", json={"phone": "0905123456"})).status_code == 200
    assert (await client.post("/api/v1/_test/otp", json={"phone": "0905123456"})).status_code == 200
    refused = await client.post("/api/v1/_test/otp", json={"phone": "0905999999"})
    assert_problem(refused, 429, "rate_limited")  # the address's 2 per 10 minutes are used up
    assert 500 <= int(refused.headers["retry-after"]) <= 600


async def test_per_phone_number_limit(limiter: RateLimiter) -> None:
    await limiter.check("otp", "phone:0905123456", limit=2, window=600)
    await limiter.check("otp", "phone:0905123456", limit=2, window=600)
    with pytest.raises(AppError) as refused:
        await limiter.check("otp", "phone:0905123456", limit=2, window=600)
    assert refused.value.kind.code == "rate_limited"
    assert refused.value.headers["Retry-After"]
    assert (await limiter.hit("otp", "phone:0905000000", limit=2, window=600)).allowed


async def test_reset_forgets_failed_attempts(limiter: RateLimiter) -> None:
    for _ in range(2):
        await limiter.check("signin", "account:42")
    assert not (await limiter.hit("signin", "account:42")).allowed
    await limiter.reset("signin", "account:42")
    decision = await limiter.check("signin", "account:42")
    assert (decision.count, decision.remaining) == (1, 1)


async def test_a_bad_token_is_counted_by_address(limited: tuple[AsyncTestClient[Litestar], Settings]) -> None:
    client, _ = limited
    forged = {"Authorization": "Bearer not-a-token"}
    for _ in range(5):
        assert (await client.get("/api/v1/_test/read", headers=forged)).status_code == 200
    assert_problem(await client.get("/api/v1/_test/read"), 429, "rate_limited")


@pytest.mark.postgres_only
async def test_counter_keys_hide_phone_numbers(
    limited: tuple[AsyncTestClient[Litestar], Settings], backend_env: Backend
) -> None:
    client, _ = limited
    await client.post("/api/v1/_test/otp", json={"phone": "0905123456"})
    raw = SyncRedis.from_url(backend_env.redis_url or "")
    keys = [k.decode() for k in raw.scan_iter(match=f"{backend_env.redis_prefix}*")]
    assert len(keys) == 2
    assert all(k.startswith(backend_env.redis_prefix + "rl:otp:600:") for k in keys)
    assert not any("0905123456" in k or "testclient" in k for k in keys)


def test_guards_document_their_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    import app.main
    from app.main import create_app

    monkeypatch.setattr(app.main, "_domain_routes", lambda: TEST_ROUTES)
    spec = create_app(load_settings({"DATABASE_URL": "sqlite+aiosqlite:///:memory:"})).openapi_schema
    otp = spec.paths["/api/v1/_test/otp"].post.responses  # type: ignore[index,union-attr]
    payments = spec.paths["/api/v1/_test/pay"].post.responses  # type: ignore[index,union-attr]
    assert "`rate_limited`" in otp["429"].description
    assert "`limiter_unavailable`" in otp["503"].description
    assert "`rate_limited`" in payments["429"].description
    assert "`limiter_unavailable`" not in payments["503"].description, "payments never fail closed"


# --- client address --------------------------------------------------------------------------------------


def _request(peer: str, forwarded: str | None = None) -> Request[Any, Any, Any]:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    scope: Any = {"type": "http", "method": "GET", "path": "/", "headers": headers, "client": (peer, 1234)}
    return Request(scope)


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    limiter = RateLimiter(
        memory_stores().counters,
        dict.fromkeys(("signin", "otp", "payments", "default"), RateRule(1, 1)),  # type: ignore[arg-type]
        key_secret=b"k" * 32,
        trusted_proxies=["10.0.0.0/8"],
    )
    trusted = limiter.trusted_proxies
    assert client_address(_request("203.0.113.7", "1.2.3.4"), trusted) == "203.0.113.7", "untrusted peer"
    assert client_address(_request("10.0.0.2", "1.2.3.4"), trusted) == "1.2.3.4"
    # A client may put anything at the front; the proxies append the real hops at the end.
    assert client_address(_request("10.0.0.2", "6.6.6.6, 198.51.100.9, 10.0.0.3"), trusted) == "198.51.100.9"
    assert client_address(_request("10.0.0.2"), trusted) == "10.0.0.2"
    assert client_address(_request("10.0.0.2", "1.2.3.4"), ()) == "10.0.0.2", "no proxies configured"


# --- across processes ------------------------------------------------------------------------------------


@pytest.mark.postgres_only
def test_limit_holds_across_two_processes(store_env: StoreEnv) -> None:
    """Two OS processes, started together, each fire 15 concurrent requests at one key limited to 10."""
    assert store_env.redis_url
    workers = [
        subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "tests.core.ratelimit_worker",
                store_env.redis_url,
                store_env.redis_prefix,
                "15",
                "10",
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:  # both are connected and waiting: release them together
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = [json.loads(worker.communicate(timeout=20)[0]) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert all(worker.returncode == 0 for worker in workers)
    assert sum(r["allowed"] for r in results) == 10
    assert sorted(c for r in results for c in r["counts"]) == list(range(1, 31)), "one shared counter"


# --- Redis outage ----------------------------------------------------------------------------------------


@dataclass
class PrivateRedis:
    """A redis-server owned by one test, so it can be killed without touching the shared one."""

    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary
        self.process = subprocess.Popen(  # noqa: S603
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                SyncRedis.from_url(self.url, socket_connect_timeout=0.2).ping()
                return
            except Exception:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.02)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("CI=true but redis-server is not installed")
        pytest.skip("redis-server not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = PrivateRedis(port=port, folder=tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


async def test_redis_outage_keeps_payments_and_reads_but_closes_otp_and_signin(
    backend_env: Backend, private_redis: PrivateRedis
) -> None:
    from app.main import create_app

    settings = backend_env.settings(
        REDIS_URL=private_redis.url, REDIS_COOLDOWN_SECONDS="0.2", **{**LIMITS, "RATE_LIMIT_OTP": "20/600"}
    )
    app = create_app(settings)
    for route in TEST_ROUTES:
        app.register(route)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        alice = await token_for(client)
        # Healthy: everything answers, and the counts live in the private Redis under the prefix.
        assert (await client.post("/api/v1/_test/pay", headers=alice)).status_code == 200
        assert (await client.post("/api/v1/_test/otp", json={"phone": "0905123456"})).status_code == 200
        assert (await client.get("/readyz")).json()["redis"]["status"] == "ok"
        keys = SyncRedis.from_url(private_redis.url).keys("*")
        assert keys
        assert all(k.decode().startswith(backend_env.redis_prefix) for k in keys)

        private_redis.kill()

        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"
        assert ready.json()["redis"]["status"] == "degraded"

        # Payments keep working, still limited (3 per minute), now by this process's own counters.
        for _ in range(3):
            assert (await client.post("/api/v1/_test/pay", headers=alice)).status_code == 200
        assert_problem(await client.post("/api/v1/_test/pay", headers=alice), 429, "rate_limited")

        # Reads keep working.
        assert (await client.get("/api/v1/_test/read", headers=alice)).status_code == 200

        # OTP sending and sign-in fail closed.
        otp = await client.post("/api/v1/_test/otp", json={"phone": "0905123456"})
        body = assert_problem(otp, 503, "limiter_unavailable")
        assert otp.headers["retry-after"] == str(body["retry_after"])
        assert_problem(await client.post("/api/v1/_test/signin"), 503, "limiter_unavailable")
        # The same for a key that is not the caller (here a phone number), from service code.
        own_client = RedisClient.from_url(private_redis.url)
        try:
            limiter = RateLimiter.from_settings(settings, build_stores(settings, own_client))
            with pytest.raises(AppError) as closed:
                await limiter.check("otp", "phone:0905123456", limit=2, window=600)
            assert closed.value.kind is LIMITER_UNAVAILABLE
            assert (await limiter.check("payments", "user:1")).local_only
        finally:
            await own_client.aclose()

        # Redis comes back: after the short cool-down, OTP works again on the shared counters.
        private_redis.start()
        await asyncio.sleep(0.3)
        assert (await client.post("/api/v1/_test/otp", json={"phone": "0905123456"})).status_code == 200
        assert (await client.get("/readyz")).json()["redis"]["status"] == "ok"
