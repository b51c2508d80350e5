"""What the routes of issue 9 read and answer: signed results, return channels, apologies, ratings,
statistics."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

from litestar.datastructures import UploadFile
from litestar.params import KwargDefinition
from msgspec import Meta, Struct

from app.services.schemas import ReturnChannel

__all__ = [
    "ApologyIn",
    "ApologyOut",
    "CriterionOut",
    "DeliveryOut",
    "KeyOut",
    "PostalEventOut",
    "PostalWebhookAck",
    "PostalWebhookIn",
    "RatingIn",
    "RatingOut",
    "ResultCheck",
    "ResultOut",
    "ReturnChoice",
    "RevokeIn",
    "StatisticsOut",
    "StatisticsRow",
    "VerifyUpload",
]

Verdict = Literal[
    "valid", "document_changed", "signature_invalid", "key_revoked", "unknown_key", "unknown_document"
]


class ResultOut(Struct, kw_only=True):
    """A signed result as anyone may check it (what the QR code on the document opens)."""

    result_id: uuid.UUID
    """Printed on the document and in its QR code."""
    valid: bool
    """The signature holds over ``content`` and the agency's key is not revoked."""
    verdict: Verdict
    """Why it is (in)valid."""
    dossier_code: str
    """The dossier's code."""
    procedure_code: str
    """The procedure's national code."""
    procedure_name: str
    """The procedure's Vietnamese name."""
    holder: str
    """Whom the result was issued to."""
    agency_code: str
    """The issuing agency."""
    agency_name: str
    """The issuing agency's name."""
    issued_at: datetime
    """When the result was issued."""
    sha256: str
    """SHA-256 (hex) of the document file; a file with any other hash is not this result."""
    algorithm: Literal["Ed25519"]
    """Signature algorithm."""
    key_id: str
    """Which of the agency's keys signed it (keys rotate)."""
    public_key: str | None
    """The agency's Ed25519 public key for ``key_id`` (32 bytes, base64url)."""
    signature: str
    """Ed25519 over the canonical JSON of ``content`` (sorted keys, UTF-8, no spaces), base64url."""
    content: dict[str, Any]
    """Exactly what was signed, for offline checks."""


class ResultCheck(Struct, kw_only=True):
    """The answer to "is this file a genuine result?"."""

    valid: bool
    """True only when the file is the signed document and the signature and key hold."""
    verdict: Verdict
    """``unknown_document``: no result has this file's hash; ``document_changed``: the file differs from the
    result named by ``result_id``."""
    sha256: str
    """SHA-256 of the uploaded file."""
    result: ResultOut | None
    """The result checked against, when one was found."""


@dataclass
class VerifyUpload:
    """Multipart form of a verification: the file in hand, and the result id read from its QR code."""

    file: Annotated[UploadFile, KwargDefinition(description="The result document to check.")]
    result_id: Annotated[
        uuid.UUID | None, KwargDefinition(description="The result id printed on the document (optional).")
    ] = None


class KeyOut(Struct, kw_only=True):
    """One of an agency's result-signing keys."""

    agency_code: str
    """The agency."""
    key_id: str
    """Key id in the ring (the first one signs new results)."""
    public_key: str
    """Ed25519 public key, base64url."""
    active: bool
    """Signs new results."""
    revoked_at: datetime | None
    """When an administrator revoked it (results it signed no longer verify)."""
    revocation_reason: str | None
    """Why it was revoked."""


class RevokeIn(Struct, kw_only=True, forbid_unknown_fields=True):
    """Why a key is revoked."""

    reason: Annotated[str, Meta(min_length=1, max_length=2000, description="Why the key is revoked.")]


class ReturnChoice(Struct, kw_only=True, forbid_unknown_fields=True):
    """How the citizen wants the result back."""

    channel: ReturnChannel
    """`desk`: collect it at the one-stop desk; `online`: download it; `post`: public postal service (postage
    is billed and can be paid in the same tap as the fee)."""
    recipient_name: (
        Annotated[str, Meta(min_length=1, max_length=200, description="Recipient (post only).")] | None
    ) = None
    address: (
        Annotated[str, Meta(min_length=5, max_length=500, description="Postal address (post only).")] | None
    ) = None
    phone: Annotated[str, Meta(max_length=20, description="Phone for the postman (post only).")] | None = None


class PostalEventOut(Struct, kw_only=True):
    """One event of the postal shipment."""

    code: str
    """``accepted``, ``in_transit``, ``delivered`` or ``returned``."""
    description: str
    """The postal service's words."""
    at: datetime
    """When it happened."""


class DeliveryOut(Struct, kw_only=True):
    """The return of a dossier's result."""

    dossier_id: uuid.UUID
    """The dossier."""
    channel: ReturnChannel
    """The chosen channel."""
    state: Literal["chosen", "dispatched", "delivered", "cancelled"]
    """`dispatched`: handed to the postal service; `delivered`: collected, downloaded or delivered;
    `cancelled`: the dossier closed without a result (postage refunded or its bill cancelled)."""
    recipient_name: str | None
    """Recipient (post)."""
    address: str | None
    """Postal address (post)."""
    phone: str | None
    """Phone (post)."""
    postage_amount: int | None
    """Postage in đồng (post)."""
    postage_bill_id: uuid.UUID | None
    """The postage bill in my bills (pay it with the fee in one `POST /api/v1/payments`)."""
    postage_paid_at: datetime | None
    """When the postage was paid."""
    tracking_number: str | None
    """The postal tracking number once dispatched."""
    events: list[PostalEventOut]
    """Postal events so far."""
    delivered_at: datetime | None
    """When the result reached the citizen."""


class ApologyIn(Struct, kw_only=True, forbid_unknown_fields=True):
    """A letter of apology with a new date."""

    new_due_date: date
    """The new date promised to the citizen (Huế calendar day, after the current due date)."""
    reason: Annotated[str, Meta(min_length=1, max_length=2000, description="Why it will be late.")]


class ApologyOut(Struct, kw_only=True):
    """An apology sent for a dossier."""

    id: uuid.UUID
    """Apology id."""
    dossier_id: uuid.UUID
    """The dossier."""
    agency_code: str
    """The agency that apologised."""
    reason: str
    """Why it will be late."""
    previous_due_at: datetime | None
    """The due date before (the statutory one stays what the dossier is classified against)."""
    new_due_at: datetime
    """The new date promised (end of office hours of the new day)."""
    sent_at: datetime
    """When it was sent."""


class CriterionOut(Struct, kw_only=True):
    """One criterion of the satisfaction form (each scored 2, 1 or 0)."""

    code: str
    """Key in `scores`."""
    name_vi: str
    """Vietnamese wording."""
    name_en: str
    """English wording."""


Score = Annotated[int, Meta(ge=0, le=2, description="2 good, 1 acceptable, 0 poor.")]


class RatingIn(Struct, kw_only=True, forbid_unknown_fields=True):
    """The citizen's rating of the service (nine criteria)."""

    scores: dict[str, Score]
    """Every one of the nine criteria codes (`GET /api/v1/services/satisfaction-criteria`) → 2, 1 or 0."""
    comment: Annotated[str, Meta(max_length=2000, description="Optional comment.")] | None = None


class RatingOut(Struct, kw_only=True):
    """A rating given."""

    dossier_id: uuid.UUID
    """The dossier."""
    scores: dict[str, int]
    """Criterion → score."""
    total: int
    """Sum of the scores."""
    max_total: int
    """Highest possible total (18)."""
    comment: str | None
    """The comment."""
    rated_at: datetime
    """When."""


class StatisticsRow(Struct, kw_only=True):
    """Figures of one procedure (or of all, in `total`) for the period."""

    procedure_code: str | None
    """None in the total row."""
    received: int
    """Dossiers accepted at intake in the period."""
    submitted_online: int
    """Of those, submitted online (through the app)."""
    submitted_online_share: float | None
    """`submitted_online / received` (0..1), None when nothing was received."""
    with_fee: int
    """Received dossiers that carry a fee."""
    paid_online: int
    """Of those, paid online (through the app's payments)."""
    paid_online_share: float | None
    """`paid_online / with_fee`, None when no dossier carried a fee."""
    finished: int
    """Dossiers whose processing ended in the period (processed, or stopped)."""
    early: int
    """Finished on a calendar day before the statutory due date."""
    on_time: int
    """Finished on the due date's day."""
    late: int
    """Finished after it (or more than one supplement request)."""
    average_processing_hours: float | None
    """Mean working hours from the clock's start to the end of processing, without supplement pauses."""
    ratings: int
    """Satisfaction ratings given in the period."""
    satisfaction_percent: float | None
    """Sum of the ratings' scores over the maximum (18 per rating), in percent."""


class StatisticsOut(Struct, kw_only=True):
    """Service statistics of one agency for a period of Huế calendar days."""

    agency_code: str
    """The agency."""
    procedure_code: str | None
    """The procedure filter, if any."""
    date_from: date
    """First day (inclusive)."""
    date_to: date
    """Last day (inclusive)."""
    rows: list[StatisticsRow]
    """One row per procedure."""
    total: StatisticsRow
    """All procedures together."""


class PostalWebhookIn(Struct, kw_only=True, forbid_unknown_fields=True):
    """One shipment event pushed by the postal operator (signed with `X-Postal-Signature`)."""

    event_id: Annotated[str, Meta(min_length=1, max_length=100, description="The operator's event id.")]
    tracking_number: Annotated[str, Meta(min_length=1, max_length=64, description="The shipment.")]
    code: Literal["accepted", "in_transit", "delivered", "returned"]
    """What happened."""
    description: Annotated[str, Meta(max_length=500, description="The operator's words.")] = ""
    at: datetime
    """When it happened."""


class PostalWebhookAck(Struct, kw_only=True):
    """The answer to a postal webhook."""

    duplicate: bool
    """The event id was already received (nothing changed)."""
