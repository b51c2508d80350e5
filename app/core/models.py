"""Tables owned by core. Each platform mechanism (idempotency, outbox, jobs, audit) adds its own here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, LargeBinary, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime

__all__ = ["IdempotencyRecord"]


class IdempotencyRecord(Base):
    """A request that took effect under an ``Idempotency-Key``, and the response it got.

    Written in the same transaction as the effect (see :mod:`app.core.idempotency`), so a row exists if and
    only if the effect was committed. The primary key is the uniqueness rule: one row per caller and key.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)

    scope: Mapped[str] = mapped_column(String(100), primary_key=True)
    """Whose key it is: ``user:<uuid>`` (later ``merchant:<id>``, ``api_key:<id>``)."""
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    """The client's ``Idempotency-Key`` header, verbatim (case-sensitive)."""
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    """SHA-256 of the canonical request (method, path, query, body without the PIN)."""
    status_code: Mapped[int] = mapped_column(SmallInteger)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    """The JSON response body exactly as first sent."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
