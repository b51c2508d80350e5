"""Demo data of the public-service module: the national procedure list and the holiday table."""

from __future__ import annotations

import uuid
from typing import Any

from app.core.db import Database
from app.core.security import Caller
from app.core.settings import Settings
from app.services import dossiers
from app.services.catalogue import HOLIDAYS_FILE, NATIONAL_CATALOGUE_FILE, load_json
from app.services.documents import check_file, file_store
from app.services.schemas import ProcedureDetail
from app.services.service import get_procedure, load_catalogue, load_holidays

__all__ = ["seed_dossiers", "seed_services"]


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
