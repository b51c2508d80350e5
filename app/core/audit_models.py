"""Tables of the audit trail: the append-only chain of events and its one-row head.

``audit_events`` rows are never updated or deleted by the application. Each carries a keyed MAC over its own
canonical content and the previous row's MAC (:mod:`app.core.audit`). ``audit_head`` holds the latest
sequence number and MAC; appending updates it first, which serialises appenders on one row (a row lock on
PostgreSQL, the database write lock on SQLite) without any ``SELECT ... FOR UPDATE``.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base

__all__ = ["GENESIS_MAC", "AuditEvent", "AuditHead"]

GENESIS_MAC = "0" * 64
"""The "previous MAC" of the first row of the chain."""


class AuditEvent(Base):
    """One audited action. ``seq`` is gapless and assigned under the head lock."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger(), primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime] = mapped_column()
    actor_id: Mapped[uuid.UUID | None] = mapped_column()
    actor_role: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))
    client_address: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[str] = mapped_column(Text())
    """Canonical JSON text, exactly the bytes the MAC covers (no JSON type normalising it on the way)."""
    kid: Mapped[str] = mapped_column(String(32))
    prev_mac: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint("outcome IN ('success', 'failure', 'denied')", name="outcome"),
        Index("ix_audit_events_actor", "actor_id", "seq"),
        Index("ix_audit_events_object", "object_type", "object_id", "seq"),
        Index("ix_audit_events_action", "action", "seq"),
        Index("ix_audit_events_occurred_at", "occurred_at"),
    )


class AuditHead(Base):
    """The chain's head: exactly one row (``id = 1``)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer(), primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger())
    mac: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column()

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)
