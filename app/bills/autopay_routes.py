"""HTTP routes of auto-pay mandates: confirm one with the PIN, list them, cancel one."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter

from app.bills import autopay
from app.bills.autopay_schemas import MandateIn, MandateView
from app.bills.errors import MANDATE_NOT_FOUND, SAVED_CODE_NOT_FOUND
from app.core.db import Database
from app.core.deps import AUTHENTICATED
from app.core.idempotency import IDEMPOTENCY_ERRORS, IdempotencyKey, idempotent_response, scope_of
from app.core.ratelimit import rate_limit
from app.core.security import Caller, require_roles
from app.identity.errors import PIN_INVALID, PIN_LOCKED, PIN_NOT_SET
from app.wallet.errors import IDENTITY_LEVEL_REQUIRED, WALLET_NOT_FOUND

__all__ = ["AutopayController", "autopay_routes"]


class AutopayController(Controller):
    """The citizen's auto-pay mandates."""

    path = "/api/v1/me/autopay-mandates"
    tags = ["bills"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]
    guards = [require_roles("citizen"), rate_limit("default")]

    @post(
        "/",
        operation_id="confirmAutopayMandate",
        summary="Turn on auto-pay for a saved customer code",
        status_code=201,
        opt={
            "errors": [
                *IDEMPOTENCY_ERRORS,
                SAVED_CODE_NOT_FOUND,
                IDENTITY_LEVEL_REQUIRED,
                WALLET_NOT_FOUND,
                PIN_INVALID,
                PIN_LOCKED,
                PIN_NOT_SET,
            ]
        },
    )
    async def confirm(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[MandateIn],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Any]:
        """Confirm, with the payment PIN, a standing order to pay the bills of one of my saved customer
        codes ``days_before`` their due date, each up to ``max_amount``. Saving again on the same code
        changes it (and reactivates a cancelled one). Each payment it makes records the mandate as its
        authority; a bill it cannot pay (above the maximum, funds, limits) is announced in the inbox."""

        async def effect(session: Any) -> MandateView:
            return await autopay.confirm_mandate(
                session,
                user_id=caller.user_id,
                saved_code_id=data.saved_code_id,
                days_before=data.days_before,
                max_amount=data.max_amount,
                pin=data.pin,
            )

        return await idempotent_response(
            request, db, scope=scope_of(caller), key=idempotency_key, data=data, effect=effect
        )

    @get("/", operation_id="listMyAutopayMandates", summary="My auto-pay mandates")
    async def list_mine(
        self, caller: NamedDependency[Caller], db: NamedDependency[Database]
    ) -> list[MandateView]:
        """Every mandate I confirmed, active or cancelled, newest first."""
        async with db.read() as session:
            return await autopay.list_mandates(session, caller.user_id)

    @post(
        "/{mandate_id:uuid}/cancel",
        operation_id="cancelAutopayMandate",
        summary="Turn auto-pay off",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS, MANDATE_NOT_FOUND]},
    )
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        mandate_id: Annotated[uuid.UUID, PathParameter(description="The mandate's id.")],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Any]:
        """Stop a mandate: no bill is paid under it from now on. Only its citizen can."""

        async def effect(session: Any) -> MandateView:
            return await autopay.cancel_mandate(session, caller.user_id, mandate_id)

        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=None,
            effect=effect,
            status_code=200,
        )


autopay_routes = [AutopayController]
