"""Demo data of the public-service module: the national procedure list and the holiday table."""

from __future__ import annotations

import uuid
from typing import Any
from zoneinfo import ZoneInfo

from app.core.db import Database, utcnow
from app.core.security import Caller
from app.core.settings import Settings
from app.services import dossiers
from app.services.catalogue import HOLIDAYS_FILE, NATIONAL_CATALOGUE_FILE, load_json
from app.services.documents import check_file, file_store
from app.services.schemas import ProcedureDetail
from app.services.service import get_procedure, load_catalogue, load_holidays

__all__ = ["seed_dossiers", "seed_results", "seed_services"]


async def seed_services(db: Database, settings: Settings, credentials: dict[str, Any]) -> None:
    """Load the catalogue and the holidays from ``../shared/data`` (idempotent: a second run changes
    nothing, and admins' edits are kept)."""
    catalogue = await load_catalogue(db, load_json(NATIONAL_CATALOGUE_FILE))
    holidays = await load_holidays(db, load_json(HOLIDAYS_FILE))
    credentials["services"] = {
        "procedures_created": catalogue.created,
        "procedures_total": catalogue.created + catalogue.updated + catalogue.unchanged,
        "holiday_years_loaded": holidays.years_loaded,
        "try": [
            "GET /api/v1/services/procedures?q=khai sinh",
            "GET /api/v1/services/procedures/3.000333",
            "GET /api/v1/services/procedures/1.001193/deadline?received_at=2026-02-13T16:30:00%2B07:00",
        ],
    }


HUE = ZoneInfo("Asia/Ho_Chi_Minh")
DEMO_PROCEDURE = "1.001193"
"""The demo dossier's procedure (a commune-level civil-status procedure of the national list)."""
_DEMO_FORM = (
    b"%PDF-1.4\n% Demo application form (to khai) for the Hue-S sandbox\n"
    b"1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


async def seed_dossiers(db: Database, settings: Settings, credentials: dict[str, Any]) -> None:
    """A submitted dossier (``receiving``) of the demo citizen at the demo officer's desk, so the officer can
    accept it; idempotent (nothing is added when the citizen already has a dossier)."""
    citizen = credentials.get("citizen")
    officer = credentials.get("officer")
    if not isinstance(citizen, dict) or not citizen.get("user_id"):
        return
    caller = Caller(
        user_id=uuid.UUID(citizen["user_id"]), session_id=uuid.uuid4(), roles=frozenset({"citizen"})
    )
    desk = officer.get("agency_id") if isinstance(officer, dict) else None
    page = await dossiers.list_mine(db, caller, limit=1, cursor=None)
    if page.items:
        dossier = page.items[0]
    else:
        procedure = await get_procedure_in(db, DEMO_PROCEDURE)
        required = [d.code for d in procedure.documents if d.required]
        store = file_store(settings)
        async with db.transaction() as session:
            draft = await dossiers.create_dossier(
                session, caller, DEMO_PROCEDURE, None, "Hồ sơ mẫu (demo)", receiving_agency=desk
            )
            for number, requirement in enumerate(required):
                checked = check_file(settings, f"{requirement}.pdf", _DEMO_FORM + f"% {number}\n".encode())
                doc = await dossiers.store_document(
                    session, store, caller.user_id, checked, uploaded_by=caller.user_id
                )
                await dossiers.attach_existing(session, caller, draft.id, doc.id, requirement)
            submitted = await dossiers.submit(session, caller, draft.id)
        dossier = submitted
    credentials["dossiers"] = {
        "demo_dossier": {"id": str(dossier.id), "code": dossier.code, "status": dossier.status},
        "try": [
            "GET /api/v1/me/dossiers (as the citizen)",
            "GET /api/v1/officer/dossiers?filter=receiving (as the officer)",
            f"POST /api/v1/officer/dossiers/{dossier.id}/accept (as the officer)",
        ],
    }


async def get_procedure_in(db: Database, code: str) -> ProcedureDetail:
    async with db.read() as session:
        return await get_procedure(session, code)


_DEMO_RESULT = (
    b"%PDF-1.4\n% Demo result (Giay khai sinh, ban sao) for the Hue-S sandbox\n"
    b"1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


async def seed_results(db: Database, settings: Settings, credentials: dict[str, Any]) -> None:
    """A finished dossier of the demo citizen at the demo officer's desk: approved with a signed result,
    downloaded (→ ``done``) and rated. Idempotent: nothing is added once the citizen has rated a dossier."""
    from sqlalchemy import select

    from app.services import results, satisfaction
    from app.services.result_models import DossierRating, SignedResult
    from app.services.result_schemas import RatingIn

    citizen = credentials.get("citizen")
    officer = credentials.get("officer")
    if not (isinstance(citizen, dict) and citizen.get("user_id")) or not (
        isinstance(officer, dict) and officer.get("user_id") and officer.get("agency_id")
    ):
        return
    desk = str(officer["agency_id"])
    me = Caller(user_id=uuid.UUID(citizen["user_id"]), session_id=uuid.uuid4(), roles=frozenset({"citizen"}))
    staff = Caller(
        user_id=uuid.UUID(officer["user_id"]),
        session_id=uuid.uuid4(),
        roles=frozenset({"officer"}),
        agency_id=desk,
    )
    async with db.read() as session:
        rated = await session.scalar(
            select(DossierRating.dossier_id).where(DossierRating.rated_by == me.user_id)
        )
    if rated is None:
        procedure = await get_procedure_in(db, DEMO_PROCEDURE)
        store = file_store(settings)
        async with db.transaction() as session:
            draft = await dossiers.create_dossier(
                session, me, DEMO_PROCEDURE, None, "Hồ sơ mẫu đã có kết quả (demo)", receiving_agency=desk
            )
            for number, requirement in enumerate(d.code for d in procedure.documents if d.required):
                checked = check_file(settings, f"{requirement}.pdf", _DEMO_FORM + f"% {number}\n".encode())
                doc = await dossiers.store_document(
                    session, store, me.user_id, checked, uploaded_by=me.user_id
                )
                await dossiers.attach_existing(session, me, draft.id, doc.id, requirement)
            submitted = await dossiers.submit(session, me, draft.id)
        async with db.transaction() as session:
            await dossiers.accept(session, settings, staff, submitted.id, "Đủ hồ sơ (demo)")
        async with db.transaction() as session:
            await dossiers.process(session, staff, submitted.id, None)
        result = check_file(settings, "giay-khai-sinh.pdf", _DEMO_RESULT)
        async with db.transaction() as session:
            await dossiers.approve(
                session, settings, store, staff, submitted.id, result, "Cấp giấy khai sinh (demo)"
            )
        await results.download_result(db, settings, me, submitted.id)
        scores = {c.code: 2 for c in satisfaction.criteria()}
        scores["trips"] = 1
        async with db.transaction() as session:
            await satisfaction.rate(
                session, me, submitted.id, RatingIn(scores=scores, comment="Nhanh gọn (demo)")
            )
        rated = submitted.id
    async with db.read() as session:
        signed = await session.scalar(select(SignedResult).where(SignedResult.dossier_id == rated))
    today = utcnow().astimezone(HUE).date()
    credentials["results"] = {
        "finished_dossier": str(rated),
        "signed_result": str(signed.id) if signed else None,
        "try": [
            f"GET /api/v1/results/{signed.id if signed else '<id>'} (no sign-in: what the QR code opens)",
            f"GET /api/v1/me/dossiers/{rated}/result (as the citizen: the signed PDF with its QR code)",
            "POST /api/v1/results/verify (multipart file=<that PDF>: valid; change a byte: document_changed)",
            f"GET /api/v1/me/dossiers/{rated}/rating (as the citizen)",
            f"GET /api/v1/officer/statistics/{desk}?from={today.replace(day=1)}&to={today} (as the officer)",
        ],
    }
