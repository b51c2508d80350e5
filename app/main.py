"""The application factory: wires the modules into one Litestar app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.static_files import create_static_files_router
from redis.asyncio import Redis

from app.core.db import Database
from app.core.deps import core_dependencies
from app.core.errors import exception_handlers
from app.core.health import health_routes
from app.core.observability import RequestContextMiddleware, configure_logging
from app.core.openapi import SWAGGER_ASSETS, document_errors, openapi_config
from app.core.security import register_session_check
from app.core.settings import Settings, get_settings
from app.identity import runtime as identity_runtime
from app.identity.routes import identity_routes
from app.identity.tokens import session_is_active

__all__ = ["create_app"]


def _version() -> str:
    try:
        return version("hue-citizen")
    except PackageNotFoundError:
        return "0.0.0"


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False


def _domain_routes(settings: Settings) -> Sequence[Any]:
    """Every module's route handlers, in dependency order."""
    return [*identity_routes(production=settings.is_production)]


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the API for ``settings`` (default: read from the environment once)."""
    settings = settings or get_settings()
    configure_logging(settings)
    db = Database(settings)
    redis = (
        Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        if settings.redis_url
        else None
    )
    identity_runtime.install(db, settings, stores=None)
    register_session_check(session_is_active)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if redis is not None:
                await redis.aclose()
            await db.dispose()

    prometheus = PrometheusConfig(app_name="hue_citizen", prefix="hue", group_path=True, exclude=["/metrics"])
    app = Litestar(
        route_handlers=[
            *health_routes,
            MetricsController,
            create_static_files_router(
                path="/docs/assets", directories=[SWAGGER_ASSETS], include_in_schema=False
            ),
            *_domain_routes(settings),
        ],
        state=State({"settings": settings, "db": db, "redis": redis}),
        dependencies=core_dependencies(),
        middleware=[RequestContextMiddleware(), prometheus.middleware],
        exception_handlers=exception_handlers(),
        openapi_config=openapi_config(_version()),
        lifespan=[lifespan],
        request_max_body_size=settings.max_json_body_bytes,
        debug=False,
    )
    document_errors(app)
    return app
