"""Data rights (Decree 13/2023): other modules plug into the export of a person's data and into account
closure without identity importing them (dependencies point one way: wallet -> identity).

- :func:`register_personal_data_exporter`: ``async fn(session, user_id) -> dict`` returning JSON-ready
  sections (``{"wallet": {...}}``) merged into the citizen's download.
- :func:`register_closure_check`: ``async fn(session, user_id) -> ClosureRefusal | None``; any refusal stops
  the closure (a wallet balance not zero, a dossier in progress).
- :func:`register_closure_hook`: ``async fn(session, user_id) -> None`` run in the closing transaction, to
  erase or detach what a module holds about the person.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

__all__ = [
    "ClosureCheck",
    "ClosureHook",
    "ClosureRefusal",
    "PersonalDataExporter",
    "closure_checks",
    "closure_hooks",
    "personal_data_exporters",
    "register_closure_check",
    "register_closure_hook",
    "register_personal_data_exporter",
]


@dataclass(frozen=True, slots=True)
class ClosureRefusal:
    """Why a module will not let the account close yet."""

    code: str
    """Stable, e.g. ``wallet_balance_not_zero``."""
    detail_vi: str
    detail_en: str


PersonalDataExporter = Callable[[AsyncSession, uuid.UUID], Awaitable[dict[str, Any]]]
ClosureCheck = Callable[[AsyncSession, uuid.UUID], Awaitable[ClosureRefusal | None]]
ClosureHook = Callable[[AsyncSession, uuid.UUID], Awaitable[None]]

_exporters: list[PersonalDataExporter] = []
_checks: list[ClosureCheck] = []
_hooks: list[ClosureHook] = []


def register_personal_data_exporter(fn: PersonalDataExporter) -> PersonalDataExporter:
    """Add ``fn``'s sections to every data download (usable as a decorator; registering twice is a no-op)."""
    if fn not in _exporters:
        _exporters.append(fn)
    return fn


def register_closure_check(fn: ClosureCheck) -> ClosureCheck:
    """Let ``fn`` refuse account closures (usable as a decorator; registering twice is a no-op)."""
    if fn not in _checks:
        _checks.append(fn)
    return fn


def register_closure_hook(fn: ClosureHook) -> ClosureHook:
    """Run ``fn`` inside every account-closing transaction (usable as a decorator)."""
    if fn not in _hooks:
        _hooks.append(fn)
    return fn


def personal_data_exporters() -> list[PersonalDataExporter]:
    return list(_exporters)


def closure_checks() -> list[ClosureCheck]:
    return list(_checks)


def closure_hooks() -> list[ClosureHook]:
    return list(_hooks)
