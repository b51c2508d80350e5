"""Fixtures of the public-service tests: a database with the catalogue and holidays loaded, and tokens."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.core.db import Database
from app.core.security import Caller, issue_access_token
from app.core.settings import Settings
from app.services.catalogue import HOLIDAYS_FILE, NATIONAL_CATALOGUE_FILE, load_json
from app.services.service import load_catalogue, load_holidays
from tests.factories import make_user


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


async def bearer(
    client: Any, settings: Settings, *roles: str, duties: tuple[str, ...] = (), agency: str | None = None
) -> dict[str, str]:
    """A token stating exactly these claims, for a real signed-in session (identity refuses tokens of
    sessions it does not know)."""
    person = await make_user(client, pin=None)
    caller = Caller(
        user_id=person.user_id,
        session_id=person.session_id or uuid.uuid4(),
        roles=frozenset(roles),
        duties=frozenset(duties),
        identity_level=2,
        agency_id=agency,
    )
    token, _ = issue_access_token(settings, caller)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def superadmin(client: Any, settings: Settings) -> dict[str, str]:
    return await bearer(client, settings, "admin", duties=("superadmin",))
