"""The console's pages: sign-in, the officers' dossier desk, the admins' dashboard and tools.

Thin, like the API's controllers: every rule is in the service functions the API routes call, and access
is decided by the API's own guards (``require_roles``, ``require_duty``) on the caller the console session
names (see :mod:`app.console.web`). Form posts are protected by the CSRF guard instead of an
``Idempotency-Key`` (DESIGN.md, API conventions).
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

from litestar import Controller, Request, Response, Router, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router

from app.console.charts import bar_chart
from app.console.desk_pages import MerchantPages, ReconPages
from app.console.i18n import error_text, translator
from app.console.session import ConsoleSession
from app.console.web import (
    BASE,
    STATIC,
    ConsoleSessionMiddleware,
    caller_of,
    console_exception_handlers,
    console_state,
    csrf_guard,
    flash_error,
    page,
    redirect,
    signed_in,
)
from app.core.audit import client_address
from app.core.db import Database
from app.core.errors import AppError
from app.core.ratelimit import rate_limit
from app.core.scheduler import LOCAL_TZ
from app.core.security import Caller, require_duty, require_roles
from app.core.settings import Settings
from app.identity.tokens import DeviceInfo

if TYPE_CHECKING:
    from app.services.dossier_schemas import QueueFilter

__all__ = ["console_router"]

DossierId = Annotated[uuid.UUID, PathParameter(description="Dossier id")]
DocumentId = Annotated[uuid.UUID, PathParameter(description="Document id")]
UserId = Annotated[uuid.UUID, PathParameter(description="Account id")]
MessageId = Annotated[uuid.UUID, PathParameter(description="Outbox message id")]
_MAX_UPLOAD_BODY = 64 * 1024 * 1024
_FILTERS = ("all", "receiving", "new", "processing", "waiting", "due_soon", "overdue")


async def _field(request: Request[Any, Any, Any], name: str) -> str:
    value = (await request.form()).get(name)
    return value.strip() if isinstance(value, str) else ""


def _home(request: Request[Any, Any, Any]) -> str:
    caller = request.scope.get("state", {}).get("caller")
    if caller is not None and caller.is_admin:
        return f"{BASE}/admin"
    return f"{BASE}/officer/dossiers"


def _safe_next(target: str | None) -> str | None:
    """Only a path inside the console (no open redirect)."""
    if target and target.startswith(BASE + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


# ------------------------------------------------------------------------------------------ sign-in


class SignInController(Controller):
    path = ""

    @get("/", operation_id="consoleHome", include_in_schema=False, guards=[signed_in])
    async def home(self, request: Request[Any, Any, Any]) -> Redirect:
        return redirect(_home(request))

    @get("/sign-in", operation_id="consoleSignInPage", include_in_schema=False)
    async def sign_in_page(
        self,
        request: Request[Any, Any, Any],
        next_path: Annotated[str | None, QueryParameter(name="next", max_length=500, required=False)] = None,
    ) -> Template:
        return page(request, "sign_in.html", next=_safe_next(next_path) or "", phone="")

    @post(
        "/sign-in",
        operation_id="consoleSignIn",
        include_in_schema=False,
        guards=[rate_limit("signin", by="address")],
    )
    async def sign_in(self, request: Request[Any, Any, Any], db: NamedDependency[Database]) -> Response[Any]:
        from app.identity.staff import sign_in_staff

        state = console_state(request)
        phone, password = await _field(request, "phone"), await _field(request, "password")
        next_path = _safe_next(await _field(request, "next"))
        try:
            caller = await sign_in_staff(
                db,
                phone=phone,
                password=password,
                device=DeviceInfo(install_id=state.device, name="Console (web)", platform="web"),
            )
        except AppError as exc:
            return page(
                request,
                "sign_in.html",
                status_code=exc.kind.status,
                error=error_text(exc, state.lang),
                next=next_path or "",
                phone=phone,
            )
        state.sign_in(caller.user_id, caller.session_id)
        request.scope.setdefault("state", {})["caller"] = caller
        return redirect(next_path or _home(request))

    @post("/sign-out", operation_id="consoleSignOut", include_in_schema=False)
    async def sign_out(self, request: Request[Any, Any, Any], db: NamedDependency[Database]) -> Redirect:
        from app.identity.staff import sign_out_session

        state = console_state(request)
        if state.user_id is not None and state.session_id is not None:
            await sign_out_session(db, state.user_id, state.session_id)
        state.sign_out()
        state.flash("ok", translator(state.lang)("signed_out"))
        return redirect(f"{BASE}/sign-in")

    @post("/language", operation_id="consoleLanguage", include_in_schema=False)
    async def language(self, request: Request[Any, Any, Any]) -> Redirect:
        state = console_state(request)
        state.lang = "en" if await _field(request, "lang") == "en" else "vi"
        state.dirty = True
        return redirect(_safe_next(await _field(request, "back")) or f"{BASE}/sign-in")


# ---------------------------------------------------------------------------------------- officers


class OfficerPages(Controller):
    """The one-stop desk: the API's officer routes, as pages (``require_roles("officer", "admin")``, and
    support admins may read but not act, exactly as the service decides)."""

    path = "/officer"
    guards = [signed_in, require_roles("officer", "admin")]

    @get("/dossiers", operation_id="consoleDossierQueue", include_in_schema=False)
    async def queue(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        which: Annotated[str, QueryParameter(name="filter", max_length=20, required=False)] = "all",
        cursor: Annotated[str | None, QueryParameter(max_length=200, required=False)] = None,
    ) -> Template:
        from app.services import dossiers

        which = which if which in _FILTERS else "all"
        result = await dossiers.queue(
            db,
            caller_of(request),
            which=cast("QueueFilter", which),
            limit=25,
            cursor=cursor,
        )
        template = "officer/_queue_table.html" if request.headers.get("hx-request") else "officer/queue.html"
        return page(
            request,
            template,
            dossiers=result.items,
            next_cursor=result.next_cursor,
            which=which,
            filters=_FILTERS,
        )

    @get("/dossiers/{dossier_id:uuid}", operation_id="consoleDossier", include_in_schema=False)
    async def dossier(
        self, request: Request[Any, Any, Any], db: NamedDependency[Database], dossier_id: DossierId
    ) -> Template:
        from app.services import dossiers
        from app.services.workflow import STATUSES, DossierStatus, allowed_targets

        caller = caller_of(request)
        found = await dossiers.get_for_officer(db, caller, dossier_id)
        status = DossierStatus(found.status) if found.status in DossierStatus.__members__.values() else None
        actions: list[str] = []
        if status is not None and caller.has_role("officer"):
            # The buttons follow the workflow's table of moves an officer may take from this status; the
            # service checks again when one is pressed.
            targets = set(allowed_targets(status, "officer", _fee_due(found.fee_collection)))
            if targets & {DossierStatus.NEW, DossierStatus.PAYING} and status == DossierStatus.RECEIVING:
                actions.append("accept")
            if DossierStatus.DENIED in targets:
                actions.append("deny")
            if DossierStatus.PROCESSING in targets and status == DossierStatus.NEW:
                actions.append("process")
            if status in (DossierStatus.NEW, DossierStatus.PROCESSING):
                actions.append("transfer")  # liên thông: from new or processing (dossiers.transfer)
            if DossierStatus.WAITING in targets:
                actions.append("request_supplement")
            if status == DossierStatus.PROCESSING and found.fee_collection not in ("first", "exempt"):
                actions.append(
                    "set_fee"
                )  # dossiers.set_fee_after: while processing, never on a fee charged first
            if DossierStatus.RELEASING in targets:
                actions.append("approve")
            if DossierStatus.UNRESOLVED in targets:
                actions.append("stop")
            if DossierStatus.DONE in targets:
                actions.append("return_result")
        return page(
            request,
            "officer/dossier.html",
            d=found,
            actions=actions,
            status_names={s.value: i.name_vi for s, i in STATUSES.items()},
            status_meaning={s.value: i.meaning_en for s, i in STATUSES.items()},
            can_return=_return_result() is not None,
        )

    @get(
        "/dossiers/{dossier_id:uuid}/documents/{document_id:uuid}",
        operation_id="consoleDossierDocument",
        include_in_schema=False,
    )
    async def document(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        dossier_id: DossierId,
        document_id: DocumentId,
    ) -> Response[bytes]:
        from app.services import dossiers
        from app.services.documents import file_store

        doc, content = await dossiers.officer_document_content(
            db, file_store(settings), caller_of(request), dossier_id, document_id
        )
        name = doc.filename.encode("ascii", "replace").decode().replace('"', "_")
        return Response(
            content,
            media_type=doc.media_type,
            headers={"Content-Disposition": f'attachment; filename="{name}"', "X-Content-SHA256": doc.sha256},
        )

    @post(
        "/dossiers/{dossier_id:uuid}/{action:str}",
        operation_id="consoleDossierAction",
        include_in_schema=False,
        request_max_body_size=_MAX_UPLOAD_BODY,
    )
    async def act(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        dossier_id: DossierId,
        action: Annotated[str, PathParameter(description="The workflow action")],
    ) -> Redirect:
        from app.services import dossiers
        from app.services.documents import check_file, file_store

        caller = caller_of(request)
        state = console_state(request)
        note = await _field(request, "note") or None
        reason = await _field(request, "reason")
        here = f"{BASE}/officer/dossiers/{dossier_id}"
        try:
            if action == "accept":
                await _in_transaction(db, dossiers.accept, settings, caller, dossier_id, note)
            elif action == "deny":
                await _in_transaction(db, dossiers.deny, caller, dossier_id, _required(reason, state))
            elif action == "process":
                await _in_transaction(db, dossiers.process, caller, dossier_id, note)
            elif action == "transfer":
                await _in_transaction(db, dossiers.transfer, caller, dossier_id, note)
                here = f"{BASE}/officer/dossiers"
            elif action == "request-supplement":
                await _in_transaction(
                    db, dossiers.request_supplement, caller, dossier_id, _required(reason, state)
                )
            elif action == "fee":
                await _in_transaction(
                    db,
                    dossiers.set_fee_after,
                    caller,
                    dossier_id,
                    _amount(await _field(request, "amount")),
                    note,
                )
            elif action == "approve":
                upload = (await request.form()).get("file")
                if not isinstance(upload, UploadFile) or not upload.filename:
                    raise _missing("file")
                checked = check_file(settings, upload.filename, await upload.read())
                await _in_transaction(
                    db, dossiers.approve, settings, file_store(settings), caller, dossier_id, checked, note
                )
            elif action == "stop":
                await _in_transaction(db, dossiers.stop, caller, dossier_id, _required(reason, state))
            elif action == "return-result" and (hand_over := _return_result()) is not None:
                await hand_over(db, caller, dossier_id)
            else:
                return redirect(here)
        except AppError as exc:
            flash_error(request, exc)
            return redirect(here)
        state.flash("ok", translator(state.lang)("done_ok"))
        return redirect(here)

    @get(
        "/verify",
        operation_id="consoleVerifyPage",
        include_in_schema=False,
        guards=[require_roles("officer")],
    )
    async def verify_page(self, request: Request[Any, Any, Any]) -> Template:
        return page(request, "officer/verify.html", form={})

    @post("/verify", operation_id="consoleVerify", include_in_schema=False, guards=[require_roles("officer")])
    async def verify(self, request: Request[Any, Any, Any], db: NamedDependency[Database]) -> Response[Any]:
        from app.identity import service

        state = console_state(request)
        form = {k: await _field(request, k) for k in ("phone", "cccd", "full_name", "date_of_birth")}
        try:
            try:
                born = date.fromisoformat(form["date_of_birth"])
            except ValueError:
                raise _missing("date_of_birth") from None
            await _in_transaction(
                db,
                service.verify_at_desk,
                caller_of(request),
                phone=form["phone"],
                cccd=form["cccd"],
                full_name=form["full_name"],
                date_of_birth=born,
            )
        except AppError as exc:
            return page(
                request,
                "officer/verify.html",
                status_code=exc.kind.status,
                form=form,
                error=error_text(exc, state.lang),
            )
        state.flash("ok", translator(state.lang)("verified"))
        return redirect(f"{BASE}/officer/verify")


def _fee_due(collection: str | None) -> Any:
    return collection if collection in ("first", "after") else None


async def _in_transaction(
    db: Database, action: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
) -> Any:
    """Run one workflow service function (they take the session) as its own unit of work, as the API does."""
    async with db.transaction() as session:
        return await action(session, *args, **kwargs)


def _return_result() -> Callable[[Database, Caller, uuid.UUID], Awaitable[Any]] | None:
    """Handing the result over at the desk (``releasing`` → ``done``): the results module's
    ``app.services.results.mark_collected(session, caller, dossier_id)`` once it is merged; ``None`` until
    then (the button shows, disabled, with a note)."""
    try:
        results = importlib.import_module("app.services.results")
    except ModuleNotFoundError:
        return None
    collect = getattr(results, "mark_collected", None)
    if collect is None:
        return None

    async def hand_over(db: Database, caller: Caller, dossier_id: uuid.UUID) -> Any:
        async with db.transaction() as session:
            return await collect(session, caller, dossier_id)

    return hand_over


def _missing(name: str) -> AppError:
    from app.core.errors import VALIDATION_FAILED

    return VALIDATION_FAILED(f"Thiếu hoặc sai trường {name}", f"Missing or invalid field {name}")


def _required(value: str, _state: ConsoleSession) -> str:
    if not value:
        raise _missing("reason")
    return value[:2000]


def _amount(value: str) -> int:
    digits = value.replace(".", "").replace(",", "").replace(" ", "")
    if not digits.isdigit() or not 1 <= int(digits) <= 10_000_000_000:
        raise _missing("amount")
    return int(digits)


# ------------------------------------------------------------------------------------------ admins


class AdminPages(Controller):
    """The admins' pages; each guarded like its API route (``require_roles("admin")``, ``require_duty``)."""

    path = "/admin"
    guards = [signed_in, require_roles("admin")]

    @get("/", operation_id="consoleDashboard", include_in_schema=False)
    async def dashboard(self, request: Request[Any, Any, Any], db: NamedDependency[Database]) -> Template:
        from app.admin.reports import headline
        from app.bills.figures import paid_by_category
        from app.identity.figures import user_figures
        from app.services.workflow import STATUSES, DossierStatus
        from app.wallet.figures import wallet_figures

        t = translator(console_state(request).lang)
        async with db.read() as session:
            users = await user_figures(session)
            wallets = await wallet_figures(session)
            bills = await paid_by_category(session)
            # the province's headline figures and the dossier counts: the reports' own (one source)
            month = await headline(session, datetime.now(LOCAL_TZ).date())
        lang = console_state(request).lang
        in_order = sorted(STATUSES.items(), key=lambda item: item[1].code)
        dossier_bars = [
            (
                f"{i.code}. {i.name_vi}" if lang == "vi" else f"{i.code}. {s.value}",
                month.dossiers_by_status.get(s.value, 0),
            )
            for s, i in in_order
            if s in DossierStatus.__members__.values()
        ]
        timeliness_bars = [(t(f"t_{k}"), n) for k, n in month.timeliness.items()]
        return page(
            request,
            "admin/dashboard.html",
            users=users,
            wallets=wallets,
            bills=bills,
            month=month,
            dossier_bars=dossier_bars,
            bills_chart=bar_chart(
                t("bills_paid"), [(b.category, b.amount) for b in bills], unit=" đ", chart_id="chart-bills"
            ),
            dossiers_chart=bar_chart(t("dossiers_by_status"), dossier_bars, chart_id="chart-dossiers"),
            timeliness_chart=bar_chart(t("timeliness"), timeliness_bars, chart_id="chart-timeliness"),
            users_chart=bar_chart(
                t("users_total"),
                [(f"{t('level')} {lvl}", n) for lvl, n in sorted(users.by_level.items())],
                chart_id="chart-users",
            ),
        )

    @get("/users", operation_id="consoleUsers", include_in_schema=False, guards=[require_duty("support")])
    async def users(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        q: Annotated[str | None, QueryParameter(max_length=64, required=False)] = None,
    ) -> Template:
        from app.identity.staff import find_account

        found = await find_account(db, q) if q else None
        return page(request, "admin/users.html", q=q or "", account=found, searched=bool(q))

    @post(
        "/users/{user_id:uuid}/{what:str}",
        operation_id="consoleUserLock",
        include_in_schema=False,
        guards=[require_duty("support")],
    )
    async def lock(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        user_id: UserId,
        what: Annotated[str, PathParameter(description="lock or unlock")],
    ) -> Redirect:
        from app.identity.staff import set_lock_as

        state = console_state(request)
        if what in ("lock", "unlock"):
            try:
                async with db.transaction() as session:
                    await set_lock_as(session, caller_of(request), user_id, locked=what == "lock")
                state.flash("ok", translator(state.lang)("done_ok"))
            except AppError as exc:
                flash_error(request, exc)
        return redirect(f"{BASE}/admin/users?q={user_id}")

    @get("/outbox", operation_id="consoleOutbox", include_in_schema=False, guards=[require_duty("support")])
    async def outbox(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        topic: Annotated[str | None, QueryParameter(max_length=100, required=False)] = None,
    ) -> Template:
        from app.core.outbox import list_dead_letters

        async with db.read() as session:
            rows = list(await list_dead_letters(session, limit=100, topic=topic or None))
        return page(request, "admin/outbox.html", rows=rows, topic=topic or "")

    @post(
        "/outbox/{message_id:uuid}/retry",
        operation_id="consoleOutboxRetry",
        include_in_schema=False,
        guards=[require_duty("support")],
    )
    async def retry(
        self, request: Request[Any, Any, Any], db: NamedDependency[Database], message_id: MessageId
    ) -> Redirect:
        from app.admin.outbox import retry_as

        state = console_state(request)
        try:
            async with db.transaction() as session:
                await retry_as(session, caller_of(request), message_id, client_address(request))
            state.flash("ok", translator(state.lang)("done_ok"))
        except AppError as exc:
            flash_error(request, exc)
        return redirect(f"{BASE}/admin/outbox")

    @get("/audit", operation_id="consoleAudit", include_in_schema=False, guards=[require_duty("support")])
    async def audit(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        action: Annotated[str | None, QueryParameter(max_length=65, required=False)] = None,
        actor_id: Annotated[str | None, QueryParameter(max_length=64, required=False)] = None,
        object_id: Annotated[str | None, QueryParameter(max_length=128, required=False)] = None,
        since: Annotated[str | None, QueryParameter(max_length=32, required=False)] = None,
        until: Annotated[str | None, QueryParameter(max_length=32, required=False)] = None,
    ) -> Template:
        from app.core.audit_routes import audited_search

        form = {
            "action": action or "",
            "actor_id": actor_id or "",
            "object_id": object_id or "",
            "since": since or "",
            "until": until or "",
        }
        try:
            actor = uuid.UUID(actor_id) if actor_id else None
            start = datetime.fromisoformat(since) if since else None
            end = datetime.fromisoformat(until) if until else None
        except ValueError:
            flash_error(request, _missing("actor_id/since/until"))
            actor = start = end = None
        rows, more = await audited_search(
            db,
            caller_of(request),
            client_address(request),
            actor_id=actor,
            action=action or None,
            object_type=None,
            object_id=object_id or None,
            since=start,
            until=end,
            before_seq=None,
            limit=100,
        )
        return page(request, "admin/audit.html", rows=rows, more=more, form=form)

    @get(
        "/audit/verify",
        operation_id="consoleAuditVerify",
        include_in_schema=False,
        guards=[require_duty("support")],
    )
    async def verify(self, request: Request[Any, Any, Any], db: NamedDependency[Database]) -> Template:
        from app.core.audit_routes import audited_verify

        report = await audited_verify(db, caller_of(request), client_address(request))
        template = "admin/_verify.html" if request.headers.get("hx-request") else "admin/verify.html"
        return page(request, template, report=report)


def _static() -> Any:
    return create_static_files_router(
        path="/static",
        directories=[STATIC],
        include_in_schema=False,
        name="console_static",
        cache_control=None,
    )


def console_router() -> Router:
    """Everything under ``/console``."""
    return Router(
        path=BASE,
        route_handlers=[SignInController, OfficerPages, AdminPages, ReconPages, MerchantPages, _static()],
        middleware=[ConsoleSessionMiddleware()],
        guards=[csrf_guard],
        opt={"media_types": ("application/x-www-form-urlencoded", "multipart/form-data")},
        exception_handlers=console_exception_handlers(),
        include_in_schema=False,
    )
