"""Finance's view of settlements and remittances: list, read, download the file (every download audited)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter
from sqlalchemy import select

from app.core import audit
from app.core.db import Database
from app.core.deps import AUTHENTICATED
from app.core.errors import NOT_FOUND
from app.core.ratelimit import rate_limit
from app.core.security import Caller, require_duty, require_roles
from app.settlement.models import Settlement
from app.settlement.schemas import SettlementView

__all__ = ["SettlementController", "settlement_routes"]


def _view(s: Settlement) -> SettlementView:
    return SettlementView(
        id=s.id,
        kind=s.kind,
        payee_code=s.payee_code,
        business_day=s.business_day,
        status=s.status,
        collected=s.collected,
        held=s.held,
        carried=s.carried,
        amount=s.amount,
        reference=s.reference,
        bank_bin=s.bank_bin,
        account_number=s.account_number,
        bank_reference=s.bank_reference,
        failure_reason=s.failure_reason,
        lines=s.lines,
        file_name=s.file_name,
        created_at=s.created_at,
        finished_at=s.finished_at,
    )


class SettlementController(Controller):
    """Billers' settlements and the treasury remittances (admins with the ``finance`` duty)."""

    path = "/api/v1/admin/settlements"
    tags = ["settlement"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]
    guards = [require_roles("admin"), require_duty("finance"), rate_limit("default")]

    @get("/", operation_id="listSettlements", summary="Settlements and remittances")
    async def list_all(
        self,
        db: NamedDependency[Database],
        day: Annotated[date | None, QueryParameter(description="Only this business day (Huế).")] = None,
        kind: Annotated[
            Literal["biller", "treasury"] | None, QueryParameter(description="Billers' or the treasury's.")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500, description="At most this many (1-500).")] = 100,
    ) -> list[SettlementView]:
        """Settlements, newest day first, with their payout status."""
        query = (
            select(Settlement).order_by(Settlement.business_day.desc(), Settlement.payee_code).limit(limit)
        )
        if day is not None:
            query = query.where(Settlement.business_day == day)
        if kind is not None:
            query = query.where(Settlement.kind == kind)
        async with db.read() as session:
            return [_view(s) for s in await session.scalars(query)]

    @get(
        "/{settlement_id:uuid}",
        operation_id="getSettlement",
        summary="One settlement",
        opt={"errors": [NOT_FOUND]},
    )
    async def get_one(
        self,
        db: NamedDependency[Database],
        settlement_id: Annotated[uuid.UUID, PathParameter(description="The settlement's id.")],
    ) -> SettlementView:
        """A settlement with its amounts and payout status."""
        async with db.read() as session:
            found = await session.get(Settlement, settlement_id)
        if found is None:
            raise NOT_FOUND()
        return _view(found)

    @get(
        "/{settlement_id:uuid}/file",
        operation_id="getSettlementFile",
        summary="Download a remittance file",
        media_type="text/csv",
        opt={"errors": [NOT_FOUND]},
    )
    async def get_file(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        settlement_id: Annotated[uuid.UUID, PathParameter(description="The settlement's id.")],
    ) -> Response[bytes]:
        """The remittance file (UTF-8 CSV): one line per bill paid or refunded (for the treasury: per fee
        line, with procedure, agency, dossier code and fee code), holds and carried amounts, and the total,
        which equals the payout. The download is audited."""
        async with db.transaction() as session:
            found = await session.get(Settlement, settlement_id)
            if found is None:
                raise NOT_FOUND()
            await audit.record(
                session,
                actor=caller,
                action="settlement.file_downloaded",
                object_type="settlement",
                object_id=found.id,
                client_address=audit.client_address(request),
            )
            body, name = found.file_csv.encode(), found.file_name
        return Response(
            content=body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )


settlement_routes = [SettlementController]
