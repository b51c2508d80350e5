"""The OpenAPI document: configuration, and the truth about errors.

Litestar documents only success responses. :func:`document_errors` adds, to every operation, the problem
responses it can really give (401/403 only where a token is required, 400/413/415/422 only where a body or
parameters are read), each listing the stable codes the route declares in ``opt={"errors": [...]}`` and
those its guards declare in an ``errors`` attribute (rate limits do).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import swagger_ui  # type: ignore[import-untyped]
from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    Contact,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    Schema,
    SecurityScheme,
    Tag,
)
from litestar.routes import HTTPRoute

from app.core.errors import PROBLEM_MEDIA_TYPE, ErrorKind, catalogue
from app.core.fielddocs import field_docstrings, struct_classes

__all__ = ["SWAGGER_ASSETS", "document_errors", "openapi_config"]

SWAGGER_ASSETS = Path(swagger_ui.__file__).parent / "static"
BEARER = "BearerToken"

DESCRIPTION = """\
The one API behind the Huế citizen app: identity, wallet, unified bills, public-service dossiers, merchants
and admins. Every error is an RFC 9457 problem (`application/problem+json`) with a stable `code`; Vietnamese
by default, English with `Accept-Language: en`. State-changing POSTs take an `Idempotency-Key`.
See `mobile_api_spec/README.md` for authentication, safe retries and pagination.
"""

TAGS = [
    Tag(name="health", description="Liveness, readiness and the error catalogue."),
    Tag(name="identity", description="Registration, sign-in, tokens, PIN, profile, devices, inbox."),
    Tag(name="wallet", description="Wallet balance, statement, transfers, limits."),
    Tag(name="bills", description="Billers, my bills and one-tap payment."),
    Tag(name="services", description="Public-service procedures and dossiers."),
    Tag(name="merchants", description="Merchants, VietQR and payments by scan."),
    Tag(name="admin", description="Administration, reconciliation and reports."),
]

_STATUS_TEXT = {
    400: "Bad request: a malformed body or parameter.",
    401: "No valid access token (missing, expired, tampered, wrong audience or issuer, revoked session).",
    403: "Authenticated, but not allowed (role, duty or ownership).",
    404: "No such route, or no such object visible to the caller.",
    405: "The route exists but not with this method.",
    409: "Conflict with the current state.",
    413: "The body is larger than allowed (JSON bodies: 1 MiB).",
    415: "The body's Content-Type is not accepted (JSON routes take application/json).",
    422: "The request is well-formed but invalid; `errors` lists each bad field.",
    429: "Rate limited; wait for `Retry-After` seconds.",
    500: "Unexpected error; quote `request_id` to support. Nothing was changed.",
    503: "A dependency is unavailable; safe to retry later.",
}
_ALWAYS = (404, 405, 429, 500, 503)
_WITH_INPUT = (400, 422)
_WITH_BODY = (400, 413, 415, 422)


def openapi_config(version: str) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Huế citizen super-app API",
        version=version,
        description=DESCRIPTION,
        contact=Contact(name="Hue-S platform team"),
        tags=TAGS,
        path="/docs",
        render_plugins=[
            SwaggerRenderPlugin(
                path="/",
                js_url="/docs/assets/swagger-ui-bundle.js",
                css_url="/docs/assets/swagger-ui.css",
                standalone_preset_js_url="/docs/assets/swagger-ui-standalone-preset.js",
            )
        ],
        components=Components(
            security_schemes={
                BEARER: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT",
                    description="Access token from sign-in; 15 minutes; refresh with the refresh token.",
                )
            }
        ),
        use_handler_docstrings=True,
        create_examples=False,
    )


def _problem_schema() -> Schema:
    string = Schema(type=OpenAPIType.STRING)
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["type", "title", "status", "detail", "code"],
        properties={
            "type": Schema(
                type=OpenAPIType.STRING, description="URI of the kind of problem: /api/v1/problems/{code}"
            ),
            "title": Schema(
                type=OpenAPIType.STRING, description="Short title, the same for every occurrence of the code"
            ),
            "status": Schema(type=OpenAPIType.INTEGER, description="The HTTP status"),
            "detail": Schema(type=OpenAPIType.STRING, description="What happened this time"),
            "code": Schema(
                type=OpenAPIType.STRING, description="Stable machine-readable code, e.g. insufficient_funds"
            ),
            "instance": Schema(type=OpenAPIType.STRING, description="The request path"),
            "request_id": Schema(type=OpenAPIType.STRING, description="Correlation id for support"),
            "errors": Schema(
                type=OpenAPIType.ARRAY,
                description="validation_failed only: every invalid field",
                items=Schema(
                    type=OpenAPIType.OBJECT,
                    required=["field", "source", "message"],
                    properties={"field": string, "source": string, "message": string},
                ),
            ),
        },
        additional_properties=True,
        description="RFC 9457 problem details. Some codes add fields (documented with the code).",
    )


def _generic_codes() -> dict[int, list[str]]:
    codes: dict[int, list[str]] = defaultdict(list)
    for kind in catalogue().values():
        if kind.code in {
            "validation_failed",
            "malformed_body",
            "bad_request",
            "unauthenticated",
            "forbidden",
            "not_found",
            "method_not_allowed",
            "payload_too_large",
            "unsupported_media_type",
            "rate_limited",
            "internal_error",
            "service_unavailable",
            "conflict",
        }:
            codes[kind.status].append(kind.code)
    return codes


def _statuses_for(
    operation: Any, method: str, declared: list[ErrorKind], opt: dict[str, Any]
) -> dict[int, list[str]]:
    generic = _generic_codes()
    statuses: dict[int, list[str]] = {status: list(generic.get(status, [])) for status in _ALWAYS}
    if operation.security:
        for status in (401, 403):
            statuses[status] = list(generic.get(status, []))
    if operation.parameters:
        for status in _WITH_INPUT:
            statuses[status] = list(generic.get(status, []))
    if operation.request_body is not None or method in ("post", "put", "patch"):
        for status in _WITH_BODY:
            statuses[status] = list(generic.get(status, []))
    for status in opt.get("statuses", ()):
        statuses.setdefault(int(status), list(generic.get(int(status), [])))
    for kind in declared:
        statuses.setdefault(kind.status, [])
        if kind.code not in statuses[kind.status]:
            statuses[kind.status].append(kind.code)
    return statuses


def _describe_fields(schemas: dict[str, Any]) -> None:
    """Fill missing property descriptions from the structs' attribute docstrings."""
    classes = struct_classes()
    for name, schema in schemas.items():
        cls = classes.get(name) or classes.get(name.rsplit("_", 1)[-1])
        if cls is None or not isinstance(schema, Schema) or not schema.properties:
            continue
        docs = field_docstrings(cls)
        for field_name, prop in schema.properties.items():
            if isinstance(prop, Schema) and not prop.description and field_name in docs:
                prop.description = docs[field_name]
            elif isinstance(prop, Reference) and not prop.description and field_name in docs:
                schema.properties[field_name] = Reference(ref=prop.ref, description=docs[field_name])


def document_errors(app: Litestar) -> None:
    """Add the problem responses to every operation of ``app``'s (cached) OpenAPI document."""
    openapi = app.openapi_schema
    if openapi.components.schemas is None:
        openapi.components.schemas = {}
    openapi.components.schemas["Problem"] = _problem_schema()
    _describe_fields(openapi.components.schemas)
    problem_ref = Reference(ref="#/components/schemas/Problem")
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path_format not in (openapi.paths or {}):
            continue
        path_item = openapi.paths[route.path_format]  # type: ignore[index]
        for handler in route.route_handlers:
            if not handler.include_in_schema:
                continue
            declared: list[ErrorKind] = list(handler.opt.get("errors", ()))
            for guard in handler.resolve_guards():
                # Guards may name the problems they answer with (e.g. rate limits): ``guard.errors``.
                declared.extend(kind for kind in getattr(guard, "errors", ()) if kind not in declared)
            for http_method in handler.http_methods:
                method = http_method.lower()
                operation = getattr(path_item, method, None)
                if operation is None:
                    continue
                responses = operation.responses or {}
                for status, codes in sorted(_statuses_for(operation, method, declared, handler.opt).items()):
                    if str(status) in responses:
                        continue
                    listed = ", ".join(f"`{c}`" for c in codes)
                    text = _STATUS_TEXT.get(status, "Refused.")
                    responses[str(status)] = OpenAPIResponse(
                        description=f"{text} Codes: {listed}." if listed else text,
                        content={PROBLEM_MEDIA_TYPE: OpenAPIMediaType(schema=problem_ref)},
                    )
                operation.responses = responses


def render_spec() -> str:
    """The OpenAPI document as stable, diff-friendly JSON (what ``mobile_api_spec/openapi.json`` holds)."""
    import json

    from app.core.settings import load_settings
    from app.main import create_app

    app = create_app(
        load_settings({"APP_ENV": "development", "DATABASE_URL": "sqlite+aiosqlite:///:memory:"})
    )
    return json.dumps(app.openapi_schema.to_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
