"""Admin pages over the desks of later modules (:mod:`app.console.desks`): reconciliation exceptions with
the maker-checker flow (duty ``finance``, as the API), and merchant review (duty ``support``). They answer 404
until the owning module installs its desk."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter, QueryParameter
from litestar.response import Redirect, Template

from app.console.desks import MerchantDesk, ReconDesk, merchant_desk, recon_desk
from app.console.i18n import translator
from app.console.web import BASE, caller_of, console_state, flash_error, page, redirect, signed_in
from app.core.audit import client_address
from app.core.db import Database
from app.core.errors import VALIDATION_FAILED, AppError
from app.core.security import require_duty, require_roles

__all__ = ["MerchantPages", "ReconPages"]

ExceptionId = Annotated[int, PathParameter(description="Exception id", ge=1)]
MerchantId = Annotated[uuid.UUID, PathParameter(description="Merchant id")]
_EXCEPTION_STATES = ("open", "proposed", "resolved", "closed", "all")
_MERCHANT_STATES = ("pending", "approved", "rejected", "suspended")


def _recon() -> ReconDesk:
    desk = recon_desk()
    if desk is None:
        raise NotFoundException("reconciliation is not installed")
    return desk


def _merchants() -> MerchantDesk:
    desk = merchant_desk()
    if desk is None:
        raise NotFoundException("merchants are not installed")
    return desk


async def _field(request: Request[Any, Any, Any], name: str) -> str:
    value = (await request.form()).get(name)
    return value.strip() if isinstance(value, str) else ""


def _postings(text: str) -> list[tuple[str, int]]:
    """One posting a line: ``account amount`` (signed đồng, positive credits), e.g. ``suspense -50000``."""
    out: list[tuple[str, int]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        account, _, amount = line.strip().rpartition(" ")
        digits = amount.replace(".", "").replace(",", "")
        if not account.strip() or not digits.lstrip("-").isdigit():
            raise VALIDATION_FAILED(
                f"Dòng bút toán không hợp lệ: {line.strip()!r}", f"Invalid posting line: {line.strip()!r}"
            )
        out.append((account.strip(), int(digits)))
    if len(out) < 2:
        raise VALIDATION_FAILED("Cần ít nhất hai dòng bút toán", "At least two postings are needed")
    return out


class ReconPages(Controller):
    path = "/admin/recon"
    guards = [signed_in, require_roles("admin"), require_duty("finance")]

    @get("/", operation_id="consoleReconExceptions", include_in_schema=False)
    async def exceptions(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        status: Annotated[str, QueryParameter(max_length=12, required=False)] = "open",
    ) -> Template:
        status = status if status in _EXCEPTION_STATES else "open"
        rows = await _recon().list_exceptions(
            db, caller_of(request), status=None if status == "all" else status, limit=100
        )
        return page(request, "admin/recon.html", rows=rows, status=status, states=_EXCEPTION_STATES)

    @get("/{exception_id:int}", operation_id="consoleReconException", include_in_schema=False)
    async def exception(
        self, request: Request[Any, Any, Any], db: NamedDependency[Database], exception_id: ExceptionId
    ) -> Template:
        caller = caller_of(request)
        row = await _recon().get_exception(db, caller, exception_id)
        return page(request, "admin/recon_exception.html", x=row, mine=row.proposed_by == caller.user_id)

    @post("/{exception_id:int}/{action:str}", operation_id="consoleReconAction", include_in_schema=False)
    async def act(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        exception_id: ExceptionId,
        action: Annotated[str, PathParameter(description="propose, approve, reject or close")],
    ) -> Redirect:
        desk, caller, address = _recon(), caller_of(request), client_address(request)
        state = console_state(request)
        try:
            if action == "propose":
                await desk.propose(
                    db,
                    caller,
                    exception_id,
                    description=await _field(request, "description") or "Điều chỉnh đối soát",
                    postings=_postings(await _field(request, "postings")),
                    client_address=address,
                )
            elif action == "approve":
                await desk.approve(db, caller, exception_id, client_address=address)
            elif action in ("reject", "close"):
                note = await _field(request, "note")
                if not note:
                    raise VALIDATION_FAILED("Hãy ghi lý do", "A note is required")
                act = desk.reject if action == "reject" else desk.close
                await act(db, caller, exception_id, note=note, client_address=address)
            else:
                raise NotFoundException()
        except AppError as exc:
            flash_error(request, exc)
        else:
            state.flash("ok", translator(state.lang)("done_ok"))
        return redirect(f"{BASE}/admin/recon/{exception_id}")


class MerchantPages(Controller):
    path = "/admin/merchants"
    guards = [signed_in, require_roles("admin"), require_duty("support")]

    @get("/", operation_id="consoleMerchants", include_in_schema=False)
    async def merchants(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        status: Annotated[str, QueryParameter(max_length=12, required=False)] = "pending",
        q: Annotated[str | None, QueryParameter(max_length=64, required=False)] = None,
    ) -> Template:
        desk, caller = _merchants(), caller_of(request)
        status = status if status in _MERCHANT_STATES else "pending"
        if q:
            rows = await desk.find_merchant(db, caller, q)
        else:
            rows = await desk.list_merchants(db, caller, status=status, limit=100)
        return page(
            request, "admin/merchants.html", rows=rows, status=status, states=_MERCHANT_STATES, q=q or ""
        )

    @post("/{merchant_id:uuid}/{action:str}", operation_id="consoleMerchantDecision", include_in_schema=False)
    async def decide(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        merchant_id: MerchantId,
        action: Annotated[str, PathParameter(description="approve, reject, suspend or reinstate")],
    ) -> Redirect:
        state = console_state(request)
        if action not in ("approve", "reject", "suspend", "reinstate"):
            raise NotFoundException()
        try:
            await _merchants().decide(
                db, caller_of(request), merchant_id, action=action, reason=await _field(request, "reason")
            )
        except AppError as exc:
            flash_error(request, exc)
        else:
            state.flash("ok", translator(state.lang)("done_ok"))
        return redirect(f"{BASE}/admin/merchants?q={merchant_id}")
