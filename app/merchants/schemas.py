"""Merchants at the edge: msgspec structs of the merchant app, the citizen app and the merchant server API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

__all__ = [
    "ApiKeyCreated",
    "ApiKeyIn",
    "ApiKeyOut",
    "CashierIn",
    "DecisionIn",
    "MerchantIn",
    "MerchantOut",
    "OrderIn",
    "OrderOut",
    "PaymentOut",
    "PaymentPage",
    "PayoutOut",
    "QrPayIn",
    "QrPreview",
    "QrScanIn",
    "RefundIn",
    "RefundOut",
    "StaffOut",
    "StoreIn",
    "StoreOut",
    "StoreQr",
    "WebhookEventOut",
    "WebhookIn",
    "WebhookSecretOut",
]

Dong = Annotated[int, msgspec.Meta(description="Amount in đồng (VND), an integer.")]
PositiveDong = Annotated[int, msgspec.Meta(ge=1, le=10**12, description="A positive amount in đồng.")]
Pin = Annotated[str, msgspec.Meta(min_length=4, max_length=12, description="The payer's payment PIN.")]


class StoreIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An acceptance point to add."""

    code: Annotated[
        str,
        msgspec.Meta(
            pattern=r"^[A-Z0-9-]{1,20}$",
            description="Short label printed in the QR (field 62-03), unique per merchant, e.g. `QUAY-1`.",
        ),
    ]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200, description="Name shown to payers.")]
    address: Annotated[str, msgspec.Meta(min_length=1, max_length=300, description="Street address.")]


class MerchantIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A merchant registration by its owner (identity level 2)."""

    name: Annotated[str, msgspec.Meta(min_length=2, max_length=200, description="Business name.")]
    tax_code: Annotated[
        str,
        msgspec.Meta(
            max_length=14,
            description="10 digits (company), 13 digits or `10-3` with a hyphen (branch), or the owner's "
            "12-digit personal ID number (household business).",
        ),
    ]
    mcc: Annotated[str, msgspec.Meta(pattern=r"^\d{4}$", description="Merchant category code (ISO 18245).")]
    city: Annotated[str, msgspec.Meta(min_length=1, max_length=60, description="City of the business.")] = (
        "Huế"
    )
    settlement_bank_bin: Annotated[
        str, msgspec.Meta(pattern=r"^\d{6}$", description="NAPAS BIN of the bank to settle to.")
    ]
    settlement_account_number: Annotated[
        str, msgspec.Meta(pattern=r"^[0-9A-Za-z]{4,32}$", description="Account number to settle to.")
    ]
    settlement_account_name: Annotated[
        str, msgspec.Meta(min_length=2, max_length=200, description="Name on that account.")
    ]
    stores: Annotated[
        list[StoreIn], msgspec.Meta(min_length=1, max_length=50, description="At least one acceptance point.")
    ]


class StoreOut(msgspec.Struct, kw_only=True):
    """An acceptance point."""

    id: Annotated[uuid.UUID, msgspec.Meta(description="Store id.")]
    code: Annotated[str, msgspec.Meta(description="Label in the QR (field 62-03).")]
    name: Annotated[str, msgspec.Meta(description="Name shown to payers.")]
    address: Annotated[str, msgspec.Meta(description="Street address.")]
    active: Annotated[bool, msgspec.Meta(description="Whether it takes payments.")]


class MerchantOut(msgspec.Struct, kw_only=True):
    """A merchant as its staff and admins see it."""

    id: Annotated[uuid.UUID, msgspec.Meta(description="Merchant id (also the scope of its staff roles).")]
    name: Annotated[str, msgspec.Meta(description="Business name.")]
    tax_code: Annotated[str, msgspec.Meta(description="Tax code or household owner's ID number.")]
    business_type: Annotated[
        Literal["company", "branch", "household"], msgspec.Meta(description="From the tax code's shape.")
    ]
    mcc: Annotated[str, msgspec.Meta(description="Merchant category code.")]
    mcc_label: Annotated[str, msgspec.Meta(description="What the category code means.")]
    city: Annotated[str, msgspec.Meta(description="City.")]
    status: Annotated[
        Literal["pending", "approved", "rejected", "suspended"], msgspec.Meta(description="Onboarding state.")
    ]
    owner_id: Annotated[uuid.UUID, msgspec.Meta(description="The owner's user id.")]
    account_number: Annotated[str, msgspec.Meta(description="Account named by the merchant's VietQR codes.")]
    mdr_bps: Annotated[int, msgspec.Meta(description="Fee on each payment in basis points (60 = 0.6 %).")]
    settlement_bank_bin: Annotated[str, msgspec.Meta(description="Settlement bank BIN.")]
    settlement_account_number: Annotated[str, msgspec.Meta(description="Settlement account number.")]
    settlement_account_name: Annotated[str, msgspec.Meta(description="Settlement account name.")]
    webhook_url: Annotated[str | None, msgspec.Meta(description="Where signed webhooks are sent.")] = None
    decision_reason: Annotated[str | None, msgspec.Meta(description="Why it was rejected or suspended.")] = (
        None
    )
    stores: Annotated[list[StoreOut], msgspec.Meta(description="Acceptance points.")]
    created_at: Annotated[datetime, msgspec.Meta(description="Registered at.")]


class DecisionIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An admin's decision on a merchant."""

    action: Annotated[
        Literal["approve", "reject", "suspend", "reinstate"],
        msgspec.Meta(description="approve/reject a pending merchant; suspend/reinstate an approved one."),
    ]
    reason: Annotated[
        str, msgspec.Meta(max_length=300, description="Why (required to reject or suspend).")
    ] = ""
    mdr_bps: Annotated[
        Annotated[int, msgspec.Meta(ge=0, le=1000)] | None,
        msgspec.Meta(description="Fee to fix at approval (default: configuration)."),
    ] = None


class CashierIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A cashier to add, by the phone number of their Hue-S account."""

    phone: Annotated[
        str, msgspec.Meta(min_length=9, max_length=20, description="The cashier's phone number.")
    ]


class StaffOut(msgspec.Struct, kw_only=True):
    """A member of a merchant's staff."""

    user_id: Annotated[uuid.UUID, msgspec.Meta(description="User id.")]
    role: Annotated[Literal["merchant_owner", "merchant_cashier"], msgspec.Meta(description="Role.")]
    full_name: Annotated[str | None, msgspec.Meta(description="Name.")] = None


class StoreQr(msgspec.Struct, kw_only=True):
    """A QR code as a payload string, with links to its images."""

    payload: Annotated[str, msgspec.Meta(description="The VietQR (EMVCo) payload string.")]
    png_url: Annotated[str, msgspec.Meta(description="The QR as a PNG.")]
    svg_url: Annotated[str, msgspec.Meta(description="The QR as an SVG.")]


class OrderIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An order to be paid by a dynamic QR."""

    amount: PositiveDong
    store_id: Annotated[uuid.UUID | None, msgspec.Meta(description="The store it is paid at.")] = None
    description: Annotated[str, msgspec.Meta(max_length=100, description="What is paid (field 62-08).")] = ""
    external_ref: Annotated[
        Annotated[str, msgspec.Meta(max_length=64)] | None,
        msgspec.Meta(description="The merchant's own order number."),
    ] = None


class OrderOut(msgspec.Struct, kw_only=True):
    """An order with its dynamic QR."""

    id: Annotated[uuid.UUID, msgspec.Meta(description="Order id.")]
    reference: Annotated[str, msgspec.Meta(description="Our reference, in field 62-05 of the QR.")]
    amount: Dong
    description: Annotated[str, msgspec.Meta(description="What is paid.")]
    external_ref: Annotated[str | None, msgspec.Meta(description="The merchant's own order number.")] = None
    status: Annotated[
        Literal["open", "paid", "expired", "cancelled"], msgspec.Meta(description="Where the order stands.")
    ]
    expires_at: Annotated[datetime, msgspec.Meta(description="After this the QR can no longer be paid.")]
    payment_id: Annotated[uuid.UUID | None, msgspec.Meta(description="The payment, once paid.")] = None
    qr_payload: Annotated[str, msgspec.Meta(description="The dynamic VietQR payload string.")]
    qr_png_url: Annotated[str, msgspec.Meta(description="The dynamic QR as a PNG.")]
    qr_svg_url: Annotated[str, msgspec.Meta(description="The dynamic QR as an SVG.")]


class QrScanIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What the camera read."""

    payload: Annotated[str, msgspec.Meta(min_length=1, max_length=512, description="The scanned text.")]


class QrPreview(msgspec.Struct, kw_only=True):
    """Who is paid and how much, before the payer confirms."""

    merchant_id: Annotated[uuid.UUID, msgspec.Meta(description="The merchant.")]
    merchant_name: Annotated[str, msgspec.Meta(description="Business name.")]
    mcc_label: Annotated[str, msgspec.Meta(description="Kind of business.")]
    store_name: Annotated[str | None, msgspec.Meta(description="The acceptance point, if the QR names one.")]
    dynamic: Annotated[bool, msgspec.Meta(description="True: one order with a fixed amount.")]
    amount: Annotated[
        int | None, msgspec.Meta(description="Fixed amount (dynamic QR); null: the payer types it.")
    ] = None
    order_reference: Annotated[str | None, msgspec.Meta(description="The order's reference.")] = None
    description: Annotated[str | None, msgspec.Meta(description="What is paid.")] = None
    expires_at: Annotated[datetime | None, msgspec.Meta(description="Until when the QR can be paid.")] = None


class QrPayIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Pay the merchant of a scanned QR."""

    payload: Annotated[str, msgspec.Meta(min_length=1, max_length=512, description="The scanned text.")]
    amount: Annotated[
        Annotated[int, msgspec.Meta(ge=1, le=10**12)] | None,
        msgspec.Meta(
            description="Typed by the payer for a static QR; for a dynamic QR, "
            "omit it or give the QR's amount.",
        ),
    ] = None
    pin: Pin


class PaymentOut(msgspec.Struct, kw_only=True):
    """A QR payment to a merchant."""

    id: Annotated[uuid.UUID, msgspec.Meta(description="Payment id.")]
    reference: Annotated[str, msgspec.Meta(description="What payer, merchant and support quote.")]
    merchant_id: Annotated[uuid.UUID, msgspec.Meta(description="The merchant paid.")]
    merchant_name: Annotated[str, msgspec.Meta(description="Business name.")]
    store_id: Annotated[uuid.UUID | None, msgspec.Meta(description="The store.")] = None
    order_id: Annotated[uuid.UUID | None, msgspec.Meta(description="The order (dynamic QR).")] = None
    order_reference: Annotated[str | None, msgspec.Meta(description="The order's reference.")] = None
    amount: Dong
    fee: Annotated[int, msgspec.Meta(description="Merchant fee (MDR) in đồng, kept from the amount.")]
    net: Annotated[int, msgspec.Meta(description="What the merchant receives: amount - fee.")]
    refunded: Annotated[int, msgspec.Meta(description="Refunded so far, đồng.")]
    status: Annotated[
        Literal["paid", "partially_refunded", "refunded"], msgspec.Meta(description="Refund state.")
    ]
    paid_at: Annotated[datetime, msgspec.Meta(description="When the money moved.")]
    payer_name: Annotated[str | None, msgspec.Meta(description="Masked payer name (merchant views).")] = None


class PaymentPage(msgspec.Struct, kw_only=True):
    """A page of payments, newest first."""

    items: Annotated[list[PaymentOut], msgspec.Meta(description="Payments.")]
    next_cursor: Annotated[str | None, msgspec.Meta(description="Pass as `cursor` for the next page.")] = None


class RefundIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Give money back on a payment."""

    amount: Annotated[
        Annotated[int, msgspec.Meta(ge=1, le=10**12)] | None,
        msgspec.Meta(description="đồng to refund; omit for all that is left."),
    ] = None
    reason: Annotated[str, msgspec.Meta(max_length=200, description="Why (shown to the payer).")] = ""


class RefundOut(msgspec.Struct, kw_only=True):
    """A refund."""

    id: Annotated[uuid.UUID, msgspec.Meta(description="Refund id.")]
    payment_id: Annotated[uuid.UUID, msgspec.Meta(description="The payment refunded.")]
    amount: Dong
    fee_returned: Annotated[int, msgspec.Meta(description="Share of the fee given back with it.")]
    refunded_total: Annotated[int, msgspec.Meta(description="Refunded on the payment so far, this included.")]
    payment_status: Annotated[
        Literal["paid", "partially_refunded", "refunded"],
        msgspec.Meta(description="The payment's state now."),
    ]
    created_at: Annotated[datetime, msgspec.Meta(description="When.")]


class ApiKeyIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A server API key to create."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=60, description="What it is for.")]
    scopes: Annotated[
        list[Literal["orders", "payments:read", "refunds"]],
        msgspec.Meta(min_length=1, description="What it may do."),
    ]


class ApiKeyOut(msgspec.Struct, kw_only=True):
    """A server API key (never its secret)."""

    id: Annotated[uuid.UUID, msgspec.Meta(description="Key id.")]
    name: Annotated[str, msgspec.Meta(description="What it is for.")]
    prefix: Annotated[str, msgspec.Meta(description="Its first characters.")]
    scopes: Annotated[list[str], msgspec.Meta(description="What it may do.")]
    created_at: Annotated[datetime, msgspec.Meta(description="Created at.")]
    revoked_at: Annotated[datetime | None, msgspec.Meta(description="Revoked at.")] = None
    last_used_at: Annotated[datetime | None, msgspec.Meta(description="Last used at.")] = None


class ApiKeyCreated(ApiKeyOut, kw_only=True):
    """A new key: the secret is shown this once."""

    secret: Annotated[str, msgspec.Meta(description="Send as the `X-Api-Key` header; shown once.")]


class WebhookIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where to send signed webhooks."""

    url: Annotated[
        str,
        msgspec.Meta(pattern=r"^https?://", max_length=500, description="HTTPS endpoint of the merchant."),
    ]


class WebhookSecretOut(msgspec.Struct, kw_only=True):
    """The signing secret, shown when the endpoint is set."""

    url: Annotated[str, msgspec.Meta(description="The endpoint.")]
    secret: Annotated[str, msgspec.Meta(description="HMAC-SHA256 key (`whsec_...`), shown once.")]


class WebhookEventOut(msgspec.Struct, kw_only=True):
    """One webhook event and its delivery state (the delivery log)."""

    id: Annotated[uuid.UUID, msgspec.Meta(description="Event id (the receiver's deduplication key).")]
    type: Annotated[str, msgspec.Meta(description="`payment.succeeded` or `refund.succeeded`.")]
    status: Annotated[str, msgspec.Meta(description="pending, delivered, failed or no_endpoint.")]
    attempts: Annotated[int, msgspec.Meta(description="Delivery attempts so far.")]
    last_status_code: Annotated[int | None, msgspec.Meta(description="HTTP status of the last try.")] = None
    last_error: Annotated[str | None, msgspec.Meta(description="Error of the last try.")] = None
    delivered_at: Annotated[datetime | None, msgspec.Meta(description="When it was delivered.")] = None
    resends: Annotated[int, msgspec.Meta(description="How often staff asked to resend it.")]
    created_at: Annotated[datetime, msgspec.Meta(description="When it happened.")]


class PayoutOut(msgspec.Struct, kw_only=True):
    """A daily settlement payout."""

    id: Annotated[uuid.UUID, msgspec.Meta(description="Payout id.")]
    day: Annotated[date, msgspec.Meta(description="Business day settled (Asia/Ho_Chi_Minh).")]
    amount: Dong
    status: Annotated[str, msgspec.Meta(description="nothing, sending, succeeded, failed or unknown.")]
    reference: Annotated[str, msgspec.Meta(description="Our transfer reference.")]
    bank_reference: Annotated[str | None, msgspec.Meta(description="The bank's reference.")] = None
