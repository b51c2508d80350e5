"""Fixtures of the public-service tests: a database with the catalogue and holidays loaded, and tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.core.db import Database
from app.core.settings import Settings
from app.services.catalogue import HOLIDAYS_FILE, NATIONAL_CATALOGUE_FILE, load_json
from app.services.service import load_catalogue, load_holidays
from tests.factories import auto_idempotency_keys, token_with_claims


@pytest.fixture(autouse=True)
def _fresh_idempotency_keys(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each state-changing request gets a fresh Idempotency-Key (a new operation) unless the module sets
    ``EXPLICIT_IDEMPOTENCY_KEYS = True``, where the key's semantics are tested."""
    if not getattr(request.module, "EXPLICIT_IDEMPOTENCY_KEYS", False):
        auto_idempotency_keys(monkeypatch)


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
    """A token stating exactly these claims, for a real signed-in session."""
    return await token_with_claims(client, roles=roles, duties=duties, agency_id=agency)


@pytest.fixture
async def superadmin(client: Any, settings: Settings) -> dict[str, str]:
    return await bearer(client, settings, "admin", duties=("superadmin",))
