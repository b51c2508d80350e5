"""Service statistics of an agency for a period of Huế calendar days, per procedure (issue 9).

Definitions (the period is ``[date_from 00:00, date_to + 1 day 00:00)`` in Asia/Ho_Chi_Minh; a dossier
belongs to the agency holding it now, i.e. the one that finished it after any transfer):
- received: dossiers accepted at intake in the period (``accepted_at``); denied ones were never received;
- submitted online: of those, ``submission_channel == "online"`` (through the app, as opposed to registered
  at the desk);
- paid online: of the received dossiers carrying a fee (``fee_amount > 0``), those whose fee was paid through
  the app (``fee_payment_id``);
- finished: dossiers whose processing ended in the period (``finished_at``: processed, or stopped), withdrawn
  and denied ones excluded; early / on time / late by :func:`app.services.calendar.classify` against the
  statutory due date moved by supplement pauses (never an apology's date), counted over those with a due date;
- average processing time: mean working hours (office hours, working days) from the clock's start to the end
  of processing, less the supplement pauses, over the finished dossiers with a start;
- satisfaction: ratings given in the period; percent = sum of scores / (18 × ratings).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NOT_FOUND, VALIDATION_FAILED
from app.core.security import Caller
from app.core.settings import Settings
from app.services.calendar import Timeliness, classify
from app.services.dossier_models import Dossier
from app.services.models import Agency
from app.services.result_models import DossierRating
from app.services.result_schemas import StatisticsOut, StatisticsRow
from app.services.satisfaction import MAX_SCORE, criteria
from app.services.service import work_calendar
from app.services.workflow import DossierStatus

__all__ = ["MAX_PERIOD_DAYS", "agency_statistics", "ensure_may_read", "to_csv"]

HUE = ZoneInfo("Asia/Ho_Chi_Minh")
MAX_PERIOD_DAYS = 366
_NOT_FINISHED_BY_PROCESSING = (DossierStatus.CANCELLED.value, DossierStatus.DENIED.value)


def ensure_may_read(caller: Caller, agency_code: str) -> None:
    """Admins, and officers of ``agency_code``; anyone else is refused (403 from the guard for citizens,
    404 here for officers of another agency, as if the agency's figures did not exist for them)."""
    if caller.is_admin:
        return
    if caller.has_role("officer") and caller.agency_id == agency_code:
        return
    raise NOT_FOUND("Không tìm thấy số liệu của cơ quan", "No statistics for this agency")


@dataclass
class _Acc:
    received: int = 0
    online: int = 0
    with_fee: int = 0
    paid_online: int = 0
    finished: int = 0
    classes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    hours: list[float] = field(default_factory=list)
    ratings: int = 0
    score: int = 0

    def row(self, procedure: str | None) -> StatisticsRow:
        return StatisticsRow(
            procedure_code=procedure,
            received=self.received,
            submitted_online=self.online,
            submitted_online_share=round(self.online / self.received, 4) if self.received else None,
            with_fee=self.with_fee,
            paid_online=self.paid_online,
            paid_online_share=round(self.paid_online / self.with_fee, 4) if self.with_fee else None,
            finished=self.finished,
            early=self.classes[Timeliness.EARLY.value],
            on_time=self.classes[Timeliness.ON_TIME.value],
            late=self.classes[Timeliness.LATE.value],
            average_processing_hours=round(sum(self.hours) / len(self.hours), 2) if self.hours else None,
            ratings=self.ratings,
            satisfaction_percent=(
                round(100 * self.score / (MAX_SCORE * len(criteria()) * self.ratings), 2)
                if self.ratings
                else None
            ),
        )


def _bounds(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    if date_to < date_from or (date_to - date_from).days >= MAX_PERIOD_DAYS:
        raise VALIDATION_FAILED(
            "Khoảng thời gian không hợp lệ",
            "Invalid period",
            errors=[
                {
                    "field": "date_to",
                    "source": "query",
                    "message": f"date_to must be on or after date_from, at most {MAX_PERIOD_DAYS} days",
                }
            ],
        )
    start = datetime.combine(date_from, time(0), tzinfo=HUE)
    end = datetime.combine(date_to + timedelta(days=1), time(0), tzinfo=HUE)
    return start, end


async def agency_statistics(
    session: AsyncSession,
    settings: Settings,
    agency_code: str,
    date_from: date,
    date_to: date,
    procedure_code: str | None = None,
) -> StatisticsOut:
    """The figures of the module docstring, per procedure and in total."""
    start, end = _bounds(date_from, date_to)
    if await session.get(Agency, agency_code) is None:
        raise NOT_FOUND("Không tìm thấy cơ quan", "No such agency")
    scope = [Dossier.agency_code == agency_code]
    if procedure_code is not None:
        scope.append(Dossier.procedure_code == procedure_code)
    rows = await session.execute(
        select(
            Dossier.procedure_code,
            Dossier.status,
            Dossier.accepted_at,
            Dossier.received_at,
            Dossier.due_at,
            Dossier.finished_at,
            Dossier.submission_channel,
            Dossier.fee_amount,
            Dossier.fee_payment_id,
            Dossier.supplement_requests,
            Dossier.paused_seconds,
        ).where(
            *scope,
            or_(
                and_(Dossier.accepted_at >= start, Dossier.accepted_at < end),
                and_(Dossier.finished_at >= start, Dossier.finished_at < end),
            ),
        )
    )
    calendar = await work_calendar(session, settings)
    per: dict[str, _Acc] = defaultdict(_Acc)
    total = _Acc()
    for d in rows:
        accs = (per[d.procedure_code], total)
        if d.accepted_at is not None and start <= d.accepted_at < end:
            for acc in accs:
                acc.received += 1
                acc.online += d.submission_channel == "online"
                if d.fee_amount:
                    acc.with_fee += 1
                    acc.paid_online += d.fee_payment_id is not None
        if (
            d.finished_at is not None
            and start <= d.finished_at < end
            and d.status not in _NOT_FINISHED_BY_PROCESSING
        ):
            klass = (
                classify(d.due_at, d.finished_at, supplement_requests=d.supplement_requests).value
                if d.due_at is not None
                else None
            )
            hours = None
            if d.received_at is not None:
                worked = calendar.working_time_between(d.received_at, d.finished_at).total_seconds()
                hours = max(0.0, worked - d.paused_seconds) / 3600
            for acc in accs:
                acc.finished += 1
                if klass is not None:
                    acc.classes[klass] += 1
                if hours is not None:
                    acc.hours.append(hours)
    ratings = await session.execute(
        select(DossierRating.procedure_code, DossierRating.total).where(
            DossierRating.agency_code == agency_code,
            DossierRating.created_at >= start,
            DossierRating.created_at < end,
            *([DossierRating.procedure_code == procedure_code] if procedure_code else []),
        )
    )
    for procedure, score in ratings:
        for acc in (per[procedure], total):
            acc.ratings += 1
            acc.score += score
    return StatisticsOut(
        agency_code=agency_code,
        procedure_code=procedure_code,
        date_from=date_from,
        date_to=date_to,
        rows=[per[code].row(code) for code in sorted(per)],
        total=total.row(None),
    )


_COLUMNS = (
    "procedure_code",
    "received",
    "submitted_online",
    "submitted_online_share",
    "with_fee",
    "paid_online",
    "paid_online_share",
    "finished",
    "early",
    "on_time",
    "late",
    "average_processing_hours",
    "ratings",
    "satisfaction_percent",
)


async def province_satisfaction_percent(
    session: AsyncSession, first_day: date, last_day: date
) -> float | None:
    """Satisfaction of every agency over the ratings given from ``first_day`` to ``last_day`` (Huế days): the
    sum of scores over the most they could be (nine criteria scored 2/1/0, DOMAIN.md), as a percent, the
    measure the per-agency statistics use; None without ratings."""
    start, end = _bounds(first_day, last_day)
    count, score = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(DossierRating.total), 0)).where(
                DossierRating.created_at >= start, DossierRating.created_at < end
            )
        )
    ).one()
    if not count:
        return None
    return round(100 * int(score) / (MAX_SCORE * len(criteria()) * int(count)), 2)


def to_csv(stats: StatisticsOut) -> str:
    """One line per procedure and a last ``TOTAL`` line; empty cells for undefined shares (UTF-8)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["agency_code", "date_from", "date_to", *_COLUMNS])
    for row in [*stats.rows, stats.total]:
        values = [getattr(row, c) for c in _COLUMNS]
        values[0] = values[0] or "TOTAL"
        writer.writerow(
            [stats.agency_code, stats.date_from.isoformat(), stats.date_to.isoformat()]
            + ["" if v is None else v for v in values]
        )
    return out.getvalue()
