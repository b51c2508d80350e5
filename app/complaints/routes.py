"""HTTP routes of complaints: the citizen's (open, list, read), support's (list, review, resolve, reject)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter

from app.complaints import service
from app.complaints.errors import (
    COMPLAINT_EXISTS,
    COMPLAINT_NOT_FOUND,
    COMPLAINT_STATE,
    NOTHING_TO_DISPUTE,
    PAYMENT_KIND_UNKNOWN,
    PAYMENT_NOT_DISPUTABLE,
)
from app.complaints.schemas import ComplaintIn, ComplaintView, RejectIn, ResolveIn, ReviewIn
from app.core.db import Database
from app.core.deps import AUTHENTICATED
from app.core.errors import NOT_FOUND
from app.core.idempotency import IDEMPOTENCY_ERRORS, IdempotencyKey, idempotent_response, scope_of
from app.core.ratelimit import rate_limit
from app.core.security import Caller, require_duty, require_roles
from app.core.settings import Settings
from app.merchants.errors import REFUND_EXCEEDS_PAID
from app.wallet.errors import INSUFFICIENT_FUNDS, REFUND_EXCEEDS_PAYMENT

__all__ = ["ComplaintAdminController", "MyComplaintsController", "complaint_routes"]

ComplaintId = Annotated[uuid.UUID, PathParameter(description="The complaint's id.")]


class MyComplaintsController(Controller):
    """A citizen's complaints about their payments."""

    path = "/api/v1/me/complaints"
    tags = ["complaints"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]
    guards = [require_roles("citizen"), rate_limit("default")]

    @post(
        "/",
        operation_id="openComplaint",
        summary="Complain about a payment I made",
        status_code=201,
        opt={
            "errors": [
                *IDEMPOTENCY_ERRORS,
                PAYMENT_KIND_UNKNOWN,
                PAYMENT_NOT_DISPUTABLE,
                COMPLAINT_EXISTS,
                NOTHING_TO_DISPUTE,
            ]
        },
    )
    async def open_complaint(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[ComplaintIn],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Any]:
        """Log a complaint about a bill payment, a transfer (or a merchant payment) I made, with a reason.
        One complaint per payment. Support answers within the SLA (working days; ``due_at``); the disputed
        amount is held from the payee's next settlements until it is closed. Each step is announced in my
        inbox."""

        async def effect(session: Any) -> ComplaintView:
            return await service.open_complaint(session, settings, caller, data)

        return await idempotent_response(
            request, db, scope=scope_of(caller), key=idempotency_key, data=data, effect=effect
        )

    @get("/", operation_id="listMyComplaints", summary="My complaints")
    async def list_mine(
        self, caller: NamedDependency[Caller], db: NamedDependency[Database]
    ) -> list[ComplaintView]:
        """My complaints, newest first (at most 50)."""
        async with db.read() as session:
            return await service.list_complaints(session, user_id=caller.user_id)

    @get(
        "/{complaint_id:uuid}",
        operation_id="getMyComplaint",
        summary="One of my complaints",
        opt={"errors": [NOT_FOUND, COMPLAINT_NOT_FOUND]},
    )
    async def get_mine(
        self, caller: NamedDependency[Caller], db: NamedDependency[Database], complaint_id: ComplaintId
    ) -> ComplaintView:
        """A complaint with its timeline; only its citizen (and support) can see it."""
        async with db.read() as session:
            return await service.get_complaint(session, caller, complaint_id)


class ComplaintAdminController(Controller):
    """Support's desk for complaints (admins with the ``support`` duty)."""

    path = "/api/v1/admin/complaints"
    tags = ["complaints"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]
    guards = [require_roles("admin"), require_duty("support"), rate_limit("default")]

    @get("/", operation_id="listComplaints", summary="Complaints to handle")
    async def list_all(
        self,
        db: NamedDependency[Database],
        status: Annotated[
            Literal["logged", "in_review", "resolved", "rejected"] | None,
            QueryParameter(description="Only complaints in this status."),
        ] = None,
        overdue: Annotated[bool, QueryParameter(description="Only open complaints past their SLA.")] = False,
        limit: Annotated[int, QueryParameter(ge=1, le=200, description="At most this many (1-200).")] = 50,
    ) -> list[ComplaintView]:
        """Complaints, newest first, filtered by status or overdue."""
        async with db.read() as session:
            return await service.list_complaints(session, status=status, overdue=overdue, limit=limit)

    @get(
        "/{complaint_id:uuid}",
        operation_id="getComplaint",
        summary="One complaint",
        opt={"errors": [COMPLAINT_NOT_FOUND]},
    )
    async def get_one(
        self, caller: NamedDependency[Caller], db: NamedDependency[Database], complaint_id: ComplaintId
    ) -> ComplaintView:
        """A complaint with its timeline."""
        async with db.read() as session:
            return await service.get_complaint(session, caller, complaint_id)

    @post(
        "/{complaint_id:uuid}/review",
        operation_id="reviewComplaint",
        summary="Take a complaint in review",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS, COMPLAINT_NOT_FOUND, COMPLAINT_STATE]},
    )
    async def review(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[ReviewIn],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        complaint_id: ComplaintId,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Any]:
        """``logged`` -> ``in_review``; the citizen is told."""

        async def effect(session: Any) -> ComplaintView:
            return await service.take_in_review(session, caller, complaint_id, data.note)

        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=data,
            effect=effect,
            status_code=200,
        )

    @post(
        "/{complaint_id:uuid}/resolve",
        operation_id="resolveComplaint",
        summary="Uphold a complaint with a refund",
        status_code=200,
        opt={
            "errors": [
                *IDEMPOTENCY_ERRORS,
                COMPLAINT_NOT_FOUND,
                COMPLAINT_STATE,
                NOTHING_TO_DISPUTE,
                REFUND_EXCEEDS_PAYMENT,
                REFUND_EXCEEDS_PAID,
                INSUFFICIENT_FUNDS,
            ]
        },
    )
    async def resolve(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[ResolveIn],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        complaint_id: ComplaintId,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Any]:
        """``in_review`` -> ``resolved``: refund ``refund_amount`` (full or partial, at most the disputed
        amount) through the module that took the payment, release the payee's hold, tell the citizen. For a
        transfer, the money comes back from the receiver's wallet only as far as it is there
        (``insufficient_funds`` otherwise)."""

        async def effect(session: Any) -> ComplaintView:
            return await service.resolve(session, caller, complaint_id, data.refund_amount, data.note)

        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=data,
            effect=effect,
            status_code=200,
        )

    @post(
        "/{complaint_id:uuid}/reject",
        operation_id="rejectComplaint",
        summary="Reject a complaint",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS, COMPLAINT_NOT_FOUND, COMPLAINT_STATE]},
    )
    async def reject(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[RejectIn],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        complaint_id: ComplaintId,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Any]:
        """``logged``/``in_review`` -> ``rejected`` with a reason; the hold is released, the citizen told."""

        async def effect(session: Any) -> ComplaintView:
            return await service.reject(session, caller, complaint_id, data.reason)

        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=data,
            effect=effect,
            status_code=200,
        )


complaint_routes = [MyComplaintsController, ComplaintAdminController]
