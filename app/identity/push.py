"""Sending push notifications to phones: one interface, a sandbox for development.

A :class:`PushSender` turns one message into one delivery attempt to one device (an FCM registration token
or an APNs device token). It tells the caller whether the token is dead (the app was uninstalled), so the
device is forgotten, or whether the attempt may be retried.

- :class:`SandboxPushSender` (development and test): records every push in ``inbox_push_sandbox``, where
  ``GET /api/v1/me/inbox/push-sandbox`` shows them, so the demo works offline. A token starting with
  ``invalid-`` is answered as dead, to exercise that path.
- :class:`UnconfiguredPushSender` (production until an FCM/APNs sender is configured): sends nothing and
  says so once in the log; notifications still reach the inbox and its real-time stream.

Tokens are never logged: only their last characters (:func:`token_hint`).
"""

from __future__ import annotations

import enum
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal

import structlog

from app.core.db import Database
from app.core.settings import Settings
from app.identity.inbox_models import PushSandboxDelivery

__all__ = [
    "PushMessage",
    "PushPlatform",
    "PushResult",
    "PushSender",
    "PushTarget",
    "SandboxPushSender",
    "UnconfiguredPushSender",
    "push_sender_for",
    "token_hint",
]

log = structlog.get_logger("app.push")

PushPlatform = Literal["fcm", "apns"]


def token_hint(token: str) -> str:
    """What may be shown or logged of a push token: its last six characters."""
    return "…" + token[-6:]


@dataclass(frozen=True, slots=True)
class PushTarget:
    device_id: uuid.UUID
    user_id: uuid.UUID
    platform: PushPlatform
    token: str


@dataclass(frozen=True, slots=True)
class PushMessage:
    title: str
    body: str
    notification_id: uuid.UUID | None = None
    data: dict[str, str] = field(default_factory=dict)
    """Key/value strings delivered to the app with the push (FCM data payloads are strings only)."""
    badge: int | None = None
    """Unread count for the app icon (APNs badge)."""


class PushResult(enum.Enum):
    DELIVERED = "delivered"
    INVALID_TOKEN = "invalid_token"  # noqa: S105 - a result, not a secret
    """The provider says the token is dead: forget the device."""
    FAILED = "failed"
    """A temporary failure: the attempt may be retried."""
    NOT_CONFIGURED = "not_configured"


class PushSender(ABC):
    name: str

    @abstractmethod
    async def send(self, target: PushTarget, message: PushMessage) -> PushResult:
        """One delivery attempt; never raises for a provider's refusal (that is the result)."""


class SandboxPushSender(PushSender):
    """Development: records the push instead of sending it."""

    name = "sandbox"

    def __init__(self, db: Database) -> None:
        self.db = db

    async def send(self, target: PushTarget, message: PushMessage) -> PushResult:
        if target.token.startswith("invalid-"):
            return PushResult.INVALID_TOKEN
        async with self.db.transaction() as session:
            session.add(
                PushSandboxDelivery(
                    user_id=target.user_id,
                    device_id=target.device_id,
                    platform=target.platform,
                    token_hint=token_hint(target.token),
                    notification_id=message.notification_id,
                    title=message.title,
                    body=message.body,
                    data=dict(message.data),
                )
            )
        log.info("push_sandboxed", platform=target.platform, device=token_hint(target.token))
        return PushResult.DELIVERED


class UnconfiguredPushSender(PushSender):
    """Production without a push provider: nothing is sent (the inbox and its stream still work)."""

    name = "unconfigured"

    def __init__(self) -> None:
        log.warning("push_not_configured", detail="no FCM/APNs sender configured; pushes are not sent")

    async def send(self, target: PushTarget, message: PushMessage) -> PushResult:
        return PushResult.NOT_CONFIGURED


def push_sender_for(settings: Settings, db: Database) -> PushSender:
    """The sandbox outside production; in production, the configured provider (none is built yet)."""
    if settings.is_production:
        return UnconfiguredPushSender()
    return SandboxPushSender(db)
