"""Demo data for ``make run``: a Huế household and the people around it, loaded idempotently.

Each module contributes a seeder; the seeders run in dependency order and return the credentials and ids
a newcomer needs to try the API from /docs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from app.core.db import Database
from app.core.settings import Settings

__all__ = ["DemoSeeder", "seed_demo", "seeders"]

DemoSeeder = Callable[[Database, Settings, dict[str, Any]], Awaitable[None]]
"""Adds a module's demo rows (idempotently) and writes what a newcomer needs into the shared dict."""


def seeders() -> list[DemoSeeder]:
    """Every module's seeder, in dependency order."""
    from app.bills.demo import seed_bills
    from app.complaints.demo import seed_after_payment
    from app.console.demo import seed_console
    from app.identity.bootstrap import seed_identity
    from app.merchants.demo import seed_merchants
    from app.services.demo import seed_dossiers, seed_results, seed_services
    from app.wallet.demo import seed_wallets

    return [
        seed_identity,
        seed_wallets,
        seed_services,
        seed_bills,
        seed_dossiers,
        seed_results,
        seed_merchants,
        seed_after_payment,
        seed_console,
    ]


async def seed_demo(settings: Settings) -> dict[str, Any]:
    if settings.is_production:
        raise RuntimeError("demo data is never loaded into production")
    db = Database(settings)
    credentials: dict[str, Any] = {"docs": f"http://{settings.host}:{settings.port}/docs"}
    try:
        for seed in seeders():
            await seed(db, settings, credentials)
    finally:
        await db.dispose()
    return credentials
