"""Helpers shared by the outbox, scheduler and worker tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from app.core.db import Database, utcnow
from app.core.models import OutboxDelivery, OutboxMessage
from app.core.outbox import Envelope
from tests.conftest import Backend


@dataclass
class FakeClock:
    """A clock the test moves by hand; it starts a second ahead, so messages just written are due."""

    now: datetime = field(default_factory=lambda: utcnow() + timedelta(seconds=1))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@asynccontextmanager
async def database(backend_env: Backend) -> AsyncIterator[Database]:
    """A Database of its own (its own engine and connections) on the test's database."""
    db = Database(backend_env.settings())
    try:
        yield db
    finally:
        await db.dispose()


@dataclass
class Receiver:
    """A receiver that deduplicates on the message id, as every real receiver must."""

    calls: list[Envelope] = field(default_factory=list)
    effects: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)

    async def __call__(self, envelope: Envelope) -> None:
        self.calls.append(envelope)
        self.effects.setdefault(envelope.id, envelope.payload)


async def message(db: Database, message_id: uuid.UUID) -> OutboxMessage:
    async with db.read() as session:
        row = await session.get(OutboxMessage, message_id)
        assert row is not None
        return row


async def deliveries(db: Database, message_id: uuid.UUID) -> list[OutboxDelivery]:
    async with db.read() as session:
        query = (
            select(OutboxDelivery)
            .where(OutboxDelivery.message_id == message_id)
            .order_by(OutboxDelivery.attempt, OutboxDelivery.finished_at, OutboxDelivery.id)
        )
        return list((await session.execute(query)).scalars())


async def count_messages(db: Database, status: str | None = None) -> int:
    async with db.read() as session:
        query = select(func.count()).select_from(OutboxMessage)
        if status is not None:
            query = query.where(OutboxMessage.status == status)
        return int((await session.execute(query)).scalar_one())
