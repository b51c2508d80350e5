"""Security events (sign-ins, failures, locks, role changes, refresh-token reuse) into the audit trail.

Each event is one row of the tamper-evident chain (:mod:`app.core.audit`) and one log line. Where the event
belongs to work that commits (a role granted), it is recorded in that transaction; where it happens beside
work that is refused and rolled back (a wrong password, a PIN lock inside a refused payment), it is
recorded in a transaction of its own, so the refusal cannot erase its trace.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.audit import AuditActor, Outcome, record, record_separately
from app.core.db import Database

__all__ = [
    "record_security_event",
    "record_security_event_later",
    "record_security_event_soon",
    "security_event_in",
]

log = structlog.get_logger("app.identity.security")
_pending: set[asyncio.Task[Any]] = set()


def _actor(user_id: uuid.UUID | None, actor: AuditActor | None) -> AuditActor:
    if actor is not None:
        return actor
    return AuditActor.user(user_id, "citizen") if user_id else AuditActor.anonymous()


async def security_event_in(
    session: AsyncSession,
    action: str,
    *,
    user_id: uuid.UUID | None,
    actor: AuditActor | None = None,
    outcome: Outcome = "success",
    details: dict[str, Any] | None = None,
) -> None:
    """Record ``identity.<action>`` in ``session``'s transaction: it commits or rolls back with the work."""
    log.info("security_event", action=action, user_id=str(user_id) if user_id else None, outcome=outcome)
    await record(
        session,
        actor=_actor(user_id, actor),
        action=f"identity.{action}",
        object_type="user",
        object_id=user_id,
        outcome=outcome,
        details=details,
    )


async def record_security_event(
    db: Database,
    action: str,
    *,
    user_id: uuid.UUID | None,
    actor: AuditActor | None = None,
    outcome: Outcome = "success",
    details: dict[str, Any] | None = None,
) -> None:
    """Record ``identity.<action>`` in a transaction of its own (call it outside any open transaction)."""
    log.info("security_event", action=action, user_id=str(user_id) if user_id else None, outcome=outcome)
    await record_separately(
        db,
        actor=_actor(user_id, actor),
        action=f"identity.{action}",
        object_type="user",
        object_id=user_id,
        outcome=outcome,
        details=details,
    )


def record_security_event_later(
    session: AsyncSession, action: str, *, user_id: uuid.UUID | None, outcome: Outcome = "denied"
) -> None:
    """Record an event from inside a transaction that is about to be refused (a PIN lock during a payment):
    the row is written by a task of its own once this transaction has let go of the database."""
    record_security_event_soon(Database.of(session), action, user_id=user_id, outcome=outcome)


def record_security_event_soon(
    db: Database, action: str, *, user_id: uuid.UUID | None, outcome: Outcome = "denied"
) -> None:
    """:func:`record_security_event_later` for a caller that holds no session (a driver-level money path)."""
    task = asyncio.get_running_loop().create_task(
        record_security_event(db, action, user_id=user_id, outcome=outcome)
    )
    _pending.add(task)
    task.add_done_callback(_pending.discard)
