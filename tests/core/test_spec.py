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
