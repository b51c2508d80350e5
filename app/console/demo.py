"""Demo pointer of the web console: where to open it and who can sign in (the demo officer and admin)."""

from __future__ import annotations

from typing import Any

from app.core.db import Database
from app.core.settings import Settings

__all__ = ["seed_console"]


async def seed_console(db: Database, settings: Settings, credentials: dict[str, Any]) -> None:
    """Adds nothing to the database: the console uses the demo officer's and admin's accounts."""
    base = f"http://{settings.host}:{settings.port}/console/"
    who = {
        key: {"phone": credentials[key]["phone"], "password": credentials[key]["password"]}
        for key in ("officer", "admin")
        if isinstance(credentials.get(key), dict)
    }
    credentials["console"] = {
        "url": base,
        "sign_in_as": who,
        "try": [
            "as the officer: the queue, the demo dossier, accept -> start processing -> approve with a PDF",
            "as the admin: dashboard, users (lock/unlock), dead letters, audit trail and chain verification",
        ],
    }
