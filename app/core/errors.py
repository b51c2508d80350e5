"""Errors as RFC 9457 problem details with a stable ``code``, Vietnamese by default, English on request.

Every domain declares its errors once with :func:`error_kind`; the catalogue feeds the exception handlers,
the OpenAPI document and ``GET /api/v1/problems``. Litestar's own problem-details plugin is not used: it
swaps ``title`` and ``detail`` and documents a different schema than it sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import (
    ClientException,
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    SerializationException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.types import ExceptionHandlersMap

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "AppError",
    "ErrorKind",
    "FieldError",
    "Problem",
    "catalogue",
    "error_kind",
    "exception_handlers",
    "prefers_english",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = structlog.get_logger("app.errors")


@dataclass(frozen=True, slots=True)
class ErrorKind:
    """One kind of failure a client can rely on: its code never changes once published."""

    code: str
    status: int
    title_vi: str
    title_en: str

    def __call__(self, detail_vi: str | None = None, detail_en: str | None = None, **extra: Any) -> AppError:
        return AppError(self, detail_vi, detail_en, **extra)


_CATALOGUE: dict[str, ErrorKind] = {}


def error_kind(code: str, status: int, title_vi: str, title_en: str) -> ErrorKind:
    """Declare (once) an error kind; declaring the same code with another meaning is a programming error."""
    kind = ErrorKind(code, status, title_vi, title_en)
    existing = _CATALOGUE.get(code)
    if existing is not None and existing != kind:
        raise RuntimeError(f"error code {code!r} declared twice with different meanings")
    _CATALOGUE[code] = kind
    return kind


def catalogue() -> dict[str, ErrorKind]:
    return dict(sorted(_CATALOGUE.items()))


class AppError(Exception):
    """A refusal the client caused or can act on. ``extra`` fields are added to the problem body."""

    def __init__(
        self, kind: ErrorKind, detail_vi: str | None = None, detail_en: str | None = None, **extra: Any
    ) -> None:
        super().__init__(kind.code)
        self.kind = kind
        self.detail_vi = detail_vi or kind.title_vi
        self.detail_en = detail_en or detail_vi or kind.title_en
        self.extra = extra
        self.headers: dict[str, str] = {}


class FieldError(msgspec.Struct, kw_only=True):
    """One invalid input."""

    field: str
    """Dotted path of the field (``items.0.amount``), or the parameter name."""
    source: str
    """Where the value came from: ``body``, ``query``, ``path`` or ``header``."""
    message: str


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An RFC 9457 problem. Clients branch on ``code``; ``title`` and ``detail`` are for people."""

    type: str
    """A URI naming the kind of problem: ``/api/v1/problems/{code}``."""
    title: str
    """Short, the same for every occurrence of this code (Vietnamese, or English on Accept-Language: en)."""
    status: int
    detail: str
    """What happened this time."""
    code: str
    """Stable machine-readable error code, e.g. ``insufficient_funds``."""
    instance: str | None = None
    """The request path."""
    request_id: str | None = None
    """Correlation id; quote it when asking support."""
    errors: list[FieldError] | None = None
    """For ``validation_failed``: every invalid field."""


VALIDATION_FAILED = error_kind("validation_failed", 422, "Dữ liệu không hợp lệ", "Invalid input")
MALFORMED_BODY = error_kind(
    "malformed_body", 400, "Nội dung yêu cầu không đọc được", "Malformed request body"
)
BAD_REQUEST = error_kind("bad_request", 400, "Yêu cầu không hợp lệ", "Bad request")
UNAUTHENTICATED = error_kind("unauthenticated", 401, "Chưa đăng nhập hoặc phiên đã hết hạn", "Not signed in")
FORBIDDEN = error_kind("forbidden", 403, "Không có quyền thực hiện", "Not allowed")
NOT_FOUND = error_kind("not_found", 404, "Không tìm thấy", "Not found")
METHOD_NOT_ALLOWED = error_kind(
    "method_not_allowed", 405, "Phương thức không được hỗ trợ", "Method not allowed"
)
CONFLICT = error_kind("conflict", 409, "Xung đột trạng thái", "Conflict")
PAYLOAD_TOO_LARGE = error_kind("payload_too_large", 413, "Nội dung quá lớn", "Request body too large")
UNSUPPORTED_MEDIA_TYPE = error_kind(
    "unsupported_media_type", 415, "Kiểu nội dung không được hỗ trợ", "Unsupported content type"
)
WEBHOOK_SIGNATURE_INVALID = error_kind(
    "webhook_signature_invalid",
    400,
    "Chữ ký webhook không hợp lệ",
    "The webhook signature is missing, wrong or stale",
)
RATE_LIMITED = error_kind("rate_limited", 429, "Quá nhiều yêu cầu, vui lòng thử lại sau", "Too many requests")
INTERNAL_ERROR = error_kind("internal_error", 500, "Lỗi hệ thống", "Internal error")
SERVICE_UNAVAILABLE = error_kind(
    "service_unavailable", 503, "Dịch vụ tạm thời không khả dụng", "Service temporarily unavailable"
)

_STATUS_KINDS = {
    400: BAD_REQUEST,
    401: UNAUTHENTICATED,
    403: FORBIDDEN,
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    409: CONFLICT,
    413: PAYLOAD_TOO_LARGE,
    415: UNSUPPORTED_MEDIA_TYPE,
    422: VALIDATION_FAILED,
    429: RATE_LIMITED,
    503: SERVICE_UNAVAILABLE,
}


def prefers_english(request: Request[Any, Any, Any]) -> bool:
    """English only when the client's first language choice is English; Vietnamese otherwise."""
    header = request.headers.get("accept-language", "")
    first = header.split(",", 1)[0].split(";", 1)[0].strip().lower()
    return first.startswith("en")


def problem_response(
    request: Request[Any, Any, Any],
    kind: ErrorKind,
    *,
    detail_vi: str | None = None,
    detail_en: str | None = None,
    errors: list[FieldError] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    english = prefers_english(request)
    problem = Problem(
        type=f"/api/v1/problems/{kind.code}",
        title=kind.title_en if english else kind.title_vi,
        status=kind.status,
        detail=(detail_en or kind.title_en) if english else (detail_vi or kind.title_vi),
        code=kind.code,
        instance=request.url.path,
        request_id=request.scope.get("state", {}).get("request_id"),
        errors=errors,
    )
    body: dict[str, Any] = msgspec.to_builtins(problem)
    if extra:
        body.update({k: v for k, v in msgspec.to_builtins(extra).items() if k not in body})
    return Response(content=body, status_code=kind.status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _app_error(request: Request[Any, Any, Any], exc: AppError) -> Response[Any]:
    return problem_response(
        request,
        exc.kind,
        detail_vi=exc.detail_vi,
        detail_en=exc.detail_en,
        extra=exc.extra,
        headers=exc.headers,
    )


def _source_name(source: Any) -> str:
    """Litestar reports a parameter's source as an enum member; clients get its plain value."""
    return str(getattr(source, "value", source))


def _field_errors(extra: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    for item in extra if isinstance(extra, list) else []:
        if isinstance(item, dict):
            errors.append(
                FieldError(
                    field=str(item.get("key", "")) or "body",
                    source=_source_name(item.get("source", "body")),
                    message=str(item.get("message", "invalid value")),
                )
            )
    return errors


def _validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    errors = _field_errors(exc.extra)
    if any("malformed" in e.message.lower() or "json is malformed" in e.message.lower() for e in errors):
        return problem_response(
            request, MALFORMED_BODY, detail_vi="JSON không hợp lệ", detail_en=errors[0].message
        )
    if not errors:
        detail = str(exc.detail)
        if "malformed" in detail.lower() or "decode" in detail.lower():
            return problem_response(request, MALFORMED_BODY, detail_vi="JSON không hợp lệ", detail_en=detail)
        errors = [FieldError(field="body", source="body", message=detail)]
    summary = "; ".join(f"{e.field}: {e.message}" for e in errors)
    return problem_response(
        request,
        VALIDATION_FAILED,
        detail_vi=f"Dữ liệu không hợp lệ — {summary}",
        detail_en=summary,
        errors=errors,
    )


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, ValidationException):
        return _validation_error(request, exc)
    status = exc.status_code
    if status >= 500:
        return _unexpected(request, exc)
    if status == 400 and type(exc) is ClientException:
        return problem_response(
            request,
            MALFORMED_BODY,
            detail_vi="Nội dung JSON không hợp lệ",
            detail_en=f"Malformed body: {exc.detail}",
        )
    kind = _STATUS_KINDS.get(status, BAD_REQUEST)
    headers = dict(exc.headers or {})
    if status == 405:
        return problem_response(request, kind, headers=headers)
    detail = str(exc.detail) if exc.detail and status not in (401, 403) else None
    return problem_response(request, kind, detail_en=detail, headers=headers)


def _serialization_error(request: Request[Any, Any, Any], exc: SerializationException) -> Response[Any]:
    return problem_response(request, MALFORMED_BODY, detail_vi="JSON không hợp lệ", detail_en=str(exc))


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("unhandled_error", exc_info=exc, path=request.url.path)
    return problem_response(
        request,
        INTERNAL_ERROR,
        detail_vi="Đã xảy ra lỗi không mong muốn. Vui lòng thử lại; nếu lỗi lặp lại, hãy báo mã yêu cầu.",
        detail_en="An unexpected error occurred. Please retry; if it persists, quote the request id.",
    )


def exception_handlers() -> ExceptionHandlersMap:
    return {
        AppError: _app_error,
        SerializationException: _serialization_error,
        ValidationException: _http_error,
        NotAuthorizedException: _http_error,
        PermissionDeniedException: _http_error,
        NotFoundException: _http_error,
        MethodNotAllowedException: _http_error,
        RequestEntityTooLarge: _http_error,
        TooManyRequestsException: _http_error,
        HTTPException: _http_error,
        Exception: _unexpected,
    }
