"""The console's plumbing: the session middleware, the guards (signed in, CSRF), rendering, errors.

Authorization is the API's: the signed-in guard puts the console caller where
:func:`app.core.security.get_caller` finds it, so the API's own guards (``require_roles``,
``require_duty``) and service functions decide exactly as they do for a bearer token.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any
from urllib.parse import quote

import structlog
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import MediaType
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.types import ASGIApp, ExceptionHandlersMap, Message, Receive, Scope, Send

from app.console.i18n import error_text, translator
from app.console.session import COOKIE_MAX_AGE, COOKIE_NAME, ConsoleSession, dump_cookie, load_cookie
from app.core.errors import AppError
from app.core.security import Caller
from app.core.settings import Settings

__all__ = [
    "BASE",
    "ConsoleSessionMiddleware",
    "CsrfRefused",
    "console_exception_handlers",
    "console_state",
    "csrf_guard",
    "page",
    "redirect",
    "signed_in",
    "template_engine",
]

BASE = "/console"
TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
log = structlog.get_logger("app.console")

_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_SECURITY_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
)


def template_engine() -> JinjaTemplateEngine:
    """Jinja with autoescaping on for every template."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = lambda v: f"{int(v or 0):,}".replace(",", ".") + " đ"
    env.filters["when"] = _when
    return JinjaTemplateEngine.from_environment(env)


def _when(value: Any) -> str:
    from zoneinfo import ZoneInfo

    if value is None:
        return "—"
    try:
        return str(value.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%d/%m/%Y %H:%M"))
    except (AttributeError, ValueError):
        return str(value)


# ---------------------------------------------------------------------------------------------- session


def _settings_of(scope: Scope) -> Settings:
    settings: Settings = scope["litestar_app"].state.settings
    return settings


def console_state(connection: ASGIConnection[Any, Any, Any, Any]) -> ConsoleSession:
    state = connection.scope.get("state", {}).get("console")
    if not isinstance(state, ConsoleSession):  # a route outside the middleware: an empty session
        state = ConsoleSession()
        connection.scope.setdefault("state", {})["console"] = state
    return state


class ConsoleSessionMiddleware(ASGIMiddleware):
    """Reads the session cookie into ``scope["state"]["console"]`` and writes it back when it changed; adds
    the console's security headers and forbids caching its pages."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        settings = _settings_of(scope)
        raw = None
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                for part in value.decode("latin-1").split(";"):
                    key, _, val = part.strip().partition("=")
                    if key == COOKIE_NAME:
                        raw = val
        state = load_cookie(settings, raw)
        scope.setdefault("state", {})["console"] = state  # type: ignore[typeddict-item]

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                for name, value in _SECURITY_HEADERS:
                    headers.add(name.decode(), value.decode())
                headers["cache-control"] = "no-store"
                if state.dirty:
                    secure = "; Secure" if settings.is_production else ""
                    headers.add(
                        "set-cookie",
                        f"{COOKIE_NAME}={dump_cookie(settings, state)}; Path={BASE}; Max-Age={COOKIE_MAX_AGE}"
                        f"; HttpOnly; SameSite=Lax{secure}",
                    )
            await send(message)

        await next_app(scope, receive, send_with_cookie)


# ----------------------------------------------------------------------------------------------- guards


class CsrfRefused(PermissionDeniedException):
    """A state-changing request without the session's CSRF token."""


async def csrf_guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """Every POST carries the session's token: the ``csrf_token`` form field or the ``X-CSRF-Token`` header
    (htmx). A cross-site form cannot read it, so it cannot forge a request."""
    if connection.scope.get("method", "GET") in _SAFE:
        return
    state = console_state(connection)
    sent = connection.headers.get("x-csrf-token")
    if not sent and isinstance(connection, Request):
        form = await connection.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent.encode(), state.csrf.encode()):
        log.warning("console_csrf_refused", path=connection.scope.get("path"))
        raise CsrfRefused("CSRF token missing or wrong")


async def signed_in(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """The console session's caller, rebuilt from the database on every request, becomes the request's
    caller (where the API's guards look for it); otherwise 401, which the console answers with the sign-in
    page."""
    from app.identity.staff import caller_of_session

    state = console_state(connection)
    if not state.signed_in or state.expired():
        if state.signed_in:
            state.sign_out()
            state.flash("error", translator(state.lang)("session_ended"))
        raise NotAuthorizedException("console sign-in required")
    assert state.user_id is not None
    assert state.session_id is not None
    caller = await caller_of_session(connection.app.state.db, state.user_id, state.session_id)
    if caller is None:
        state.sign_out()
        state.flash("error", translator(state.lang)("session_ended"))
        raise NotAuthorizedException("console session ended")
    state.touch()
    connection.scope.setdefault("state", {})["caller"] = caller  # type: ignore[typeddict-item]


def caller_of(request: Request[Any, Any, Any]) -> Caller:
    caller = request.scope.get("state", {}).get("caller")
    if not isinstance(caller, Caller):
        raise NotAuthorizedException("console sign-in required")
    return caller


# ---------------------------------------------------------------------------------------------- render


def _nav(caller: Caller | None) -> list[dict[str, Any]]:
    if caller is None:
        return []
    items: list[dict[str, Any]] = []
    if caller.has_role("officer") or "support" in caller.duties or "superadmin" in caller.duties:
        items.append({"href": f"{BASE}/officer/dossiers", "key": "queue"})
    if caller.has_role("officer"):
        items.append({"href": f"{BASE}/officer/verify", "key": "verify_desk"})
    if caller.is_admin:
        items.append({"href": f"{BASE}/admin", "key": "dashboard"})
        items.extend(
            {"href": f"{BASE}/admin/{slug}", "key": key}
            for slug, key in (("users", "users"), ("outbox", "outbox"), ("audit", "audit"))
        )
        from app.console.desks import merchant_desk, recon_desk

        duties = caller.duties
        if recon_desk() is not None and duties & {"finance", "superadmin"}:
            items.append({"href": f"{BASE}/admin/recon", "key": "reconciliation"})
        if merchant_desk() is not None and duties & {"support", "superadmin"}:
            items.append({"href": f"{BASE}/admin/merchants", "key": "merchants"})
    return items


def page(
    request: Request[Any, Any, Any], template: str, *, status_code: int = 200, **context: Any
) -> Template:
    """Render a console page with the layout's context: language, words, CSRF token, caller, menu, flashes."""
    state = console_state(request)
    caller = request.scope.get("state", {}).get("caller")
    caller = caller if isinstance(caller, Caller) else None
    context.update(
        lang=state.lang,
        t=translator(state.lang),
        csrf_token=state.csrf,
        caller=caller,
        nav=_nav(caller),
        flashes=[] if request.headers.get("hx-request") else state.take_flashes(),
        path=request.url.path,
        base=BASE,
    )
    return Template(
        template_name=template, context=context, status_code=status_code, media_type=MediaType.HTML
    )


def redirect(path: str) -> Redirect:
    return Redirect(path=path, status_code=303)


def flash_error(request: Request[Any, Any, Any], exc: AppError) -> None:
    state = console_state(request)
    state.flash("error", error_text(exc, state.lang))


# ---------------------------------------------------------------------------------------------- errors


def _error_page(
    request: Request[Any, Any, Any], status: int, key: str, detail: str | None = None
) -> Response[Any]:
    return page(request, "error.html", status_code=status, status=status, message_key=key, detail=detail)


def _not_authorized(request: Request[Any, Any, Any], _exc: Exception) -> Response[Any]:
    if request.method in _SAFE:
        here = request.url.path + ("?" + request.url.query if request.url.query else "")
        return redirect(f"{BASE}/sign-in?next={quote(here)}")
    return redirect(f"{BASE}/sign-in")


def _denied(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _error_page(request, 403, "err_csrf" if isinstance(exc, CsrfRefused) else "err_403")


def _not_found(request: Request[Any, Any, Any], _exc: Exception) -> Response[Any]:
    return _error_page(request, 404, "err_404")


def _app_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, AppError)
    state = console_state(request)
    status = exc.kind.status
    key = {403: "err_403", 404: "err_404"}.get(status, "err_title")
    return _error_page(request, status, key, error_text(exc, state.lang))


def _http_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, HTTPException)
    return _error_page(request, exc.status_code, "err_title", str(exc.detail))


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("console_unexpected_error", path=request.url.path, error=type(exc).__name__)
    return _error_page(request, 500, "err_500")


def console_exception_handlers() -> ExceptionHandlersMap:
    return {
        NotAuthorizedException: _not_authorized,
        PermissionDeniedException: _denied,
        NotFoundException: _not_found,
        AppError: _app_error,
        HTTPException: _http_error,
        Exception: _unexpected,
    }
