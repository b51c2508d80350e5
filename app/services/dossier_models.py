"""Tables of dossiers: the citizen's document store, dossiers, their attachments, their timeline, and the
per-agency-per-day counter behind dossier codes."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TimestampedBase, utcnow

__all__ = ["Dossier", "DossierAttachment", "DossierCounter", "DossierEvent", "StoredDocument"]


class StoredDocument(TimestampedBase):
    """A file in a citizen's document store (kho giấy tờ), reusable across dossiers; or a result document
    an officer issued (owned by the applicant)."""

    __tablename__ = "stored_documents"
    __table_args__ = (Index("ix_stored_documents_owner_sha256", "owner_id", "sha256"),)

    owner_id: Mapped[uuid.UUID] = mapped_column(index=True)
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(200))
    uploaded_by: Mapped[uuid.UUID] = mapped_column()
    """The citizen, or the officer who issued a result document."""


class Dossier(TimestampedBase):
    """One application (hồ sơ) for one procedure."""

    __tablename__ = "dossiers"
    __table_args__ = (
        Index("ix_dossiers_agency_status", "agency_code", "status"),
        Index("ix_dossiers_applicant", "applicant_id"),
    )

    code: Mapped[str | None] = mapped_column(String(64), unique=True)
    """``{agency}-{yyMMdd}-{NNNN}``, given at submission."""
    procedure_code: Mapped[str] = mapped_column(ForeignKey("procedures.code", ondelete="RESTRICT"))
    applicant_id: Mapped[uuid.UUID] = mapped_column()
    status: Mapped[str] = mapped_column(String(20))
    """``draft`` before submission, then one of the ten portal statuses."""
    chain: Mapped[list[str]] = mapped_column(JSON)
    """The procedure's agency chain when the dossier was created."""
    chain_position: Mapped[int] = mapped_column(Integer, default=0)
    agency_code: Mapped[str] = mapped_column(String(40))
    """The agency holding the dossier now (``chain[chain_position]``)."""
    fee_case: Mapped[str | None] = mapped_column(String(64))
    fee_collection: Mapped[str | None] = mapped_column(String(10))
    """``first``, ``after`` or ``exempt`` (None: the procedure is free)."""
    fee_amount: Mapped[int | None] = mapped_column(BigInteger)
    fee_bill_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    fee_paid_at: Mapped[datetime | None] = mapped_column()
    fee_payment_id: Mapped[uuid.UUID | None] = mapped_column()
    refund_state: Mapped[str | None] = mapped_column(String(20))
    """``owed``: a paid fee must be returned to the applicant (withdrawal or stop after payment)."""
    note: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime | None] = mapped_column()
    accepted_at: Mapped[datetime | None] = mapped_column()
    received_at: Mapped[datetime | None] = mapped_column()
    """When the clock started: acceptance, or the payment of a fee collected first."""
    due_at: Mapped[datetime | None] = mapped_column()
    """The statutory due date, moved by supplement pauses."""
    due_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_at: Mapped[datetime | None] = mapped_column()
    paused_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    """Working time spent waiting for supplements."""
    supplement_requests: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime | None] = mapped_column()
    result_document_id: Mapped[uuid.UUID | None] = mapped_column()
    reason: Mapped[str | None] = mapped_column(Text)
    """Why it was denied, stopped or withdrawn; or what supplement is asked."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    submission_channel: Mapped[str] = mapped_column(String(10), default="online", server_default="online")
    """``online`` (through the app) or ``desk`` (registered by an officer); for the statistics."""


class DossierAttachment(TimestampedBase):
    """A document attached to a dossier (the application, a supplement, or the result)."""

    __tablename__ = "dossier_attachments"
    __table_args__ = (UniqueConstraint("dossier_id", "document_id", name="uq_dossier_attachments_doc"),)

    dossier_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dossiers.id", ondelete="CASCADE"), index=True)
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stored_documents.id", ondelete="RESTRICT"))
    purpose: Mapped[str] = mapped_column(String(20))
    """``application``, ``supplement`` or ``result``."""
    requirement: Mapped[str | None] = mapped_column(String(64))
    """The procedure's required-document code it answers, when given."""


class DossierEvent(TimestampedBase):
    """One step of a dossier's timeline: every transition and officer action."""

    __tablename__ = "dossier_events"

    dossier_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dossiers.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[uuid.UUID | None] = mapped_column()
    actor_role: Mapped[str] = mapped_column(String(20))
    agency_code: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class DossierCounter(Base):
    """The last dossier number given by one agency on one day (Huế date)."""

    __tablename__ = "dossier_counters"

    agency_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last: Mapped[int] = mapped_column(Integer)
