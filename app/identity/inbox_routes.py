"""``/api/v1/me/inbox``: the signed-in user's notifications, their real-time stream and push devices.

Every route works on the caller's own inbox only: another user's notification or device answers 404.
The POST routes take an ``Idempotency-Key`` like every state-changing POST (``app.core.idempotency``): a
retry answers the first response again.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Database
from app.core.deps import AUTHENTICATED
from app.core.errors import NOT_FOUND, SERVICE_UNAVAILABLE, VALIDATION_FAILED
from app.core.idempotency import IDEMPOTENCY_ERRORS, IdempotencyKey, idempotent_response, scope_of
from app.core.security import Caller
from app.core.settings import Settings
from app.identity import inbox
from app.identity.inbox_schemas import (
    MarkAllReadResult,
    Notification,
    NotificationPage,
    PushDeviceOut,
    PushTokenIn,
    SandboxPush,
    UnreadCount,
    device_view,
    notification_view,
    sandbox_view,
)

__all__ = ["InboxController"]


def _encode_cursor(notification_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(b"inbox:" + notification_id.bytes).decode().rstrip("=")


def _decode_cursor(cursor: str) -> uuid.UUID:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        if not raw.startswith(b"inbox:") or len(raw) != 22:
            raise ValueError("not an inbox cursor")
        return uuid.UUID(bytes=raw[6:])
    except ValueError as exc:
        raise VALIDATION_FAILED(
            "Con trỏ phân trang không hợp lệ",
            "Invalid pagination cursor",
            errors=[{"field": "cursor", "source": "query", "message": "not a cursor from this list"}],
        ) from exc


def _sse(event: inbox.StreamEvent) -> ServerSentEventMessage:
    return ServerSentEventMessage(
        data=event.data, event=event.event, id=event.id, comment=event.comment, retry=event.retry_ms
    )


class InboxController(Controller):
    path = "/api/v1/me/inbox"
    tags = ["identity"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]

    @get("/", operation_id="listInbox", summary="My notifications", opt={"errors": [VALIDATION_FAILED]})
    async def list_inbox(
        self,
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        limit: Annotated[int, QueryParameter(ge=1, le=100, description="Page size (1-100).")] = 20,
        cursor: Annotated[
            str | None, QueryParameter(max_length=64, description="`next_cursor` of the previous page.")
        ] = None,
        unread_only: Annotated[bool, QueryParameter(description="Only unread notifications.")] = False,
    ) -> NotificationPage:
        """The signed-in user's notifications, newest first, with the number still unread."""
        before = _decode_cursor(cursor) if cursor else None
        async with db.read() as session:
            rows = await inbox.list_notifications(
                session, caller.user_id, limit=limit + 1, before_id=before, unread_only=unread_only
            )
            unread = await inbox.count_unread(session, caller.user_id)
        more = len(rows) > limit
        rows = rows[:limit]
        return NotificationPage(
            items=[notification_view(r) for r in rows],
            next_cursor=_encode_cursor(rows[-1].id) if more and rows else None,
            unread_count=unread,
        )

    @get("/unread-count", operation_id="countUnreadInbox", summary="My unread count", opt={"errors": []})
    async def unread_count(
        self, db: NamedDependency[Database], caller: NamedDependency[Caller]
    ) -> UnreadCount:
        """How many of the signed-in user's notifications are unread (for the badge)."""
        async with db.read() as session:
            return UnreadCount(unread_count=await inbox.count_unread(session, caller.user_id))

    @get(
        "/stream",
        operation_id="streamInbox",
        summary="My notifications in real time (SSE)",
        opt={"errors": [SERVICE_UNAVAILABLE]},
        media_type="text/event-stream",
        response_description="A stream of server-sent events: ready, notification, unread_count.",
    )
    async def stream(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        caller: NamedDependency[Caller],
        last_event_id: Annotated[
            str | None,
            HeaderParameter(
                name="Last-Event-ID",
                required=False,
                max_length=64,
                description="Id of the last notification received; the ones posted since are sent first.",
            ),
        ] = None,
    ) -> ServerSentEvent:
        """Server-sent events (`text/event-stream`) for the signed-in user: `ready` (data
        `{"unread_count": n}`) once listening, then `notification` (id = the notification's id, data = the
        notification as in the list) and `unread_count` events as they happen, and a `: ping` comment every
        15 s. The stream ends when the access token would expire; reconnect with a fresh token and the
        `Last-Event-ID` header to receive what was posted meanwhile."""
        pubsub = inbox.pubsub_of(request.app)
        if pubsub is None:
            raise SERVICE_UNAVAILABLE(
                "Thông báo tức thời tạm thời không khả dụng", "Real-time notifications are unavailable"
            )
        after: uuid.UUID | None = None
        if last_event_id:
            try:
                after = uuid.UUID(last_event_id)
            except ValueError:
                after = None

        async def events() -> AsyncIterator[ServerSentEventMessage]:
            async for event in inbox.inbox_events(
                db,
                pubsub,
                caller.user_id,
                last_event_id=after,
                lifetime_seconds=settings.access_token_ttl_seconds,
            ):
                yield _sse(event)

        return ServerSentEvent(events())

    @get(
        "/push-tokens",
        operation_id="listPushDevices",
        summary="My push devices",
        opt={"errors": []},
    )
    async def list_devices(
        self, db: NamedDependency[Database], caller: NamedDependency[Caller]
    ) -> list[PushDeviceOut]:
        """The devices that receive the signed-in user's push notifications."""
        async with db.read() as session:
            return [device_view(d) for d in await inbox.list_push_devices(session, caller.user_id)]

    @post(
        "/push-tokens",
        operation_id="registerPushDevice",
        summary="Register a push token",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS, VALIDATION_FAILED]},
    )
    async def register_device(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        data: JSONBody[PushTokenIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[PushDeviceOut]:
        """Register this device's FCM or APNs token for the signed-in user (after sign-in, and whenever the
        OS issues a new token). Registering the same token again refreshes it; a token registered earlier by
        another account on this phone moves to the signed-in user."""

        async def effect(session: AsyncSession) -> PushDeviceOut:
            device = await inbox.register_push_device(
                session,
                caller.user_id,
                token=data.token,
                platform=data.platform,
                device_name=data.device_name,
                language=data.language,
            )
            return device_view(device)

        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=data,
            effect=effect,
            status_code=200,
        )

    @delete(
        "/push-tokens/{device_id:uuid}",
        operation_id="removePushDevice",
        summary="Remove a push device",
        opt={"errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND]},
    )
    async def remove_device(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        device_id: FromPath[uuid.UUID],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[None]:
        """Stop sending the signed-in user's pushes to this device (e.g. at sign-out)."""

        async def effect(session: AsyncSession) -> None:
            await inbox.remove_push_device(session, caller.user_id, device_id)

        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=None,
            effect=effect,
            status_code=204,
        )

    @get(
        "/push-sandbox",
        operation_id="listSandboxPushes",
        summary="Pushes the sandbox recorded (development)",
        opt={"errors": [NOT_FOUND]},
    )
    async def sandbox(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        caller: NamedDependency[Caller],
    ) -> list[SandboxPush]:
        """Development and demo only (404 in production): the pushes the sandbox sender recorded for the
        signed-in user's devices instead of sending them, newest first."""
        if settings.is_production:
            raise NOT_FOUND()
        async with db.read() as session:
            return [sandbox_view(p) for p in await inbox.list_sandbox_pushes(session, caller.user_id)]

    @post(
        "/read-all",
        operation_id="markInboxRead",
        summary="Mark my inbox read",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS]},
    )
    async def mark_all_read(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        up_to: Annotated[
            uuid.UUID | None,
            QueryParameter(
                description="Id of the newest notification the user has seen: newer ones stay unread."
            ),
        ] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[MarkAllReadResult]:
        """Mark the signed-in user's unread notifications read (up to `up_to` if given). A retry with the
        same Idempotency-Key answers the first count; a new request marks nothing more."""

        async def effect(session: AsyncSession) -> MarkAllReadResult:
            marked, unread = await inbox.mark_all_read(session, caller.user_id, up_to=up_to)
            return MarkAllReadResult(marked=marked, unread_count=unread)

        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=None,
            effect=effect,
            status_code=200,
        )

    @get(
        "/{notification_id:uuid}",
        operation_id="getInboxNotification",
        summary="One of my notifications",
        opt={"errors": [NOT_FOUND]},
    )
    async def get_one(
        self,
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        notification_id: FromPath[uuid.UUID],
    ) -> Notification:
        """One notification of the signed-in user (404 for anyone else's)."""
        async with db.read() as session:
            return notification_view(await inbox.get_notification(session, caller.user_id, notification_id))

    @post(
        "/{notification_id:uuid}/read",
        operation_id="markNotificationRead",
        summary="Mark a notification read",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND]},
    )
    async def mark_read(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        notification_id: FromPath[uuid.UUID],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Notification]:
        """Mark one of the signed-in user's notifications read (404 for anyone else's). A repeat keeps the
        first reading time."""

        async def effect(session: AsyncSession) -> Notification:
            return notification_view(await inbox.mark_read(session, caller.user_id, notification_id))

        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=None,
            effect=effect,
            status_code=200,
        )
