"""HTTP routes of the public-service module (thin: the rules are in ``service.py``).

The catalogue is public and read without signing in: it is the same information the national portal
publishes to anyone, it holds nothing personal, and a citizen browses it before having an account. The
``default`` rate limit (per client address without a token) keeps scrapers from hogging it.
Editing it (procedures, agencies, the holiday table) is for admins with the ``superadmin`` duty.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, patch, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.audit import client_address, record
from app.core.db import Database
from app.core.deps import AUTHENTICATED
from app.core.idempotency import IDEMPOTENCY_ERRORS, IdempotencyKey, idempotent_response, scope_of
from app.core.ratelimit import rate_limit
from app.core.security import Caller, require_duty
from app.core.settings import Settings
from app.services import service
from app.services.errors import (
    INVALID_CALENDAR,
    INVALID_FEE_SCHEDULE,
    NO_PROCESSING_TIME,
    PROCEDURE_NOT_FOUND,
    UNKNOWN_AGENCY,
)
from app.services.schemas import (
    AgencyOut,
    AgencyPut,
    CalendarDayOut,
    CalendarDayPut,
    CalendarYearIn,
    CalendarYearOut,
    DeadlineOut,
    ProcedureDetail,
    ProcedurePage,
    ProcedureUpdate,
    StatusModelOut,
    StatusOut,
    TransitionOut,
)
from app.services.workflow import STATUSES, TRANSITIONS

__all__ = ["ServicesAdminController", "ServicesCatalogueController", "services_routes"]

ProcedureCode = Annotated[
    str, PathParameter(description="National procedure code, e.g. `1.001193`", max_length=40)
]
Year = Annotated[int, PathParameter(description="Calendar year", ge=2000, le=2100)]
Day = Annotated[date, PathParameter(description="The day (YYYY-MM-DD)")]


class ServicesCatalogueController(Controller):
    """Public: the procedure catalogue, agencies and the status model."""

    path = "/api/v1/services"
    tags = ["services"]
    guards = [rate_limit("default")]

    @get(
        "/procedures",
        operation_id="listProcedures",
        summary="Search procedures",
        opt={"errors": []},
    )
    async def list_procedures(
        self,
        db: NamedDependency[Database],
        q: Annotated[
            str | None,
            QueryParameter(
                description="Words to find in the code, names or field; accents optional "
                "(`khai sinh` finds `Đăng ký khai sinh`)",
                max_length=200,
            ),
        ] = None,
        level: Annotated[
            str | None,
            QueryParameter(description="Only this level: `commune`, `province`, ...", max_length=40),
        ] = None,
        online: Annotated[
            Literal["full", "partial"] | None,
            QueryParameter(description="Only fully (`full`) or partly (`partial`) online procedures"),
        ] = None,
        field: Annotated[
            str | None,
            QueryParameter(
                description="Only this field (lĩnh vực), exactly or by its beginning: `Hộ tịch` matches "
                "`Hộ tịch (civil status)`",
                max_length=200,
            ),
        ] = None,
        agency: Annotated[
            str | None,
            QueryParameter(
                description="Only procedures this agency handles (any step of the chain)", max_length=40
            ),
        ] = None,
        limit: Annotated[int, QueryParameter(description="Page size", ge=1, le=100)] = 20,
        cursor: Annotated[
            str | None, QueryParameter(description="`next_cursor` of the previous page", max_length=200)
        ] = None,
    ) -> ProcedurePage:
        """The catalogue of administrative procedures (thủ tục hành chính), in code order, one page at a
        time. Public: no sign-in needed."""
        async with db.read() as session:
            return await service.search_procedures(
                session,
                q=q,
                level=level,
                online=online,
                field_name=field,
                agency=agency,
                limit=limit,
                cursor=cursor,
            )

    @get(
        "/procedures/{code:str}",
        operation_id="getProcedure",
        summary="One procedure",
        opt={"errors": [PROCEDURE_NOT_FOUND]},
    )
    async def get_procedure(self, db: NamedDependency[Database], code: ProcedureCode) -> ProcedureDetail:
        """What a citizen needs to apply: documents, fee cases (exactly one applies to a dossier; a null
        amount is a fee still to be configured, not a free one), processing time in working days, the
        agencies that handle it and how the result is returned. Public: no sign-in needed."""
        async with db.read() as session:
            return await service.get_procedure(session, code)

    @get(
        "/procedures/{code:str}/deadline",
        operation_id="estimateProcedureDeadline",
        summary="Due date for a dossier received at a given time",
        opt={"errors": [PROCEDURE_NOT_FOUND, NO_PROCESSING_TIME]},
    )
    async def estimate_deadline(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        code: ProcedureCode,
        received_at: Annotated[
            datetime,
            QueryParameter(
                description="When the clock would start (acceptance, or payment of a fee collected first), "
                "RFC 3339 with an offset"
            ),
        ],
    ) -> DeadlineOut:
        """The statutory due date, counted in working hours (office hours, weekends, public holidays and
        swapped days skipped; after closing counts from the next working morning). ``provisional`` when the
        holiday schedule of a year it crosses is not announced yet."""
        async with db.read() as session:
            return await service.estimate_deadline(session, settings, code, received_at)

    @get("/agencies", operation_id="listAgencies", summary="Agencies", opt={"errors": []})
    async def list_agencies(self, db: NamedDependency[Database]) -> list[AgencyOut]:
        """The agencies that receive and handle dossiers, with their level. Public: no sign-in needed."""
        async with db.read() as session:
            return await service.list_agencies(session)

    @get(
        "/dossier-statuses",
        operation_id="getDossierStatusModel",
        summary="Dossier statuses",
        opt={"errors": []},
    )
    async def dossier_statuses(self) -> StatusModelOut:
        """The ten statuses of the national portal (codes 1–10) and the allowed moves between them, with who
        may take each (``citizen``, ``officer`` or ``system``)."""
        return StatusModelOut(
            statuses=[
                StatusOut(
                    status=info.status.value,
                    code=info.code,
                    name_vi=info.name_vi,
                    meaning_en=info.meaning_en,
                    clock=info.clock,
                    terminal=info.terminal,
                )
                for info in STATUSES.values()
            ],
            transitions=[
                TransitionOut(
                    source=t.source.value,
                    target=t.target.value,
                    action=t.action,
                    actors=sorted(t.actors),
                    fee_due=t.fee_due,
                )
                for t in TRANSITIONS
            ],
        )


async def _audited(
    request: Request[Any, Any, Any],
    db: Database,
    caller: Caller,
    key: str | None,
    data: Any,
    effect: Callable[[AsyncSession], Awaitable[Any]],
    *,
    action: str,
    object_type: str,
    object_id: str,
    status_code: int = 200,
) -> Response[Any]:
    """An admin's edit: once per Idempotency-Key, recorded in the audit trail in the same transaction."""

    async def audited(session: AsyncSession) -> Any:
        result = await effect(session)
        await record(
            session,
            actor=caller,
            action=f"services.{action}",
            object_type=object_type,
            object_id=object_id,
            client_address=client_address(request),
        )
        return result

    return await idempotent_response(
        request, db, scope=scope_of(caller), key=key, data=data, effect=audited, status_code=status_code
    )


class ServicesAdminController(Controller):
    """Admins (duty ``superadmin``): edit the catalogue and the holiday table."""

    path = "/api/v1/admin/services"
    tags = ["admin", "services"]
    guards = [require_duty("superadmin"), rate_limit("default")]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]

    @patch(
        "/procedures/{code:str}",
        operation_id="updateProcedure",
        summary="Edit a procedure",
        opt={"errors": [*IDEMPOTENCY_ERRORS, PROCEDURE_NOT_FOUND, UNKNOWN_AGENCY, INVALID_FEE_SCHEDULE]},
    )
    async def update_procedure(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        code: ProcedureCode,
        data: JSONBody[ProcedureUpdate],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ProcedureDetail]:
        """Replace a procedure's agency chain, documents, fee schedule, return channels, processing time or
        online level (each field given replaces the stored one). Edited fields survive a later reload of the
        catalogue file. Fee schedules: unique case codes, exactly one default case, an exempt case charges
        nothing, any other case has lines."""

        async def effect(session: AsyncSession) -> ProcedureDetail:
            return await service.update_procedure(session, code, data, caller.user_id)

        return await _audited(
            request,
            db,
            caller,
            idempotency_key,
            data,
            effect,
            action="procedure_updated",
            object_type="procedure",
            object_id=code,
        )

    @put(
        "/agencies/{code:str}",
        operation_id="putAgency",
        summary="Create or replace an agency",
        opt={"errors": [*IDEMPOTENCY_ERRORS]},
    )
    async def put_agency(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        code: Annotated[
            str,
            PathParameter(
                description="Agency code (letters, digits, `-`, `_`, `.`)", pattern=r"^[A-Za-z0-9._-]{1,40}$"
            ),
        ],
        data: JSONBody[AgencyPut],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[AgencyOut]:
        """Add an agency, or replace its name, level, treasury account or active flag."""

        async def effect(session: AsyncSession) -> AgencyOut:
            return await service.put_agency(session, code, data, caller.user_id)

        return await _audited(
            request,
            db,
            caller,
            idempotency_key,
            data,
            effect,
            action="agency_saved",
            object_type="agency",
            object_id=code,
        )

    @get(
        "/calendar/{year:int}",
        operation_id="getCalendarYear",
        summary="A year of the holiday table",
        opt={"errors": []},
    )
    async def get_calendar_year(self, db: NamedDependency[Database], year: Year) -> CalendarYearOut:
        """The year's days off and worked Saturdays, and whether its schedule is announced."""
        async with db.read() as session:
            return await service.get_calendar_year(session, year)

    @put(
        "/calendar/{year:int}",
        operation_id="replaceCalendarYear",
        summary="Load a year's holiday schedule",
        opt={"errors": [*IDEMPOTENCY_ERRORS, INVALID_CALENDAR]},
    )
    async def replace_calendar_year(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        year: Year,
        data: JSONBody[CalendarYearIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CalendarYearOut]:
        """Replace the year's rows with ``days`` (days off: ``holiday``/``swap_off``; worked weekend days:
        ``swap_work``). With ``announced`` true, deadlines in the year are no longer provisional and the
        statutory fallback is not used. Deadlines already computed are not changed."""

        async def effect(session: AsyncSession) -> CalendarYearOut:
            return await service.replace_calendar_year(session, year, data, caller.user_id)

        return await _audited(
            request,
            db,
            caller,
            idempotency_key,
            data,
            effect,
            action="calendar_year_replaced",
            object_type="calendar_year",
            object_id=str(year),
        )

    @put(
        "/calendar/days/{day:date}",
        operation_id="putCalendarDay",
        summary="Set one day of the holiday table",
        opt={"errors": [*IDEMPOTENCY_ERRORS, INVALID_CALENDAR]},
    )
    async def put_calendar_day(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        day: Day,
        data: JSONBody[CalendarDayPut],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CalendarDayOut]:
        """Add or change one day (a year not yet in the table is added as not announced)."""

        async def effect(session: AsyncSession) -> CalendarDayOut:
            return await service.put_calendar_day(session, day, data, caller.user_id)

        return await _audited(
            request,
            db,
            caller,
            idempotency_key,
            data,
            effect,
            action="calendar_day_saved",
            object_type="calendar_day",
            object_id=day.isoformat(),
        )

    @delete(
        "/calendar/days/{day:date}",
        operation_id="deleteCalendarDay",
        summary="Remove one day from the holiday table",
        opt={"errors": [*IDEMPOTENCY_ERRORS]},
    )
    async def delete_calendar_day(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        day: Day,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[None]:
        """The day becomes an ordinary day (a working day unless it is a weekend). Idempotent: 204 whether
        or not the day was in the table."""

        async def effect(session: AsyncSession) -> None:
            await service.delete_calendar_day(session, day, caller.user_id)

        return await _audited(
            request,
            db,
            caller,
            idempotency_key,
            None,
            effect,
            action="calendar_day_deleted",
            object_type="calendar_day",
            object_id=day.isoformat(),
            status_code=204,
        )


services_routes = [ServicesCatalogueController, ServicesAdminController]
