"""Tables of the public-service module: the catalogue (agencies, procedures and their agency chains) and the
holiday table behind the working-day calendar.

Dossiers come later (they need identity and bills). A procedure's documents, return channels and fee
schedule are JSON documents validated by the structs in ``schemas.py``: they are read and replaced as a
whole, by the loader and by admins, and never queried inside.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, utcnow

__all__ = ["Agency", "CalendarDay", "CalendarYear", "Procedure", "ProcedureStep"]


class Agency(Base):
    """A public agency that receives or handles dossiers; levels are data (province, commune, ...)."""

    __tablename__ = "agencies"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_vi: Mapped[str] = mapped_column(String(300))
    name_en: Mapped[str | None] = mapped_column(String(300))
    level: Mapped[str] = mapped_column(String(40), index=True)
    treasury_account: Mapped[str | None] = mapped_column(String(80))
    """Beneficiary account at the State Treasury (Kho bạc Nhà nước) for the fees this agency collects."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_by: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Procedure(Base):
    """An administrative procedure (thủ tục hành chính) citizens can apply for."""

    __tablename__ = "procedures"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    """The national procedure code, e.g. ``1.001193``."""
    name_vi: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    field: Mapped[str] = mapped_column(String(200), index=True)
    level: Mapped[str] = mapped_column(String(40), index=True)
    online: Mapped[str] = mapped_column(String(20))
    """``full`` (toàn trình) or ``partial`` (một phần)."""
    processing_days: Mapped[int | None] = mapped_column(Integer)
    """Working days; None when no statutory time is published."""
    processing_days_by_channel: Mapped[dict[str, int] | None] = mapped_column(JSON)
    result: Mapped[str | None] = mapped_column(Text)
    national_decision: Mapped[str | None] = mapped_column(String(100))
    documents: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    return_channels: Mapped[list[str]] = mapped_column(JSON)
    fee_schedule: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text)
    sources: Mapped[list[str]] = mapped_column(JSON)
    search_text: Mapped[str] = mapped_column(Text)
    """Lower-case, diacritic-free code, names and field, for searches typed without accents."""
    edited_fields: Mapped[list[str]] = mapped_column(JSON)
    """Fields an admin has edited: reloading a catalogue file leaves them alone."""
    updated_by: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ProcedureStep(Base):
    """One agency in a procedure's ordered chain (position 0 receives the dossier)."""

    __tablename__ = "procedure_steps"

    procedure_code: Mapped[str] = mapped_column(
        ForeignKey("procedures.code", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agencies.code", ondelete="RESTRICT"), index=True)


class CalendarYear(Base):
    """A year of the holiday table. ``announced`` years use exactly the table's days off (plus weekends);
    the others also take the statutory holidays and give provisional deadlines."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    announced: Mapped[bool] = mapped_column(Boolean)
    updated_by: Mapped[uuid.UUID | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CalendarDay(Base):
    """A day off (``holiday``, ``swap_off``) or a worked Saturday (``swap_work``)."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    year: Mapped[int] = mapped_column(ForeignKey("calendar_years.year", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    name_vi: Mapped[str] = mapped_column(String(300))
    name_en: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(60))
    note: Mapped[str | None] = mapped_column(Text)
    updated_by: Mapped[uuid.UUID | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
