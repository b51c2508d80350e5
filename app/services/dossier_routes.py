"""HTTP routes of dossiers: the citizen's (``/api/v1/me/dossiers``, ``/api/v1/me/documents``) and the
officers' (``/api/v1/officer/dossiers``). Thin: the rules are in ``dossiers.py``.

Uploads are multipart (``file`` field). The whole request may be up to ``_MAX_MULTIPART_BODY`` bytes; each
file is checked against ``settings.max_upload_bytes`` (413 ``document_too_large``) and by content (415
``unsupported_document_type``).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, JSONBody, PathParameter, QueryParameter

from app.core.db import Database
from app.core.deps import AUTHENTICATED
from app.core.errors import NOT_FOUND, VALIDATION_FAILED
from app.core.ratelimit import rate_limit
from app.core.security import Caller, require_roles
from app.core.settings import Settings
from app.services import dossiers
from app.services.documents import check_file, file_store
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
        opt={**_MULTIPART, "errors": _UPLOAD_ERRORS},
    )
    async def upload(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        caller: NamedDependency[Caller],
        data: Annotated[DocumentUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> DocumentOut:
        """Multipart upload (field `file`): PDF, JPEG or PNG, recognised by content, at most
        `max_upload_bytes`. The same content uploaded twice is stored once (same id)."""
        checked = check_file(settings, data.file.filename, await data.file.read())
        return await dossiers.store_document(
            db, file_store(settings), caller.user_id, checked, uploaded_by=caller.user_id
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
        opt={"errors": [PROCEDURE_NOT_FOUND, UNKNOWN_FEE_CASE, UNKNOWN_AGENCY]},
    )
    async def create(
        self, db: NamedDependency[Database], caller: NamedDependency[Caller], data: JSONBody[DossierCreate]
    ) -> DossierOut:
        """A draft dossier for a procedure, with the fee case that applies (the default case if none is
        given). Attach the documents, then submit."""
        return await dossiers.create_dossier(
            db, caller, data.procedure_code, data.fee_case, data.note, receiving_agency=data.receiving_agency
        )

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
        opt={**_MULTIPART, "errors": [*_UPLOAD_ERRORS, DOSSIER_LOCKED]},
    )
    async def upload(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: Annotated[DocumentUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> DossierOut:
        """Multipart (`file`, optional `requirement` = the required-document code it answers). The file also
        goes into my document store. Allowed before submission and while a supplement is requested."""
        checked = check_file(settings, data.file.filename, await data.file.read())
        return await dossiers.attach_upload(
            db, file_store(settings), caller, dossier_id, checked, data.requirement
        )

    @post(
        "/{dossier_id:uuid}/documents/reuse",
        operation_id="attachStoredDocument",
        summary="Attach a document from my store",
        status_code=200,
        opt={"errors": [NOT_FOUND, DOSSIER_LOCKED]},
    )
    async def reuse(
        self,
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[AttachExisting],
    ) -> DossierOut:
        """Attach a document I uploaded before (e.g. my CCCD scan) without uploading it again."""
        return await dossiers.attach_existing(db, caller, dossier_id, data.document_id, data.requirement)

    @post(
        "/{dossier_id:uuid}/submit",
        operation_id="submitDossier",
        summary="Submit my dossier",
        status_code=200,
        opt={"errors": [NOT_FOUND, DOSSIER_INCOMPLETE, ILLEGAL_TRANSITION]},
    )
    async def submit(
        self, db: NamedDependency[Database], caller: NamedDependency[Caller], dossier_id: DossierId
    ) -> DossierOut:
        """Draft → `receiving`; the dossier gets its code `{agency}-{yyMMdd}-{NNNN}`. Every required document
        of the procedure must be attached (by `requirement`)."""
        return await dossiers.submit(db, caller, dossier_id)

    @post(
        "/{dossier_id:uuid}/withdraw",
        operation_id="withdrawDossier",
        summary="Withdraw my dossier",
        status_code=200,
        opt={"errors": [NOT_FOUND, ILLEGAL_TRANSITION]},
    )
    async def withdraw(
        self,
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[NoteIn],
    ) -> DossierOut:
        """→ `cancelled`, before processing starts. A fee already paid is owed back
        (`refund_state` = `owed`)."""
        return await dossiers.withdraw(db, caller, dossier_id, data.note)

    @post(
        "/{dossier_id:uuid}/resubmit",
        operation_id="resubmitDossier",
        summary="Send the requested supplement",
        status_code=200,
        opt={"errors": [NOT_FOUND, ILLEGAL_TRANSITION]},
    )
    async def resubmit(
        self,
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[NoteIn],
    ) -> DossierOut:
        """`waiting` → `processing` after attaching the supplement: the clock resumes and the due date moves
        by the working time it was paused."""
        return await dossiers.resubmit(db, caller, dossier_id, data.note)


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
        opt={"errors": [NOT_FOUND, ILLEGAL_TRANSITION, FEE_NOT_CONFIGURED]},
    )
    async def accept(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[NoteIn],
    ) -> DossierOut:
        """`receiving` → `paying` (a fee bill appears in the citizen's bills) when the fee is collected
        first; otherwise → `new` and the clock starts now."""
        return await dossiers.accept(db, settings, caller, dossier_id, data.note)

    @post(
        "/{dossier_id:uuid}/deny",
        operation_id="denyDossier",
        summary="Refuse at intake",
        status_code=200,
        opt={"errors": [NOT_FOUND, ILLEGAL_TRANSITION]},
    )
    async def deny(
        self,
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[ReasonIn],
    ) -> DossierOut:
        """`receiving` → `denied`, with the reason the citizen reads."""
        return await dossiers.deny(db, caller, dossier_id, data.reason)

    @post(
        "/{dossier_id:uuid}/process",
        operation_id="processDossier",
        summary="Start processing",
        status_code=200,
        opt={"errors": [NOT_FOUND, ILLEGAL_TRANSITION]},
    )
    async def process(
        self,
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[NoteIn],
    ) -> DossierOut:
        """`new` → `processing`."""
        return await dossiers.process(db, caller, dossier_id, data.note)

    @post(
        "/{dossier_id:uuid}/transfer",
        operation_id="transferDossier",
        summary="Transfer to the next agency",
        status_code=200,
        opt={"errors": [NOT_FOUND, ILLEGAL_TRANSITION, NO_NEXT_AGENCY]},
    )
    async def transfer(
        self,
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[NoteIn],
    ) -> DossierOut:
        """Hand the dossier to the next agency of the procedure's chain (liên thông); it stays (or becomes)
        `processing`, and my agency no longer sees it."""
        return await dossiers.transfer(db, caller, dossier_id, data.note)

    @post(
        "/{dossier_id:uuid}/request-supplement",
        operation_id="requestDossierSupplement",
        summary="Request a supplement",
        status_code=200,
        opt={"errors": [NOT_FOUND, ILLEGAL_TRANSITION]},
    )
    async def request_supplement(
        self,
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[ReasonIn],
    ) -> DossierOut:
        """`processing` → `waiting`: the clock pauses; the citizen is notified with the reason."""
        return await dossiers.request_supplement(db, caller, dossier_id, data.reason)

    @post(
        "/{dossier_id:uuid}/fee",
        operation_id="setDossierFeeAfter",
        summary="Set the fee collected after processing",
        status_code=200,
        opt={"errors": [NOT_FOUND, DOSSIER_LOCKED]},
    )
    async def set_fee(
        self,
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[FeeIn],
    ) -> DossierOut:
        """While processing: the fee to collect once processed (billed at approval; paying it releases the
        result)."""
        return await dossiers.set_fee_after(db, caller, dossier_id, data.amount, data.note)

    @post(
        "/{dossier_id:uuid}/approve",
        operation_id="approveDossier",
        summary="Approve with the result document",
        status_code=200,
        request_max_body_size=_MAX_MULTIPART_BODY,
        opt={**_MULTIPART, "errors": [*_UPLOAD_ERRORS, ILLEGAL_TRANSITION]},
    )
    async def approve(
        self,
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: Annotated[ResultUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> DossierOut:
        """Multipart (`file`: the result, `note`): `processing` → `releasing`, or → `paying` when a fee is
        collected after processing (the bill is issued now)."""
        checked = check_file(settings, data.file.filename, await data.file.read())
        return await dossiers.approve(
            db, settings, file_store(settings), caller, dossier_id, checked, data.note
        )

    @post(
        "/{dossier_id:uuid}/stop",
        operation_id="stopDossier",
        summary="Stop processing",
        status_code=200,
        opt={"errors": [NOT_FOUND, ILLEGAL_TRANSITION]},
    )
    async def stop(
        self,
        db: NamedDependency[Database],
        caller: NamedDependency[Caller],
        dossier_id: DossierId,
        data: JSONBody[ReasonIn],
    ) -> DossierOut:
        """→ `unresolved` with the reason; a paid fee is owed back to the citizen."""
        return await dossiers.stop(db, caller, dossier_id, data.reason)


dossier_routes = [DocumentsController, MyDossiersController, OfficerDossiersController]
