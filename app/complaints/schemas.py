"""API structs of complaints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "ComplaintEventView",
    "ComplaintIn",
    "ComplaintView",
    "RejectIn",
    "ResolveIn",
    "ReviewIn",
]

Reason = Literal["not_received", "wrong_amount", "duplicate", "mistaken_transfer", "fraud", "other"]


class ComplaintIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A complaint about one payment I made."""

    kind: Annotated[str, Meta(min_length=1, max_length=32)]
    """The payment kind: ``bill`` (``payment_id`` = the bill's id), ``transfer`` (the transfer's id) or
    ``merchant`` (the QR payment's id, as its receipt gives it)."""
    payment_id: Annotated[str, Meta(min_length=1, max_length=64)]
    """The payment's id as the app shows it."""
    reason: Reason
    """Why: ``not_received`` (service or goods not delivered), ``wrong_amount``, ``duplicate``,
    ``mistaken_transfer``, ``fraud`` or ``other``."""
    description: Annotated[str, Meta(min_length=1, max_length=2000)]
    """What happened, in the citizen's words."""
    amount: Annotated[int, Meta(ge=1)] | None = None
    """Đồng disputed; none: everything still refundable."""


class ReviewIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Taking a complaint in review."""

    note: Annotated[str, Meta(max_length=2000)] | None = None
    """Internal note for the timeline."""


class ResolveIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Upholding a complaint with a refund."""

    refund_amount: Annotated[int, Meta(ge=1)]
    """Đồng given back to the payer (at most the disputed amount); the owning module's caps also apply."""
    note: Annotated[str, Meta(min_length=1, max_length=2000)]
    """What was found; shown to the citizen."""


class RejectIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Rejecting a complaint."""

    reason: Annotated[str, Meta(min_length=1, max_length=2000)]
    """Why it is rejected; shown to the citizen."""


class ComplaintEventView(msgspec.Struct, kw_only=True):
    """One step of a complaint."""

    action: str
    """``logged``, ``in_review``, ``escalated``, ``resolved`` or ``rejected``."""
    from_status: str | None
    """Status before the step."""
    to_status: str
    """Status after the step."""
    note: str | None
    """The note given with the step."""
    at: datetime
    """When."""


class ComplaintView(msgspec.Struct, kw_only=True):
    """A complaint and its timeline."""

    id: uuid.UUID
    """Opaque id."""
    code: str
    """What to quote to support."""
    kind: str
    """Payment kind."""
    payment_ref: str
    """The payment's id in its owning module (for a bill: the payment item)."""
    payee_name: str
    """Who was paid (a citizen receiver's name is masked)."""
    paid_amount: int
    """Đồng paid."""
    disputed_amount: int
    """Đồng disputed (held from the payee's settlements while open, where the payee is settled)."""
    reason: str
    """The citizen's reason."""
    description: str
    """The citizen's description."""
    status: Literal["logged", "in_review", "resolved", "rejected"]
    """``logged`` -> ``in_review`` -> ``resolved`` (with a refund) or ``rejected``."""
    due_at: datetime
    """The SLA: the complaint should be closed by then (working days)."""
    overdue: bool
    """Open past its due time."""
    escalated_at: datetime | None
    """When it was escalated for being overdue."""
    refund_amount: int | None
    """Đồng refunded, once resolved."""
    resolution_note: str | None
    """The resolution's or the rejection's explanation."""
    created_at: datetime
    """When it was logged."""
    closed_at: datetime | None
    """When it was resolved or rejected."""
    user_id: uuid.UUID
    """The complaining citizen."""
    events: list[ComplaintEventView]
    """The timeline, oldest first."""
