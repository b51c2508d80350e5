"""The database: one async engine, sessions, and the conventions every table follows.

A unit of work is one SQLAlchemy session in one transaction. Writers on SQLite take the database lock at the
start (``BEGIN IMMEDIATE``), because SQLite upgrades a deferred transaction's lock only at its first write and
two upgrading readers deadlock into ``database is locked``; PostgreSQL uses row locks instead.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import MetaData, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from uuid_utils.compat import uuid7

from app.core.settings import Settings

__all__ = ["Base", "Database", "TimestampedBase", "UTCDateTime", "new_id", "utcnow"]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

UTCDateTime = DateTimeUTC
"""Timezone-aware UTC timestamps on both databases (SQLite keeps no zone of its own)."""


def new_id() -> uuid.UUID:
    """A time-ordered UUIDv7: opaque to clients, index-friendly, sortable for cursors."""
    return uuid7()


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTimeUTC(timezone=True)}


class TimestampedBase(Base):
    """A table whose rows have an opaque id and a creation time."""

    __abstract__ = True
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA busy_timeout=30000",
            "PRAGMA foreign_keys=ON",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def create_engine(settings: Settings, *, url: str | None = None) -> AsyncEngine:
    """An engine for ``settings`` (or an explicit ``url``), with the per-backend connection setup."""
    url = url or settings.database_url
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
        connect_args={"server_settings": {"timezone": "UTC", "application_name": "hue-citizen"}},
    )


class Database:
    """The process's engine and its two kinds of session: reading, and writing in one transaction."""

    def __init__(self, settings: Settings, *, url: str | None = None) -> None:
        self.settings = settings
        self.engine = create_engine(settings, url=url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.extensions: dict[str, Any] = {}
        """Per-application services a module installs at start-up, reachable from any session this
        database opened (``Database.of(session).extensions[...]``), for service functions that receive
        only a session."""
        info = {"database": self}
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False, info=info)
        writer_engine = (
            self.engine.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite else self.engine
        )
        self._writer = async_sessionmaker(writer_engine, expire_on_commit=False, info=info)

    @staticmethod
    def of(session: AsyncSession) -> Database:
        """The :class:`Database` that opened ``session``."""
        db = session.info.get("database")
        if not isinstance(db, Database):
            raise RuntimeError("this session was not opened by a Database")
        return db

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads; its transaction is rolled back at the end."""
        async with self._reader() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: committed when the block ends normally, rolled back on any exception."""
        async with self._writer() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
