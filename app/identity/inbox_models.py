"""Tables of the citizen's inbox: notifications, the devices that receive pushes, and the sandbox's record of
pushes "sent" in development."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import TimestampedBase

__all__ = ["InboxNotification", "PushDevice", "PushSandboxDelivery"]


class InboxNotification(TimestampedBase):
    """One notification for one user. ``id`` is a UUIDv7, so ordering by it is ordering by time."""

    __tablename__ = "inbox_notifications"

    user_id: Mapped[uuid.UUID] = mapped_column()
    kind: Mapped[str] = mapped_column(String(64))
    title_vi: Mapped[str] = mapped_column(String(200))
    body_vi: Mapped[str] = mapped_column(Text())
    title_en: Mapped[str | None] = mapped_column(String(200))
    body_en: Mapped[str | None] = mapped_column(Text())
    data: Mapped[dict[str, Any]] = mapped_column(JSON(), default=dict)
    read_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        Index("ix_inbox_notifications_user_id_id", "user_id", "id"),
        Index("ix_inbox_notifications_user_id_read_at", "user_id", "read_at"),
    )


class PushDevice(TimestampedBase):
    """A device's push token (FCM or APNs) registered by the user signed in on it."""

    __tablename__ = "inbox_push_devices"

    user_id: Mapped[uuid.UUID] = mapped_column()
    platform: Mapped[str] = mapped_column(String(8))
    token: Mapped[str] = mapped_column(String(512))
    device_name: Mapped[str | None] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(2), default="vi")
    last_registered_at: Mapped[datetime] = mapped_column()

    __table_args__ = (
        UniqueConstraint("token", name="uq_inbox_push_devices_token"),
        CheckConstraint("platform IN ('fcm', 'apns')", name="platform"),
        CheckConstraint("language IN ('vi', 'en')", name="language"),
        Index("ix_inbox_push_devices_user_id", "user_id"),
    )


class PushSandboxDelivery(TimestampedBase):
    """A push the development sandbox sender would have sent (never used in production)."""

    __tablename__ = "inbox_push_sandbox"

    user_id: Mapped[uuid.UUID] = mapped_column()
    device_id: Mapped[uuid.UUID] = mapped_column()
    platform: Mapped[str] = mapped_column(String(8))
    token_hint: Mapped[str] = mapped_column(String(16))
    notification_id: Mapped[uuid.UUID | None] = mapped_column()
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text())
    data: Mapped[dict[str, Any]] = mapped_column(JSON(), default=dict)

    __table_args__ = (Index("ix_inbox_push_sandbox_user_id_id", "user_id", "id"),)
