"""Structured logs with a request id, the access log, and the content-type gate for request bodies.

Logs never carry secrets or personal numbers: the redaction processor drops known-sensitive keys and masks
anything that looks like a phone or citizen ID number, so a careless ``log.info(..., body=...)`` cannot leak.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

import structlog
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.core.settings import Settings

__all__ = ["RequestContextMiddleware", "configure_logging"]

_SENSITIVE_KEYS = frozenset(
    {
        "pin",
        "password",
        "otp",
        "code",
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "secret",
        "cccd",
        "citizen_id",
        "phone",
        "card_number",
        "api_key",
    }
)
_NUMBER = re.compile(r"(?<!\d)(\+?84|0)?\d{9,12}(?!\d)")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key.lower() in _SENSITIVE_KEYS:
            event[key] = "[redacted]"
        elif isinstance(event[key], str) and key not in ("request_id", "path", "timestamp"):
            if _UUID.fullmatch(event[key]):
                continue  # an id (message, payment, ...) is never a phone number; keep it whole
            event[key] = _NUMBER.sub("[number]", event[key])
    return event


def configure_logging(settings: Settings) -> None:
    """JSON lines to stdout (or a readable console in development when LOG_JSON=false)."""
    level = getattr(logging, settings.log_level)
    renderer: Any = (
        structlog.processors.JSONRenderer() if settings.log_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=level, stream=sys.stdout, format="%(message)s")


JSON_MEDIA_TYPES = ("application/json",)


class RequestContextMiddleware(ASGIMiddleware):
    """Request id in, request id out, one access-log line, and 415 for bodies of the wrong type.

    A route that accepts something other than JSON says so with ``opt={"media_types": (...)}``.
    """

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id  # type: ignore[typeddict-item]
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableScopeHeaders.from_message(message)["X-Request-ID"] = request_id
            await send(message)

        try:
            unsupported = self._unsupported_media_type(scope, headers)
            if unsupported:
                from app.core.errors import UNSUPPORTED_MEDIA_TYPE

                raise UNSUPPORTED_MEDIA_TYPE(
                    f"Kiểu nội dung {unsupported!r} không được hỗ trợ; hãy gửi application/json",
                    f"Content type {unsupported!r} is not accepted here; send application/json",
                )
            await next_app(scope, receive, send_with_id)
        finally:
            route = scope.get("route_handler")
            path_template = getattr(scope, "path_template", None) or (
                next(iter(route.paths))
                if route is not None and getattr(route, "paths", None)
                else scope["path"]
            )
            structlog.get_logger("app.access").info(
                "request",
                method=scope.get("method"),
                path=path_template,
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id")

    @staticmethod
    def _unsupported_media_type(scope: Scope, headers: dict[bytes, bytes]) -> str | None:
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            return None
        has_body = headers.get(b"content-length", b"0") not in (b"0", b"") or b"transfer-encoding" in headers
        if not has_body:
            return None
        content_type = headers.get(b"content-type", b"").decode("latin-1").split(";", 1)[0].strip().lower()
        handler = scope.get("route_handler")
        accepted = (getattr(handler, "opt", None) or {}).get("media_types", JSON_MEDIA_TYPES)
        if content_type in accepted:
            return None
        return content_type or "(none)"
