"""The committed OpenAPI document is exactly what the code generates, and tells the truth about errors."""

from __future__ import annotations

import json

from app.cli import SPEC_PATH
from app.core.openapi import render_spec


def test_committed_spec_is_current() -> None:
    assert SPEC_PATH.read_text() == render_spec(), "mobile_api_spec/openapi.json is stale: run `make spec`"


def test_every_operation_documents_its_problems() -> None:
    spec = json.loads(render_spec())
    assert "Problem" in spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation.get("operationId"), f"{method} {path} has no operationId"
            assert operation.get("description") or operation.get("summary"), f"{method} {path} undocumented"
            for status in ("404", "405", "429", "500", "503"):
                assert status in operation["responses"], f"{method} {path} lacks {status}"
            if operation.get("security"):
                assert {"401", "403"} <= set(operation["responses"]), f"{method} {path} lacks 401/403"
            if method in ("post", "put", "patch"):
                assert {"400", "413", "415", "422"} <= set(operation["responses"]), f"{method} {path}"


def test_every_schema_field_is_described() -> None:
    spec = json.loads(render_spec())
    missing = [
        f"{name}.{field}"
        for name, schema in spec["components"]["schemas"].items()
        for field, prop in (schema.get("properties") or {}).items()
        if not prop.get("description")
    ]
    assert missing == [], f"fields without a description (add a docstring under the field): {missing}"


_STATE_CHANGING = ("post", "put", "patch", "delete")
IDEMPOTENCY_EXEMPT = {
    # DESIGN.md "API conventions": sign-in, one-time codes and token refresh take no Idempotency-Key.
    "requestCode": "sends a one-time code",
    "requestStepUpCode": "sends a one-time code",
    "register": "signs up with a one-time code (consumed once; no signed-in caller to scope a key to)",
    "signInWithPassword": "sign-in",
    "signInWithCode": "sign-in with a one-time code",
    "refreshTokens": "token refresh (a spent refresh token is refused)",
    "receiveGatewayWebhook": "incoming card-gateway webhook, deduplicated by the event id",
    "postalWebhook": "incoming postal-service webhook, deduplicated by the event id",
    "previewQr": "reads a scanned QR payload; changes nothing",
    "verifyResultFile": "checks an uploaded result's signature; changes nothing",
    "devAuthenticatePaymentIntent": "development only: the sandbox's 3-D Secure page",
}
"""Operations allowed to change state without an Idempotency-Key, and why (console form posts are not in
the API document; they carry CSRF tokens)."""


def test_every_state_changing_operation_takes_an_idempotency_key() -> None:
    """Every POST, PUT, PATCH and DELETE documents the required ``Idempotency-Key`` header, its three
    problems and the ``Idempotent-Replayed`` response header, except the exemptions above: a new route that
    forgets the key fails here (use ``app.core.idempotency.idempotent_response``)."""
    spec = json.loads(render_spec())
    missing: list[str] = []
    seen: set[str] = set()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in _STATE_CHANGING:
                continue
            name = operation["operationId"]
            seen.add(name)
            if name in IDEMPOTENCY_EXEMPT:
                continue
            headers = [
                p
                for p in operation.get("parameters", [])
                if p["in"] == "header" and p["name"] == "Idempotency-Key"
            ]
            responses = operation["responses"]
            documented = (
                len(headers) == 1
                and headers[0]["required"] is True
                and "idempotency_key_required" in responses.get("400", {}).get("description", "")
                and "idempotency_key_reused" in responses.get("422", {}).get("description", "")
                and "idempotency_in_progress" in responses.get("409", {}).get("description", "")
                and all(
                    "Idempotent-Replayed" in (response.get("headers") or {})
                    for status, response in responses.items()
                    if status.startswith("2")
                )
            )
            if not documented:
                missing.append(f"{method.upper()} {path} ({name})")
    assert missing == [], f"state-changing operations without a documented Idempotency-Key: {missing}"
    assert set(IDEMPOTENCY_EXEMPT) <= seen, "an exemption names an operation that no longer exists"
