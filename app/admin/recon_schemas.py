"""What the admin API takes and sends about reconciliation and reports."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar.datastructures import UploadFile
from litestar.params import KwargDefinition

from app.admin.models import ReconException, ReconRun
from app.admin.reports import Headline, TotalRow

__all__ = [
    "CorrectionIn",
    "ExceptionPage",
    "HeadlineOut",
    "NoteIn",
    "PostingIn",
    "ReconExceptionOut",
    "ReconRunOut",
    "RunUpload",
    "TotalRowOut",
    "TotalsOut",
]


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


ExceptionStatus = Literal["open", "proposed", "resolved", "closed"]
ExceptionKind = Literal[
    "missing_in_ledger", "missing_at_gateway", "amount_mismatch", "duplicate", "status_mismatch"
]


@dataclass
class RunUpload:
    """Multipart form: the day, and any of the three reports (a report left out is fetched, or skipped)."""

    day: Annotated[str, KwargDefinition(description="The business day (Asia/Ho_Chi_Minh), YYYY-MM-DD.")]
    gateway_report: Annotated[
        UploadFile | None,
        KwargDefinition(
            description="The gateway's balance-transaction CSV export: id, amount, fee, net, currency, type, "
            "source, created, status, reporting_category. Left out: fetched through the card gateway."
        ),
    ] = None
    biller_confirmations: Annotated[
        UploadFile | None,
        KwargDefinition(
            description="CSV: biller, reference, amount, status (confirmed/refused/reversed), "
            "biller_reference. Left out: the confirmations the billers' connectors recorded."
        ),
    ] = None
    bank_statement: Annotated[
        UploadFile | None,
        KwargDefinition(
            description="The guarantee account's statement, CSV: booked_on, reference, "
            "amount (positive = in), description, balance (running). "
            "Left out: fetched from the bank if configured."
        ),
    ] = None


class ReconRunOut(msgspec.Struct, kw_only=True):
    """One reconciliation of one day."""

    id: Annotated[int, _doc("Run id")]
    day: Annotated[date, _doc("The business day reconciled (Asia/Ho_Chi_Minh)")]
    trigger: Annotated[Literal["scheduled", "on_demand"], _doc("The nightly job, or an admin's request")]
    started_by: Annotated[uuid.UUID | None, _doc("The admin who asked for it (null: the nightly job)")] = None
    started_at: Annotated[datetime, _doc("When it started (UTC)")]
    finished_at: Annotated[datetime | None, _doc("When it finished (UTC)")] = None
    status: Annotated[
        Literal["running", "balanced", "attention"],
        _doc(
            "balanced: everything matched and every check passed; "
            "attention: open exceptions or a failed check"
        ),
    ]
    counts: Annotated[
        dict[str, Any],
        _doc("Lines per source (gateway, biller, bank) and outcome (matched or the exception kind)"),
    ]
    checks: Annotated[
        dict[str, Any],
        _doc(
            "What the checks found: sources used, books (postings sum to zero, balances equal "
            "postings), bank (statement vs mirror account, items in transit, wallet coverage), seal (the "
            "day's journal digest: day_open, sealed, intact or changed), open_exceptions"
        ),
    ]

    @classmethod
    def of(cls, run: ReconRun) -> ReconRunOut:
        return cls(
            id=run.id,
            day=run.day,
            trigger=run.trigger,  # type: ignore[arg-type]
            started_by=run.started_by,
            started_at=run.started_at,
            finished_at=run.finished_at,
            status=run.status,  # type: ignore[arg-type]
            counts=dict(run.counts),
            checks=dict(run.checks),
        )


class ReconExceptionOut(msgspec.Struct, kw_only=True):
    """A line that did not match, and how it is being settled."""

    id: Annotated[int, _doc("Exception id")]
    run_id: Annotated[int, _doc("The run that found it")]
    day: Annotated[date, _doc("The business day")]
    source: Annotated[Literal["gateway", "biller", "bank"], _doc("Which outside report")]
    kind: Annotated[
        ExceptionKind,
        _doc("What is wrong; missing_at_gateway means missing at the other side (the gateway or the biller)"),
    ]
    key: Annotated[str, _doc("The line's id on its side (gateway txn id, our reference)")]
    reference: Annotated[str | None, _doc("Our reference (the journal entry's reference)")] = None
    party: Annotated[str | None, _doc("The biller's code, for biller lines")] = None
    ledger_gross: Annotated[int | None, _doc("Gross amount in the ledger (đồng)")] = None
    ledger_fee: Annotated[int | None, _doc("Gateway fee in the ledger (đồng)")] = None
    ledger_net: Annotated[int | None, _doc("Net amount in the ledger (đồng)")] = None
    external_gross: Annotated[int | None, _doc("Gross amount on the outside report (đồng)")] = None
    external_fee: Annotated[int | None, _doc("Fee on the outside report (đồng)")] = None
    external_net: Annotated[int | None, _doc("Net amount on the outside report (đồng)")] = None
    ledger_status: Annotated[str | None, _doc("booked / reversed (gateway), paid / refunded (biller)")] = None
    external_status: Annotated[str | None, _doc("The status on the outside report")] = None
    status: Annotated[
        ExceptionStatus, _doc("open, proposed (a correction awaits approval), resolved, closed")
    ]
    proposal: Annotated[
        dict[str, Any] | None,
        _doc("The proposed correcting entry: description and postings (account_id, amount)"),
    ] = None
    proposed_by: Annotated[uuid.UUID | None, _doc("The finance admin who proposed the correction")] = None
    proposed_at: Annotated[datetime | None, _doc("When (UTC)")] = None
    decided_by: Annotated[uuid.UUID | None, _doc("Who approved, rejected or closed it")] = None
    decided_at: Annotated[datetime | None, _doc("When (UTC)")] = None
    entry_id: Annotated[uuid.UUID | None, _doc("The correcting journal entry, once approved")] = None
    note: Annotated[str | None, _doc("Why it was closed or the proposal rejected")] = None
    created_at: Annotated[datetime, _doc("When it was found (UTC)")]

    @classmethod
    def of(cls, row: ReconException) -> ReconExceptionOut:
        return cls(
            id=row.id,
            run_id=row.run_id,
            day=row.day,
            source=row.source,  # type: ignore[arg-type]
            kind=row.kind,  # type: ignore[arg-type]
            key=row.key,
            reference=row.reference,
            party=row.party,
            ledger_gross=row.ledger_gross,
            ledger_fee=row.ledger_fee,
            ledger_net=row.ledger_net,
            external_gross=row.external_gross,
            external_fee=row.external_fee,
            external_net=row.external_net,
            ledger_status=row.ledger_status,
            external_status=row.external_status,
            status=row.status,  # type: ignore[arg-type]
            proposal=dict(row.proposal) if row.proposal else None,
            proposed_by=row.proposed_by,
            proposed_at=row.proposed_at,
            decided_by=row.decided_by,
            decided_at=row.decided_at,
            entry_id=row.entry_id,
            note=row.note,
            created_at=row.created_at,
        )


class ExceptionPage(msgspec.Struct, kw_only=True):
    """A page of exceptions, newest first."""

    items: Annotated[list[ReconExceptionOut], _doc("Exceptions on this page")]
    next_cursor: Annotated[int | None, _doc("Pass as `cursor` for the next page; null on the last page")] = (
        None
    )


class PostingIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One line of a correcting entry."""

    account: Annotated[
        str,
        _doc(
            "A system account (suspense, gateway_clearing, gateway_fees, guarantee_bank, fee_revenue) or a "
            "ledger account id"
        ),
        msgspec.Meta(min_length=1, max_length=64),
    ]
    amount: Annotated[int, _doc("Signed đồng: positive credits the account, negative debits it")]


class CorrectionIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A correcting journal entry proposed for an exception: its postings must sum to zero."""

    description: Annotated[str, _doc("Why (kept on the entry)"), msgspec.Meta(min_length=1, max_length=255)]
    postings: Annotated[list[PostingIn], _doc("2 to 64 postings summing to zero"), msgspec.Meta(min_length=2)]


class NoteIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A note explaining a decision."""

    note: Annotated[
        str, _doc("The explanation, kept with the exception"), msgspec.Meta(min_length=1, max_length=2000)
    ]


class TotalRowOut(msgspec.Struct, kw_only=True):
    """One line of totals."""

    key: Annotated[str, _doc("The dimension's value (kind, category, biller code, agency code, merchant id)")]
    label: Annotated[str, _doc("A readable name")]
    count: Annotated[int, _doc("Entries / bill items / payments counted")]
    amount: Annotated[int, _doc("Total in đồng")]

    @classmethod
    def of(cls, row: TotalRow) -> TotalRowOut:
        return cls(key=row.key, label=row.label, count=row.count, amount=row.amount)


class TotalsOut(msgspec.Struct, kw_only=True):
    """Totals of a day or a month along one dimension."""

    period: Annotated[Literal["day", "month"], _doc("day or month")]
    first_day: Annotated[date, _doc("First local day of the period")]
    last_day: Annotated[date, _doc("Last local day of the period")]
    dimension: Annotated[str, _doc("kind, category, biller, agency or merchant")]
    rows: Annotated[list[TotalRowOut], _doc("Largest amount first")]
    total: Annotated[int, _doc("Sum of the rows (đồng)")]


class HeadlineOut(msgspec.Struct, kw_only=True):
    """The province's headline figures of a month."""

    first_day: Annotated[date, _doc("First day of the month")]
    last_day: Annotated[date, _doc("Last day of the month")]
    wallet_accounts: Annotated[int, _doc("Citizen wallets opened (all time)")]
    active_acceptance_points: Annotated[int, _doc("Merchant acceptance points paid in the last 30 days")]
    bills_paid_by_category: Annotated[
        dict[str, int], _doc("Bills paid through the app this month, by category")
    ]
    dossiers_by_status: Annotated[dict[str, int], _doc("Dossiers by current status")]
    timeliness: Annotated[
        dict[str, int], _doc("Dossiers finished this month: early (before the due day), on_time, late")
    ]
    share_paid_online: Annotated[
        float | None, _doc("Share of the bills due this month that were paid through the app (0-1)")
    ] = None
    satisfaction: Annotated[
        float | None,
        _doc("Satisfaction of the month in percent: scores over the maximum (null without ratings)"),
    ] = None

    @classmethod
    def of(cls, h: Headline) -> HeadlineOut:
        return cls(
            first_day=h.first_day,
            last_day=h.last_day,
            wallet_accounts=h.wallet_accounts,
            active_acceptance_points=h.active_acceptance_points,
            bills_paid_by_category=h.bills_paid_by_category,
            dossiers_by_status=h.dossiers_by_status,
            timeliness=h.timeliness,
            share_paid_online=h.share_paid_online,
            satisfaction=h.satisfaction,
        )
