"""HTTP routes of bills: the biller catalogue, lookup by customer code, saved codes, the inbox, admin."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, put
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.bills import service
from app.bills.clock import local_today
from app.bills.errors import (
    BILL_NOT_FOUND,
    BILLER_ERROR,
    BILLER_NOT_FOUND,
    BILLER_UNAVAILABLE,
    CUSTOMER_CODE_NOT_FOUND,
    INVALID_BILLER,
    INVALID_CUSTOMER_CODE,
    SAVED_CODE_NOT_FOUND,
)
from app.bills.gateway import BillerGateway
from app.bills.schemas import (
    BillDetail,
    BillerAdmin,
    BillerIn,
    BillerPublic,
    BillInbox,
    BillLookup,
    Category,
    SaveCodeIn,
    SavedCode,
)
from app.core.audit import client_address, record
from app.core.db import Database
from app.core.deps import AUTHENTICATED
from app.core.idempotency import (
    IDEMPOTENCY_ERRORS,
    IdempotencyKey,
    idempotent,
    idempotent_response,
    request_fingerprint,
    scope_of,
)
from app.core.ratelimit import rate_limit
from app.core.security import Caller, require_duty, require_roles
from app.core.settings import Settings

__all__ = ["BillerAdminController", "BillerCatalogueController", "MyBillsController", "bills_routes"]

BillerCode = Annotated[
    str, PathParameter(description="Biller code, e.g. `EVN_CPC_HUE`.", pattern=r"^[A-Z0-9_]{2,32}$")
]
CustomerCode = Annotated[
    str, PathParameter(description="The customer code (mã khách hàng).", min_length=1, max_length=64)
]


async def provide_biller_gateway(request: Request[Any, Any, Any]) -> BillerGateway:
    gateway: BillerGateway = request.app.state.biller_gateway
    return gateway


class BillerCatalogueController(Controller):
    """Billers as citizens see them (no sign-in needed), and the lookup of a household's bills."""

    path = "/api/v1/billers"
    tags = ["bills"]
    guards = [rate_limit("default")]

    @get(
        "/",
        operation_id="listBillers",
        summary="Billers that can be paid",
        opt={"errors": []},
    )
    async def list_billers(
        self,
        db: NamedDependency[Database],
        category: Annotated[
            Category | None, QueryParameter(description="Only billers of this category.")
        ] = None,
    ) -> list[BillerPublic]:
        """The active billers, by category then name: what each collects and how to enter a customer code."""
        billers = await service.list_billers(db, category=category)
        return [service.biller_public_view(b) for b in billers]

    @get(
        "/{biller_code:str}",
        operation_id="getBiller",
        summary="One biller",
        opt={"errors": [BILLER_NOT_FOUND]},
    )
    async def get_biller(self, db: NamedDependency[Database], biller_code: BillerCode) -> BillerPublic:
        """An active biller: its category, amount rule and the customer code field to show."""
        async with db.read() as session:
            biller = await service.get_biller(session, biller_code)
        return service.biller_public_view(biller)

    @get(
        "/{biller_code:str}/customers/{customer_code:str}/bills",
        operation_id="lookupBills",
        summary="Bills of a customer code",
        dependencies={"gateway": provide_biller_gateway, **AUTHENTICATED["dependencies"]},
        security=AUTHENTICATED["security"],
        guards=[require_roles("citizen")],
        opt={
            "errors": [
                *IDEMPOTENCY_ERRORS,
                BILLER_NOT_FOUND,
                INVALID_CUSTOMER_CODE,
                CUSTOMER_CODE_NOT_FOUND,
                BILLER_UNAVAILABLE,
                BILLER_ERROR,
            ]
        },
    )
    async def lookup_bills(
        self,
        db: NamedDependency[Database],
        gateway: NamedDependency[BillerGateway],
        caller: NamedDependency[Caller],
        biller_code: BillerCode,
        customer_code: CustomerCode,
    ) -> BillLookup:
        """The unpaid bills of any household, to pay for parents or a neighbour: only what is needed to pay
        (period, amount, due date) and the customer's name masked. Fetch billers are asked live."""
        return await service.lookup(db, gateway, biller_code, customer_code, caller_id=caller.user_id)


class MyBillsController(Controller):
    """The citizen's saved customer codes, inbox and bills. Another citizen's objects are 404."""

    path = "/api/v1/me"
    tags = ["bills"]
    dependencies = {"gateway": provide_biller_gateway, **AUTHENTICATED["dependencies"]}
    security = AUTHENTICATED["security"]
    guards = [require_roles("citizen"), rate_limit("default")]

    @get(
        "/customer-codes",
        operation_id="listSavedCustomerCodes",
        summary="My saved customer codes",
        opt={"errors": []},
    )
    async def list_codes(
        self, db: NamedDependency[Database], caller: NamedDependency[Caller]
    ) -> list[SavedCode]:
        """Codes saved with a nickname, oldest first, each with its unpaid count and total."""
        return await service.list_saved_codes(db, caller.user_id)

    @put(
        "/customer-codes/{biller_code:str}/{customer_code:str}",
        operation_id="saveCustomerCode",
        summary="Save (or rename) a customer code",
        opt={
            "errors": [
                *IDEMPOTENCY_ERRORS,
                BILLER_NOT_FOUND,
                INVALID_CUSTOMER_CODE,
                CUSTOMER_CODE_NOT_FOUND,
                BILLER_UNAVAILABLE,
                BILLER_ERROR,
            ]
        },
    )
    async def save_code(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        gateway: NamedDependency[BillerGateway],
        caller: NamedDependency[Caller],
        biller_code: BillerCode,
        customer_code: CustomerCode,
        data: JSONBody[SaveCodeIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[SavedCode]:
        """Keep a household's code with a nickname ("Nhà bố mẹ") so its bills appear in the inbox. Saving
        the same code again only renames it (safe to retry). A fetch biller is asked first: an unknown code
        is refused."""
        checked: list[service.CodeToSave] = []

        async def prepare() -> None:
            checked.append(await service.check_code_to_save(db, gateway, biller_code, customer_code))

        async def effect(session: AsyncSession) -> SavedCode:
            return await service.store_saved_code(session, caller.user_id, checked[0], data.nickname)

        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=data,
            effect=effect,
            status_code=200,
            prepare=prepare,
        )

    @delete(
        "/customer-codes/{saved_id:uuid}",
        operation_id="deleteSavedCustomerCode",
        summary="Forget a saved customer code",
        opt={"errors": [*IDEMPOTENCY_ERRORS, SAVED_CODE_NOT_FOUND]},
    )
    async def delete_code(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        saved_id: Annotated[uuid.UUID, PathParameter(description="Id of the saved code.")],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[None]:
        """Its bills leave the inbox; nothing else changes."""

        async def effect(session: AsyncSession) -> None:
            await service.delete_saved_code(session, caller.user_id, saved_id)

        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=None,
            effect=effect,
            status_code=204,
        )

    @get(
        "/bills",
        operation_id="myBills",
        summary="My bills inbox",
        opt={"errors": []},
    )
    async def my_bills(
        self,
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        due_soon_days: Annotated[
            int, QueryParameter(description="Width of the due-soon window in days.", ge=0, le=60)
        ] = service.DUE_SOON_DAYS,
    ) -> BillInbox:
        """Bills of the saved codes and the citizen's own fees: overdue, due soon, upcoming, pending and
        recently paid, each with a count and total."""
        return await service.inbox(db, caller.user_id, today=local_today(), due_soon_days=due_soon_days)

    @get(
        "/bills/{bill_id:uuid}",
        operation_id="getMyBill",
        summary="One of my bills",
        opt={"errors": [BILL_NOT_FOUND]},
    )
    async def my_bill(
        self,
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        bill_id: Annotated[uuid.UUID, PathParameter(description="Bill id.")],
    ) -> BillDetail:
        """A bill of a saved code or the citizen's own, with what is needed to pay it."""
        return await service.bill_detail(db, caller.user_id, bill_id, today=local_today())


class BillerAdminController(Controller):
    """The biller registry, for superadmins."""

    path = "/api/v1/admin/billers"
    tags = ["admin"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]
    guards = [require_duty("superadmin"), rate_limit("default")]

    @get("/", operation_id="adminListBillers", summary="Every biller", opt={"errors": []})
    async def list_all(self, db: NamedDependency[Database]) -> list[BillerAdmin]:
        """Active and inactive billers with their full declaration."""
        return [service.biller_admin_view(b) for b in await service.list_billers(db, include_inactive=True)]

    @get(
        "/{biller_code:str}",
        operation_id="adminGetBiller",
        summary="One biller's declaration",
        opt={"errors": [BILLER_NOT_FOUND]},
    )
    async def get_one(self, db: NamedDependency[Database], biller_code: BillerCode) -> BillerAdmin:
        """A biller, active or not, with its connector, settlement account and payable reference."""
        async with db.read() as session:
            biller = await service.get_biller(session, biller_code, active_only=False)
        return service.biller_admin_view(biller)

    @put(
        "/{biller_code:str}",
        operation_id="adminPutBiller",
        summary="Declare or replace a biller",
        responses={201: ResponseSpec(BillerAdmin, description="The biller was created.")},
        opt={"errors": [*IDEMPOTENCY_ERRORS, INVALID_BILLER]},
    )
    async def put_one(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        caller: NamedDependency[Caller],
        biller_code: BillerCode,
        data: JSONBody[BillerIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[BillerAdmin]:
        """Creates the biller (201) or replaces its whole declaration (200); the code never changes. A
        category outside the legal exemptions cannot be limit-exempt; a fetch biller needs a connector.
        Recorded in the audit trail; a retry with the same Idempotency-Key answers the first response."""
        fingerprint = request_fingerprint(request.method, request.url.path, data, query=request.url.query)
        async with idempotent(
            db, scope=scope_of(caller), key=idempotency_key, fingerprint=fingerprint
        ) as unit:
            if unit.replay is not None:
                return unit.replay.to_response()
            biller, created = await service.save_biller(
                unit.session, biller_code, data, production=settings.is_production
            )
            await record(
                unit.session,
                actor=caller,
                action="bills.biller_saved",
                object_type="biller",
                object_id=biller_code,
                client_address=client_address(request),
                details={"created": created},
            )
            stored = unit.record(201 if created else 200, service.biller_admin_view(biller))
        return stored.to_response()


bills_routes = [BillerCatalogueController, MyBillsController, BillerAdminController]
