"""What the admin API sends about outbox messages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from app.core.models import OutboxDelivery, OutboxMessage

__all__ = ["DeadLetterPage", "DeliveryAttempt", "OutboxMessageDetail", "OutboxMessageSummary"]

MessageStatus = Literal["pending", "delivered", "dead"]


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class DeliveryAttempt(msgspec.Struct, kw_only=True):
    """One attempt to deliver a message."""

    attempt: Annotated[
        int, _doc("Attempt number, from 1; an abandoned attempt and its late result share one")
    ]
    started_at: Annotated[datetime, _doc("When the attempt started (UTC)")]
    finished_at: Annotated[datetime, _doc("When its outcome was recorded (UTC)")]
    outcome: Annotated[
        Literal["delivered", "failed", "abandoned", "lease_lost"],
        _doc(
            "delivered; failed (will be retried, or dead-lettered after the last attempt); abandoned (the "
            "worker stopped mid-delivery and its lease expired); lease_lost (a worker finished after its "
            "lease expired: its result was not applied)"
        ),
    ]
    error: Annotated[str | None, _doc("The error, cut to 2,000 characters")] = None
    worker: Annotated[str, _doc("The worker process that made the attempt")]

    @classmethod
    def of(cls, row: OutboxDelivery) -> DeliveryAttempt:
        return cls(
            attempt=row.attempt,
            started_at=row.started_at,
            finished_at=row.finished_at,
            outcome=row.outcome,  # type: ignore[arg-type]
            error=row.error,
            worker=row.worker,
        )


class OutboxMessageSummary(msgspec.Struct, kw_only=True):
    """A message in a list."""

    id: Annotated[uuid.UUID, _doc("The stable message id receivers deduplicate on")]
    topic: Annotated[str, _doc("What kind of message, e.g. a biller confirmation or a push notification")]
    key: Annotated[str | None, _doc("The producer's deduplication key, if any")] = None
    status: Annotated[MessageStatus, _doc("pending (queued or being retried), delivered, or dead")]
    attempts: Annotated[int, _doc("Delivery attempts so far, over every round")]
    last_error: Annotated[str | None, _doc("The error of the latest failed attempt")] = None
    created_at: Annotated[datetime, _doc("When the message was written (UTC)")]
    available_at: Annotated[datetime, _doc("When it is (or was) next due (UTC)")]
    dead_at: Annotated[datetime | None, _doc("When it was dead-lettered (UTC)")] = None

    @classmethod
    def of(cls, row: OutboxMessage) -> OutboxMessageSummary:
        return cls(
            id=row.id,
            topic=row.topic,
            key=row.key,
            status=row.status,  # type: ignore[arg-type]
            attempts=row.attempts,
            last_error=row.last_error,
            created_at=row.created_at,
            available_at=row.available_at,
            dead_at=row.dead_at,
        )


class OutboxMessageDetail(msgspec.Struct, kw_only=True):
    """A message with its payload and its whole delivery log."""

    id: Annotated[uuid.UUID, _doc("The stable message id receivers deduplicate on")]
    topic: Annotated[str, _doc("What kind of message")]
    key: Annotated[str | None, _doc("The producer's deduplication key, if any")] = None
    status: Annotated[MessageStatus, _doc("pending (queued or being retried), delivered, or dead")]
    payload: Annotated[dict[str, Any], _doc("What the handler sends (a JSON object)")]
    attempts: Annotated[int, _doc("Delivery attempts so far, over every round")]
    last_error: Annotated[str | None, _doc("The error of the latest failed attempt")] = None
    created_at: Annotated[datetime, _doc("When the message was written (UTC)")]
    available_at: Annotated[datetime, _doc("When it is (or was) next due (UTC)")]
    delivered_at: Annotated[datetime | None, _doc("When it was delivered (UTC)")] = None
    dead_at: Annotated[datetime | None, _doc("When it was dead-lettered (UTC)")] = None
    requeue_count: Annotated[int, _doc("How many times an admin put it back in the queue")]
    last_requeued_at: Annotated[datetime | None, _doc("When an admin last put it back (UTC)")] = None
    last_requeued_by: Annotated[uuid.UUID | None, _doc("The admin who last put it back")] = None
    deliveries: Annotated[list[DeliveryAttempt], _doc("Every attempt, oldest first")]

    @classmethod
    def of(cls, row: OutboxMessage, deliveries: list[OutboxDelivery]) -> OutboxMessageDetail:
        return cls(
            id=row.id,
            topic=row.topic,
            key=row.key,
            status=row.status,  # type: ignore[arg-type]
            payload=dict(row.payload),
            attempts=row.attempts,
            last_error=row.last_error,
            created_at=row.created_at,
            available_at=row.available_at,
            delivered_at=row.delivered_at,
            dead_at=row.dead_at,
            requeue_count=row.requeue_count,
            last_requeued_at=row.last_requeued_at,
            last_requeued_by=row.last_requeued_by,
            deliveries=[DeliveryAttempt.of(d) for d in deliveries],
        )


class DeadLetterPage(msgspec.Struct, kw_only=True):
    """One page of dead letters, newest first."""

    items: Annotated[list[OutboxMessageSummary], _doc("Dead letters on this page")]
    next_cursor: Annotated[str | None, _doc("Pass as `cursor` for the next page; null on the last page")] = (
        None
    )
