"""The API's shapes for one-tap bill payment and e-receipts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "MAX_ITEMS",
    "PayItemIn",
    "PaymentIn",
    "PaymentItemView",
    "PaymentView",
    "ReceiptVerification",
    "ReceiptView",
]

MAX_ITEMS = 20
"""Most bills one tap may pay."""

Pin = Annotated[str, Meta(pattern=r"^[0-9]{6}$", description="The 6-digit payment PIN.")]
Amount = Annotated[int, Meta(ge=1, le=1_000_000_000_000, description="đồng (integer).")]


class PayItemIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One bill to pay."""

    bill_id: uuid.UUID
    """The bill (from the my-bills inbox or a lookup by customer code)."""
    amount: Amount | None = None
    """What to pay for this bill; leave it out to pay the bill's amount. Another amount is accepted only where
    the biller's amount rule allows it (``at_least``: more; ``partial_allowed``: less)."""


class PaymentIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Pay one or more bills from the wallet in one tap. Send an ``Idempotency-Key`` header; a retry with the
    same key (after a timeout, say) returns the first answer and pays nothing twice."""

    items: Annotated[list[PayItemIn], Meta(min_length=1, max_length=MAX_ITEMS)]
    """The bills, each at most once (1-20)."""
    pin: Pin


class PaymentItemView(msgspec.Struct, kw_only=True):
    """One paid bill."""

    bill_id: uuid.UUID
    """The bill paid."""
    biller_code: str
    """E.g. ``EVN_CPC_HUE``."""
    biller_name: str
    """The biller's name as citizens see it."""
    customer_code: str
    """The customer code the bill belongs to."""
    period: str
    """The bill's period as the biller names it (e.g. ``2026-05``)."""
    amount: int
    """đồng paid for this bill."""
    status: Literal["paid", "confirmed", "refunded"]
    """``paid``: the biller is being told; ``confirmed``: the biller accepted; ``refunded``: the biller
    refused it (e.g. already paid at a counter) and the amount went back to the wallet."""
    refund_reason: str | None
    """Why the biller refused, when ``refunded`` (e.g. ``already_paid``)."""
    receipt_id: uuid.UUID
    """The e-receipt of this bill (``GET /api/v1/me/receipts/{id}``)."""


class PaymentView(msgspec.Struct, kw_only=True):
    """A one-tap payment."""

    id: uuid.UUID
    """The payment's id (``GET /api/v1/me/payments/{id}``)."""
    reference: str
    """The payment's reference, as the billers and support see it."""
    total: int
    """đồng taken from the wallet."""
    paid_at: datetime
    """When the wallet was debited (UTC)."""
    items: list[PaymentItemView]
    """One per bill, in the order they were asked for."""


class ReceiptView(msgspec.Struct, kw_only=True):
    """An e-receipt (biên lai điện tử) of one paid bill, with the issuer's signature."""

    id: uuid.UUID
    """The receipt's id."""
    code: str
    """Series and number as printed, e.g. ``C26THU-00000042``: what the verify route takes."""
    series: str
    """Ký hiệu."""
    number: int
    """Số."""
    status: Literal["valid", "cancelled"]
    """``cancelled`` once the payment of this bill was refunded."""
    issuer_name: str
    """Đơn vị thu: the biller (or the agency for a public-service fee)."""
    issuer_code: str
    """The biller's code, e.g. ``EVN_CPC_HUE``."""
    payer_name: str | None
    """Người nộp: the payer's name as registered (none if not given)."""
    amount: int
    """đồng."""
    amount_in_words: str
    """The amount in Vietnamese words, e.g. ``Một trăm năm mươi nghìn đồng``."""
    paid_at: datetime
    """When it was paid (UTC); ``content.paid_at_local`` has Huế time as printed."""
    content: dict[str, object]
    """Everything signed, exactly as signed (canonical JSON of this object, keys sorted, no spaces)."""
    key_id: str
    """Which signing key: look its public key up with the verify route."""
    signature: str
    """Ed25519 signature over the canonical JSON of ``content``, base64url without padding."""
    public_key: str
    """The Ed25519 public key (32 bytes, base64url) that checks ``signature``."""
    check_code: str
    """The look-up code printed on the receipt (mã tra cứu), needed by the public verify route."""
    pdf_url: str
    """Where the PDF of this receipt is (same authorisation)."""


class ReceiptVerification(msgspec.Struct, kw_only=True):
    """What anyone holding a receipt can check about it."""

    code: str
    """Series and number, e.g. ``C26THU-00000042``."""
    valid: bool
    """True when the stored receipt's signature checks out under its key."""
    status: Literal["valid", "cancelled"]
    """``cancelled`` once the payment of the bill was refunded."""
    issuer_name: str
    """Đơn vị thu: who the money was collected for."""
    amount: int
    """đồng."""
    paid_at: datetime
    """When it was paid (UTC)."""
    key_id: str
    """The signing key's id."""
    public_key: str
    """The Ed25519 public key (base64url) that checks the receipt's signature."""
