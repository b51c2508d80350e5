"""The public-service module's rules on the database: the catalogue, the holiday table, the calendar.

Other modules use these functions, never the tables. Interface for the dossier module:
:func:`get_procedure` (the catalogue entry a dossier follows), :func:`work_calendar` (deadlines, pauses and
timeliness), and ``workflow.check_transition``.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Database, utcnow
from app.core.errors import VALIDATION_FAILED
from app.core.settings import Settings
from app.services.calendar import (
    HolidayDay,
    OfficeHours,
    WorkCalendar,
    day_problem,
    parse_holiday_file,
)
from app.services.catalogue import (
    ProcedureRecord,
    fee_schedule_problems,
    has_fee,
    load_json,
    normalize_search,
    parse_catalogue,
)
from app.services.errors import (
    INVALID_CALENDAR,
    INVALID_FEE_SCHEDULE,
    NO_PROCESSING_TIME,
    PROCEDURE_NOT_FOUND,
    UNKNOWN_AGENCY,
)
from app.services.models import Agency, CalendarDay, CalendarYear, Procedure, ProcedureStep
from app.services.schemas import (
    AgencyOut,
    AgencyPut,
    AgencyRef,
    CalendarDayOut,
    CalendarDayPut,
    CalendarYearIn,
    CalendarYearOut,
    DeadlineOut,
    FeeSchedule,
    ProcedureDetail,
    ProcedurePage,
    ProcedureSummary,
    ProcedureUpdate,
    RequiredDocument,
)

__all__ = [
    "CatalogueLoadReport",
    "HolidayLoadReport",
    "delete_calendar_day",
    "estimate_deadline",
    "get_calendar_year",
    "get_procedure",
    "list_agencies",
    "load_catalogue",
    "load_catalogue_file",
    "load_holidays",
    "load_holidays_file",
    "put_agency",
    "put_calendar_day",
    "replace_calendar_year",
    "search_procedures",
    "update_procedure",
    "work_calendar",
]

_FILE_COLUMNS = (
    "name_vi",
    "name_en",
    "field",
    "level",
    "online",
    "processing_days",
    "processing_days_by_channel",
    "result",
    "national_decision",
    "note",
    "sources",
    "documents",
    "return_channels",
    "fee_schedule",
)
"""Columns a catalogue file sets (``agency_chain`` is stored as steps)."""


# --- Catalogue --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class CatalogueLoadReport:
    """What loading a catalogue file changed."""

    agencies_created: int = 0
    agencies_updated: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_admin_edits: list[str] = field(default_factory=list)
    """``code.field`` of admin-edited values the file did not overwrite."""


def _column_values(record: ProcedureRecord) -> dict[str, Any]:
    return {
        "name_vi": record.name_vi,
        "name_en": record.name_en,
        "field": record.field,
        "level": record.level,
        "online": record.online,
        "processing_days": record.processing_days,
        "processing_days_by_channel": record.processing_days_by_channel,
        "result": record.result,
        "national_decision": record.national_decision,
        "note": record.note,
        "sources": record.sources,
        "documents": msgspec.to_builtins(record.documents),
        "return_channels": list(record.return_channels),
        "fee_schedule": msgspec.to_builtins(record.fee_schedule),
    }


def _search_text(row: Procedure) -> str:
    return normalize_search(" ".join(filter(None, [row.code, row.name_vi, row.name_en, row.field])))


async def _chain(session: AsyncSession, code: str) -> list[str]:
    rows = await session.scalars(
        select(ProcedureStep.agency_code)
        .where(ProcedureStep.procedure_code == code)
        .order_by(ProcedureStep.position)
    )
    return list(rows)


async def _set_chain(session: AsyncSession, code: str, chain: list[str]) -> None:
    await session.execute(delete(ProcedureStep).where(ProcedureStep.procedure_code == code))
    session.add_all(
        ProcedureStep(procedure_code=code, position=index, agency_code=agency)
        for index, agency in enumerate(chain)
    )
    await session.flush()


async def load_catalogue(db: Database, data: Any) -> CatalogueLoadReport:
    """Load a catalogue file's content (idempotent): new procedures get the defaults for what the file
    lacks; existing ones take what the file provides, except fields an admin has edited."""
    report = CatalogueLoadReport()
    async with db.transaction() as session:
        known = dict((await session.execute(select(Agency.code, Agency.level))).all())
        catalogue = parse_catalogue(data, known_agencies=known)
        for agency_record in catalogue.agencies:
            agency = await session.get(Agency, agency_record.code)
            values = {
                "name_vi": agency_record.name_vi,
                "name_en": agency_record.name_en,
                "level": agency_record.level,
                "treasury_account": agency_record.treasury_account,
                "active": agency_record.active,
            }
            if agency is None:
                session.add(Agency(code=agency_record.code, **values))
                report.agencies_created += 1
            elif catalogue.agencies_from_file and any(getattr(agency, k) != v for k, v in values.items()):
                for key, value in values.items():
                    setattr(agency, key, value)
                report.agencies_updated += 1
        await session.flush()
        codes = [record.code for record in catalogue.procedures]
        existing = {
            row.code: row for row in await session.scalars(select(Procedure).where(Procedure.code.in_(codes)))
        }
        new_steps: list[ProcedureStep] = []
        for record in catalogue.procedures:
            values = _column_values(record)
            row = existing.get(record.code)
            if row is None:
                row = Procedure(code=record.code, edited_fields=[], updated_by=None, **values)
                row.search_text = _search_text(row)
                session.add(row)
                new_steps += [
                    ProcedureStep(procedure_code=record.code, position=index, agency_code=agency)
                    for index, agency in enumerate(record.agency_chain)
                ]
                report.created += 1
                continue
            changed = False
            for name in _FILE_COLUMNS:
                if name not in record.from_file:
                    continue
                if name in row.edited_fields:
                    if getattr(row, name) != values[name]:
                        report.kept_admin_edits.append(f"{record.code}.{name}")
                    continue
                if getattr(row, name) != values[name]:
                    setattr(row, name, values[name])
                    changed = True
            if "agency_chain" in record.from_file:
                current = await _chain(session, record.code)
                if current != record.agency_chain:
                    if "agency_chain" in row.edited_fields:
                        report.kept_admin_edits.append(f"{record.code}.agency_chain")
                    else:
                        await _set_chain(session, record.code, record.agency_chain)
                        changed = True
            if changed:
                row.search_text = _search_text(row)
                report.updated += 1
            else:
                report.unchanged += 1
        await session.flush()
        session.add_all(new_steps)
    return report


async def load_catalogue_file(settings: Settings, path: Path) -> CatalogueLoadReport:
    """``hue services load-catalogue``: load ``path`` into the database of ``settings``."""
    data = load_json(path)
    db = Database(settings)
    try:
        return await load_catalogue(db, data)
    finally:
        await db.dispose()


def _agency_out(agency: Agency) -> AgencyOut:
    return AgencyOut(
        code=agency.code,
        name_vi=agency.name_vi,
        name_en=agency.name_en,
        level=agency.level,
        treasury_account=agency.treasury_account,
        active=agency.active,
    )


async def list_agencies(session: AsyncSession) -> list[AgencyOut]:
    rows = await session.scalars(select(Agency).order_by(Agency.level, Agency.code))
    return [_agency_out(row) for row in rows]


async def put_agency(session: AsyncSession, code: str, body: AgencyPut, actor: uuid.UUID) -> AgencyOut:
    """Create or replace the agency ``code``."""
    agency = await session.get(Agency, code)
    if agency is None:
        agency = Agency(code=code)
        session.add(agency)
    agency.name_vi = body.name_vi
    agency.name_en = body.name_en
    agency.level = body.level
    agency.treasury_account = body.treasury_account
    agency.active = body.active
    agency.updated_by = actor
    agency.updated_at = utcnow()
    await session.flush()
    return _agency_out(agency)


def _summary(row: Procedure) -> ProcedureSummary:
    return ProcedureSummary(
        code=row.code,
        name_vi=row.name_vi,
        name_en=row.name_en,
        field=row.field,
        level=row.level,
        online=row.online,  # type: ignore[arg-type]
        processing_days=row.processing_days,
        has_fee=has_fee(msgspec.convert(row.fee_schedule, FeeSchedule)),
    )


_CODE = re.compile(r"[A-Za-z0-9._-]{1,40}")


def _encode_cursor(code: str) -> str:
    return base64.urlsafe_b64encode(code.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        code = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
        if not _CODE.fullmatch(code):
            raise ValueError(code)
        return code
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise VALIDATION_FAILED(
            "Con trỏ phân trang không hợp lệ",
            "Invalid pagination cursor",
            errors=[{"field": "cursor", "source": "query", "message": "not a cursor this API returned"}],
        ) from exc


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_procedures(
    session: AsyncSession,
    *,
    q: str | None = None,
    level: str | None = None,
    online: str | None = None,
    field_name: str | None = None,
    agency: str | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> ProcedurePage:
    """Procedures in code order; ``q`` matches every word in the code, names or field, accents ignored."""
    query = select(Procedure).order_by(Procedure.code).limit(limit + 1)
    for term in normalize_search(q or "").split():
        query = query.where(Procedure.search_text.like(_like(term), escape="\\"))
    if level:
        query = query.where(Procedure.level == level)
    if online:
        query = query.where(Procedure.online == online)
    if field_name:
        prefix = _like(field_name)[1:]  # "Hộ tịch" matches "Hộ tịch (civil status)"
        query = query.where(or_(Procedure.field == field_name, Procedure.field.like(prefix, escape="\\")))
    if agency:
        query = query.where(
            Procedure.code.in_(
                select(ProcedureStep.procedure_code).where(ProcedureStep.agency_code == agency)
            )
        )
    if cursor:
        query = query.where(Procedure.code > _decode_cursor(cursor))
    rows = list(await session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return ProcedurePage(
        items=[_summary(row) for row in rows],
        next_cursor=_encode_cursor(rows[-1].code) if more and rows else None,
    )


async def _detail(session: AsyncSession, row: Procedure) -> ProcedureDetail:
    chain = await _chain(session, row.code)
    agencies = {a.code: a for a in await session.scalars(select(Agency).where(Agency.code.in_(chain)))}
    return ProcedureDetail(
        code=row.code,
        name_vi=row.name_vi,
        name_en=row.name_en,
        field=row.field,
        level=row.level,
        online=row.online,  # type: ignore[arg-type]
        processing_days=row.processing_days,
        processing_days_by_channel=row.processing_days_by_channel,
        agency_chain=[
            AgencyRef(
                code=code,
                name_vi=agencies[code].name_vi,
                name_en=agencies[code].name_en,
                level=agencies[code].level,
            )
            for code in chain
        ],
        documents=msgspec.convert(row.documents, list[RequiredDocument]),
        fee_schedule=msgspec.convert(row.fee_schedule, FeeSchedule),
        return_channels=list(row.return_channels),  # type: ignore[arg-type]
        result=row.result,
        national_decision=row.national_decision,
        note=row.note,
        sources=list(row.sources),
        updated_at=row.updated_at,
    )


async def get_procedure(session: AsyncSession, code: str) -> ProcedureDetail:
    """The catalogue entry ``code`` with its agency chain, documents and fee schedule, or 404."""
    row = await session.get(Procedure, code)
    if row is None:
        raise PROCEDURE_NOT_FOUND(f"Không có thủ tục mã {code}", f"No procedure with code {code}")
    return await _detail(session, row)


async def update_procedure(
    session: AsyncSession, code: str, update: ProcedureUpdate, actor: uuid.UUID
) -> ProcedureDetail:
    """Apply an admin's edit; each field given is replaced and remembered as edited (a later file load
    keeps it)."""
    row = await session.get(Procedure, code, with_for_update=True)
    if row is None:
        raise PROCEDURE_NOT_FOUND(f"Không có thủ tục mã {code}", f"No procedure with code {code}")
    edited: set[str] = set(row.edited_fields)
    if not isinstance(update.agency_chain, msgspec.UnsetType):
        chain = list(update.agency_chain)
        found = set(await session.scalars(select(Agency.code).where(Agency.code.in_(chain))))
        unknown = [c for c in chain if c not in found]
        if unknown:
            raise UNKNOWN_AGENCY(
                f"Không có cơ quan mã {', '.join(unknown)}",
                f"No agency with code {', '.join(unknown)}",
                agencies=unknown,
            )
        if len(set(chain)) != len(chain):
            raise UNKNOWN_AGENCY(
                "Một cơ quan xuất hiện hai lần trong quy trình",
                "An agency appears twice in the chain",
                agencies=chain,
            )
        await _set_chain(session, code, chain)
        edited.add("agency_chain")
    if not isinstance(update.fee_schedule, msgspec.UnsetType):
        problems = fee_schedule_problems(update.fee_schedule)
        if problems:
            raise INVALID_FEE_SCHEDULE(
                "Biểu phí không hợp lệ: " + "; ".join(problems),
                "Invalid fee schedule: " + "; ".join(problems),
                problems=problems,
            )
        row.fee_schedule = msgspec.to_builtins(update.fee_schedule)
        edited.add("fee_schedule")
    if not isinstance(update.documents, msgspec.UnsetType):
        if len({d.code for d in update.documents}) != len(update.documents):
            raise VALIDATION_FAILED(
                "Mã giấy tờ bị trùng", "Document codes must be unique", errors=[_field("documents")]
            )
        row.documents = msgspec.to_builtins(update.documents)
        edited.add("documents")
    if not isinstance(update.return_channels, msgspec.UnsetType):
        row.return_channels = list(dict.fromkeys(update.return_channels))
        edited.add("return_channels")
    if not isinstance(update.processing_days, msgspec.UnsetType):
        row.processing_days = update.processing_days
        edited.add("processing_days")
    if not isinstance(update.online, msgspec.UnsetType):
        row.online = update.online
        edited.add("online")
    row.edited_fields = sorted(edited)
    row.updated_by = actor
    row.updated_at = utcnow()
    await session.flush()
    return await _detail(session, row)


def _field(name: str) -> dict[str, str]:
    return {"field": name, "source": "body", "message": "invalid value"}


# --- Holiday table and calendar -------------------------------------------------------------------------


@dataclass(slots=True)
class HolidayLoadReport:
    """What loading a holiday file changed."""

    years_loaded: list[int] = field(default_factory=list)
    years_kept: list[int] = field(default_factory=list)
    """Years already in the table (an admin's or an earlier load's), left as they are."""


async def _write_year(
    session: AsyncSession, year: int, body: CalendarYearIn, actor: uuid.UUID | None
) -> CalendarYear:
    await session.execute(delete(CalendarDay).where(CalendarDay.year == year))
    row = await session.get(CalendarYear, year)
    if row is None:
        row = CalendarYear(year=year, announced=body.announced, updated_by=actor)
        session.add(row)
    row.announced = body.announced
    row.updated_by = actor
    row.updated_at = utcnow()
    await session.flush()
    session.add_all(
        CalendarDay(
            day=day.date,
            year=year,
            kind=day.kind,
            name_vi=day.name_vi,
            name_en=day.name_en,
            status=day.status,
            note=day.note,
            updated_by=actor,
        )
        for day in body.days
    )
    await session.flush()
    return row


async def load_holidays(db: Database, data: Any, *, replace: bool = False) -> HolidayLoadReport:
    """Load a holiday file (idempotent): a year already in the table is kept unless ``replace``."""
    years = parse_holiday_file(data)
    report = HolidayLoadReport()
    async with db.transaction() as session:
        present = set(await session.scalars(select(CalendarYear.year)))
        for year, body in sorted(years.items()):
            if year in present and not replace:
                report.years_kept.append(year)
                continue
            await _write_year(session, year, body, None)
            report.years_loaded.append(year)
    return report


async def load_holidays_file(settings: Settings, path: Path, *, replace: bool = False) -> HolidayLoadReport:
    """``hue services load-holidays``: load ``path`` into the database of ``settings``."""
    data = load_json(path)
    db = Database(settings)
    try:
        return await load_holidays(db, data, replace=replace)
    finally:
        await db.dispose()


async def work_calendar(session: AsyncSession, settings: Settings) -> WorkCalendar:
    """The working-day calendar from the holiday table and the configured office hours."""
    years = list(await session.scalars(select(CalendarYear).where(CalendarYear.announced.is_(True))))
    days = await session.scalars(select(CalendarDay))
    return WorkCalendar(
        days=[
            HolidayDay(day=d.day, kind=d.kind, name_vi=d.name_vi, name_en=d.name_en or "", status=d.status)  # type: ignore[arg-type]
            for d in days
        ],
        announced_years=[y.year for y in years],
        office_hours=OfficeHours(periods=settings.office_hours),
    )


def _day_out(day: CalendarDay) -> CalendarDayOut:
    return CalendarDayOut(
        date=day.day,
        kind=day.kind,  # type: ignore[arg-type]
        name_vi=day.name_vi,
        name_en=day.name_en,
        status=day.status,
        note=day.note,
    )


async def get_calendar_year(session: AsyncSession, year: int) -> CalendarYearOut:
    """The holiday table's rows for ``year`` (an empty, unannounced year if none were loaded)."""
    row = await session.get(CalendarYear, year)
    days = await session.scalars(
        select(CalendarDay).where(CalendarDay.year == year).order_by(CalendarDay.day)
    )
    return CalendarYearOut(year=year, announced=bool(row and row.announced), days=[_day_out(d) for d in days])


def _check_day(day: date, kind: str) -> None:
    problem = day_problem(day, kind)
    if problem:
        raise INVALID_CALENDAR(problem, problem, date=day.isoformat())


async def replace_calendar_year(
    session: AsyncSession, year: int, body: CalendarYearIn, actor: uuid.UUID
) -> CalendarYearOut:
    """Replace ``year``'s schedule (e.g. when the Government announces it)."""
    seen: set[date] = set()
    for day in body.days:
        if day.date.year != year:
            message = f"{day.date.isoformat()} is not in {year}"
            raise INVALID_CALENDAR(message, message, date=day.date.isoformat())
        if day.date in seen:
            message = f"{day.date.isoformat()} appears twice"
            raise INVALID_CALENDAR(message, message, date=day.date.isoformat())
        seen.add(day.date)
        _check_day(day.date, day.kind)
    await _write_year(session, year, body, actor)
    return await get_calendar_year(session, year)


async def put_calendar_day(
    session: AsyncSession, day: date, body: CalendarDayPut, actor: uuid.UUID
) -> CalendarDayOut:
    """Set one day; a year not yet in the table is added as not announced."""
    _check_day(day, body.kind)
    if await session.get(CalendarYear, day.year) is None:
        session.add(CalendarYear(year=day.year, announced=False, updated_by=actor))
        await session.flush()
    row = await session.get(CalendarDay, day)
    if row is None:
        row = CalendarDay(day=day, year=day.year)
        session.add(row)
    row.kind = body.kind
    row.name_vi = body.name_vi
    row.name_en = body.name_en
    row.status = body.status
    row.note = body.note
    row.updated_by = actor
    row.updated_at = utcnow()
    await session.flush()
    return _day_out(row)


async def delete_calendar_day(session: AsyncSession, day: date, actor: uuid.UUID) -> bool:
    """Remove one day from the table (it becomes an ordinary day); False if it was not there (deleting is
    idempotent)."""
    row = await session.get(CalendarDay, day)
    if row is None:
        return False
    await session.delete(row)
    year = await session.get(CalendarYear, day.year)
    if year is not None:
        year.updated_by = actor
        year.updated_at = utcnow()
    return True


async def estimate_deadline(
    session: AsyncSession, settings: Settings, code: str, received_at: datetime
) -> DeadlineOut:
    """When a dossier of ``code`` whose clock starts at ``received_at`` would be due."""
    if received_at.tzinfo is None:
        raise VALIDATION_FAILED(
            "Thời điểm phải kèm múi giờ (RFC 3339)",
            "received_at needs a UTC offset (RFC 3339)",
            errors=[{"field": "received_at", "source": "query", "message": "needs a UTC offset"}],
        )
    row = await session.get(Procedure, code)
    if row is None:
        raise PROCEDURE_NOT_FOUND(f"Không có thủ tục mã {code}", f"No procedure with code {code}")
    if row.processing_days is None:
        raise NO_PROCESSING_TIME(
            f"Thủ tục {code} chưa có thời hạn giải quyết theo quy định",
            f"Procedure {code} has no statutory processing time",
        )
    calendar = await work_calendar(session, settings)
    deadline = calendar.add_working_days(received_at, row.processing_days)
    return DeadlineOut(
        received_at=received_at.astimezone(UTC),
        clock_starts_at=calendar.next_opening(received_at),
        due_at=deadline.at,
        provisional=deadline.provisional,
        processing_days=row.processing_days,
    )
