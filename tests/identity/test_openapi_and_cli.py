"""The OpenAPI document states every identity route's auth and errors; the CLI makes the first superadmin;
the demo seeder gives people to try the API with."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from app.core.openapi import render_spec
from tests.conftest import Backend
from tests.identity.helpers import Client, device


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(render_spec())
    return document


def _operation(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    operation: dict[str, Any] = spec["paths"][path][method]
    return operation


def test_signed_in_routes_declare_the_bearer_token(spec: dict[str, Any]) -> None:
    public = {"/api/v1/auth/otp", "/api/v1/auth/register", "/api/v1/auth/sign-in/password"}
    public |= {
        "/api/v1/auth/sign-in/otp",
        "/api/v1/auth/refresh",
        "/api/v1/consent-purposes",
        "/api/v1/dev/sms",
    }
    identity_paths = [
        p
        for p in spec["paths"]
        if p == "/api/v1/me" or p.startswith(("/api/v1/auth", "/api/v1/me/", "/api/v1/users"))
    ]
    identity_paths += [p for p in spec["paths"] if p.startswith(("/api/v1/officer", "/api/v1/admin"))]
    assert len(identity_paths) >= 20
    for path in identity_paths:
        for method, operation in spec["paths"][path].items():
            if path in public:
                assert not operation.get("security"), f"{method} {path} should be public"
            else:
                assert operation.get("security") == [{"BearerToken": []}], f"{method} {path}"
                assert "401" in operation["responses"]


def test_errors_are_documented_with_their_codes(spec: dict[str, Any]) -> None:
    send = _operation(spec, "post", "/api/v1/auth/otp")["responses"]
    assert "otp_cooldown" in send["429"]["description"]
    assert "sms_unavailable" in send["503"]["description"]
    assert "otp_locked" in send["423"]["description"]
    refresh = _operation(spec, "post", "/api/v1/auth/refresh")["responses"]
    assert "refresh_token_reused" in refresh["401"]["description"]
    pin = _operation(spec, "put", "/api/v1/me/pin")["responses"]
    assert "pin_weak" in pin["422"]["description"]
    assert "otp_invalid" in pin["422"]["description"]
    close = _operation(spec, "post", "/api/v1/me/close")["responses"]
    assert "closure_refused" in close["409"]["description"]


def test_request_fields_are_described(spec: dict[str, Any]) -> None:
    for name in ("Registration", "PasswordSignIn", "DeviceIn", "PinChange", "IdentityDeclaration", "Tokens"):
        schema = spec["components"]["schemas"][name]
        for field, definition in schema["properties"].items():
            assert definition.get("description") or "$ref" in str(definition), f"{name}.{field}"


def test_cli_creates_the_first_superadmin(backend_env: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.cli import cli
    from app.core.settings import get_settings

    monkeypatch.setenv("APP_ENV", "test")
    monkeypatch.setenv("DATABASE_URL", backend_env.database_url)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        args = ["admin", "create-superadmin", "--phone", "0935000111", "--password", "quan-tri-vien-1"]
        first = runner.invoke(cli, args)
        assert first.exit_code == 0, first.output
        again = runner.invoke(cli, args)
        assert again.exit_code == 0, again.output
        weak = runner.invoke(
            cli, ["admin", "create-superadmin", "--phone", "0935000222", "--password", "12345678"]
        )
        assert weak.exit_code == 1
    finally:
        get_settings.cache_clear()


async def test_superadmin_from_cli_can_sign_in(client: Client) -> None:
    from app.identity.bootstrap import create_superadmin
    from tests.factories import in_app

    db = client.app.state.db
    await in_app(
        client,
        lambda: create_superadmin(
            db, db.settings, phone="0935000333", password="quan-tri-vien-2", full_name="Root"
        ),
    )
    response = await client.post(
        "/api/v1/auth/sign-in/password",
        json={"phone": "0935000333", "password": "quan-tri-vien-2", "device": device()},
    )
    assert response.status_code == 200, response.text
    me = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
    )
    assert {"role": "admin", "scope": "superadmin"} in me.json()["roles"]


async def test_demo_people(client: Client) -> None:
    from app.identity.bootstrap import seed_identity
    from tests.factories import in_app

    db = client.app.state.db
    credentials: dict[str, Any] = {}
    await in_app(client, lambda: seed_identity(db, db.settings, credentials))
    await in_app(client, lambda: seed_identity(db, db.settings, credentials))  # idempotent
    assert {"citizen", "citizen2", "officer", "admin"} <= set(credentials)
    citizen = credentials["citizen"]
    assert citizen["identity_level"] == 2
    assert citizen["pin"] == "246810"
    assert credentials["officer"]["agency_id"]
    for key in ("citizen", "citizen2", "officer", "admin"):
        person = credentials[key]
        response = await client.post(
            "/api/v1/auth/sign-in/password",
            json={"phone": person["phone"], "password": person["password"], "device": device()},
        )
        assert response.status_code == 200, (key, response.text)
