"""Liveness, readiness and the catalogue of error codes."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import msgspec
from alembic.config import Config
from alembic.script import ScriptDirectory
from litestar import Request, Response, get
from litestar.openapi import ResponseSpec
from litestar.params import FromPath
from sqlalchemy import text

from app.core.db import Database
from app.core.errors import NOT_FOUND, catalogue

__all__ = ["health_routes", "migration_heads"]

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


@lru_cache(maxsize=1)
def migration_heads() -> frozenset[str]:
    """The revisions a fully migrated database is at, read from the migration scripts."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


class Liveness(msgspec.Struct):
    status: Literal["ok"]
    """Always ``ok`` when the process answers."""


class Component(msgspec.Struct, omit_defaults=True):
    status: Literal["ok", "degraded", "down", "disabled"]
    """``ok``; ``disabled`` (not configured); ``degraded``: the service works on without it (Redis);
    ``down``: the API is unready."""
    detail: str | None = None
    """Why, when not ``ok``."""


class Readiness(msgspec.Struct):
    status: Literal["ready", "unready"]
    """``ready`` when the database answers and is migrated to head."""
    database: Component
    """Can the database be queried."""
    migrations: Component
    """Is the schema at the latest migration."""
    redis: Component
    """Redis, when configured; its loss degrades rate limits and caches, never money paths."""


@get("/healthz", operation_id="healthz", tags=["health"], summary="Liveness", exclude_from_auth=True)
async def healthz() -> Liveness:
    """Answers as long as the process serves requests; touches nothing else."""
    return Liveness(status="ok")


async def _database_and_migrations(db: Database) -> tuple[Component, Component]:
    try:
        async with db.read() as session:
            await session.execute(text("SELECT 1"))
            try:
                rows = (
                    (await session.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
                )
            except Exception:
                rows = []
    except Exception as exc:
        return Component(status="down", detail=type(exc).__name__), Component(
            status="down", detail="no database"
        )
    heads = migration_heads()
    if frozenset(rows) == heads:
        return Component(status="ok"), Component(status="ok")
    return Component(status="ok"), Component(
        status="down", detail=f"at {sorted(rows) or 'nothing'}, head is {sorted(heads)}; run `hue db upgrade`"
    )


async def _redis(request: Request[Any, Any, Any]) -> Component:
    client = request.app.state.get("redis")
    if client is None:
        return Component(status="disabled", detail="embedded mode: in-process stores")
    try:
        await client.ping()
    except Exception as exc:
        return Component(
            status="degraded", detail=f"unreachable ({type(exc).__name__}); money paths unaffected"
        )
    return Component(status="ok")


@get(
    "/readyz",
    operation_id="readyz",
    tags=["health"],
    summary="Readiness",
    exclude_from_auth=True,
    responses={503: ResponseSpec(Readiness, description="Not ready: the database is down or not migrated")},
)
async def readyz(request: Request[Any, Any, Any]) -> Response[Readiness]:
    """Ready when the database answers and is migrated to head. Redis down is reported as degraded, not
    unready: nothing about money depends on it (DESIGN.md)."""
    database, migrations = await _database_and_migrations(request.app.state.db)
    redis = await _redis(request)
    ready = database.status == "ok" and migrations.status == "ok"
    body = Readiness(
        status="ready" if ready else "unready", database=database, migrations=migrations, redis=redis
    )
    return Response(body, status_code=200 if ready else 503)


class ProblemKind(msgspec.Struct):
    code: str
    """Stable machine-readable code."""
    status: int
    """HTTP status it comes with."""
    title_vi: str
    """Title in Vietnamese."""
    title_en: str
    """Title in English."""


@get("/api/v1/problems", operation_id="listProblems", tags=["health"], summary="Every error code")
async def list_problems() -> list[ProblemKind]:
    """Every stable error ``code`` the API can answer with, its HTTP status and its titles."""
    return [ProblemKind(k.code, k.status, k.title_vi, k.title_en) for k in catalogue().values()]


@get("/api/v1/problems/{code:str}", operation_id="getProblem", tags=["health"], summary="One error code")
async def get_problem(code: FromPath[str]) -> ProblemKind:
    """What an error ``code`` means (the ``type`` URI of every problem points here)."""
    kind = catalogue().get(code)
    if kind is None:
        raise NOT_FOUND(f"Không có mã lỗi {code!r}", f"No error code {code!r}")
    return ProblemKind(kind.code, kind.status, kind.title_vi, kind.title_en)


health_routes = [healthz, readyz, list_problems, get_problem]
