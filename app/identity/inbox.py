"""The citizen's inbox: notifications stored per user, pushed in real time and to the user's phones.

Other modules post with :func:`post_notification` inside their own transaction; the notification exists
exactly when their work commits. Delivery happens only *after* the commit:

1. the notification is published on the user's pub/sub channel (``inbox:{user_id}``; Redis in production,
   in-process in embedded mode), which every open ``GET /api/v1/me/inbox/stream`` of that user relays as a
   server-sent event;
2. it is pushed through the :class:`~app.identity.push.PushSender` to every device the user registered.

The seam: :func:`post_notification` hands the new ids to :func:`deliver_notifications` through
:func:`app.core.db.on_commit`. That is best effort (a process that dies right after the commit loses the
real-time push, never the notification itself). When the outbox lands, ``post_notification`` writes an
outbox row instead and the outbox handler calls :func:`deliver_notifications` with the same ids, which
gives retries; nothing else changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from litestar import Litestar
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Database, database_of, new_id, on_commit, utcnow
from app.core.errors import NOT_FOUND
from app.core.stores.base import PubSub
from app.identity.inbox_models import InboxNotification, PushDevice, PushSandboxDelivery
from app.identity.inbox_schemas import NotificationRow, notification_view
from app.identity.push import PushMessage, PushPlatform, PushResult, PushSender, PushTarget, push_sender_for

__all__ = [
    "MAX_DEVICES_PER_USER",
    "InboxDelivery",
    "StreamEvent",
    "channel_for",
    "count_unread",
    "deliver_committed",
    "deliver_notifications",
    "get_notification",
    "inbox_events",
    "inbox_lifespan",
    "install_delivery",
    "list_notifications",
    "list_push_devices",
    "list_sandbox_pushes",
    "mark_all_read",
    "mark_read",
    "post_notification",
    "register_push_device",
    "remove_delivery",
    "remove_push_device",
]

log = structlog.get_logger("app.inbox")

MAX_DEVICES_PER_USER = 10
"""Registering one more forgets the device registered least recently."""
MAX_DATA_BYTES = 2048
_KIND = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_PENDING = "inbox.pending"


def channel_for(user_id: uuid.UUID) -> str:
    """The pub/sub channel of one user's inbox (the stores add the deployment's prefix)."""
    return f"inbox:{user_id}"


def _not_found() -> Exception:
    return NOT_FOUND("Không tìm thấy thông báo", "No such notification")


# ---------------------------------------------------------------------------------------------- posting


async def post_notification(
    session: AsyncSession,
    user_id: uuid.UUID,
    kind: str,
    title_vi: str,
    body_vi: str,
    *,
    title_en: str | None = None,
    body_en: str | None = None,
    data: dict[str, Any] | None = None,
) -> InboxNotification:
    """Put a notification in ``user_id``'s inbox, in the caller's transaction.

    ``kind``: dotted snake_case naming what it is about (``bill.due``, ``payment.received``,
    ``dossier.status_changed``); ``title_vi``/``body_vi`` are shown by default, the English texts when the
    device asked for English. ``data``: small JSON with the ids the app needs to open the right screen
    (never personal numbers). After the caller commits, it is streamed and pushed to the user's devices.
    """
    if len(kind) > 64 or not _KIND.match(kind):
        raise ValueError(f"notification kind {kind!r}: dotted snake_case, at most 64 characters")
    for name, text, limit in (
        ("title_vi", title_vi, 200),
        ("body_vi", body_vi, 4000),
        ("title_en", title_en, 200),
        ("body_en", body_en, 4000),
    ):
        if text is not None and len(text) > limit:
            raise ValueError(f"notification {name} longer than {limit} characters")
    if not title_vi.strip() or not body_vi.strip():
        raise ValueError("a notification needs a Vietnamese title and body")
    payload = dict(data or {})
    if len(msgspec.json.encode(payload)) > MAX_DATA_BYTES:
        raise ValueError(f"notification data over {MAX_DATA_BYTES} bytes: send ids, not documents")
    row = InboxNotification(
        user_id=user_id,
        kind=kind,
        title_vi=title_vi,
        body_vi=body_vi,
        title_en=title_en,
        body_en=body_en,
        data=payload,
    )
    session.add(row)
    await session.flush()
    _deliver_after_commit(session, row)
    return row


def _deliver_after_commit(session: AsyncSession, row: InboxNotification) -> None:
    # The rows themselves are kept (the session does not expire them on commit): delivering them needs no
    # second transaction to read back what this one just wrote.
    database = database_of(session)
    delivery = _deliveries.get(database) if database is not None else None
    if delivery is None:
        return
    pending: list[InboxNotification] | None = session.info.get(_PENDING)
    if pending is None:
        pending = []
        session.info[_PENDING] = pending
        rows = pending

        async def deliver() -> None:
            session.info.pop(_PENDING, None)
            await delivery.deliver_rows(list(rows))

        on_commit(session, deliver)
    pending.append(row)


def deliver_committed(db: Database, row: NotificationRow, *, push: bool) -> Coroutine[Any, Any, None] | None:
    """For a money path that wrote ``row`` on the driver (no session): what streams it once committed
    (await it after the commit), None when this database has no delivery. ``push=False`` when the
    transaction saw that the person has no push device, which spares the look-up of devices."""
    delivery = _deliveries.get(db)
    if delivery is None:
        return None
    return delivery.deliver_rows([row], push=push)


def _publish_unread_after_commit(session: AsyncSession, user_id: uuid.UUID, unread: int) -> None:
    database = database_of(session)
    delivery = _deliveries.get(database) if database is not None else None
    if delivery is None:
        return

    async def publish() -> None:
        await delivery.publish(user_id, {"type": "unread_count", "unread_count": unread})

    on_commit(session, publish)


# ---------------------------------------------------------------------------------------------- reading


async def count_unread(session: AsyncSession, user_id: uuid.UUID) -> int:
    statement = select(func.count()).where(
        InboxNotification.user_id == user_id, InboxNotification.read_at.is_(None)
    )
    return int((await session.execute(statement)).scalar_one())


async def list_notifications(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    limit: int,
    before_id: uuid.UUID | None = None,
    unread_only: bool = False,
) -> list[InboxNotification]:
    """The user's notifications, newest first; ``before_id`` continues after a page's last item."""
    statement = select(InboxNotification).where(InboxNotification.user_id == user_id)
    if before_id is not None:
        statement = statement.where(InboxNotification.id < before_id)
    if unread_only:
        statement = statement.where(InboxNotification.read_at.is_(None))
    statement = statement.order_by(InboxNotification.id.desc()).limit(limit)
    return list((await session.execute(statement)).scalars())


async def notifications_after(
    session: AsyncSession, user_id: uuid.UUID, after_id: uuid.UUID, *, limit: int = 100
) -> list[InboxNotification]:
    """The user's notifications newer than ``after_id``, oldest first (a reconnecting stream's backlog)."""
    statement = (
        select(InboxNotification)
        .where(InboxNotification.user_id == user_id, InboxNotification.id > after_id)
        .order_by(InboxNotification.id)
        .limit(limit)
    )
    return list((await session.execute(statement)).scalars())


async def get_notification(
    session: AsyncSession, user_id: uuid.UUID, notification_id: uuid.UUID
) -> InboxNotification:
    """The notification, if it is ``user_id``'s; anyone else's answers ``not_found``."""
    row = (
        await session.execute(
            select(InboxNotification).where(
                InboxNotification.id == notification_id, InboxNotification.user_id == user_id
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise _not_found()
    return row


# ---------------------------------------------------------------------------------------------- marking


async def mark_read(
    session: AsyncSession, user_id: uuid.UUID, notification_id: uuid.UUID
) -> InboxNotification:
    """Mark one of the user's notifications read. Repeating it changes nothing (the first time is kept)."""
    result = await session.execute(
        update(InboxNotification)
        .where(
            InboxNotification.id == notification_id,
            InboxNotification.user_id == user_id,
            InboxNotification.read_at.is_(None),
        )
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    row = (
        await session.execute(
            select(InboxNotification)
            .where(InboxNotification.id == notification_id, InboxNotification.user_id == user_id)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if row is None:
        raise _not_found()
    if getattr(result, "rowcount", 0):
        _publish_unread_after_commit(session, user_id, await count_unread(session, user_id))
    return row


async def mark_all_read(
    session: AsyncSession, user_id: uuid.UUID, *, up_to: uuid.UUID | None = None
) -> tuple[int, int]:
    """Mark the user's unread notifications read (only those up to ``up_to`` when given, so one that
    arrived after the app drew the list stays unread). Returns (marked now, still unread)."""
    statement = (
        update(InboxNotification)
        .where(InboxNotification.user_id == user_id, InboxNotification.read_at.is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if up_to is not None:
        statement = statement.where(InboxNotification.id <= up_to)
    result = await session.execute(statement)
    marked = int(getattr(result, "rowcount", 0) or 0)
    unread = await count_unread(session, user_id)
    if marked:
        _publish_unread_after_commit(session, user_id, unread)
    return marked, unread


# ------------------------------------------------------------------------------------------ push devices


async def register_push_device(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    token: str,
    platform: PushPlatform,
    device_name: str | None = None,
    language: str = "vi",
) -> PushDevice:
    """Register (or refresh) a device's push token for ``user_id``. Idempotent.

    A token identifies a device, not a person: registered by another user (someone else signed in on that
    phone), it moves to them, and the previous user stops receiving pushes there."""
    now = utcnow()
    row_values = {
        "id": new_id(),
        "created_at": now,
        "user_id": user_id,
        "platform": platform,
        "token": token,
        "device_name": device_name,
        "language": language,
        "last_registered_at": now,
    }
    changes = {
        "user_id": user_id,
        "platform": platform,
        "device_name": device_name,
        "language": language,
        "last_registered_at": now,
    }
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(PushDevice)
        .values(row_values)
        .on_conflict_do_update(index_elements=["token"], set_=changes)
        .returning(PushDevice.id)
    )
    device_id = (await session.execute(statement)).scalar_one()
    surplus = (
        await session.execute(
            select(PushDevice.id)
            .where(PushDevice.user_id == user_id)
            .order_by(PushDevice.last_registered_at.desc(), PushDevice.id.desc())
            .offset(MAX_DEVICES_PER_USER)
        )
    ).scalars()
    stale = [d for d in surplus if d != device_id]
    if stale:
        await session.execute(delete(PushDevice).where(PushDevice.id.in_(stale)))
    return (
        await session.execute(
            select(PushDevice).where(PushDevice.id == device_id).execution_options(populate_existing=True)
        )
    ).scalar_one()


async def list_push_devices(session: AsyncSession, user_id: uuid.UUID) -> list[PushDevice]:
    statement = (
        select(PushDevice)
        .where(PushDevice.user_id == user_id)
        .order_by(PushDevice.last_registered_at.desc(), PushDevice.id.desc())
    )
    return list((await session.execute(statement)).scalars())


async def remove_push_device(session: AsyncSession, user_id: uuid.UUID, device_id: uuid.UUID) -> None:
    """Stop pushing to one of the user's devices; another user's device answers ``not_found``."""
    result = await session.execute(
        delete(PushDevice).where(PushDevice.id == device_id, PushDevice.user_id == user_id)
    )
    if not getattr(result, "rowcount", 0):
        raise NOT_FOUND("Không tìm thấy thiết bị", "No such device")


async def list_sandbox_pushes(
    session: AsyncSession, user_id: uuid.UUID, *, limit: int = 50
) -> list[PushSandboxDelivery]:
    statement = (
        select(PushSandboxDelivery)
        .where(PushSandboxDelivery.user_id == user_id)
        .order_by(PushSandboxDelivery.id.desc())
        .limit(limit)
    )
    return list((await session.execute(statement)).scalars())


# --------------------------------------------------------------------------------------------- delivery


class InboxDelivery:
    """Publishes notifications to the users' channels and pushes them to their devices (after commit)."""

    def __init__(self, db: Database, pubsub: Callable[[], PubSub | None], sender: PushSender) -> None:
        self.db = db
        self._pubsub = pubsub
        self.sender = sender
        self._tasks: set[asyncio.Task[None]] = set()

    async def publish(self, user_id: uuid.UUID, message: dict[str, Any]) -> bool:
        """Publish one event on the user's channel; False when real time is unavailable (never raises)."""
        pubsub = self._pubsub()
        if pubsub is None:
            return False
        try:
            await pubsub.publish(channel_for(user_id), msgspec.json.encode(message))
        except Exception as exc:
            log.warning("inbox_publish_failed", error=type(exc).__name__)
            return False
        return True

    async def deliver(self, notification_ids: Sequence[uuid.UUID]) -> None:
        """Stream, then push (in the background), the given committed notifications."""
        if not notification_ids:
            return
        async with self.db.read() as session:
            rows = list(
                (
                    await session.execute(
                        select(InboxNotification)
                        .where(InboxNotification.id.in_(list(notification_ids)))
                        .order_by(InboxNotification.id)
                    )
                ).scalars()
            )
        await self.deliver_rows(rows)

    async def deliver_rows(self, rows: Sequence[NotificationRow], *, push: bool = True) -> None:
        """Stream, then push (in the background), committed notifications already in memory."""
        for row in rows:
            view = msgspec.to_builtins(notification_view(row))
            await self.publish(row.user_id, {"type": "notification", "notification": view})
        if push:
            for row in rows:
                self._spawn(self._push(row))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the pushes under way (at shutdown, and in tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _push(self, row: NotificationRow) -> None:
        try:
            async with self.db.read() as session:
                devices = await list_push_devices(session, row.user_id)
                badge = await count_unread(session, row.user_id) if devices else 0
            for device in devices:
                english = device.language == "en"
                message = PushMessage(
                    title=(row.title_en if english and row.title_en else row.title_vi),
                    body=(row.body_en if english and row.body_en else row.body_vi),
                    notification_id=row.id,
                    data={"notification_id": str(row.id), "kind": row.kind},
                    badge=badge,
                )
                target = PushTarget(
                    device_id=device.id,
                    user_id=device.user_id,
                    platform="apns" if device.platform == "apns" else "fcm",
                    token=device.token,
                )
                result = await self.sender.send(target, message)
                if result is PushResult.INVALID_TOKEN:
                    async with self.db.transaction() as session:
                        await session.execute(
                            delete(PushDevice).where(
                                PushDevice.id == device.id, PushDevice.token == device.token
                            )
                        )
                    log.info("push_device_forgotten", device=str(device.id))
                elif result is PushResult.FAILED:
                    log.warning("push_failed", device=str(device.id), sender=self.sender.name)
        except Exception as exc:
            log.error("push_delivery_failed", notification=str(row.id), exc_info=exc)


_deliveries: weakref.WeakKeyDictionary[Database, InboxDelivery] = weakref.WeakKeyDictionary()


def install_delivery(db: Database, delivery: InboxDelivery) -> None:
    """Make notifications posted through ``db``'s sessions be delivered by ``delivery`` after commit."""
    _deliveries[db] = delivery


def remove_delivery(db: Database) -> None:
    _deliveries.pop(db, None)


async def deliver_notifications(db: Database, notification_ids: Sequence[uuid.UUID]) -> None:
    """Deliver committed notifications (the outbox handler's entry point)."""
    delivery = _deliveries.get(db)
    if delivery is not None:
        await delivery.deliver(notification_ids)


def _pubsub_of(app: Litestar) -> PubSub | None:
    stores = app.state.get("stores")
    pubsub = getattr(stores, "pubsub", None)
    return pubsub if isinstance(pubsub, PubSub) else None


@contextlib.asynccontextmanager
async def inbox_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Wires delivery for the app's database: pub/sub from ``app.state.stores``, pushes by the sender of
    the environment. Pushes still under way are awaited at shutdown."""
    db: Database = app.state.db
    delivery = InboxDelivery(db, lambda: _pubsub_of(app), push_sender_for(app.state.settings, db))
    install_delivery(db, delivery)
    app.state.inbox_delivery = delivery
    try:
        yield
    finally:
        await delivery.drain()
        remove_delivery(db)


def pubsub_of(app: Litestar) -> PubSub | None:
    """The app's pub/sub, or None when the app has no stores (real time unavailable)."""
    return _pubsub_of(app)


# ------------------------------------------------------------------------------------------- streaming


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One server-sent event: a named event with JSON data (and an id for notifications), or a comment."""

    event: str | None = None
    data: str | None = None
    id: str | None = None
    comment: str | None = None
    retry_ms: int | None = None


async def inbox_events(
    db: Database,
    pubsub: PubSub,
    user_id: uuid.UUID,
    *,
    last_event_id: uuid.UUID | None = None,
    lifetime_seconds: float = 900,
    heartbeat_seconds: float = 15,
    ready_timeout_seconds: float = 5,
) -> AsyncIterator[StreamEvent]:
    """The user's inbox as a stream: ``ready`` (with the unread count) once subscribed, then any
    notifications missed since ``last_event_id``, then each ``notification`` and ``unread_count`` change
    as it happens, with a comment every ``heartbeat_seconds``; ends after ``lifetime_seconds`` (the access
    token's lifetime) so that a revoked session does not keep listening: clients reconnect with
    ``Last-Event-ID`` and miss nothing."""
    channel = channel_for(user_id)
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1000)
    overflow = asyncio.Event()
    subscription = pubsub.subscribe(channel)

    async def pump() -> None:
        async for message in subscription:
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                overflow.set()
                return

    start: Callable[[], Awaitable[None]] | None = getattr(subscription, "start", None)
    if start is not None:
        # Stores whose subscriptions can be started explicitly are live once ``start()`` returns.
        try:
            await start()
        except Exception as exc:
            log.warning("inbox_subscribe_failed", error=type(exc).__name__)
            return
    pump_task = asyncio.get_running_loop().create_task(pump())
    try:
        early = (
            []
            if start is not None
            else await _await_subscription(pubsub, channel, queue, pump_task, ready_timeout_seconds)
        )
        async with db.read() as session:
            unread = await count_unread(session, user_id)
            backlog = (
                await notifications_after(session, user_id, last_event_id)
                if last_event_id is not None
                else []
            )
        yield StreamEvent(
            event="ready",
            data=msgspec.json.encode({"unread_count": unread}).decode(),
            retry_ms=3000,
        )
        sent: set[str] = set()
        for row in backlog:
            view = notification_view(row)
            sent.add(view.id)
            yield StreamEvent(event="notification", id=view.id, data=msgspec.json.encode(view).decode())
        deadline = asyncio.get_running_loop().time() + lifetime_seconds
        pending = list(early)
        while True:
            if pending:
                raw = pending.pop(0)
            else:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0 or overflow.is_set() or pump_task.done():
                    return
                try:
                    raw = await asyncio.wait_for(queue.get(), timeout=min(heartbeat_seconds, remaining))
                except TimeoutError:
                    yield StreamEvent(comment="ping")
                    continue
            event = _stream_event(raw, sent)
            if event is not None:
                yield event
    finally:
        pump_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump_task
        closer: Callable[[], Awaitable[None]] | None = getattr(subscription, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()


async def _await_subscription(
    pubsub: PubSub,
    channel: str,
    queue: asyncio.Queue[bytes],
    pump_task: asyncio.Task[None],
    wait_seconds: float,
) -> list[bytes]:
    """Publish a probe until it comes back, proving the subscription is live before the backlog is read
    (so nothing committed in between is lost). Returns messages that arrived meanwhile."""
    nonce = uuid.uuid4().hex
    probe = msgspec.json.encode({"type": "probe", "nonce": nonce})
    early: list[bytes] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while loop.time() < deadline and not pump_task.done():
        try:
            await pubsub.publish(channel, probe)
        except Exception as exc:
            log.warning("inbox_probe_failed", error=type(exc).__name__)
            break
        wait_until = min(deadline, loop.time() + 0.25)
        while (remaining := wait_until - loop.time()) > 0:
            try:
                raw = await asyncio.wait_for(queue.get(), timeout=remaining)
            except TimeoutError:
                break
            if raw == probe:
                return early
            early.append(raw)
    log.warning("inbox_subscription_unconfirmed", channel_kind="inbox")
    return early


def _stream_event(raw: bytes, sent: set[str]) -> StreamEvent | None:
    try:
        message = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    if not isinstance(message, dict):
        return None
    kind = message.get("type")
    if kind == "notification" and isinstance(message.get("notification"), dict):
        notification = message["notification"]
        notification_id = str(notification.get("id", ""))
        if notification_id in sent:
            return None
        sent.add(notification_id)
        return StreamEvent(
            event="notification", id=notification_id, data=msgspec.json.encode(notification).decode()
        )
    if kind == "unread_count" and isinstance(message.get("unread_count"), int):
        return StreamEvent(
            event="unread_count", data=msgspec.json.encode({"unread_count": message["unread_count"]}).decode()
        )
    return None
