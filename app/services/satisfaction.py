"""Satisfaction with a dossier's service: nine criteria scored 2/1/0 and an optional comment, once per
dossier, by its applicant, after the result (``releasing`` or ``done``). The criteria are data
(``data/satisfaction_criteria.json``)."""

from __future__ import annotations

import json
import uuid
from functools import lru_cache
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NOT_FOUND, VALIDATION_FAILED
from app.core.security import Caller
from app.services.dossier_models import Dossier
from app.services.result_errors import ALREADY_RATED, RATING_NOT_OPEN
from app.services.result_models import DossierRating
from app.services.result_schemas import CriterionOut, RatingIn, RatingOut
from app.services.workflow import DossierStatus

__all__ = ["MAX_SCORE", "criteria", "get_rating", "rate"]

DATA = Path(__file__).parent / "data" / "satisfaction_criteria.json"
MAX_SCORE = 2
"""Per criterion: 2 good, 1 acceptable, 0 poor."""


@lru_cache(maxsize=1)
def criteria() -> tuple[CriterionOut, ...]:
    raw = json.loads(DATA.read_text(encoding="utf-8"))["criteria"]
    if len(raw) != 9:
        raise RuntimeError(f"{DATA.name} must list the nine criteria")
    return tuple(CriterionOut(code=c["code"], name_vi=c["name_vi"], name_en=c["name_en"]) for c in raw)


def _out(r: DossierRating) -> RatingOut:
    return RatingOut(
        dossier_id=r.dossier_id,
        scores=dict(r.scores),
        total=r.total,
        max_total=MAX_SCORE * len(criteria()),
        comment=r.comment,
        rated_at=r.created_at,
    )


async def _mine(session: AsyncSession, caller: Caller, dossier_id: uuid.UUID) -> Dossier:
    dossier = await session.get(Dossier, dossier_id)
    if dossier is None or dossier.applicant_id != caller.user_id:
        raise NOT_FOUND("Không tìm thấy hồ sơ", "No such dossier")
    return dossier


async def rate(session: AsyncSession, caller: Caller, dossier_id: uuid.UUID, data: RatingIn) -> RatingOut:
    """Rate the service of one of my dossiers once its result is out; a second rating is refused (409)."""
    dossier = await _mine(session, caller, dossier_id)
    if dossier.status not in (DossierStatus.RELEASING.value, DossierStatus.DONE.value):
        raise RATING_NOT_OPEN(
            "Chỉ đánh giá sau khi có kết quả", "Rate once the result is out", status=dossier.status
        )
    codes = [c.code for c in criteria()]
    if set(data.scores) != set(codes):
        raise VALIDATION_FAILED(
            "Cần chấm đủ chín tiêu chí",
            "Score each of the nine criteria",
            errors=[
                {
                    "field": "scores",
                    "source": "body",
                    "message": f"expected exactly the criteria {codes}",
                }
            ],
        )
    if (
        await session.scalar(select(DossierRating.id).where(DossierRating.dossier_id == dossier.id))
        is not None
    ):
        raise ALREADY_RATED("Hồ sơ đã được đánh giá", "Already rated")
    rating = DossierRating(
        dossier_id=dossier.id,
        agency_code=dossier.agency_code,
        procedure_code=dossier.procedure_code,
        scores={code: data.scores[code] for code in codes},
        total=sum(data.scores.values()),
        comment=data.comment,
        rated_by=caller.user_id,
    )
    session.add(rating)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise ALREADY_RATED("Hồ sơ đã được đánh giá", "Already rated") from None
    return _out(rating)


async def get_rating(session: AsyncSession, caller: Caller, dossier_id: uuid.UUID) -> RatingOut:
    dossier = await _mine(session, caller, dossier_id)
    rating = await session.scalar(select(DossierRating).where(DossierRating.dossier_id == dossier.id))
    if rating is None:
        raise NOT_FOUND("Hồ sơ chưa được đánh giá", "Not rated yet")
    return _out(rating)
