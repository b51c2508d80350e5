"""Dependencies shared by every module's controllers."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import Provide

from app.core.db import Database
from app.core.ratelimit import RateLimiter
from app.core.security import get_caller
from app.core.settings import Settings
from app.core.stores import Stores

__all__ = [
    "AUTHENTICATED",
    "BEARER_SECURITY",
    "core_dependencies",
    "provide_db",
    "provide_limiter",
    "provide_settings",
    "provide_stores",
]

BEARER_SECURITY: list[dict[str, list[str]]] = [{"BearerToken": []}]


async def provide_db(request: Request[Any, Any, Any]) -> Database:
    db: Database = request.app.state.db
    return db


async def provide_settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def provide_stores(request: Request[Any, Any, Any]) -> Stores:
    stores: Stores = request.app.state.stores
    return stores


async def provide_limiter(request: Request[Any, Any, Any]) -> RateLimiter:
    limiter: RateLimiter = request.app.state.limiter
    return limiter


def core_dependencies() -> dict[str, Provide]:
    return {
        "db": Provide(provide_db),
        "settings": Provide(provide_settings),
        "stores": Provide(provide_stores),
        "limiter": Provide(provide_limiter),
    }


AUTHENTICATED: dict[str, Any] = {"dependencies": {"caller": Provide(get_caller)}, "security": BEARER_SECURITY}
"""Keyword arguments for a Controller or Router whose every route needs a signed-in caller."""
