"""Fixtures of the public-service tests: a database with the catalogue and holidays loaded, and tokens."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from app.core.db import Database
from app.core.security import Caller, issue_access_token
from app.core.settings import Settings
from app.services.catalogue import HOLIDAYS_FILE, NATIONAL_CATALOGUE_FILE, load_json
from app.services.service import load_catalogue, load_holidays


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def loaded(db: Database) -> Database:
    await load_catalogue(db, load_json(NATIONAL_CATALOGUE_FILE))
    await load_holidays(db, load_json(HOLIDAYS_FILE))
    return db


def bearer(
    settings: Settings, *roles: str, duties: tuple[str, ...] = (), agency: str | None = None
) -> dict[str, str]:
    caller = Caller(
        user_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        roles=frozenset(roles),
        duties=frozenset(duties),
        identity_level=2,
        agency_id=agency,
    )
    token, _ = issue_access_token(settings, caller)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def superadmin(settings: Settings) -> dict[str, str]:
    return bearer(settings, "admin", duties=("superadmin",))
