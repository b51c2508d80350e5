"""The transactional outbox: what must leave the process is written in the transaction of the change.

Producers call :func:`enqueue` with their own session, so a message exists if and only if the change that
caused it committed. Delivery handlers are registered per topic in code (:func:`register_handler`); the
:class:`Dispatcher` (run by the worker, or in-process in embedded mode) claims due messages, hands each to
its topic's handler, records every attempt in the delivery log, retries failures with exponential backoff
and jitter, and dead-letters a message after its last attempt. An admin can put a dead letter back in the
queue (:func:`retry_dead_letter`).

Delivery is at least once: a message can reach its receiver twice (a worker that dies after the receiver
answered but before the result is recorded), so every receiver deduplicates on :attr:`Envelope.id`, which
never changes. A handler sends it along (an ``Idempotency-Key`` header, a webhook id, a push collapse id).

Claims: PostgreSQL selects due rows ``FOR UPDATE SKIP LOCKED`` so concurrent dispatchers take disjoint
rows, and marks them with a lease (``claimed_until``) before committing; SQLite serialises claims with
``BEGIN IMMEDIATE``. The lease, not a held lock, protects a message while its handler runs: a dispatcher
that dies mid-delivery leaves a lease that expires, after which another dispatcher delivers the message
again. A claim token fences a dispatcher that outlived its lease: its late result is logged but changes
nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec
import structlog
from sqlalchemy import delete, event, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.core.db import Database, new_id, utcnow
from app.core.errors import error_kind
from app.core.models import OutboxDelivery, OutboxMessage
from app.core.settings import Settings

__all__ = [
    "HANDLERS",
    "MESSAGE_COLUMNS",
    "OUTBOX_MESSAGE_NOT_FOUND",
    "Claim",
    "DeliveryHandler",
    "Dispatcher",
    "DispatcherConfig",
    "Envelope",
    "HandlerRegistry",
    "HandlerSpec",
    "PermanentDeliveryError",
    "backoff_delay",
    "column_arrays",
    "enqueue",
    "enqueue_many",
    "get_message",
    "keyed_rows",
    "list_dead_letters",
    "purge_delivered",
    "register_handler",
    "retry_dead_letter",
    "wake_dispatchers",
    "worker_name",
]

log = structlog.get_logger("app.outbox")

OUTBOX_MESSAGE_NOT_FOUND = error_kind(
    "outbox_message_not_found", 404, "Không tìm thấy thông điệp gửi đi", "Outbox message not found"
)


# --- messages and handlers --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Envelope:
    """What a delivery handler receives."""

    id: uuid.UUID
    """The stable message id: the same on every attempt. Receivers deduplicate on it."""
    topic: str
    key: str | None
    """The producer's deduplication key, if it gave one."""
    payload: dict[str, Any]
    attempt: int
    """1 on the first attempt; counts every attempt, including those before an admin retry."""
    enqueued_at: datetime


DeliveryHandler = Callable[[Envelope], Awaitable[None]]
"""Delivers one message; returns normally on success, raises on failure (the message is retried)."""


class PermanentDeliveryError(Exception):
    """Raised by a handler when retrying cannot help (the receiver refused the message for good): the
    message is dead-lettered at once, for an admin to look at."""


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    topic: str
    handler: DeliveryHandler
    max_attempts: int | None = None
    """Attempts per round before the message is dead-lettered (default: the dispatcher's)."""
    timeout_seconds: float | None = None
    """How long one attempt may take (default: the dispatcher's); capped at 80 % of the lease."""


class HandlerRegistry:
    """Delivery handlers by topic. The process-wide one is :data:`HANDLERS`; tests build their own."""

    def __init__(self) -> None:
        self._specs: dict[str, HandlerSpec] = {}

    def register(
        self,
        topic: str,
        handler: DeliveryHandler,
        *,
        max_attempts: int | None = None,
        timeout_seconds: float | None = None,
    ) -> None:
        existing = self._specs.get(topic)
        if existing is not None and existing.handler is not handler:
            raise ValueError(f"outbox topic {topic!r} already has a handler")
        if max_attempts is not None and max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._specs[topic] = HandlerSpec(topic, handler, max_attempts, timeout_seconds)

    def unregister(self, topic: str) -> None:
        self._specs.pop(topic, None)

    def get(self, topic: str) -> HandlerSpec | None:
        return self._specs.get(topic)

    def topics(self) -> list[str]:
        return sorted(self._specs)


HANDLERS = HandlerRegistry()
"""The process's delivery handlers; modules register theirs at import (see ``app/tasks.py``)."""


def register_handler(
    topic: str,
    handler: DeliveryHandler,
    *,
    max_attempts: int | None = None,
    timeout_seconds: float | None = None,
) -> None:
    """Make ``handler`` deliver every message of ``topic`` (one handler per topic)."""
    HANDLERS.register(topic, handler, max_attempts=max_attempts, timeout_seconds=timeout_seconds)


# --- producing --------------------------------------------------------------------------------------------

_ENQUEUED = "outbox_enqueued"
_wakers: set[Callable[[], None]] = set()


def wake_dispatchers() -> None:
    """Make this process's dispatchers look for due messages now: for code that committed outbox rows
    without a session (a money path on the driver), which the commit hook below does not see."""
    for wake in list(_wakers):
        wake()


@event.listens_for(Session, "after_commit")
def _wake_dispatchers(session: Session) -> None:
    """A commit that wrote outbox rows wakes this process's dispatchers, so delivery starts at once."""
    if session.info.pop(_ENQUEUED, False):
        wake_dispatchers()


@event.listens_for(Session, "after_soft_rollback")
def _forget_enqueued(session: Session, _previous: Any) -> None:
    session.info.pop(_ENQUEUED, None)


def _insert_for(session: AsyncSession) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


async def enqueue(
    session: AsyncSession,
    topic: str,
    payload: Mapping[str, Any] | msgspec.Struct,
    *,
    key: str | None = None,
    available_at: datetime | None = None,
) -> uuid.UUID:
    """Write a message in the caller's transaction and return its id (the receivers' deduplication id).

    ``payload`` is a JSON object (a mapping, or a msgspec Struct; UUIDs and datetimes become strings).
    With a ``key``, there is at most one message per (topic, key): enqueueing again returns the first
    message's id and writes nothing. ``available_at`` delays the first delivery (UTC, aware).
    """
    if not topic or len(topic) > 100:
        raise ValueError("topic must be 1-100 characters")
    if key is not None and not 0 < len(key) <= 200:
        raise ValueError("key must be 1-200 characters")
    if available_at is not None and available_at.utcoffset() is None:
        raise ValueError("available_at must be timezone-aware")
    body = msgspec.to_builtins(payload)
    if not isinstance(body, dict):
        raise TypeError("an outbox payload is a JSON object")
    now = utcnow()
    message_id = new_id()
    values: dict[str, Any] = {
        "id": message_id,
        "created_at": now,
        "topic": topic,
        "key": key,
        "payload": body,
        "status": "pending",
        "available_at": available_at or now,
        "attempts": 0,
        "round_attempts": 0,
        "requeue_count": 0,
    }
    if key is None:
        await session.execute(insert(OutboxMessage).values(**values))
    else:
        statement = (
            _insert_for(session)(OutboxMessage)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["topic", "key"])
            .returning(OutboxMessage.id)
        )
        if (await session.execute(statement)).scalar_one_or_none() is None:
            existing = select(OutboxMessage.id).where(OutboxMessage.topic == topic, OutboxMessage.key == key)
            return (await session.execute(existing)).scalar_one()
    session.sync_session.info[_ENQUEUED] = True
    return message_id


def keyed_rows(
    topic: str, messages: Sequence[tuple[Mapping[str, Any] | msgspec.Struct, str]]
) -> list[dict[str, Any]]:
    """The ``outbox_messages`` rows (every column a new message sets) of keyed messages of one topic, as
    :func:`enqueue_many` writes them; for a money path writing them on the driver in its own statement
    (``INSERT ... ON CONFLICT (topic, key) DO NOTHING``, then :func:`wake_dispatchers` after the commit)."""
    if not topic or len(topic) > 100:
        raise ValueError("topic must be 1-100 characters")
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for payload, key in messages:
        if not 0 < len(key) <= 200:
            raise ValueError("key must be 1-200 characters")
        body = msgspec.to_builtins(payload)
        if not isinstance(body, dict):
            raise TypeError("an outbox payload is a JSON object")
        rows.append(
            {
                "id": new_id(),
                "created_at": now,
                "topic": topic,
                "key": key,
                "payload": body,
                "status": "pending",
                "available_at": now,
                "attempts": 0,
                "round_attempts": 0,
                "requeue_count": 0,
            }
        )
    return rows


MESSAGE_COLUMNS = (
    "id",
    "created_at",
    "topic",
    "key",
    "payload",
    "status",
    "available_at",
    "attempts",
    "round_attempts",
    "requeue_count",
)
"""The columns of :func:`keyed_rows`, in the order :func:`column_arrays` gives them."""


def column_arrays(rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """:func:`keyed_rows` as one array per column of :data:`MESSAGE_COLUMNS` (for an ``unnest`` insert on the
    driver), the JSON payload as text."""
    return [
        [msgspec.json.encode(row[name]).decode() if name == "payload" else row[name] for row in rows]
        for name in MESSAGE_COLUMNS
    ]


async def enqueue_many(
    session: AsyncSession, topic: str, messages: Sequence[tuple[Mapping[str, Any] | msgspec.Struct, str]]
) -> list[uuid.UUID]:
    """:func:`enqueue` for several keyed messages of one topic in ONE statement (a multi-row
    ``INSERT ... ON CONFLICT DO NOTHING``); returns their ids in order (the first message's id for a key
    already enqueued, as :func:`enqueue` does). For the money paths, where each statement is a round trip."""
    rows = keyed_rows(topic, messages)
    if not rows:
        return []
    statement = (
        _insert_for(session)(OutboxMessage)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["topic", "key"])
        .returning(OutboxMessage.key, OutboxMessage.id)
    )
    written = dict((await session.execute(statement)).all())
    missing = [row["key"] for row in rows if row["key"] not in written]
    if missing:
        existing = select(OutboxMessage.key, OutboxMessage.id).where(
            OutboxMessage.topic == topic, OutboxMessage.key.in_(missing)
        )
        written.update(dict((await session.execute(existing)).all()))
    session.sync_session.info[_ENQUEUED] = True
    return [written[row["key"]] for row in rows]


# --- delivering -------------------------------------------------------------------------------------------


def worker_name() -> str:
    """This process, as it appears in delivery logs and job runs: host, pid and a random suffix."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True, slots=True)
class DispatcherConfig:
    """How the dispatcher claims, waits and retries."""

    batch_size: int = 20
    """Messages claimed (and delivered concurrently) at a time."""
    lease_seconds: float = 120.0
    """How long a claim protects a message; after it, a dead dispatcher's message is due again."""
    handler_timeout_seconds: float = 30.0
    """Default time one attempt may take; kept below the lease so a live dispatcher never loses it."""
    max_attempts: int = 10
    """Attempts per round before a message is dead-lettered (a handler may declare its own)."""
    backoff_base_seconds: float = 10.0
    """Delay after the first failure; it doubles with each further failure..."""
    backoff_cap_seconds: float = 3600.0
    """...up to this."""
    backoff_jitter: float = 0.5
    """Each delay is cut by a random fraction up to this, so retries of a burst spread out."""
    poll_seconds: float = 1.0
    """How often an idle dispatcher looks for due messages (commits in this process wake it at once)."""
    error_max_chars: int = 2000
    """Error texts are cut to this length in the delivery log."""

    def __post_init__(self) -> None:
        if self.handler_timeout_seconds >= self.lease_seconds:
            raise ValueError("handler_timeout_seconds must be shorter than lease_seconds")
        if not 0 <= self.backoff_jitter < 1:
            raise ValueError("backoff_jitter must be in [0, 1)")
        if self.batch_size < 1 or self.max_attempts < 1:
            raise ValueError("batch_size and max_attempts must be at least 1")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> DispatcherConfig:
        values: dict[str, Any] = {"max_attempts": settings.outbox_max_attempts}
        values.update(overrides)
        return cls(**values)


def backoff_delay(round_attempt: int, config: DispatcherConfig, rng: random.Random) -> timedelta:
    """The wait after the ``round_attempt``-th failed attempt: base * 2^(n-1), capped, minus jitter."""
    raw = min(config.backoff_cap_seconds, config.backoff_base_seconds * 2 ** (round_attempt - 1))
    return timedelta(seconds=raw * (1 - config.backoff_jitter * rng.random()))


@dataclass(frozen=True, slots=True)
class Claim:
    """A message this dispatcher holds under a lease."""

    envelope: Envelope
    token: uuid.UUID
    round_attempt: int
    lease_until: datetime


ClaimHook = Callable[[list[uuid.UUID]], Awaitable[None]]


@dataclass
class Dispatcher:
    """Claims due outbox messages and delivers them through the registered handlers."""

    db: Database
    config: DispatcherConfig = field(default_factory=DispatcherConfig)
    handlers: HandlerRegistry = field(default_factory=lambda: HANDLERS)
    name: str = field(default_factory=worker_name)
    clock: Callable[[], datetime] = utcnow
    """The time used for due dates, leases and backoff (tests move it forward)."""
    rng: random.Random = field(default_factory=random.Random)
    on_claim: ClaimHook | None = None
    """Called inside the claim transaction with the ids just locked, before they are leased (lets tests
    hold two dispatchers inside their claims at once)."""
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    _stopping: bool = field(default=False, init=False, repr=False)

    async def claim(self) -> list[Claim]:
        """Lease up to ``batch_size`` due messages to this dispatcher (committed before returning)."""
        now = self.clock()
        lease_until = now + timedelta(seconds=self.config.lease_seconds)
        token = uuid.uuid4()
        m = OutboxMessage
        is_due = (
            m.status == "pending",
            m.available_at <= now,
            (m.claimed_until.is_(None)) | (m.claimed_until <= now),
        )
        if self.db.is_sqlite:
            # Look before taking SQLite's single write lock, so an idle dispatcher never holds up writers.
            async with self.db.read() as session:
                if (await session.execute(select(m.id).where(*is_due).limit(1))).first() is None:
                    return []
        due = (
            select(
                m.id,
                m.topic,
                m.key,
                m.payload,
                m.created_at,
                m.attempts,
                m.round_attempts,
                m.claimed_at,
                m.claimed_until,
                m.claimed_by,
            )
            .where(*is_due)
            .order_by(m.available_at, m.id)
            .limit(self.config.batch_size)
            .with_for_update(skip_locked=True)
        )
        async with self.db.transaction() as session:
            rows = (await session.execute(due)).all()
            if not rows:
                return []
            ids = [row.id for row in rows]
            if self.on_claim is not None:
                await self.on_claim(ids)
            abandoned = [row for row in rows if row.claimed_until is not None]
            if abandoned:
                await session.execute(
                    insert(OutboxDelivery),
                    [
                        {
                            "id": new_id(),
                            "message_id": row.id,
                            "attempt": row.attempts,
                            "started_at": row.claimed_at or row.claimed_until,
                            "finished_at": now,
                            "outcome": "abandoned",
                            "error": f"lease expired at {row.claimed_until.isoformat()} without a result "
                            f"(worker {row.claimed_by} stopped or lost the database)",
                            "worker": (row.claimed_by or "?")[:100],
                        }
                        for row in abandoned
                    ],
                )
            # A message whose attempts all died with their worker (one that crashes the process, say) is
            # dead-lettered rather than handed to the next worker to crash it too.
            poison = {row.id for row in abandoned if row.round_attempts >= self._max_attempts(row.topic)}
            if poison:
                await session.execute(
                    update(m)
                    .where(m.id.in_(poison))
                    .values(
                        status="dead",
                        dead_at=now,
                        claimed_at=None,
                        claimed_until=None,
                        claimed_by=None,
                        claim_token=None,
                        last_error="every attempt of this round was abandoned by its worker",
                    )
                )
                for message_id in poison:
                    log.error("outbox_dead_letter", message_id=str(message_id), error="abandoned")
                rows = [row for row in rows if row.id not in poison]
                ids = [row.id for row in rows]
            await session.execute(
                update(m)
                .where(m.id.in_(ids))
                .values(
                    claimed_at=now,
                    claimed_until=lease_until,
                    claimed_by=self.name,
                    claim_token=token,
                    attempts=m.attempts + 1,
                    round_attempts=m.round_attempts + 1,
                )
            )
        return [
            Claim(
                envelope=Envelope(
                    id=row.id,
                    topic=row.topic,
                    key=row.key,
                    payload=dict(row.payload),
                    attempt=row.attempts + 1,
                    enqueued_at=row.created_at,
                ),
                token=token,
                round_attempt=row.round_attempts + 1,
                lease_until=lease_until,
            )
            for row in rows
        ]

    async def deliver(self, claim: Claim) -> str:
        """Run the handler for one claimed message and record the outcome; returns the logged outcome."""
        envelope = claim.envelope
        spec = self.handlers.get(envelope.topic)
        started = self.clock()
        error: str | None = None
        permanent = False
        if spec is None:
            error = f"no delivery handler is registered for topic {envelope.topic!r}"
        else:
            timeout = self.config.handler_timeout_seconds
            if spec.timeout_seconds is not None:
                # Kept inside the lease, with a margin to record the result.
                timeout = min(spec.timeout_seconds, self.config.lease_seconds * 0.8)
            try:
                await asyncio.wait_for(spec.handler(envelope), timeout=timeout)
            except PermanentDeliveryError as exc:
                permanent = True
                error = f"permanent: {exc}" if str(exc) else "permanent failure"
            except TimeoutError:
                error = f"timed out after {timeout:g} s"
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return await self._record(claim, started, error, permanent, self._max_attempts(envelope.topic))

    def _max_attempts(self, topic: str) -> int:
        spec = self.handlers.get(topic)
        return (spec.max_attempts if spec else None) or self.config.max_attempts

    async def _record(
        self, claim: Claim, started: datetime, error: str | None, permanent: bool, max_attempts: int
    ) -> str:
        finished = self.clock()
        envelope = claim.envelope
        if error is not None:
            error = error[: self.config.error_max_chars]
        released: dict[str, Any] = {
            "claimed_at": None,
            "claimed_until": None,
            "claimed_by": None,
            "claim_token": None,
        }
        if error is None:
            values = {**released, "status": "delivered", "delivered_at": finished, "last_error": None}
        elif permanent or claim.round_attempt >= max_attempts:
            values = {**released, "status": "dead", "dead_at": finished, "last_error": error}
        else:
            delay = backoff_delay(claim.round_attempt, self.config, self.rng)
            values = {**released, "available_at": finished + delay, "last_error": error}
        m = OutboxMessage
        async with self.db.transaction() as session:
            applied = (
                await session.execute(
                    update(m)
                    .where(m.id == envelope.id, m.claim_token == claim.token, m.status == "pending")
                    .values(**values)
                    .returning(m.id)
                )
            ).scalar_one_or_none()
            if applied is not None:
                outcome = "delivered" if error is None else "failed"
                logged_error = error
            else:
                outcome = "lease_lost"
                result = "delivered" if error is None else error
                logged_error = f"finished after its lease expired; result not applied: {result}"[
                    : self.config.error_max_chars
                ]
            await session.execute(
                insert(OutboxDelivery).values(
                    id=new_id(),
                    message_id=envelope.id,
                    attempt=envelope.attempt,
                    started_at=started,
                    finished_at=finished,
                    outcome=outcome,
                    error=logged_error,
                    worker=self.name[:100],
                )
            )
        fields = {"message_id": str(envelope.id), "topic": envelope.topic, "attempt": envelope.attempt}
        if outcome == "delivered":
            log.info("outbox_delivered", **fields)
        elif outcome == "lease_lost":
            log.warning("outbox_lease_lost", **fields)
        elif values.get("status") == "dead":
            log.error("outbox_dead_letter", error=error, **fields)
        else:
            log.warning("outbox_delivery_failed", error=error, retry_at=str(values["available_at"]), **fields)
        return outcome

    async def dispatch_once(self) -> int:
        """Claim one batch and deliver it; returns how many messages were attempted."""
        claims = await self.claim()
        if claims:
            await asyncio.gather(*(self._deliver_safely(claim) for claim in claims))
        return len(claims)

    async def _deliver_safely(self, claim: Claim) -> None:
        try:
            await self.deliver(claim)
        except Exception:
            # Recording failed (the database went away): the lease expires and the message is retried.
            log.exception("outbox_record_failed", message_id=str(claim.envelope.id))

    def wake(self) -> None:
        """Look for due messages now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the batch in hand, then return from :meth:`run`."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Deliver until :meth:`stop` is called; survives database outages by waiting and retrying."""
        loop = asyncio.get_running_loop()

        def waker() -> None:
            loop.call_soon_threadsafe(self._wake.set)

        _wakers.add(waker)
        failures = 0
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    handled = await self.dispatch_once()
                    failures = 0
                except Exception:
                    failures += 1
                    log.exception("outbox_claim_failed", consecutive=failures)
                    handled = 0
                if handled and not self._stopping:
                    continue
                wait = self.config.poll_seconds * min(2 ** max(failures - 1, 0), 30)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
        finally:
            _wakers.discard(waker)


# --- what admins and housekeeping need --------------------------------------------------------------------


async def list_dead_letters(
    session: AsyncSession, *, limit: int, before: uuid.UUID | None = None, topic: str | None = None
) -> Sequence[OutboxMessage]:
    """Dead letters, newest first (by message id), ``limit`` of them after the cursor ``before``."""
    m = OutboxMessage
    query = select(m).where(m.status == "dead")
    if topic is not None:
        query = query.where(m.topic == topic)
    if before is not None:
        query = query.where(m.id < before)
    return (await session.execute(query.order_by(m.id.desc()).limit(limit))).scalars().all()


async def get_message(
    session: AsyncSession, message_id: uuid.UUID
) -> tuple[OutboxMessage, Sequence[OutboxDelivery]]:
    """One message and its delivery log (oldest attempt first), or ``outbox_message_not_found``."""
    message = await session.get(OutboxMessage, message_id)
    if message is None:
        raise OUTBOX_MESSAGE_NOT_FOUND(
            f"Không có thông điệp {message_id}", f"No outbox message {message_id}", message_id=message_id
        )
    log_query = (
        select(OutboxDelivery)
        .where(OutboxDelivery.message_id == message_id)
        .order_by(OutboxDelivery.attempt, OutboxDelivery.finished_at, OutboxDelivery.id)
    )
    return message, (await session.execute(log_query)).scalars().all()


async def retry_dead_letter(
    session: AsyncSession, message_id: uuid.UUID, *, by: uuid.UUID, now: datetime | None = None
) -> tuple[OutboxMessage, Sequence[OutboxDelivery]]:
    """Put a dead letter back in the queue for a new round of attempts, due now.

    Idempotent in effect: a message that is not dead (already requeued, being retried, delivered) is left
    as it is. Returns the message as it now stands, with its delivery log.
    """
    now = now or utcnow()
    m = OutboxMessage
    requeued = (
        await session.execute(
            update(m)
            .where(m.id == message_id, m.status == "dead")
            .values(
                status="pending",
                available_at=now,
                round_attempts=0,
                dead_at=None,
                requeue_count=m.requeue_count + 1,
                last_requeued_at=now,
                last_requeued_by=by,
            )
            .returning(m.id)
        )
    ).scalar_one_or_none()
    if requeued is not None:
        session.sync_session.info[_ENQUEUED] = True
        log.info("outbox_dead_letter_requeued", message_id=str(message_id), by=str(by))
    message, deliveries = await get_message(session, message_id)
    await session.refresh(message)
    return message, deliveries


async def purge_delivered(
    db: Database, *, older_than: timedelta, now: datetime | None = None, batch_size: int = 1000
) -> int:
    """Delete messages delivered before ``now - older_than`` and their delivery log, in short batches.
    Dead and pending messages are never purged. Returns how many messages were deleted."""
    cutoff = (now or utcnow()) - older_than
    m = OutboxMessage
    deleted = 0
    while True:
        async with db.transaction() as session:
            ids = (
                (
                    await session.execute(
                        select(m.id)
                        .where(m.status == "delivered", m.delivered_at < cutoff)
                        .order_by(m.delivered_at)
                        .limit(batch_size)
                    )
                )
                .scalars()
                .all()
            )
            if not ids:
                return deleted
            await session.execute(delete(OutboxDelivery).where(OutboxDelivery.message_id.in_(ids)))
            await session.execute(delete(m).where(m.id.in_(ids)))
            deleted += len(ids)
