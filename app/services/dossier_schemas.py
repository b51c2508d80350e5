"""What the dossier routes read and answer (msgspec structs at the edge)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from litestar.datastructures import UploadFile
from litestar.params import KwargDefinition
from msgspec import Meta, Struct

__all__ = [
    "AttachExisting",
    "AttachmentOut",
    "DocumentOut",
    "DocumentUpload",
    "DossierCreate",
    "DossierOut",
    "DossierPage",
    "DossierSummary",
    "FeeIn",
    "NoteIn",
    "QueueFilter",
    "ReasonIn",
    "ResultUpload",
    "TimelineEntry",
]

Reason = Annotated[str, Meta(min_length=1, max_length=2000, description="Why, in words the citizen reads.")]
Note = Annotated[str, Meta(max_length=2000, description="A free note kept in the timeline.")]
Timeliness = Literal["early", "on_time", "late"]
QueueFilter = Literal["all", "receiving", "new", "processing", "due_soon", "overdue", "waiting"]


class DossierCreate(Struct, kw_only=True, forbid_unknown_fields=True):
    """A new dossier (a draft until it is submitted)."""

    procedure_code: Annotated[str, Meta(max_length=40, description="The procedure's national code.")]
    fee_case: (
        Annotated[
            str, Meta(max_length=64, description="The fee case that applies (default case if omitted).")
        ]
        | None
    ) = None
    receiving_agency: (
        Annotated[
            str,
            Meta(
                max_length=40,
                description="Submit to this desk instead of the chain's first agency; it must be an agency "
                "of the same level (a province's centres accept dossiers from anywhere in the province).",
            ),
        ]
        | None
    ) = None
    note: Note | None = None


class AttachExisting(Struct, kw_only=True, forbid_unknown_fields=True):
    """Attach a document already in the citizen's document store."""

    document_id: Annotated[uuid.UUID, Meta(description="Id of a document in the caller's store.")]
    requirement: (
        Annotated[str, Meta(max_length=64, description="The required-document code it answers.")] | None
    ) = None


class ReasonIn(Struct, kw_only=True, forbid_unknown_fields=True):
    """A decision with its reason (deny, stop, supplement request)."""

    reason: Reason


class NoteIn(Struct, kw_only=True, forbid_unknown_fields=True):
    """An action with an optional note."""

    note: Note | None = None


class FeeIn(Struct, kw_only=True, forbid_unknown_fields=True):
    """The fee collected after processing, as the officer sets it."""

    amount: Annotated[int, Meta(ge=1, le=10_000_000_000, description="Amount in đồng.")]
    note: Note | None = None


@dataclass
class DocumentUpload:
    """Multipart form: ``file`` (PDF, JPEG or PNG) and optionally the required-document code it answers."""

    file: Annotated[
        UploadFile, KwargDefinition(description="The document: PDF, JPEG or PNG (checked by content).")
    ]
    requirement: Annotated[
        str | None, KwargDefinition(description="The procedure's required-document code this file answers.")
    ] = None


@dataclass
class ResultUpload:
    """Multipart form: the result document (``file``) and an optional note."""

    file: Annotated[UploadFile, KwargDefinition(description="The result document: PDF, JPEG or PNG.")]
    note: Annotated[str | None, KwargDefinition(description="A note kept in the timeline.")] = None


class DocumentOut(Struct, kw_only=True):
    """A document in a store."""

    id: Annotated[uuid.UUID, Meta(description="Document id.")]
    filename: Annotated[str, Meta(description="Name given at upload.")]
    media_type: Annotated[str, Meta(description="Type detected from the content.")]
    size_bytes: Annotated[int, Meta(description="Size in bytes.")]
    sha256: Annotated[str, Meta(description="SHA-256 of the content, hex.")]
    created_at: Annotated[datetime, Meta(description="Upload time (UTC).")]


class AttachmentOut(Struct, kw_only=True):
    """A document attached to a dossier."""

    document: Annotated[DocumentOut, Meta(description="The document.")]
    purpose: Annotated[str, Meta(description="`application`, `supplement` or `result`.")]
    requirement: Annotated[str | None, Meta(description="Required-document code it answers.")]
    attached_at: Annotated[datetime, Meta(description="When it was attached (UTC).")]


class TimelineEntry(Struct, kw_only=True):
    """One step of a dossier's history."""

    action: Annotated[str, Meta(description="What happened, e.g. `accept`, `transfer`, `fee_paid`.")]
    from_status: Annotated[str | None, Meta(description="Status before.")]
    to_status: Annotated[str, Meta(description="Status after.")]
    actor_role: Annotated[str, Meta(description="`citizen`, `officer` or `system`.")]
    actor_id: Annotated[uuid.UUID | None, Meta(description="Who acted (None for the system).")]
    agency_code: Annotated[str | None, Meta(description="The agency holding the dossier at that step.")]
    note: Annotated[str | None, Meta(description="Reason or note given.")]
    at: Annotated[datetime, Meta(description="When (UTC).")]


class DossierSummary(Struct, kw_only=True):
    """A dossier in a list."""

    id: Annotated[uuid.UUID, Meta(description="Dossier id.")]
    code: Annotated[str | None, Meta(description="`{agency}-{yyMMdd}-{NNNN}`, given at submission.")]
    procedure_code: Annotated[str, Meta(description="Procedure code.")]
    status: Annotated[str, Meta(description="`draft` or one of the ten portal statuses.")]
    status_name_vi: Annotated[str, Meta(description="Status as the portal says it.")]
    agency_code: Annotated[str, Meta(description="Agency holding the dossier now.")]
    applicant_id: Annotated[uuid.UUID, Meta(description="The citizen who applied.")]
    submitted_at: Annotated[datetime | None, Meta(description="Submission time (UTC).")]
    received_at: Annotated[datetime | None, Meta(description="When the clock started (UTC).")]
    due_at: Annotated[datetime | None, Meta(description="Statutory due date, moved by pauses (UTC).")]
    due_provisional: Annotated[
        bool, Meta(description="The due date crosses an unannounced holiday schedule.")
    ]
    remaining_working_seconds: Annotated[
        int | None,
        Meta(
            description="While the clock runs (`new`, `processing`) or is paused (`waiting`): working time "
            "(office hours, working days) left until `due_at`, in seconds; negative once past it; frozen "
            "while a supplement is awaited. None before the clock starts and once finished."
        ),
    ] = None
    overdue: Annotated[
        bool, Meta(description="An open dossier whose due date has passed (`remaining_working_seconds` < 0).")
    ] = False
    timeliness: Annotated[
        Timeliness | None,
        Meta(
            description="Once finished (processed, stopped or denied after the clock started): `early` = "
            "finished on a calendar day before the due date's day, `on_time` = on that day, `late` = after "
            "it or more than one supplement was requested (days in Asia/Ho_Chi_Minh; the due date includes "
            "the supplement pauses). None while open, when withdrawn, or when the clock never started."
        ),
    ] = None
    created_at: Annotated[datetime, Meta(description="Creation time (UTC).")]


class DossierOut(DossierSummary, kw_only=True):
    """A dossier with its fee, documents and full timeline."""

    chain: Annotated[list[str], Meta(description="Agencies that handle it, in order.")]
    fee_case: Annotated[str | None, Meta(description="The fee case applied.")]
    fee_collection: Annotated[str | None, Meta(description="`first`, `after`, `exempt`, or None (free).")]
    fee_amount: Annotated[int | None, Meta(description="Fee in đồng.")]
    fee_bill_id: Annotated[uuid.UUID | None, Meta(description="The bill to pay (in the citizen's bills).")]
    fee_paid_at: Annotated[datetime | None, Meta(description="When the fee was paid (UTC).")]
    refund_state: Annotated[
        str | None,
        Meta(description="`refunded`: the fee went back to the wallet; `owed`: still to be refunded."),
    ]
    paused_seconds: Annotated[int, Meta(description="Working seconds the clock was paused for supplements.")]
    supplement_requests: Annotated[int, Meta(description="How many supplements were requested.")]
    finished_at: Annotated[datetime | None, Meta(description="End of processing (UTC).")]
    reason: Annotated[str | None, Meta(description="Denial/stop/withdrawal reason or supplement asked.")]
    result_document_id: Annotated[uuid.UUID | None, Meta(description="The result document.")]
    note: Annotated[str | None, Meta(description="The applicant's note.")]
    attachments: Annotated[list[AttachmentOut], Meta(description="Attached documents.")]
    timeline: Annotated[list[TimelineEntry], Meta(description="Every step, oldest first.")]


class DossierPage(Struct, kw_only=True):
    """A page of dossiers."""

    items: Annotated[list[DossierSummary], Meta(description="This page.")]
    next_cursor: Annotated[str | None, Meta(description="Pass as `cursor` for the next page.")]
