"""The admin console's API for the outbox: dead letters, their delivery log, and putting them back."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.outbox import retry_as
from app.admin.schemas import DeadLetterPage, OutboxMessageDetail, OutboxMessageSummary
from app.core.audit import client_address
from app.core.db import Database
from app.core.deps import AUTHENTICATED
from app.core.errors import VALIDATION_FAILED, FieldError
from app.core.idempotency import IDEMPOTENCY_ERRORS, IdempotencyKey, idempotent_response, scope_of
from app.core.outbox import (
    OUTBOX_MESSAGE_NOT_FOUND,
    get_message,
    list_dead_letters,
)
from app.core.ratelimit import rate_limit
from app.core.security import Caller, require_duty

__all__ = ["OutboxAdminController", "admin_routes"]

MessageId = Annotated[uuid.UUID, PathParameter(description="The message id")]


def _encode_cursor(message_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(message_id.bytes).decode().rstrip("=")


def _decode_cursor(cursor: str) -> uuid.UUID:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (binascii.Error, ValueError) as exc:
        raise VALIDATION_FAILED(
            "Con trỏ phân trang không hợp lệ",
            "Invalid pagination cursor",
            errors=[FieldError(field="cursor", source="query", message="not a cursor from next_cursor")],
        ) from exc


class OutboxAdminController(Controller):
    """Support staff watch the messages that could not leave the system and send them again."""

    path = "/api/v1/admin/outbox"
    tags = ["admin"]
    guards = [require_duty("support"), rate_limit("default")]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]

    @get(
        "/dead-letters",
        operation_id="listOutboxDeadLetters",
        summary="List dead letters",
        opt={"errors": []},
    )
    async def list_dead(
        self,
        db: NamedDependency[Database],
        limit: Annotated[int, QueryParameter(ge=1, le=100, description="Page size (1-100)")] = 50,
        cursor: Annotated[
            str | None, QueryParameter(max_length=64, description="`next_cursor` of the previous page")
        ] = None,
        topic: Annotated[
            str | None, QueryParameter(max_length=100, description="Only messages of this topic")
        ] = None,
    ) -> DeadLetterPage:
        """Messages whose every delivery attempt failed, newest first. Admins with the `support` duty (or
        `superadmin`) only."""
        before = _decode_cursor(cursor) if cursor else None
        async with db.read() as session:
            rows = await list_dead_letters(session, limit=limit + 1, before=before, topic=topic)
        page = list(rows[:limit])
        return DeadLetterPage(
            items=[OutboxMessageSummary.of(row) for row in page],
            next_cursor=_encode_cursor(page[-1].id) if len(rows) > limit else None,
        )

    @get(
        "/messages/{message_id:uuid}",
        operation_id="getOutboxMessage",
        summary="Show an outbox message",
        opt={"errors": [OUTBOX_MESSAGE_NOT_FOUND]},
    )
    async def show(self, db: NamedDependency[Database], message_id: MessageId) -> OutboxMessageDetail:
        """One message in any state, with its payload and every delivery attempt."""
        async with db.read() as session:
            message, deliveries = await get_message(session, message_id)
        return OutboxMessageDetail.of(message, list(deliveries))

    @post(
        "/messages/{message_id:uuid}/retry",
        operation_id="retryOutboxMessage",
        summary="Retry a dead letter",
        status_code=200,
        opt={"errors": [OUTBOX_MESSAGE_NOT_FOUND, *IDEMPOTENCY_ERRORS]},
    )
    async def retry(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        message_id: MessageId,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[OutboxMessageDetail]:
        """Put a dead letter back in the queue for a new round of attempts, due now. Retrying a message
        that is not dead (already put back, or delivered since) changes nothing and answers its current
        state. Recorded in the audit trail."""

        async def effect(session: AsyncSession) -> OutboxMessageDetail:
            message, deliveries = await retry_as(session, caller, message_id, client_address(request))
            return OutboxMessageDetail.of(message, deliveries)

        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=None,
            effect=effect,
            status_code=200,
        )


admin_routes = [OutboxAdminController]
"""Every admin route; each controller requires a bearer token and guards its own duty."""
