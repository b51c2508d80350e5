"""What the treasury remittance needs from dossiers: for a paid dossier fee, the procedure, the agency, the
dossier code and the fee lines (code, kind, amount) the national payment platform carries (DOMAIN.md)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.dossier_models import Dossier
from app.services.models import Procedure

__all__ = ["FeeLineInfo", "FeeRemittanceInfo", "fee_remittance_info"]


@dataclass(frozen=True, slots=True)
class FeeLineInfo:
    code: str
    kind: str
    """``fee`` (phí) or ``charge`` (lệ phí)."""
    amount: int


@dataclass(frozen=True, slots=True)
class FeeRemittanceInfo:
    procedure_code: str
    agency_code: str
    dossier_code: str
    case_code: str
    lines: tuple[FeeLineInfo, ...]
    """The case's charged lines when they add up to what was billed; otherwise one line (the case code,
    kind ``fee``) for the whole amount (a fee set by the officer after processing)."""


async def fee_remittance_info(
    session: AsyncSession, dossier_codes: Collection[str]
) -> dict[str, FeeRemittanceInfo]:
    """The remittance fields of each dossier among ``dossier_codes`` (unknown codes are left out)."""
    if not dossier_codes:
        return {}
    rows = await session.execute(
        select(Dossier, Procedure.fee_schedule)
        .join(Procedure, Procedure.code == Dossier.procedure_code)
        .where(Dossier.code.in_(list(dossier_codes)))
    )
    found: dict[str, FeeRemittanceInfo] = {}
    for dossier, schedule in rows.all():
        case_code = dossier.fee_case or "fee"
        amount = int(dossier.fee_amount or 0)
        lines = _case_lines(schedule, case_code)
        if sum(line.amount for line in lines) != amount or not lines:
            lines = (FeeLineInfo(case_code, "fee", amount),)
        found[dossier.code or ""] = FeeRemittanceInfo(
            procedure_code=dossier.procedure_code,
            agency_code=dossier.agency_code,
            dossier_code=dossier.code or "",
            case_code=case_code,
            lines=lines,
        )
    return found


def _case_lines(schedule: Any, case_code: str) -> tuple[FeeLineInfo, ...]:
    cases = (schedule or {}).get("cases") or []
    for case in cases:
        if case.get("code") == case_code:
            return tuple(
                FeeLineInfo(str(line["code"]), str(line.get("kind") or "fee"), int(line["amount_vnd"]))
                for line in case.get("lines") or []
                if not line.get("optional") and line.get("amount_vnd")
            )
    return ()
