"""Tables of issue 9: signed results, revoked signing keys, return of results, apologies, ratings."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import TimestampedBase, utcnow

__all__ = ["DossierApology", "DossierDelivery", "DossierRating", "ResultKeyRevocation", "SignedResult"]


class SignedResult(TimestampedBase):
    """The signature of a dossier's result document: Ed25519 of the issuing agency over the document's
    SHA-256 and its metadata (``content``). Its id is printed in the QR code on the document."""

    __tablename__ = "signed_results"

    dossier_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dossiers.id", ondelete="CASCADE"), unique=True)
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stored_documents.id", ondelete="RESTRICT"))
    agency_code: Mapped[str] = mapped_column(String(40))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    """What was signed: sha256, dossier code, procedure, holder, agency, date (plain JSON)."""
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    issued_by: Mapped[uuid.UUID | None] = mapped_column()


class ResultKeyRevocation(TimestampedBase):
    """An agency's signing key (ring key id) that no longer vouches for any result."""

    __tablename__ = "result_key_revocations"
    __table_args__ = (UniqueConstraint("agency_code", "key_id", name="uq_result_key_revocations_key"),)

    agency_code: Mapped[str] = mapped_column(String(40))
    key_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    revoked_by: Mapped[uuid.UUID] = mapped_column()


class DossierDelivery(TimestampedBase):
    """How the citizen receives the result (desk, online, post) and where its return stands."""

    __tablename__ = "dossier_deliveries"
    __table_args__ = (Index("ix_dossier_deliveries_state", "channel", "state"),)

    dossier_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dossiers.id", ondelete="CASCADE"), unique=True)
    channel: Mapped[str] = mapped_column(String(10))
    """``desk``, ``online`` or ``post``."""
    state: Mapped[str] = mapped_column(String(20))
    """``chosen``; for post ``dispatched`` (handed to the postal service); ``delivered`` at the end
    (collected, downloaded or delivered); ``cancelled`` when the dossier closed without a result."""
    recipient_name: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(20))
    postage_amount: Mapped[int | None] = mapped_column(BigInteger)
    postage_bill_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    postage_paid_at: Mapped[datetime | None] = mapped_column()
    tracking_number: Mapped[str | None] = mapped_column(String(64), unique=True)
    postal_events: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """The postal service's events seen so far (code, description, at)."""
    delivered_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DossierApology(TimestampedBase):
    """A letter of apology with a new date (phiếu xin lỗi và hẹn lại), sent when a dossier will be late."""

    __tablename__ = "dossier_apologies"

    dossier_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dossiers.id", ondelete="CASCADE"), index=True)
    agency_code: Mapped[str] = mapped_column(String(40))
    officer_id: Mapped[uuid.UUID] = mapped_column()
    reason: Mapped[str] = mapped_column(Text)
    previous_due_at: Mapped[datetime | None] = mapped_column()
    new_due_at: Mapped[datetime] = mapped_column()


class DossierRating(TimestampedBase):
    """The citizen's rating of the service for one dossier: nine criteria scored 2/1/0."""

    __tablename__ = "dossier_ratings"

    dossier_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dossiers.id", ondelete="CASCADE"), unique=True)
    agency_code: Mapped[str] = mapped_column(String(40), index=True)
    procedure_code: Mapped[str] = mapped_column(String(40))
    scores: Mapped[dict[str, int]] = mapped_column(JSON)
    total: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    rated_by: Mapped[uuid.UUID] = mapped_column()
