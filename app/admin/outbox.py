"""Admin actions on the outbox, shared by the API and the console."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.audit import record
from app.core.outbox import retry_dead_letter
from app.core.security import Caller

__all__ = ["retry_as"]


async def retry_as(
    session: AsyncSession, caller: Caller, message_id: uuid.UUID, address: str | None
) -> tuple[Any, list[Any]]:
    """Put a dead letter back in the queue (a message that is not dead is left as it is) and record who
    did it in the audit trail, in the caller's transaction."""
    message, deliveries = await retry_dead_letter(session, message_id, by=caller.user_id)
    await record(
        session,
        actor=caller,
        action="admin.outbox_retry",
        object_type="outbox_message",
        object_id=message_id,
        client_address=address,
    )
    return message, list(deliveries)
