"""HTTP routes of issue 9: public verification of signed results, the citizen's result, return channel,
apologies and rating, the officers' desk hand-over and apology, statistics, and key revocation (admin).
Thin: the rules are in ``results.py``, ``postal.py``, ``satisfaction.py`` and ``statistics.py``.

Every state-changing POST takes ``Idempotency-Key``; ``POST /api/v1/results/verify`` changes nothing (it only
reads the uploaded file), so it does not.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, HeaderParameter, JSONBody, PathParameter, QueryParameter

from app.core.db import Database
from app.core.deps import AUTHENTICATED
from app.core.errors import NOT_FOUND, VALIDATION_FAILED
from app.core.idempotency import IDEMPOTENCY_ERRORS, IdempotencyKey, idempotent_response, scope_of
from app.core.ratelimit import rate_limit
from app.core.security import Caller, require_duty, require_roles
from app.core.settings import Settings
from app.services import results, satisfaction, statistics
from app.services.errors import DOCUMENT_TOO_LARGE, ILLEGAL_TRANSITION, PROCEDURE_NOT_FOUND
from app.services.postal import PostalEvent, ensure_postal_biller, verify_webhook
from app.services.result_errors import (
    ALREADY_RATED,
    CHANNEL_NOT_OFFERED,
    RATING_NOT_OPEN,
    RESULT_NOT_RELEASED,
    RETURN_LOCKED,
    WEBHOOK_SIGNATURE_INVALID,
)
from app.services.result_schemas import (
    ApologyIn,
    ApologyOut,
    CriterionOut,
    DeliveryOut,
    KeyOut,
    PostalWebhookAck,
    PostalWebhookIn,
    RatingIn,
    RatingOut,
    ResultCheck,
    ResultOut,
    ReturnChoice,
    RevokeIn,
    StatisticsOut,
    VerifyUpload,
)

__all__ = [
    "MyResultsController",
    "OfficerResultsController",
    "PostalWebhookController",
    "PublicResultsController",
    "ResultKeysAdminController",
    "StatisticsController",
    "result_routes",
]

DossierId = Annotated[uuid.UUID, PathParameter(description="Dossier id")]
AgencyCode = Annotated[str, PathParameter(description="Agency code", max_length=40)]
_MAX_VERIFY_BODY = 64 * 1024 * 1024


def _ascii(name: str) -> str:
    return name.encode("ascii", "replace").decode().replace('"', "_")


class PublicResultsController(Controller):
    """Anyone holding a result checks it (no sign-in): by its QR code or by the file itself."""

    path = "/api/v1/results"
    tags = ["results"]
    guards = [rate_limit("default")]

    @get(
        "/{result_id:uuid}",
        operation_id="getSignedResult",
        summary="Check a signed result",
        opt={"errors": [NOT_FOUND]},
    )
    async def get_result(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        result_id: Annotated[uuid.UUID, PathParameter(description="The result id printed on the document.")],
    ) -> ResultOut:
        """What the QR code on a result opens: the signed metadata (dossier code, procedure, holder, agency,
        date), the document's SHA-256, the signature and the agency's public key, and whether the signature
        holds now (`valid`; a revoked key makes it `key_revoked`)."""
        async with db.read() as session:
            return await results.get_result(session, settings, result_id)

    @post(
        "/verify",
        operation_id="verifyResultFile",
        summary="Check a result file",
        status_code=200,
        request_max_body_size=_MAX_VERIFY_BODY,
        opt={"media_types": ("multipart/form-data",), "errors": [VALIDATION_FAILED, DOCUMENT_TOO_LARGE]},
    )
    async def verify(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        data: Annotated[VerifyUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> ResultCheck:
        """Multipart (`file`, optional `result_id` from the QR code): is this file the signed result? Any
        changed byte gives `document_changed` (with `result_id`) or `unknown_document`. Changes nothing."""
        content = await data.file.read()
        if len(content) > settings.max_upload_bytes:
            raise DOCUMENT_TOO_LARGE(
                "Tệp quá lớn", "The file is too large", max_bytes=settings.max_upload_bytes
            )
        async with db.read() as session:
            return await results.verify_file(session, settings, content, data.result_id)

    @get(
        "/keys/{agency_code:str}",
        operation_id="listResultKeys",
        summary="An agency's result-signing keys",
        opt={"errors": [NOT_FOUND]},
    )
    async def keys(
        self, db: NamedDependency[Database], settings: NamedDependency[Settings], agency_code: AgencyCode
    ) -> list[KeyOut]:
        """The agency's Ed25519 public keys by key id (the first active one signs new results), with the
        revoked ones marked, for offline checks."""
        async with db.read() as session:
            return await results.list_keys(session, settings, agency_code)

    @get(
        "/satisfaction-criteria",
        operation_id="listSatisfactionCriteria",
        summary="The nine satisfaction criteria",
        opt={"errors": []},
    )
    async def criteria(self) -> list[CriterionOut]:
        """The criteria of the satisfaction form; each is scored 2 (good), 1 (acceptable) or 0 (poor)."""
        return list(satisfaction.criteria())


class MyResultsController(Controller):
    """The citizen's side: the result, how it comes back, apologies, and the rating."""

    path = "/api/v1/me/dossiers"
    tags = ["results"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]
    guards = [rate_limit("default")]

    @get(
        "/{dossier_id:uuid}/result",
        operation_id="downloadMyResult",
        summary="Download my signed result",
        media_type="application/pdf",
        opt={"errors": [NOT_FOUND, RESULT_NOT_RELEASED]},
    )
    async def download(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
    ) -> Response[bytes]:
        """The signed result PDF (header `X-Result-Id`: its id for verification). Downloading a `releasing`
        dossier's result when the channel is online (or none was chosen) returns it: → `done`."""
        doc, content, result_id = await results.download_result(db, settings, caller, dossier_id)
        headers = {
            "Content-Disposition": f'attachment; filename="{_ascii(doc.filename)}"',
            "X-Content-SHA256": doc.sha256,
        }
        if result_id is not None:
            headers["X-Result-Id"] = str(result_id)
        return Response(content, media_type=doc.media_type, headers=headers)

    @post(
        "/{dossier_id:uuid}/return",
        operation_id="chooseResultReturn",
        summary="Choose how to receive the result",
        status_code=200,
        opt={
            "errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND, CHANNEL_NOT_OFFERED, RETURN_LOCKED, VALIDATION_FAILED]
        },
    )
    async def choose_return(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[ReturnChoice],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[DeliveryOut]:
        """`desk`, `online` or `post` (among the procedure's channels). Post needs the recipient and address
        and bills the postage: it appears in my bills and is paid with the fee in one
        `POST /api/v1/payments`; the result is posted once it is ready and the postage paid."""
        if data.channel == "post":
            await ensure_postal_biller(db, production=settings.is_production)
        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=data,
            effect=lambda session: results.choose_return(session, settings, caller, dossier_id, data),
            status_code=200,
        )

    @get(
        "/{dossier_id:uuid}/return",
        operation_id="getMyResultReturn",
        summary="How my result comes back",
        opt={"errors": [NOT_FOUND]},
    )
    async def get_return(
        self, db: NamedDependency[Database], caller: NamedDependency[Caller], dossier_id: DossierId
    ) -> DeliveryOut:
        """The chosen channel (online when none was chosen), postage, tracking number and postal events."""
        async with db.read() as session:
            return await results.get_delivery(session, caller, dossier_id, officer=False)

    @get(
        "/{dossier_id:uuid}/apologies",
        operation_id="listMyDossierApologies",
        summary="Apologies for my dossier",
        opt={"errors": [NOT_FOUND]},
    )
    async def apologies(
        self, db: NamedDependency[Database], caller: NamedDependency[Caller], dossier_id: DossierId
    ) -> list[ApologyOut]:
        """Letters of apology with the new date promised, oldest first."""
        async with db.read() as session:
            return await results.list_apologies(session, caller, dossier_id, officer=False)

    @post(
        "/{dossier_id:uuid}/rating",
        operation_id="rateDossier",
        summary="Rate the service",
        status_code=201,
        opt={"errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND, RATING_NOT_OPEN, ALREADY_RATED, VALIDATION_FAILED]},
    )
    async def rate(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[RatingIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[RatingOut]:
        """After the result: the nine criteria scored 2/1/0 and an optional comment; once per dossier."""
        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=data,
            effect=lambda session: satisfaction.rate(session, caller, dossier_id, data),
        )

    @get(
        "/{dossier_id:uuid}/rating",
        operation_id="getMyDossierRating",
        summary="My rating",
        opt={"errors": [NOT_FOUND]},
    )
    async def get_rating(
        self, db: NamedDependency[Database], caller: NamedDependency[Caller], dossier_id: DossierId
    ) -> RatingOut:
        """The rating I gave (404 before)."""
        async with db.read() as session:
            return await satisfaction.get_rating(session, caller, dossier_id)


class OfficerResultsController(Controller):
    """Officers of the agency holding a dossier: hand the result over, apologise with a new date."""

    path = "/api/v1/officer/dossiers"
    tags = ["results"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]
    guards = [require_roles("officer", "admin"), rate_limit("default")]

    @post(
        "/{dossier_id:uuid}/collected",
        operation_id="markResultCollected",
        summary="Result handed over at the desk",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND, ILLEGAL_TRANSITION, RETURN_LOCKED]},
    )
    async def collected(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[DeliveryOut]:
        """The citizen collected the result at the one-stop desk: `releasing` → `done`."""
        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=None,
            effect=lambda session: results.mark_collected(session, caller, dossier_id),
            status_code=200,
        )

    @post(
        "/{dossier_id:uuid}/apology",
        operation_id="sendDossierApology",
        summary="Apologise with a new date",
        status_code=201,
        opt={"errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND, ILLEGAL_TRANSITION, VALIDATION_FAILED]},
    )
    async def apology(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[ApologyIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ApologyOut]:
        """Phiếu xin lỗi và hẹn lại: the dossier will be late; the citizen gets the letter in the inbox and
        the timeline. The statutory due date is unchanged (statistics classify against it)."""
        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=data,
            effect=lambda session: results.send_apology(session, settings, caller, dossier_id, data),
        )

    @get(
        "/{dossier_id:uuid}/return",
        operation_id="getDossierResultReturn",
        summary="How the result goes back",
        opt={"errors": [NOT_FOUND]},
    )
    async def get_return(
        self, db: NamedDependency[Database], caller: NamedDependency[Caller], dossier_id: DossierId
    ) -> DeliveryOut:
        """The citizen's chosen channel, postage and postal tracking."""
        async with db.read() as session:
            return await results.get_delivery(session, caller, dossier_id, officer=True)


class StatisticsController(Controller):
    """Service statistics: admins, and officers of the agency."""

    path = "/api/v1/officer/statistics"
    tags = ["results"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]
    guards = [require_roles("officer", "admin"), rate_limit("default")]

    async def _stats(
        self,
        db: Database,
        settings: Settings,
        caller: Caller,
        agency: str,
        date_from: date,
        date_to: date,
        procedure: str | None,
    ) -> StatisticsOut:
        statistics.ensure_may_read(caller, agency)
        async with db.read() as session:
            return await statistics.agency_statistics(
                session, settings, agency, date_from, date_to, procedure
            )

    @get(
        "/{agency_code:str}",
        operation_id="getServiceStatistics",
        summary="Statistics of an agency",
        opt={"errors": [NOT_FOUND, VALIDATION_FAILED, PROCEDURE_NOT_FOUND]},
    )
    async def get_statistics(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        caller: NamedDependency[Caller],
        agency_code: AgencyCode,
        date_from: Annotated[date, QueryParameter(name="from", description="First day (Huế), inclusive.")],
        date_to: Annotated[date, QueryParameter(name="to", description="Last day (Huế), inclusive.")],
        procedure: Annotated[
            str | None, QueryParameter(description="Only this procedure.", max_length=40)
        ] = None,
    ) -> StatisticsOut:
        """Per procedure and in total: received, submitted and paid online, finished early / on time / late,
        average processing time in working hours, satisfaction. Days are Asia/Ho_Chi_Minh calendar days."""
        return await self._stats(db, settings, caller, agency_code, date_from, date_to, procedure)

    @get(
        "/{agency_code:str}/csv",
        operation_id="exportServiceStatistics",
        summary="Statistics as CSV",
        media_type="text/csv",
        opt={"errors": [NOT_FOUND, VALIDATION_FAILED]},
    )
    async def export(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        caller: NamedDependency[Caller],
        agency_code: AgencyCode,
        date_from: Annotated[date, QueryParameter(name="from", description="First day (Huế), inclusive.")],
        date_to: Annotated[date, QueryParameter(name="to", description="Last day (Huế), inclusive.")],
        procedure: Annotated[
            str | None, QueryParameter(description="Only this procedure.", max_length=40)
        ] = None,
    ) -> Response[str]:
        """The same figures as CSV (UTF-8, one line per procedure, a last `TOTAL` line)."""
        stats = await self._stats(db, settings, caller, agency_code, date_from, date_to, procedure)
        name = f"thong-ke-{agency_code}-{date_from.isoformat()}-{date_to.isoformat()}.csv"
        return Response(
            statistics.to_csv(stats),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{_ascii(name)}"'},
        )


class ResultKeysAdminController(Controller):
    """Admins (duty ``superadmin``) revoke an agency's result-signing key."""

    path = "/api/v1/admin/results/keys"
    tags = ["admin", "results"]
    guards = [require_duty("superadmin"), rate_limit("default")]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]

    @post(
        "/{agency_code:str}/{key_id:str}/revoke",
        operation_id="revokeResultKey",
        summary="Revoke a result-signing key",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND]},
    )
    async def revoke(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        caller: NamedDependency[Caller],
        agency_code: AgencyCode,
        key_id: Annotated[str, PathParameter(description="Key id", max_length=64)],
        data: JSONBody[RevokeIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[KeyOut]:
        """Every result this agency signed with this key stops verifying (`key_revoked`), and the agency
        cannot sign new results with it: put a new key in front of `RESULT_KEYS` to go on. Audited."""
        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=data,
            effect=lambda session: results.revoke_key(
                session, settings, caller, agency_code, key_id, data.reason
            ),
            status_code=200,
        )


class PostalWebhookController(Controller):
    """The postal operator pushes shipment events (HMAC-signed; no Idempotency-Key: deduplicated by event
    id). The 5-minute poll reads the same events, so a lost webhook only delays a delivery."""

    path = "/api/v1/webhooks/postal"
    tags = ["results"]
    guards = [rate_limit("default")]

    @post(
        "/",
        operation_id="postalWebhook",
        summary="Postal shipment event",
        status_code=200,
        opt={"errors": [WEBHOOK_SIGNATURE_INVALID, NOT_FOUND, VALIDATION_FAILED]},
    )
    async def receive(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        data: JSONBody[PostalWebhookIn],
        signature: Annotated[
            str | None,
            HeaderParameter(
                name="X-Postal-Signature",
                description="`{key id}={hex HMAC-SHA256 of the raw body}` under the shared webhook key.",
            ),
        ] = None,
    ) -> PostalWebhookAck:
        """A shipment event; `delivered` returns the result (`releasing` → `done`)."""
        if not verify_webhook(settings.webhook_keys, await request.body(), signature):
            raise WEBHOOK_SIGNATURE_INVALID()
        event = PostalEvent(data.code, data.description, data.at)
        async with db.transaction() as session:
            new = await results.receive_postal_event(session, data.event_id, data.tracking_number, event)
        return PostalWebhookAck(duplicate=not new)


result_routes = [
    PublicResultsController,
    MyResultsController,
    OfficerResultsController,
    StatisticsController,
    ResultKeysAdminController,
    PostalWebhookController,
]
