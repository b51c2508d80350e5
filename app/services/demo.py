"""Demo data of the public-service module: the national procedure list and the holiday table."""

from __future__ import annotations

from typing import Any

from app.core.db import Database
from app.core.settings import Settings
from app.services.catalogue import HOLIDAYS_FILE, NATIONAL_CATALOGUE_FILE, load_json
from app.services.service import load_catalogue, load_holidays

__all__ = ["seed_services"]


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
