"""HTTP routes of dossiers: the citizen's (``/api/v1/me/dossiers``, ``/api/v1/me/documents``) and the
officers' (``/api/v1/officer/dossiers``). Thin: the rules are in ``dossiers.py``.

Uploads are multipart (``file`` field). The whole request may be up to ``_MAX_MULTIPART_BODY`` bytes; each
file is checked against ``settings.max_upload_bytes`` (413 ``document_too_large``) and by content (415
``unsupported_document_type``).

Every POST takes an ``Idempotency-Key`` (``app.core.idempotency``): the service function runs in the
transaction that stores the key, so a retry answers the first response and never makes a second draft,
document or transition. An upload's fingerprint names the file by its SHA-256, size and name (the bytes are
read once, for the check).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, JSONBody, PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Database
from app.core.deps import AUTHENTICATED
from app.core.errors import NOT_FOUND, VALIDATION_FAILED
from app.core.idempotency import IDEMPOTENCY_ERRORS, IdempotencyKey, idempotent_response, scope_of
from app.core.ratelimit import rate_limit
from app.core.security import Caller, require_roles
from app.core.settings import Settings
from app.services import dossiers
from app.services.documents import CheckedFile, check_file, file_store
from app.services.dossier_schemas import (
    AttachExisting,
    DocumentOut,
    DocumentUpload,
    DossierCreate,
    DossierOut,
    DossierPage,
    FeeIn,
    NoteIn,
    QueueFilter,
    ReasonIn,
    ResultUpload,
)
from app.services.errors import (
    DOCUMENT_TOO_LARGE,
    DOSSIER_INCOMPLETE,
    DOSSIER_LOCKED,
    FEE_NOT_CONFIGURED,
    ILLEGAL_TRANSITION,
    NO_NEXT_AGENCY,
    PROCEDURE_NOT_FOUND,
    UNKNOWN_AGENCY,
    UNKNOWN_FEE_CASE,
    UNSUPPORTED_DOCUMENT_TYPE,
)

__all__ = ["DocumentsController", "MyDossiersController", "OfficerDossiersController", "dossier_routes"]

_MAX_MULTIPART_BODY = 64 * 1024 * 1024
"""Ceiling on a multipart request; the per-file limit is ``settings.max_upload_bytes``."""
_MULTIPART = {"media_types": ("multipart/form-data",)}
_UPLOAD_ERRORS = [DOCUMENT_TOO_LARGE, UNSUPPORTED_DOCUMENT_TYPE, NOT_FOUND, VALIDATION_FAILED]
_RETRY = " Retrying with the same Idempotency-Key answers the first response again and does nothing more."

DossierId = Annotated[uuid.UUID, PathParameter(description="Dossier id")]
DocumentId = Annotated[uuid.UUID, PathParameter(description="Document id")]
Limit = Annotated[int, QueryParameter(description="Page size", ge=1, le=100)]
Cursor = Annotated[
    str | None, QueryParameter(description="`next_cursor` of the previous page", max_length=200)
]


def _ascii(name: str) -> str:
    return name.encode("ascii", "replace").decode().replace('"', "_")


def _file_response(doc: DocumentOut, content: bytes) -> Response[bytes]:
    return Response(
        content,
        media_type=doc.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{_ascii(doc.filename)}"',
            "X-Content-SHA256": doc.sha256,
        },
    )


def _file_print(checked: CheckedFile, **fields: Any) -> dict[str, Any]:
    """What an upload's Idempotency-Key fingerprint covers: the file by its checksum, never its bytes."""
    return {
        "file": {"filename": checked.filename, "sha256": checked.sha256, "size_bytes": checked.size_bytes},
        **fields,
    }


async def _once(
    request: Request[Any, Any, Any],
    db: Database,
    caller: Caller,
    key: str | None,
    data: Any,
    effect: Callable[[AsyncSession], Awaitable[Any]],
    *,
    status_code: int = 200,
) -> Response[Any]:
    return await idempotent_response(
        request, db, scope=scope_of(caller), key=key, data=data, effect=effect, status_code=status_code
    )


class DocumentsController(Controller):
    """The citizen's document store (kho giấy tờ)."""

    path = "/api/v1/me/documents"
    tags = ["dossiers"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]
    guards = [rate_limit("default")]

    @post(
        "/",
        operation_id="uploadDocument",
        summary="Upload a document to my store",
        status_code=201,
        request_max_body_size=_MAX_MULTIPART_BODY,
        opt={**_MULTIPART, "errors": [*IDEMPOTENCY_ERRORS, *_UPLOAD_ERRORS]},
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        caller: NamedDependency[Caller],
        data: Annotated[DocumentUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[DocumentOut]:
        """Multipart upload (field `file`): PDF, JPEG or PNG, recognised by content, at most
        `max_upload_bytes`. The same content uploaded twice is stored once (same id)."""
        checked = check_file(settings, data.file.filename, await data.file.read())

        async def effect(session: AsyncSession) -> DocumentOut:
            return await dossiers.store_document(
                session, file_store(settings), caller.user_id, checked, uploaded_by=caller.user_id
            )

        return await _once(
            request, db, caller, idempotency_key, _file_print(checked), effect, status_code=201
        )

    @get("/", operation_id="listMyDocuments", summary="My documents", opt={"errors": []})
    async def list_documents(
        self, db: NamedDependency[Database], caller: NamedDependency[Caller]
    ) -> list[DocumentOut]:
        """Every document in my store, oldest first, to reuse in a new dossier."""
        return await dossiers.list_documents(db, caller)

    @get(
        "/{document_id:uuid}/content",
        operation_id="downloadMyDocument",
        summary="Download one of my documents",
        opt={"errors": [NOT_FOUND]},
        media_type="application/octet-stream",
    )
    async def download(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        caller: NamedDependency[Caller],
        document_id: DocumentId,
    ) -> Response[bytes]:
        """The file's bytes, with its detected media type and SHA-256 (header `X-Content-SHA256`)."""
        doc, content = await dossiers.document_content(db, file_store(settings), caller, document_id)
        return _file_response(doc, content)


class MyDossiersController(Controller):
    """A citizen's dossiers."""

    path = "/api/v1/me/dossiers"
    tags = ["dossiers"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]
    guards = [rate_limit("default")]

    @post(
        "/",
        operation_id="createDossier",
        summary="Start a dossier",
        status_code=201,
        opt={"errors": [*IDEMPOTENCY_ERRORS, PROCEDURE_NOT_FOUND, UNKNOWN_FEE_CASE, UNKNOWN_AGENCY]},
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        data: JSONBody[DossierCreate],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[DossierOut]:
        """A draft dossier for a procedure, with the fee case that applies (the default case if none is
        given). Attach the documents, then submit. Retrying with the same Idempotency-Key answers the same
        draft instead of starting a second one."""

        async def effect(session: AsyncSession) -> DossierOut:
            return await dossiers.create_dossier(
                session,
                caller,
                data.procedure_code,
                data.fee_case,
                data.note,
                receiving_agency=data.receiving_agency,
            )

        return await _once(request, db, caller, idempotency_key, data, effect, status_code=201)

    @get("/", operation_id="listMyDossiers", summary="My dossiers", opt={"errors": [VALIDATION_FAILED]})
    async def list_mine(
        self,
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> DossierPage:
        """My dossiers, oldest first, one page at a time."""
        return await dossiers.list_mine(db, caller, limit=limit, cursor=cursor)

    @get(
        "/{dossier_id:uuid}",
        operation_id="getMyDossier",
        summary="Track my dossier",
        opt={"errors": [NOT_FOUND]},
    )
    async def get_one(
        self, db: NamedDependency[Database], caller: NamedDependency[Caller], dossier_id: DossierId
    ) -> DossierOut:
        """Status, due date, fee, documents and the full timeline (every step: who, role, when, note)."""
        return await dossiers.get_for_applicant(db, caller, dossier_id)

    @post(
        "/{dossier_id:uuid}/documents",
        operation_id="uploadDossierDocument",
        summary="Upload and attach a document",
        status_code=200,
        request_max_body_size=_MAX_MULTIPART_BODY,
        opt={**_MULTIPART, "errors": [*IDEMPOTENCY_ERRORS, *_UPLOAD_ERRORS, DOSSIER_LOCKED]},
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: Annotated[DocumentUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[DossierOut]:
        """Multipart (`file`, optional `requirement` = the required-document code it answers). The file also
        goes into my document store. Allowed before submission and while a supplement is requested."""
        checked = check_file(settings, data.file.filename, await data.file.read())

        async def effect(session: AsyncSession) -> DossierOut:
            return await dossiers.attach_upload(
                session, file_store(settings), caller, dossier_id, checked, data.requirement
            )

        fingerprint = _file_print(checked, requirement=data.requirement)
        return await _once(request, db, caller, idempotency_key, fingerprint, effect)

    @post(
        "/{dossier_id:uuid}/documents/reuse",
        operation_id="attachStoredDocument",
        summary="Attach a document from my store",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND, DOSSIER_LOCKED]},
    )
    async def reuse(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[AttachExisting],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[DossierOut]:
        """Attach a document I uploaded before (e.g. my CCCD scan) without uploading it again."""

        async def effect(session: AsyncSession) -> DossierOut:
            return await dossiers.attach_existing(
                session, caller, dossier_id, data.document_id, data.requirement
            )

        return await _once(request, db, caller, idempotency_key, data, effect)

    @post(
        "/{dossier_id:uuid}/submit",
        operation_id="submitDossier",
        summary="Submit my dossier",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND, DOSSIER_INCOMPLETE, ILLEGAL_TRANSITION]},
    )
    async def submit(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[DossierOut]:
        """Draft → `receiving`; the dossier gets its code `{agency}-{yyMMdd}-{NNNN}`. Every required document
        of the procedure must be attached (by `requirement`)."""

        async def effect(session: AsyncSession) -> DossierOut:
            return await dossiers.submit(session, caller, dossier_id)

        return await _once(request, db, caller, idempotency_key, None, effect)

    @post(
        "/{dossier_id:uuid}/withdraw",
        operation_id="withdrawDossier",
        summary="Withdraw my dossier",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND, ILLEGAL_TRANSITION]},
    )
    async def withdraw(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[NoteIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[DossierOut]:
        """→ `cancelled`, before processing starts. A fee already paid goes back to the wallet
        (`refund_state` = `refunded`); an unpaid fee bill is cancelled."""

        async def effect(session: AsyncSession) -> DossierOut:
            return await dossiers.withdraw(session, caller, dossier_id, data.note)

        return await _once(request, db, caller, idempotency_key, data, effect)

    @post(
        "/{dossier_id:uuid}/resubmit",
        operation_id="resubmitDossier",
        summary="Send the requested supplement",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND, ILLEGAL_TRANSITION]},
    )
    async def resubmit(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[NoteIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[DossierOut]:
        """`waiting` → `processing` after attaching the supplement: the clock resumes and the due date moves
        by the working time it was paused."""

        async def effect(session: AsyncSession) -> DossierOut:
            return await dossiers.resubmit(session, caller, dossier_id, data.note)

        return await _once(request, db, caller, idempotency_key, data, effect)


class OfficerDossiersController(Controller):
    """Officers of the agency holding a dossier act on it; support admins may read."""

    path = "/api/v1/officer/dossiers"
    tags = ["dossiers"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]
    guards = [require_roles("officer", "admin"), rate_limit("default")]

    @get(
        "/",
        operation_id="officerDossierQueue",
        summary="My agency's queue",
        opt={"errors": [VALIDATION_FAILED]},
    )
    async def queue(
        self,
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        filter: Annotated[
            QueueFilter,
            QueryParameter(
                description="`receiving` (awaiting intake), `new`, `processing`, `waiting` (supplement "
                "requested), `due_soon` (due within one working day), `overdue`, or `all`"
            ),
        ] = "all",
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> DossierPage:
        """Dossiers held by my agency now (support admins: every agency), oldest first."""
        return await dossiers.queue(db, caller, which=filter, limit=limit, cursor=cursor)

    @get(
        "/{dossier_id:uuid}",
        operation_id="officerGetDossier",
        summary="One dossier",
        opt={"errors": [NOT_FOUND]},
    )
    async def get_one(
        self, db: NamedDependency[Database], caller: NamedDependency[Caller], dossier_id: DossierId
    ) -> DossierOut:
        """The dossier with documents and timeline (404 unless my agency holds it)."""
        return await dossiers.get_for_officer(db, caller, dossier_id)

    @get(
        "/{dossier_id:uuid}/documents/{document_id:uuid}/content",
        operation_id="officerDownloadDocument",
        summary="Download an attached document",
        opt={"errors": [NOT_FOUND]},
        media_type="application/octet-stream",
    )
    async def download(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        document_id: DocumentId,
    ) -> Response[bytes]:
        """A document attached to the dossier."""
        doc, content = await dossiers.officer_document_content(
            db, file_store(settings), caller, dossier_id, document_id
        )
        return _file_response(doc, content)

    @post(
        "/{dossier_id:uuid}/accept",
        operation_id="acceptDossier",
        summary="Accept at intake",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND, ILLEGAL_TRANSITION, FEE_NOT_CONFIGURED]},
    )
    async def accept(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[NoteIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[DossierOut]:
        """`receiving` → `paying` (a fee bill appears in the citizen's bills) when the fee is collected
        first; otherwise → `new` and the clock starts now."""

        async def effect(session: AsyncSession) -> DossierOut:
            return await dossiers.accept(session, settings, caller, dossier_id, data.note)

        return await _once(request, db, caller, idempotency_key, data, effect)

    @post(
        "/{dossier_id:uuid}/deny",
        operation_id="denyDossier",
        summary="Refuse at intake",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND, ILLEGAL_TRANSITION]},
    )
    async def deny(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[ReasonIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[DossierOut]:
        """`receiving` → `denied`, with the reason the citizen reads."""

        async def effect(session: AsyncSession) -> DossierOut:
            return await dossiers.deny(session, caller, dossier_id, data.reason)

        return await _once(request, db, caller, idempotency_key, data, effect)

    @post(
        "/{dossier_id:uuid}/process",
        operation_id="processDossier",
        summary="Start processing",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND, ILLEGAL_TRANSITION]},
    )
    async def process(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[NoteIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[DossierOut]:
        """`new` → `processing`."""

        async def effect(session: AsyncSession) -> DossierOut:
            return await dossiers.process(session, caller, dossier_id, data.note)

        return await _once(request, db, caller, idempotency_key, data, effect)

    @post(
        "/{dossier_id:uuid}/transfer",
        operation_id="transferDossier",
        summary="Transfer to the next agency",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND, ILLEGAL_TRANSITION, NO_NEXT_AGENCY]},
    )
    async def transfer(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[NoteIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[DossierOut]:
        """Hand the dossier to the next agency of the procedure's chain (liên thông); it stays (or becomes)
        `processing`, and my agency no longer sees it."""

        async def effect(session: AsyncSession) -> DossierOut:
            return await dossiers.transfer(session, caller, dossier_id, data.note)

        return await _once(request, db, caller, idempotency_key, data, effect)

    @post(
        "/{dossier_id:uuid}/request-supplement",
        operation_id="requestDossierSupplement",
        summary="Request a supplement",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND, ILLEGAL_TRANSITION]},
    )
    async def request_supplement(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[ReasonIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[DossierOut]:
        """`processing` → `waiting`: the clock pauses; the citizen is notified with the reason."""

        async def effect(session: AsyncSession) -> DossierOut:
            return await dossiers.request_supplement(session, caller, dossier_id, data.reason)

        return await _once(request, db, caller, idempotency_key, data, effect)

    @post(
        "/{dossier_id:uuid}/fee",
        operation_id="setDossierFeeAfter",
        summary="Set the fee collected after processing",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND, DOSSIER_LOCKED]},
    )
    async def set_fee(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[FeeIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[DossierOut]:
        """While processing: the fee to collect once processed (billed at approval; paying it releases the
        result)."""

        async def effect(session: AsyncSession) -> DossierOut:
            return await dossiers.set_fee_after(session, caller, dossier_id, data.amount, data.note)

        return await _once(request, db, caller, idempotency_key, data, effect)

    @post(
        "/{dossier_id:uuid}/approve",
        operation_id="approveDossier",
        summary="Approve with the result document",
        status_code=200,
        request_max_body_size=_MAX_MULTIPART_BODY,
        opt={**_MULTIPART, "errors": [*IDEMPOTENCY_ERRORS, *_UPLOAD_ERRORS, ILLEGAL_TRANSITION]},
    )
    async def approve(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: Annotated[ResultUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[DossierOut]:
        """Multipart (`file`: the result, `note`): `processing` → `releasing`, or → `paying` when a fee is
        collected after processing (the bill is issued now)."""
        checked = check_file(settings, data.file.filename, await data.file.read())

        async def effect(session: AsyncSession) -> DossierOut:
            return await dossiers.approve(
                session, settings, file_store(settings), caller, dossier_id, checked, data.note
            )

        fingerprint = _file_print(checked, note=data.note)
        return await _once(request, db, caller, idempotency_key, fingerprint, effect)

    @post(
        "/{dossier_id:uuid}/stop",
        operation_id="stopDossier",
        summary="Stop processing",
        status_code=200,
        opt={"errors": [*IDEMPOTENCY_ERRORS, NOT_FOUND, ILLEGAL_TRANSITION]},
    )
    async def stop(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[ReasonIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[DossierOut]:
        """→ `unresolved` with the reason; a paid fee goes back to the citizen's wallet (`refund_state` =
        `refunded`), an unpaid fee bill is cancelled."""

        async def effect(session: AsyncSession) -> DossierOut:
            return await dossiers.stop(session, caller, dossier_id, data.reason)

        return await _once(request, db, caller, idempotency_key, data, effect)


dossier_routes = [DocumentsController, MyDossiersController, OfficerDossiersController]
