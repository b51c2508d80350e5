"""The inbox as the mobile app sees it (JSON structs of the API and of the real-time stream)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

import msgspec

from app.identity.inbox_models import PushDevice, PushSandboxDelivery
from app.identity.push import token_hint

__all__ = [
    "CommittedNotification",
    "MarkAllReadResult",
    "Notification",
    "NotificationPage",
    "NotificationRow",
    "PushDeviceOut",
    "PushTokenIn",
    "SandboxPush",
    "UnreadCount",
    "device_view",
    "notification_view",
    "sandbox_view",
]


class Notification(msgspec.Struct, kw_only=True):
    """A notification in the user's inbox."""

    id: Annotated[str, msgspec.Meta(description="Opaque id; newer notifications sort after older ones.")]
    kind: Annotated[
        str,
        msgspec.Meta(
            description="What it is about, for the app to pick an icon and a screen "
            "(e.g. bill.due, payment.received, dossier.status_changed)."
        ),
    ]
    title_vi: Annotated[str, msgspec.Meta(description="Title in Vietnamese (always present).")]
    body_vi: Annotated[str, msgspec.Meta(description="Text in Vietnamese (always present).")]
    title_en: Annotated[str | None, msgspec.Meta(description="Title in English, when provided.")] = None
    body_en: Annotated[str | None, msgspec.Meta(description="Text in English, when provided.")] = None
    data: Annotated[
        dict[str, Any],
        msgspec.Meta(description='Ids the app needs to open the right screen, e.g. {"bill_id": "..."}.'),
    ]
    read: Annotated[bool, msgspec.Meta(description="Whether the user has read it.")]
    read_at: Annotated[datetime | None, msgspec.Meta(description="When it was marked read (UTC).")] = None
    created_at: Annotated[datetime, msgspec.Meta(description="When it was posted (UTC).")]


class NotificationPage(msgspec.Struct, kw_only=True):
    """A page of the inbox, newest first."""

    items: Annotated[list[Notification], msgspec.Meta(description="The notifications of this page.")]
    next_cursor: Annotated[
        str | None, msgspec.Meta(description="Pass as `cursor` for the next (older) page; null at the end.")
    ]
    unread_count: Annotated[int, msgspec.Meta(description="Unread notifications in the whole inbox.")]


class UnreadCount(msgspec.Struct, kw_only=True):
    """How many notifications are unread (for the app icon's badge)."""

    unread_count: Annotated[int, msgspec.Meta(description="Unread notifications in the whole inbox.")]


class MarkAllReadResult(msgspec.Struct, kw_only=True):
    """The outcome of marking the inbox read."""

    marked: Annotated[
        int, msgspec.Meta(description="Notifications this request marked read (0 on a repeat).")
    ]
    unread_count: Annotated[
        int, msgspec.Meta(description="Unread notifications left (newer than `up_to`, if given).")
    ]


class PushTokenIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A device's push token, registered after sign-in and whenever the OS gives a new one."""

    token: Annotated[
        str,
        msgspec.Meta(
            min_length=8,
            max_length=512,
            description="The FCM registration token or the APNs device token (hex), as the OS gave it.",
        ),
    ]
    platform: Annotated[
        Literal["fcm", "apns"], msgspec.Meta(description="`fcm` (Android, or iOS via FCM) or `apns`.")
    ]
    device_name: (
        Annotated[
            str, msgspec.Meta(max_length=100, description="A name the user recognises, e.g. 'Galaxy A54'.")
        ]
        | None
    ) = None
    language: Annotated[
        Literal["vi", "en"], msgspec.Meta(description="Language of the pushes to this device.")
    ] = "vi"


class PushDeviceOut(msgspec.Struct, kw_only=True):
    """A device that receives the user's push notifications."""

    id: Annotated[str, msgspec.Meta(description="Opaque id, for removing the device.")]
    platform: Annotated[str, msgspec.Meta(description="`fcm` or `apns`.")]
    token_hint: Annotated[str, msgspec.Meta(description="The token's last characters (the token is secret).")]
    device_name: Annotated[str | None, msgspec.Meta(description="The name given at registration.")] = None
    language: Annotated[str, msgspec.Meta(description="Language of the pushes to this device.")]
    registered_at: Annotated[datetime, msgspec.Meta(description="First registration of this token (UTC).")]
    last_registered_at: Annotated[datetime, msgspec.Meta(description="Latest registration (UTC).")]


class SandboxPush(msgspec.Struct, kw_only=True):
    """A push the development sandbox recorded instead of sending."""

    id: Annotated[str, msgspec.Meta(description="Opaque id.")]
    device_id: Annotated[str, msgspec.Meta(description="The device it was for.")]
    platform: Annotated[str, msgspec.Meta(description="`fcm` or `apns`.")]
    token_hint: Annotated[str, msgspec.Meta(description="The token's last characters.")]
    notification_id: Annotated[str | None, msgspec.Meta(description="The notification pushed.")] = None
    title: Annotated[str, msgspec.Meta(description="Title shown by the phone.")]
    body: Annotated[str, msgspec.Meta(description="Text shown by the phone.")]
    data: Annotated[dict[str, Any], msgspec.Meta(description="Data payload delivered to the app.")]
    sent_at: Annotated[datetime, msgspec.Meta(description="When it was recorded (UTC).")]


class NotificationRow(Protocol):
    """A notification as stored: the ORM row, or :class:`CommittedNotification` for a money path that wrote
    it on the driver (building an ORM instance there cost ~0.1 ms of a ~1.5 ms transfer)."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def created_at(self) -> datetime: ...

    @property
    def user_id(self) -> uuid.UUID: ...

    @property
    def kind(self) -> str: ...

    @property
    def title_vi(self) -> str: ...

    @property
    def body_vi(self) -> str: ...

    @property
    def title_en(self) -> str | None: ...

    @property
    def body_en(self) -> str | None: ...

    @property
    def data(self) -> dict[str, Any]: ...

    @property
    def read_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class CommittedNotification:
    """A committed notification written without the ORM (see :class:`NotificationRow`)."""

    id: uuid.UUID
    created_at: datetime
    user_id: uuid.UUID
    kind: str
    title_vi: str
    body_vi: str
    title_en: str | None
    body_en: str | None
    data: dict[str, Any]
    read_at: datetime | None = None


def notification_view(row: NotificationRow) -> Notification:
    return Notification(
        id=str(row.id),
        kind=row.kind,
        title_vi=row.title_vi,
        body_vi=row.body_vi,
        title_en=row.title_en,
        body_en=row.body_en,
        data=dict(row.data or {}),
        read=row.read_at is not None,
        read_at=row.read_at,
        created_at=row.created_at,
    )


def device_view(row: PushDevice) -> PushDeviceOut:
    return PushDeviceOut(
        id=str(row.id),
        platform=row.platform,
        token_hint=token_hint(row.token),
        device_name=row.device_name,
        language=row.language,
        registered_at=row.created_at,
        last_registered_at=row.last_registered_at,
    )


def sandbox_view(row: PushSandboxDelivery) -> SandboxPush:
    return SandboxPush(
        id=str(row.id),
        device_id=str(row.device_id),
        platform=row.platform,
        token_hint=row.token_hint,
        notification_id=str(row.notification_id) if row.notification_id else None,
        title=row.title,
        body=row.body,
        data=dict(row.data or {}),
        sent_at=row.created_at,
    )
