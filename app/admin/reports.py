"""Reports for finance and the province: totals per dimension (day or month), CSV, headline figures, charts.

Totals come from the ledger and the bills it paid:
- ``kind``: journal entries by kind (top-up, transfer, bill payment, ...), the amount moved by each entry
  (the sum of its credits);
- ``category``, ``biller``, ``agency``: bill items paid in the period (refunded ones left out), by the
  biller's category, the biller, and the agency a biller collects for (``billers.agency_code``);
- ``merchant``: credits to ledger accounts of type ``merchant_payable``, by owner (the merchant): empty
  until the merchants module opens merchant accounts, then filled with no change here.

Headline figures of a month: wallet accounts, active acceptance points (the merchants module's count of
stores of approved merchants), bills paid by category, dossiers by status, finished dossiers early / on
time / late, the share of the month's bills paid online, and citizen satisfaction (the services module's
province-wide percent). Charts are SVG drawn here (no plotting library): bars with labels and values.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from html import escape
from typing import Any

from sqlalchemy import case, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.bills.models import Bill, Biller, BillPayment, BillPaymentItem
from app.core.scheduler import LOCAL_TZ
from app.merchants.figures import active_acceptance_points
from app.services.dossier_models import Dossier
from app.services.statistics import province_satisfaction_percent
from app.wallet.ledger import AccountType
from app.wallet.models import LedgerAccount, LedgerEntry, LedgerPosting

__all__ = [
    "DIMENSIONS",
    "Headline",
    "TotalRow",
    "bar_chart_svg",
    "headline",
    "period_bounds",
    "totals",
    "totals_csv",
]

DIMENSIONS = ("kind", "category", "biller", "agency", "merchant")


def period_bounds(period: str, day: date) -> tuple[date, date, datetime, datetime]:
    """First and last local day of the period (``day`` or ``month`` containing ``day``) and its UTC bounds."""
    if period == "month":
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
    else:
        first, following = day, day + timedelta(days=1)
    start = datetime.combine(first, time(), tzinfo=LOCAL_TZ).astimezone(UTC)
    end = datetime.combine(following, time(), tzinfo=LOCAL_TZ).astimezone(UTC)
    return first, following - timedelta(days=1), start, end


@dataclass(frozen=True, slots=True)
class TotalRow:
    key: str
    label: str
    count: int
    amount: int


async def totals(session: AsyncSession, dimension: str, start: datetime, end: datetime) -> list[TotalRow]:
    """Totals of the period along ``dimension`` (see the module docstring), largest amount first."""
    rows: list[TotalRow] = []
    if dimension == "kind":
        moved = (
            select(LedgerEntry.kind, func.count(distinct(LedgerEntry.id)), func.sum(LedgerPosting.amount))
            .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
            .where(LedgerEntry.created_at >= start, LedgerEntry.created_at < end, LedgerPosting.amount > 0)
            .group_by(LedgerEntry.kind)
        )
        rows = [TotalRow(k, k, int(n), int(a or 0)) for k, n, a in await session.execute(moved)]
    elif dimension in ("category", "biller", "agency"):
        key_column: Any = {
            "category": Biller.category,
            "biller": Biller.code,
            "agency": func.coalesce(Biller.agency_code, ""),
        }[dimension]
        label_column: Any = func.max(Biller.name) if dimension == "biller" else func.max(key_column)
        query = (
            select(key_column, label_column, func.count(BillPaymentItem.id), func.sum(BillPaymentItem.amount))
            .join(BillPayment, BillPayment.id == BillPaymentItem.payment_id)
            .join(Biller, Biller.id == BillPaymentItem.biller_id)
            .where(
                BillPayment.paid_at >= start, BillPayment.paid_at < end, BillPaymentItem.status != "refunded"
            )
            .group_by(key_column)
        )
        rows = [
            TotalRow(str(k), str(label) if label else "(none)", int(n), int(a or 0))
            for k, label, n, a in await session.execute(query)
        ]
    elif dimension == "merchant":
        query = (
            select(LedgerAccount.owner_id, func.count(LedgerPosting.id), func.sum(LedgerPosting.amount))
            .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
            .where(
                LedgerAccount.type == AccountType.MERCHANT_PAYABLE.value,
                LedgerPosting.amount > 0,
                LedgerPosting.created_at >= start,
                LedgerPosting.created_at < end,
            )
            .group_by(LedgerAccount.owner_id)
        )
        rows = [TotalRow(str(o), str(o), int(n), int(a or 0)) for o, n, a in await session.execute(query)]
    else:  # pragma: no cover - the route validates the dimension
        raise ValueError(dimension)
    return sorted(rows, key=lambda r: (-r.amount, r.key))


def totals_csv(dimension: str, first: date, last: date, rows: list[TotalRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["from", "to", "dimension", "key", "label", "count", "amount_vnd"])
    for row in rows:
        writer.writerow(
            [first.isoformat(), last.isoformat(), dimension, row.key, row.label, row.count, row.amount]
        )
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class Headline:
    first_day: date
    last_day: date
    wallet_accounts: int
    active_acceptance_points: int
    bills_paid_by_category: dict[str, int]
    dossiers_by_status: dict[str, int]
    timeliness: dict[str, int]
    share_paid_online: float | None
    satisfaction: float | None


async def headline(session: AsyncSession, month: date) -> Headline:
    """The province's figures for the month containing ``month``."""
    first, last, start, end = period_bounds("month", month)
    wallets = int(
        await session.scalar(
            select(func.count())
            .select_from(LedgerAccount)
            .where(LedgerAccount.type == AccountType.CITIZEN_WALLET.value)
        )
        or 0
    )
    by_category = {
        str(category): int(n)
        for category, n in await session.execute(
            select(Biller.category, func.count(BillPaymentItem.id))
            .join(BillPayment, BillPayment.id == BillPaymentItem.payment_id)
            .join(Biller, Biller.id == BillPaymentItem.biller_id)
            .where(
                BillPayment.paid_at >= start, BillPayment.paid_at < end, BillPaymentItem.status != "refunded"
            )
            .group_by(Biller.category)
        )
    }
    by_status = {
        str(status): int(n)
        for status, n in await session.execute(select(Dossier.status, func.count()).group_by(Dossier.status))
    }
    timeliness = {"early": 0, "on_time": 0, "late": 0}
    finished = await session.execute(
        select(Dossier.finished_at, Dossier.due_at).where(
            Dossier.finished_at >= start, Dossier.finished_at < end, Dossier.due_at.is_not(None)
        )
    )
    for finished_at, due_at in finished:
        if finished_at is None or due_at is None:  # pragma: no cover - filtered above
            continue
        if finished_at > due_at:
            timeliness["late"] += 1
        elif finished_at.astimezone(LOCAL_TZ).date() < due_at.astimezone(LOCAL_TZ).date():
            timeliness["early"] += 1
        else:
            timeliness["on_time"] += 1
    due = await session.execute(
        select(func.count(), func.sum(case((Bill.paid_at.is_not(None), 1), else_=0)))
        .select_from(Bill)
        .where(Bill.due_date >= first, Bill.due_date <= last, Bill.status != "cancelled")
    )
    due_count, paid_count = due.one()
    share = round(int(paid_count or 0) / int(due_count), 4) if due_count else None
    return Headline(
        first_day=first,
        last_day=last,
        wallet_accounts=wallets,
        active_acceptance_points=await active_acceptance_points(session),
        bills_paid_by_category=by_category,
        dossiers_by_status=by_status,
        timeliness=timeliness,
        share_paid_online=share,
        satisfaction=await province_satisfaction_percent(session, first, last),
    )


def bar_chart_svg(title: str, bars: list[tuple[str, int | float]], *, unit: str = "") -> str:
    """A horizontal bar chart as a standalone SVG document (labels left, values right)."""
    row, left, width, top = 28, 190, 360, 46
    height = top + row * max(len(bars), 1) + 16
    peak = max((float(v) for _, v in bars), default=0.0) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 120}" height="{height}" '
        f'viewBox="0 0 {left + width + 120} {height}" font-family="sans-serif" font-size="13">',
        f"<title>{escape(title)}</title>",
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text x="12" y="26" font-size="16" font-weight="bold" fill="#1f2937">{escape(title)}</text>',
    ]
    if not bars:
        parts.append(f'<text x="12" y="{top + 18}" fill="#6b7280">(no data)</text>')
    for i, (label, value) in enumerate(bars):
        y = top + i * row
        length = max(int(width * float(value) / peak), 1 if value else 0)
        shown = f"{value:,}".replace(",", ".") if isinstance(value, int) else f"{value:.2f}"
        parts += [
            f'<text x="{left - 8}" y="{y + 17}" text-anchor="end" fill="#374151">{escape(label[:28])}</text>',
            f'<rect x="{left}" y="{y + 4}" width="{length}" height="{row - 10}" rx="3" fill="#2563eb"/>',
            f'<text x="{left + length + 6}" y="{y + 17}" fill="#111827">{escape(shown + unit)}</text>',
        ]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
