"""The database: one async engine, sessions, and the conventions every table follows.

A unit of work is one SQLAlchemy session in one transaction. Writers on SQLite take the database lock at the
start (``BEGIN IMMEDIATE``), because SQLite upgrades a deferred transaction's lock only at its first write and
two upgrading readers deadlock into ``database is locked``; PostgreSQL uses row locks instead.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from advanced_alchemy.types import DateTimeUTC
from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge as PromGauge
from sqlalchemy import MetaData, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from uuid_utils.compat import uuid7

from app.core.settings import Settings

__all__ = [
    "DB_STATEMENTS",
    "RAW_CALLS",
    "Base",
    "Database",
    "TimestampedBase",
    "UTCDateTime",
    "database_of",
    "new_id",
    "note_raw_call",
    "on_commit",
    "utcnow",
]

log = structlog.get_logger("app.db")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

UTCDateTime = DateTimeUTC
"""Timezone-aware UTC timestamps on both databases (SQLite keeps no zone of its own)."""


RAW_CALLS = [0]
"""Statements sent straight to the driver (asyncpg / sqlite3) by the money paths, which SQLAlchemy's event
listeners do not see; the benchmarks add them to the statement count. A plain list: no locking needed."""

DB_STATEMENTS = PromCounter(
    "hue_db_statements",
    "Statements this process sent to the database (SQLAlchemy's and the money paths' raw driver calls): "
    "divided by requests, the round trips per request the benchmarks report.",
)


PROCESS_ID = PromGauge(
    "hue_process_id",
    "The id of the API process that answered /metrics: with several processes (granian workers) each keeps "
    "its own counters, so a reader sums the answers of each process (bench/measure.py).",
)


def note_raw_call() -> None:
    """Count one statement sent straight to the driver (see :data:`RAW_CALLS`)."""
    RAW_CALLS[0] += 1
    DB_STATEMENTS.inc()


def _count_statements(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _count(*_args: Any) -> None:
        DB_STATEMENTS.inc()


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
        _count_statements(engine)
        return engine
    engine = create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        # No pre-ping: on asyncpg it is BEGIN / ";" / ROLLBACK, three round trips on every checkout, which
        # measured 0.15-0.25 ms of CPU and up to 40 % of the throughput of a one-call transfer (ledger notes).
        # A connection that died is detected when used: SQLAlchemy then invalidates the whole pool, so a
        # database restart costs one failed request per process (retried by the client with its
        # Idempotency-Key); recycling bounds a connection's age.
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args={"server_settings": {"timezone": "UTC", "application_name": "hue-citizen"}},
    )
    _count_statements(engine)
    return engine


async def _keep_session_state(_connection: Any) -> None:
    """asyncpg's pool reset hook: the open transaction (if any) is already rolled back; keep the rest."""


async def _driver_pool(engine: AsyncEngine, size: int) -> Any:
    import asyncpg  # PostgreSQL deployments only

    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=max(2, size),
        reset=_keep_session_state,
        server_settings={"timezone": "UTC", "application_name": "hue-citizen-money"},
    )


_SESSION_DATABASE = "database"
_ON_COMMIT = "on_commit"

AfterCommit = Callable[[], Awaitable[None]]


def database_of(session: AsyncSession) -> Database | None:
    """The :class:`Database` that opened ``session`` (None for a session made elsewhere)."""
    database = session.info.get(_SESSION_DATABASE)
    return database if isinstance(database, Database) else None


def on_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run ``callback`` once the transaction of ``session`` (opened by :meth:`Database.transaction`) has
    committed; never if it rolls back. For effects that must not happen unless the data is durable (a
    real-time push); effects that must happen *because* the data is durable belong in the outbox.
    A failing callback is logged and does not affect the committed transaction. A callback registered inside
    a savepoint (``begin_nested``) that is rolled back still runs when the outer transaction commits."""
    session.info.setdefault(_ON_COMMIT, []).append(callback)


class Database:
    """The process's engine and its two kinds of session: reading, and writing in one transaction."""

    def __init__(self, settings: Settings, *, url: str | None = None) -> None:
        PROCESS_ID.set(os.getpid())
        self.settings = settings
        self.engine = create_engine(settings, url=url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.extensions: dict[str, Any] = {}
        """Per-application services a module installs at start-up, reachable from any session this
        database opened (``Database.of(session).extensions[...]``), for service functions that receive
        only a session."""
        info = {_SESSION_DATABASE: self}
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False, info=info)
        writer_engine = (
            self.engine.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite else self.engine
        )
        self._writer = async_sessionmaker(writer_engine, expire_on_commit=False, info=info)
        self._driver_pool: Any = None
        self._driver_lock = asyncio.Lock()

    @staticmethod
    def of(session: AsyncSession) -> Database:
        """The :class:`Database` that opened ``session``."""
        db = session.info.get(_SESSION_DATABASE)
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
        """One unit of work: committed when the block ends normally, rolled back on any exception.
        Callbacks registered with :func:`on_commit` run after the commit, in registration order."""
        async with self._writer() as session:
            async with session.begin():
                yield session
            callbacks: list[AfterCommit] = session.info.pop(_ON_COMMIT, [])
            for callback in callbacks:
                try:
                    await callback()
                except Exception as exc:
                    log.error(
                        "after_commit_failed", callback=getattr(callback, "__qualname__", "?"), exc_info=exc
                    )

    @asynccontextmanager
    async def driver(self) -> AsyncIterator[Any]:
        """A PostgreSQL connection straight from asyncpg, for the money paths that send a handful of
        prepared statements and nothing else (DESIGN.md: the ORM and SQLAlchemy's async layer cost ~0.3 ms of
        CPU per statement; asyncpg ~0.05). Its own small pool (``DB_POOL_SIZE`` connections at most), made on
        first use. A transaction left open by a failed block is rolled back when the connection goes back;
        nothing else is reset (these paths change no session state), which saves a round trip per request."""
        if self.is_sqlite:
            raise RuntimeError("the driver-level money paths are PostgreSQL's")
        if self._driver_pool is None:
            async with self._driver_lock:
                if self._driver_pool is None:
                    self._driver_pool = await _driver_pool(self.engine, self.settings.db_pool_size)
        async with self._driver_pool.acquire() as connection:
            yield connection

    async def dispose(self) -> None:
        if self._driver_pool is not None:
            pool, self._driver_pool = self._driver_pool, None
            await pool.close()
        await self.engine.dispose()
