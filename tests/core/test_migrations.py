"""The schema is built by Alembic alone, on both databases, and can be taken down and rebuilt."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import app.models  # noqa: F401
from app.core.db import Base, create_engine
from app.core.health import migration_heads
from app.core.migrate import downgrade, upgrade
from tests.conftest import Backend


async def _tables_and_drift(backend: Backend) -> tuple[set[str], list[object]]:
    engine = create_engine(backend.settings(), url=backend.database_url)
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        drift = await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": False}), Base.metadata
            )
        )
    await engine.dispose()
    return tables, drift


def test_upgrade_downgrade_upgrade(backend_env: Backend) -> None:
    url = backend_env.database_url
    expected = set(Base.metadata.tables)
    tables, drift = asyncio.run(_tables_and_drift(backend_env))
    assert expected <= tables
    assert drift == [], f"models and migrations disagree: {drift}"

    downgrade(url, "base")
    tables, _ = asyncio.run(_tables_and_drift(backend_env))
    assert tables <= {"alembic_version"}

    upgrade(url)
    tables, drift = asyncio.run(_tables_and_drift(backend_env))
    assert expected <= tables
    assert drift == []


def test_heads_are_single() -> None:
    assert len(migration_heads()) == 1, "migrations have several heads: merge them"
