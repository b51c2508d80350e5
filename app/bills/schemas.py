"""What the bills API reads and writes (msgspec structs at the edge)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "AmountRule",
    "BillDetail",
    "BillGroup",
    "BillInbox",
    "BillItem",
    "BillLookup",
    "BillerAdmin",
    "BillerIn",
    "BillerPublic",
    "BillerSummary",
    "Category",
    "ConnectorConfig",
    "CustomerInput",
    "HttpConnector",
    "LookupBill",
    "Presentment",
    "SandboxConnector",
    "SaveCodeIn",
    "SavedCode",
    "SettlementAccount",
]

Category = Literal[
    "electricity",
    "water",
    "sanitation_fee",
    "tuition",
    "telecom",
    "hospital_fee",
    "insurance",
    "loan_repayment",
    "public_service_fee",
    "other",
]
Presentment = Literal["fetch", "batch", "adhoc"]
AmountRule = Literal["exact", "at_least", "partial_allowed"]
BillStatus = Literal["unpaid", "pending", "paid", "cancelled", "refunded", "expired"]

Code = Annotated[str, Meta(pattern=r"^[A-Z0-9_]{2,32}$", description="Biller code, e.g. `EVN_CPC_HUE`.")]
Money = Annotated[int, Meta(description="Amount in đồng (integer).")]


class CustomerInput(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How a biller identifies a customer, and how the app checks the code before asking the biller."""

    label_vi: Annotated[str, Meta(min_length=1, max_length=80, description="Field label in Vietnamese.")]
    label_en: Annotated[str, Meta(min_length=1, max_length=80, description="Field label in English.")]
    pattern: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=200,
            description="Regular expression the whole (normalised) code must match.",
        ),
    ]
    min_length: Annotated[int, Meta(ge=1, le=32, description="Shortest valid code.")]
    max_length: Annotated[int, Meta(ge=1, le=32, description="Longest valid code.")]
    example: Annotated[
        str, Meta(min_length=1, max_length=32, description="A valid code, shown as placeholder.")
    ]
    uppercase: bool = True
    """Letters are upper-cased and spaces removed before checking (lenient with what the user typed)."""
    hint_vi: (
        Annotated[str, Meta(max_length=300, description="Where to find the code (Vietnamese).")] | None
    ) = None
    hint_en: Annotated[str, Meta(max_length=300, description="Where to find the code (English).")] | None = (
        None
    )


class SettlementAccount(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The biller's bank account that settlements are paid to."""

    bank_bin: Annotated[str, Meta(pattern=r"^[0-9]{6}$", description="6-digit NAPAS bank BIN.")]
    account_number: Annotated[str, Meta(pattern=r"^[0-9]{6,19}$", description="Account number.")]
    account_name: Annotated[str, Meta(min_length=1, max_length=200, description="Account holder's name.")]


class HttpConnector(msgspec.Struct, tag="http", tag_field="kind", forbid_unknown_fields=True, kw_only=True):
    """A biller reached over HTTP with the platform's biller contract (see ``app/bills/connectors.py``)."""

    base_url: Annotated[
        str, Meta(pattern=r"^https?://", max_length=300, description="Root URL of the biller.")
    ]
    fetch_path: Annotated[str, Meta(max_length=200, description="GET; `{customer_code}` is substituted.")] = (
        "/customers/{customer_code}/bills"
    )
    confirm_path: Annotated[str, Meta(max_length=200, description="POST of a payment confirmation.")] = (
        "/payments"
    )
    cancel_path: Annotated[str, Meta(max_length=200, description="POST; `{reference}` is substituted.")] = (
        "/payments/{reference}/cancel"
    )
    auth_header: Annotated[str, Meta(max_length=64, description="Header carrying the credential.")] | None = (
        None
    )
    auth_secret: (
        Annotated[
            str,
            Meta(
                pattern=r"^[A-Z0-9_]{1,64}$",
                description="Name of the secret, read from environment variable `BILLER_SECRET_<NAME>`.",
            ),
        ]
        | None
    ) = None
    timeout_seconds: Annotated[float, Meta(gt=0, le=60, description="Per attempt.")] = 5.0
    retries: Annotated[int, Meta(ge=0, le=5, description="Extra attempts after a timeout or 5xx.")] = 2
    backoff_seconds: Annotated[float, Meta(ge=0, le=10, description="First pause between attempts.")] = 0.5


class SandboxConnector(
    msgspec.Struct, tag="sandbox", tag_field="kind", forbid_unknown_fields=True, kw_only=True
):
    """A simulated biller for development (refused in production): bills derived from the customer code."""

    profile: Literal["electricity", "water", "sanitation", "tuition"]
    """Which kind of household bill the sandbox presents."""


ConnectorConfig = HttpConnector | SandboxConnector


class BillerIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A biller as an administrator declares it."""

    name: Annotated[str, Meta(min_length=1, max_length=200, description="Display name.")]
    category: Category
    """Kind of bill; decides whether payments count towards the monthly wallet limit."""
    presentment: Presentment
    """`fetch`: bills asked from the biller by customer code; `batch`: monthly files; `adhoc`: any amount."""
    amount_rule: AmountRule
    """`exact`: the bill's amount; `at_least`: that amount or more; `partial_allowed`: up to the amount."""
    customer_input: CustomerInput
    """How customers are identified and their codes checked."""
    settlement: SettlementAccount
    """Where settlements are paid."""
    description: Annotated[str, Meta(max_length=2000, description="Shown to citizens.")] | None = None
    connector: ConnectorConfig | None = None
    """Required for `fetch` billers; optional otherwise (payment confirmations)."""
    limit_exempt: bool | None = None
    """Outside the 100,000,000 đồng monthly limit. Default: by category; only exempt categories may be."""
    payable_account_ref: (
        Annotated[str, Meta(max_length=64, description="Ledger account reference; default from the code.")]
        | None
    ) = None
    agency_code: (
        Annotated[
            str, Meta(max_length=32, description="Agency of a public-service fee biller (required there).")
        ]
        | None
    ) = None
    active: bool = True
    """Inactive billers are hidden from citizens and accept no new bills."""


class BillerSummary(msgspec.Struct, kw_only=True):
    """A biller as shown next to a bill."""

    code: str
    """Biller code."""
    name: str
    """Display name."""
    category: Category
    """Kind of bill."""


class BillerPublic(msgspec.Struct, kw_only=True):
    """A biller as a citizen sees it in the catalogue."""

    code: str
    """Biller code: use it to look up bills."""
    name: str
    """Display name."""
    description: str | None
    """What the biller collects."""
    category: Category
    """Kind of bill."""
    presentment: Presentment
    """`fetch`/`batch`: look up bills by customer code; `adhoc`: the payer enters an amount."""
    amount_rule: AmountRule
    """What amount a payment may carry."""
    customer_input: CustomerInput
    """The code field to show: label, pattern, example, where to find it."""
    limit_exempt: bool
    """Payments to this biller do not count towards the wallet's monthly limit."""


class BillerAdmin(msgspec.Struct, kw_only=True):
    """A biller with everything the administrator declared."""

    id: str
    """Opaque id."""
    code: str
    """Biller code."""
    name: str
    """Display name."""
    description: str | None
    """Shown to citizens."""
    category: Category
    """Kind of bill."""
    presentment: Presentment
    """How bills arrive."""
    amount_rule: AmountRule
    """What amount a payment may carry."""
    customer_input: CustomerInput
    """How customers are identified."""
    limit_exempt: bool
    """Outside the monthly wallet limit."""
    settlement: SettlementAccount
    """Where settlements are paid."""
    connector: ConnectorConfig | None
    """How the biller is reached."""
    payable_account_ref: str
    """Ledger account credited by payments."""
    agency_code: str | None
    """Agency of a public-service fee biller."""
    active: bool
    """Visible to citizens."""
    created_at: datetime
    """When declared."""
    updated_at: datetime
    """Last change."""


class LookupBill(msgspec.Struct, kw_only=True):
    """An unpaid bill found by customer code: only what is needed to pay it."""

    id: str
    """Bill id, to pay it."""
    period: str
    """Billing period, e.g. `2025-06`."""
    amount: Money
    due_date: date | None
    """Last day to pay (Asia/Ho_Chi_Minh)."""


class BillLookup(msgspec.Struct, kw_only=True):
    """The unpaid bills of one customer code of one biller."""

    biller: BillerSummary
    """The biller."""
    customer_code: str
    """The code, normalised."""
    customer_name_masked: str | None
    """The customer's name with most letters hidden, to check the code is the right household."""
    amount_rule: AmountRule
    """What amount a payment may carry."""
    bills: list[LookupBill]
    """Unpaid bills, oldest due first; empty when nothing is due."""
    total: Money
    """Sum of the bills."""


class SaveCodeIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A nickname for a saved customer code."""

    nickname: Annotated[
        str, Meta(min_length=1, max_length=60, description='What the citizen calls it, e.g. "Nhà bố mẹ".')
    ]


class SavedCode(msgspec.Struct, kw_only=True):
    """A customer code the citizen keeps, with its unpaid total."""

    id: str
    """Opaque id."""
    biller: BillerSummary
    """The biller."""
    customer_code: str
    """The code."""
    nickname: str
    """The citizen's name for it."""
    unpaid_count: int
    """Unpaid bills under this code."""
    unpaid_total: Money
    created_at: datetime
    """When saved."""


class BillItem(msgspec.Struct, kw_only=True):
    """A bill in the inbox."""

    id: str
    """Bill id."""
    biller: BillerSummary
    """Who asks for the money."""
    customer_code: str
    """The household's (or dossier's) code."""
    nickname: str | None
    """The citizen's nickname of the code, if saved."""
    period: str
    """Billing period."""
    amount: Money
    due_date: date | None
    """Last day to pay (Asia/Ho_Chi_Minh)."""
    status: BillStatus
    """`unpaid`, `pending` (payment in progress), `paid`, `cancelled`, `refunded`, `expired`."""
    customer_name: str | None
    """Masked for household bills; in full for the citizen's own bills (dossier fees)."""
    description: str | None
    """What the bill is for."""
    paid_at: datetime | None
    """When it was paid."""


class BillGroup(msgspec.Struct, kw_only=True):
    """A section of the inbox with its count and total."""

    count: int
    """Number of bills."""
    total: Money
    items: list[BillItem]
    """The bills, soonest due first (paid: latest first)."""


class BillInbox(msgspec.Struct, kw_only=True):
    """All the bills a citizen should know about, grouped the way the app shows them."""

    as_of: date
    """The day (Asia/Ho_Chi_Minh) against which due dates were judged."""
    overdue: BillGroup
    """Unpaid and past the due date."""
    due_soon: BillGroup
    """Unpaid and due within `due_soon_days` (today included)."""
    upcoming: BillGroup
    """Unpaid, due later (or without a due date)."""
    pending: BillGroup
    """Payment in progress."""
    paid: BillGroup
    """Paid in the last 90 days (at most 50, latest first)."""
    unpaid_count: int
    """overdue + due_soon + upcoming."""
    unpaid_total: Money


class BillDetail(msgspec.Struct, kw_only=True):
    """One bill with what the app needs to pay it."""

    id: str
    """Bill id."""
    biller: BillerSummary
    """Who asks for the money."""
    customer_code: str
    """The household's (or dossier's) code."""
    nickname: str | None
    """The citizen's nickname of the code, if saved."""
    external_id: str
    """The biller's reference of the bill."""
    period: str
    """Billing period."""
    amount: Money
    due_date: date | None
    """Last day to pay (Asia/Ho_Chi_Minh)."""
    status: BillStatus
    """Current state."""
    customer_name: str | None
    """Masked for household bills; in full for the citizen's own bills."""
    description: str | None
    """What the bill is for."""
    amount_rule: AmountRule
    """What amount a payment may carry."""
    limit_exempt: bool
    """Paying it does not count towards the wallet's monthly limit."""
    payable: bool
    """Can be paid now (unpaid)."""
    overdue: bool
    """Past its due date and unpaid."""
    paid_at: datetime | None
    """When it was paid."""
    created_at: datetime
    """When the bill reached the app."""
