"""Tables of reconciliation: runs, the staged lines of the outside reports, and the exceptions found.

- ``recon_runs``: one reconciliation of one business day (Asia/Ho_Chi_Minh), scheduled or on demand, with
  what it compared and what the checks found (``checks``: JSON).
- the lines of the gateway's report are only staged while a run runs, in a temporary table
  (``COPY`` on PostgreSQL), so the matching is one SQL statement whatever the report's size.
- ``recon_exceptions``: each line that did not match, unique per (day, source, kind, key) so a day
  reconciled again does not repeat what is already known; resolved by a correcting journal entry proposed by
  one finance admin and approved by another, or closed with a note.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, utcnow

__all__ = ["ReconException", "ReconRun"]

_BigId = BigInteger().with_variant(Integer(), "sqlite")
_Json = JSON().with_variant(JSONB(), "postgresql")


class ReconRun(Base):
    """One reconciliation of one business day."""

    __tablename__ = "recon_runs"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    trigger: Mapped[str] = mapped_column(String(16))
    """``scheduled`` or ``on_demand``."""
    started_by: Mapped[uuid.UUID | None]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="running")
    """``running``, ``balanced`` (everything matched, every check passed) or ``attention``."""
    counts: Mapped[dict[str, Any]] = mapped_column(_Json, default=dict)
    """Lines per source and outcome: ``{"gateway": {"matched": n, ...}, "biller": {...}}``."""
    checks: Mapped[dict[str, Any]] = mapped_column(_Json, default=dict)
    """What each check found (books, bank statement, coverage, journal seal, sources used)."""


class ReconException(Base):
    """A line that did not match, and how it was settled."""

    __tablename__ = "recon_exceptions"
    __table_args__ = (
        UniqueConstraint("day", "source", "kind", "key", name="uq_recon_exceptions_day_source_kind_key"),
        Index("ix_recon_exceptions_status_day", "status", "day"),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(8))
    """``gateway``, ``biller`` or ``bank``."""
    kind: Mapped[str] = mapped_column(String(24))
    """``missing_in_ledger``, ``missing_at_gateway`` (missing at the other side), ``amount_mismatch``,
    ``duplicate`` or ``status_mismatch``."""
    key: Mapped[str] = mapped_column(String(160))
    """What identifies the line on its side (the gateway's txn id, our reference)."""
    reference: Mapped[str | None] = mapped_column(String(160))
    party: Mapped[str | None] = mapped_column(String(64))
    ledger_gross: Mapped[int | None] = mapped_column(BigInteger)
    ledger_fee: Mapped[int | None] = mapped_column(BigInteger)
    ledger_net: Mapped[int | None] = mapped_column(BigInteger)
    external_gross: Mapped[int | None] = mapped_column(BigInteger)
    external_fee: Mapped[int | None] = mapped_column(BigInteger)
    external_net: Mapped[int | None] = mapped_column(BigInteger)
    ledger_status: Mapped[str | None] = mapped_column(String(32))
    external_status: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(12), default="open")
    """``open``, ``proposed`` (a correction awaits a second finance admin), ``resolved`` or ``closed``."""
    proposal: Mapped[dict[str, Any] | None] = mapped_column(_Json)
    """The proposed correcting entry: ``{"description": ..., "postings": [{"account_id", "amount"}]}``."""
    proposed_by: Mapped[uuid.UUID | None]
    proposed_at: Mapped[datetime | None]
    decided_by: Mapped[uuid.UUID | None]
    decided_at: Mapped[datetime | None]
    entry_id: Mapped[uuid.UUID | None]
    """The correcting journal entry, once approved."""
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
