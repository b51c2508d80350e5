"""The API's front door: health, readiness, and every bad-input case answering a problem."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from litestar import Litestar, post
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient

from tests.conftest import assert_problem


async def test_healthz_answers(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


async def test_readyz_reports_database_migrations_and_redis(
    client: AsyncTestClient[Litestar], backend: str
) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["database"]["status"] == "ok"
    assert body["migrations"]["status"] == "ok"
    assert body["redis"]["status"] == ("ok" if backend == "postgres" else "disabled")


async def test_unknown_route_is_a_problem(client: AsyncTestClient[Litestar]) -> None:
    assert_problem(await client.get("/api/v1/nowhere"), 404, "not_found")


async def test_wrong_method_is_a_problem(client: AsyncTestClient[Litestar]) -> None:
    assert_problem(await client.delete("/healthz"), 405, "method_not_allowed")


async def test_english_on_request(client: AsyncTestClient[Litestar]) -> None:
    vi = assert_problem(await client.get("/api/v1/nowhere"), 404, "not_found")
    en = assert_problem(
        await client.get("/api/v1/nowhere", headers={"Accept-Language": "en-US,vi;q=0.5"}), 404, "not_found"
    )
    assert vi["title"] == "Không tìm thấy"
    assert en["title"] == "Not found"


async def test_request_id_is_echoed(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


async def test_metrics_exposed(client: AsyncTestClient[Litestar]) -> None:
    await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert "hue_requests_total" in response.text


async def test_docs_served_offline(client: AsyncTestClient[Litestar]) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "/docs/assets/swagger-ui-bundle.js" in page.text
    assert (await client.get("/docs/assets/swagger-ui-bundle.js")).status_code == 200
    spec = (await client.get("/docs/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")


class Greeting(msgspec.Struct, forbid_unknown_fields=True):
    name: str = msgspec.field()
    times: int = 1


@post("/api/v1/_test/greet", status_code=200)
async def greet(data: JSONBody[Greeting]) -> dict[str, Any]:
    if data.name == "boom":
        raise RuntimeError("secret internals: password=hunter2")
    return {"hello": data.name * data.times}


@pytest.fixture
async def body_client(app: Litestar) -> Any:
    app.register(greet)
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


async def test_valid_body_is_accepted(body_client: AsyncTestClient[Litestar]) -> None:
    response = await body_client.post("/api/v1/_test/greet", json={"name": "Huế", "times": 2})
    assert response.status_code == 200
    assert response.json() == {"hello": "HuếHuế"}


async def test_malformed_json(body_client: AsyncTestClient[Litestar]) -> None:
    response = await body_client.post(
        "/api/v1/_test/greet", content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 400, "malformed_body")


async def test_wrong_content_type(body_client: AsyncTestClient[Litestar]) -> None:
    response = await body_client.post(
        "/api/v1/_test/greet", content=b"name=x", headers={"Content-Type": "text/plain"}
    )
    body = assert_problem(response, 415, "unsupported_media_type")
    assert "text/plain" in body["detail"]


async def test_body_over_one_mebibyte(body_client: AsyncTestClient[Litestar]) -> None:
    big = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    response = await body_client.post(
        "/api/v1/_test/greet", content=big, headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 413, "payload_too_large")


async def test_unknown_field_is_refused(body_client: AsyncTestClient[Litestar]) -> None:
    response = await body_client.post("/api/v1/_test/greet", json={"name": "a", "admin": True})
    body = assert_problem(response, 422, "validation_failed")
    assert any("admin" in e["message"] or e["field"] == "admin" for e in body["errors"]), body


async def test_each_bad_field_is_listed(body_client: AsyncTestClient[Litestar]) -> None:
    response = await body_client.post("/api/v1/_test/greet", json={"name": 5, "times": "many"})
    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"][0]["source"] == "body"
    assert body["errors"][0]["field"] in {"name", "times"}


async def test_unexpected_error_hides_internals(body_client: AsyncTestClient[Litestar]) -> None:
    response = await body_client.post("/api/v1/_test/greet", json={"name": "boom"})
    body = assert_problem(response, 500, "internal_error")
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert body["request_id"] == response.headers["x-request-id"]
