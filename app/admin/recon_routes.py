"""The admin API of reconciliation (runs, exceptions, corrections) and of the reports. Duty ``finance``."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, JSONBody, PathParameter, QueryParameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.admin import corrections, reports
from app.admin.corrections import RECON_EXCEPTION_NOT_FOUND, RECON_EXCEPTION_STATE, RECON_FOUR_EYES
from app.admin.models import ReconException, ReconRun
from app.admin.recon_schemas import (
    CorrectionIn,
    ExceptionPage,
    ExceptionStatus,
    HeadlineOut,
    NoteIn,
    ReconExceptionOut,
    ReconRunOut,
    RunUpload,
    TotalRowOut,
    TotalsOut,
)
from app.admin.reconciliation import (
    BankStatement,
    BillerLine,
    ReportError,
    parse_bank_csv,
    parse_biller_csv,
    reconcile_day,
    text_stream,
)
from app.core.audit import AuditActor, client_address
from app.core.db import Database
from app.core.deps import AUTHENTICATED
from app.core.errors import NOT_FOUND, VALIDATION_FAILED, AppError, FieldError
from app.core.idempotency import IDEMPOTENCY_ERRORS, IdempotencyKey, idempotent_response, scope_of
from app.core.ratelimit import rate_limit
from app.core.scheduler import LOCAL_TZ
from app.core.security import Caller, require_duty
from app.wallet.errors import INSUFFICIENT_FUNDS

__all__ = ["ReconciliationController", "ReportsController", "recon_routes"]

_MAX_UPLOAD = 256 * 1024 * 1024
"""Ceiling on a run's multipart request (a month of a busy gateway's report fits)."""
_MULTIPART = {"media_types": ("multipart/form-data",)}

ExceptionId = Annotated[int, PathParameter(description="Exception id", ge=1)]
RunId = Annotated[int, PathParameter(description="Run id", ge=1)]
DayQuery = Annotated[
    str | None,
    QueryParameter(description="A local day, YYYY-MM-DD (default: today)", pattern=r"^\d{4}-\d{2}-\d{2}$"),
]


def _day(value: str | None, field: str, source: str = "query") -> date:
    if value is None:
        return datetime.now(LOCAL_TZ).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise VALIDATION_FAILED(
            "Ngày không hợp lệ",
            "Invalid day",
            errors=[FieldError(field=field, source=source, message="a day, YYYY-MM-DD")],
        ) from None


async def _digest(upload: UploadFile | None) -> str | None:
    if upload is None:
        return None
    digest = hashlib.sha256()
    while chunk := await upload.read(1 << 20):
        digest.update(chunk)
    await upload.seek(0)
    return digest.hexdigest()


class ReconciliationController(Controller):
    """Finance admins reconcile a day, work through its exceptions and correct the books (four eyes)."""

    path = "/api/v1/admin/reconciliation"
    tags = ["admin"]
    guards = [require_duty("finance"), rate_limit("default")]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]

    @post(
        "/runs",
        operation_id="runReconciliation",
        summary="Reconcile a day",
        status_code=201,
        request_max_body_size=_MAX_UPLOAD,
        opt={**_MULTIPART, "errors": [VALIDATION_FAILED, *IDEMPOTENCY_ERRORS]},
    )
    async def run(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        data: Annotated[RunUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ReconRunOut]:
        """Reconcile one business day (Asia/Ho_Chi_Minh) against the ledger: the gateway's settlement report,
        the billers' confirmations and the guarantee account's statement, each uploaded as CSV or, when left
        out, fetched (gateway through the card gateway; billers from the recorded confirmations; bank if a
        statement source is configured). Every non-matching line becomes an exception (a day reconciled again
        repeats none already known); the books are checked, and a day that is over has its journal sealed into
        the audit chain (or checked against its seal). Recorded in the audit trail."""
        day = _day(data.day, "day", "body")
        fingerprint = {
            "day": day.isoformat(),
            "gateway_report": await _digest(data.gateway_report),
            "biller_confirmations": await _digest(data.biller_confirmations),
            "bank_statement": await _digest(data.bank_statement),
        }

        async def effect(session: AsyncSession) -> ReconRunOut:
            try:
                billers: list[BillerLine] | None = None
                if data.biller_confirmations is not None:
                    billers = parse_biller_csv(text_stream(data.biller_confirmations.file))
                bank: BankStatement | None = None
                if data.bank_statement is not None:
                    bank = parse_bank_csv(text_stream(data.bank_statement.file), day)
                gateway = data.gateway_report.file if data.gateway_report is not None else None
                result = await reconcile_day(
                    session,
                    day,
                    actor=AuditActor.of(caller),
                    gateway_csv=gateway,
                    biller_lines=billers,
                    bank_statement=bank,
                )
            except ReportError as exc:
                raise exc.problem() from None
            return ReconRunOut.of(result.run)

        return await idempotent_response(
            request, db, scope=scope_of(caller), key=idempotency_key, data=fingerprint, effect=effect
        )

    @get(
        "/runs", operation_id="listReconciliationRuns", summary="List reconciliation runs", opt={"errors": []}
    )
    async def list_runs(
        self,
        db: NamedDependency[Database],
        day: DayQuery = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100, description="How many, newest first")] = 20,
    ) -> list[ReconRunOut]:
        """Runs, newest first; only those of `day` when given."""
        query = select(ReconRun).order_by(ReconRun.id.desc()).limit(limit)
        if day is not None:
            query = query.where(ReconRun.day == _day(day, "day"))
        async with db.read() as session:
            return [ReconRunOut.of(run) for run in (await session.scalars(query)).all()]

    @get(
        "/runs/{run_id:int}",
        operation_id="getReconciliationRun",
        summary="Show a run",
        opt={"errors": [NOT_FOUND]},
    )
    async def show_run(self, db: NamedDependency[Database], run_id: RunId) -> ReconRunOut:
        """One run with its counts and checks."""
        async with db.read() as session:
            run = await session.get(ReconRun, run_id)
        if run is None:
            raise NOT_FOUND()
        return ReconRunOut.of(run)

    @get(
        "/exceptions",
        operation_id="listReconciliationExceptions",
        summary="List reconciliation exceptions",
        opt={"errors": []},
    )
    async def list_exceptions(
        self,
        db: NamedDependency[Database],
        status: Annotated[ExceptionStatus | None, QueryParameter(description="Only this status")] = None,
        day: DayQuery = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100, description="Page size")] = 50,
        cursor: Annotated[
            int | None, QueryParameter(ge=1, description="`next_cursor` of the previous page")
        ] = None,
    ) -> ExceptionPage:
        """Exceptions, newest first, filtered by status and day."""
        async with db.read() as session:
            page, next_cursor = await corrections.list_exceptions(
                session,
                status=status,
                day=_day(day, "day") if day is not None else None,
                limit=limit,
                before=cursor,
            )
        return ExceptionPage(items=[ReconExceptionOut.of(r) for r in page], next_cursor=next_cursor)

    @get(
        "/exceptions/{exception_id:int}",
        operation_id="getReconciliationException",
        summary="Show an exception",
        opt={"errors": [RECON_EXCEPTION_NOT_FOUND]},
    )
    async def show_exception(
        self, db: NamedDependency[Database], exception_id: ExceptionId
    ) -> ReconExceptionOut:
        """One exception with its proposal and decision."""
        async with db.read() as session:
            row = await session.get(ReconException, exception_id)
        if row is None:
            raise RECON_EXCEPTION_NOT_FOUND()
        return ReconExceptionOut.of(row)

    async def _act(
        self,
        request: Request[Any, Any, Any],
        db: Database,
        caller: Caller,
        key: str | None,
        data: Any,
        action: Any,
    ) -> Response[ReconExceptionOut]:
        async def effect(session: AsyncSession) -> ReconExceptionOut:
            return ReconExceptionOut.of(await action(session))

        return await idempotent_response(
            request, db, scope=scope_of(caller), key=key, data=data, effect=effect, status_code=200
        )

    @post(
        "/exceptions/{exception_id:int}/proposal",
        operation_id="proposeReconciliationCorrection",
        summary="Propose a correcting entry",
        status_code=200,
        opt={
            "errors": [
                RECON_EXCEPTION_NOT_FOUND,
                RECON_EXCEPTION_STATE,
                VALIDATION_FAILED,
                *IDEMPOTENCY_ERRORS,
            ]
        },
    )
    async def propose(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        exception_id: ExceptionId,
        data: JSONBody[CorrectionIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ReconExceptionOut]:
        """The maker's step: a balanced correcting entry for an open exception. It is posted only when another
        finance admin approves it. Recorded in the audit trail."""
        postings = [corrections.ProposedPosting(p.account, p.amount) for p in data.postings]
        address = client_address(request)
        return await self._act(
            request,
            db,
            caller,
            idempotency_key,
            data,
            lambda session: corrections.propose(
                session,
                exception_id,
                caller,
                description=data.description,
                postings=postings,
                client_address=address,
            ),
        )

    @post(
        "/exceptions/{exception_id:int}/approve",
        operation_id="approveReconciliationCorrection",
        summary="Approve a proposed correction",
        status_code=200,
        opt={
            "errors": [
                RECON_EXCEPTION_NOT_FOUND,
                RECON_EXCEPTION_STATE,
                RECON_FOUR_EYES,
                INSUFFICIENT_FUNDS,
                *IDEMPOTENCY_ERRORS,
            ]
        },
    )
    async def approve(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        exception_id: ExceptionId,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ReconExceptionOut]:
        """The checker's step: posts the proposed entry (kind `recon_correction`, the exception's reference)
        and resolves the exception. Refused to the admin who proposed it (`recon_four_eyes`). Recorded in the
        audit trail."""
        address = client_address(request)
        try:
            return await self._act(
                request,
                db,
                caller,
                idempotency_key,
                None,
                lambda session: corrections.approve(session, exception_id, caller, client_address=address),
            )
        except AppError as exc:
            if exc.kind is RECON_FOUR_EYES:  # refused and rolled back: the attempt stays on record
                await corrections.record_refused_self_approval(
                    db, caller, exception_id, client_address=address
                )
            raise

    @post(
        "/exceptions/{exception_id:int}/reject",
        operation_id="rejectReconciliationCorrection",
        summary="Reject a proposed correction",
        status_code=200,
        opt={"errors": [RECON_EXCEPTION_NOT_FOUND, RECON_EXCEPTION_STATE, *IDEMPOTENCY_ERRORS]},
    )
    async def reject(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        exception_id: ExceptionId,
        data: JSONBody[NoteIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ReconExceptionOut]:
        """Turn the proposal down with a note: the exception is open again. Recorded in the audit trail."""
        address = client_address(request)
        return await self._act(
            request,
            db,
            caller,
            idempotency_key,
            data,
            lambda session: corrections.reject(
                session, exception_id, caller, note=data.note, client_address=address
            ),
        )

    @post(
        "/exceptions/{exception_id:int}/close",
        operation_id="closeReconciliationException",
        summary="Close an exception with a note",
        status_code=200,
        opt={"errors": [RECON_EXCEPTION_NOT_FOUND, RECON_EXCEPTION_STATE, *IDEMPOTENCY_ERRORS]},
    )
    async def close(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        exception_id: ExceptionId,
        data: JSONBody[NoteIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ReconExceptionOut]:
        """Settle an exception that needs no entry (e.g. an item in transit that cleared), saying why.
        Recorded in the audit trail."""
        address = client_address(request)
        return await self._act(
            request,
            db,
            caller,
            idempotency_key,
            data,
            lambda session: corrections.close(
                session, exception_id, caller, note=data.note, client_address=address
            ),
        )


Period = Annotated[str, QueryParameter(description="day or month", pattern="^(day|month)$")]
Dimension = Annotated[
    str,
    QueryParameter(
        description="kind, category, biller, agency or merchant",
        pattern="^(kind|category|biller|agency|merchant)$",
    ),
]
CHARTS = ("bills_by_category", "dossiers_by_status", "timeliness", "totals_by_category")


class ReportsController(Controller):
    """Finance and the province's figures: totals, CSV export, headline figures and their charts."""

    path = "/api/v1/admin/reports"
    tags = ["admin"]
    guards = [require_duty("finance"), rate_limit("default")]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]

    async def _totals(self, db: Database, period: str, day: str | None, dimension: str) -> TotalsOut:
        first, last, start, end = reports.period_bounds(period, _day(day, "day"))
        async with db.read() as session:
            rows = await reports.totals(session, dimension, start, end)
        return TotalsOut(
            period=period,  # type: ignore[arg-type]
            first_day=first,
            last_day=last,
            dimension=dimension,
            rows=[TotalRowOut.of(r) for r in rows],
            total=sum(r.amount for r in rows),
        )

    @get("/totals", operation_id="reportTotals", summary="Totals of a day or a month", opt={"errors": []})
    async def totals(
        self,
        db: NamedDependency[Database],
        period: Period = "day",
        dimension: Dimension = "kind",
        day: Annotated[
            str | None,
            QueryParameter(
                description="A day of the period, YYYY-MM-DD (default: today)",
                pattern=r"^\d{4}-\d{2}-\d{2}$",
            ),
        ] = None,
    ) -> TotalsOut:
        """Totals per entry kind, bill category, biller, agency or merchant, for a day or a month
        (Asia/Ho_Chi_Minh)."""
        return await self._totals(db, period, day, dimension)

    @get(
        "/totals.csv",
        operation_id="exportReportTotals",
        summary="Totals as CSV",
        media_type="text/csv",
        opt={"errors": []},
    )
    async def totals_csv(
        self,
        db: NamedDependency[Database],
        period: Period = "day",
        dimension: Dimension = "kind",
        day: Annotated[
            str | None,
            QueryParameter(
                description="A day of the period, YYYY-MM-DD (default: today)",
                pattern=r"^\d{4}-\d{2}-\d{2}$",
            ),
        ] = None,
    ) -> Response[str]:
        """The same totals as a CSV file (from, to, dimension, key, label, count, amount_vnd)."""
        out = await self._totals(db, period, day, dimension)
        rows = [reports.TotalRow(r.key, r.label, r.count, r.amount) for r in out.rows]
        name = f"totals-{dimension}-{period}-{out.first_day.isoformat()}.csv"
        return Response(
            reports.totals_csv(dimension, out.first_day, out.last_day, rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @get(
        "/headline",
        operation_id="reportHeadline",
        summary="The province's headline figures",
        opt={"errors": []},
    )
    async def headline(
        self,
        db: NamedDependency[Database],
        month: Annotated[
            str | None,
            QueryParameter(
                description="A day of the month, YYYY-MM-DD (default: today)", pattern=r"^\d{4}-\d{2}-\d{2}$"
            ),
        ] = None,
    ) -> HeadlineOut:
        """Wallet accounts, active acceptance points, bills paid by category, dossiers by status, early / on
        time / late, share paid online and satisfaction, for a month."""
        async with db.read() as session:
            return HeadlineOut.of(await reports.headline(session, _day(month, "month")))

    @get(
        "/charts/{chart:str}",
        operation_id="reportChart",
        summary="A headline figure as an SVG chart",
        media_type="image/svg+xml",
        opt={"errors": [NOT_FOUND]},
    )
    async def chart(
        self,
        db: NamedDependency[Database],
        chart: Annotated[
            str,
            PathParameter(
                description="bills_by_category, dossiers_by_status, timeliness or totals_by_category"
            ),
        ],
        month: Annotated[
            str | None,
            QueryParameter(
                description="A day of the month, YYYY-MM-DD (default: today)", pattern=r"^\d{4}-\d{2}-\d{2}$"
            ),
        ] = None,
    ) -> Response[str]:
        """An SVG bar chart of one figure of the month (an image for the console or a printed report)."""
        if chart not in CHARTS:
            raise NOT_FOUND()
        day = _day(month, "month")
        async with db.read() as session:
            if chart == "totals_by_category":
                _, _, start, end = reports.period_bounds("month", day)
                rows = await reports.totals(session, "category", start, end)
                bars: list[tuple[str, int | float]] = [(r.label, r.amount) for r in rows]
                title, unit = f"Bills paid by category, {day:%m/%Y} (đồng)", ""
            else:
                figures = await reports.headline(session, day)
                data = {
                    "bills_by_category": figures.bills_paid_by_category,
                    "dossiers_by_status": figures.dossiers_by_status,
                    "timeliness": figures.timeliness,
                }[chart]
                bars = (
                    sorted(data.items(), key=lambda kv: -kv[1])
                    if chart != "timeliness"
                    else list(data.items())
                )
                title = {
                    "bills_by_category": f"Bills paid by category, {day:%m/%Y}",
                    "dossiers_by_status": "Dossiers by status",
                    "timeliness": f"Dossiers finished {day:%m/%Y}: early / on time / late",
                }[chart]
                unit = ""
        return Response(reports.bar_chart_svg(title, bars, unit=unit), media_type="image/svg+xml")


recon_routes = [ReconciliationController, ReportsController]
"""Routes of reconciliation and reports (duty finance)."""
