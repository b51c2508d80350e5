"""The console's interfaces to modules that arrive after it: reconciliation (maker-checker corrections) and
merchant review. The console's pages are written and tested against these; the owning module installs an
adapter over its service functions at start (``install_recon_desk(...)`` / ``install_merchant_desk(...)``),
and the pages and their menu entries appear. Until then the pages answer 404 and the menu shows nothing.

Each method gets the console caller and runs the module's own service function (its rules, its audit rows,
its four-eyes check) in one transaction; the console adds nothing but the form.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from app.core.db import Database
from app.core.security import Caller

__all__ = [
    "ExceptionRow",
    "MerchantDesk",
    "MerchantRow",
    "ReconDesk",
    "install_merchant_desk",
    "install_recon_desk",
    "merchant_desk",
    "recon_desk",
]


@dataclass(frozen=True, slots=True)
class ExceptionRow:
    """A reconciliation exception as the console shows it."""

    id: int
    day: date
    source: str
    """``gateway``, ``biller`` or ``bank``."""
    kind: str
    """e.g. ``missing_in_ledger``, ``amount_mismatch``."""
    status: str
    """``open``, ``proposed``, ``resolved`` or ``closed``."""
    reference: str | None
    ledger_amount: int | None
    external_amount: int | None
    proposal_description: str | None = None
    proposal_postings: list[tuple[str, int]] = field(default_factory=list)
    """(account id or system account name, signed đồng; positive credits)."""
    proposed_by: uuid.UUID | None = None
    decided_by: uuid.UUID | None = None
    note: str | None = None
    created_at: datetime | None = None


class ReconDesk(Protocol):
    """What the reconciliation module offers the console (duty ``finance``, checked by the console's guard
    as by the API's; the four-eyes rule is the module's own)."""

    async def list_exceptions(
        self, db: Database, caller: Caller, *, status: str | None, limit: int
    ) -> list[ExceptionRow]: ...

    async def get_exception(self, db: Database, caller: Caller, exception_id: int) -> ExceptionRow: ...

    async def propose(
        self,
        db: Database,
        caller: Caller,
        exception_id: int,
        *,
        description: str,
        postings: list[tuple[str, int]],
        client_address: str | None,
    ) -> None: ...

    async def approve(
        self, db: Database, caller: Caller, exception_id: int, *, client_address: str | None
    ) -> None: ...

    async def reject(
        self, db: Database, caller: Caller, exception_id: int, *, note: str, client_address: str | None
    ) -> None: ...

    async def close(
        self, db: Database, caller: Caller, exception_id: int, *, note: str, client_address: str | None
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class MerchantRow:
    """A merchant as the console shows it."""

    id: uuid.UUID
    name: str
    tax_code: str | None
    status: str
    """``pending``, ``approved``, ``rejected`` or ``suspended``."""
    owner_phone_masked: str | None
    mdr_bps: int | None
    created_at: datetime | None = None


class MerchantDesk(Protocol):
    """What the merchants module offers the console (duty ``support``)."""

    async def list_merchants(
        self, db: Database, caller: Caller, *, status: str, limit: int
    ) -> list[MerchantRow]: ...

    async def find_merchant(self, db: Database, caller: Caller, query: str) -> list[MerchantRow]: ...

    async def decide(
        self, db: Database, caller: Caller, merchant_id: uuid.UUID, *, action: str, reason: str
    ) -> None:
        """``approve``, ``reject``, ``suspend`` or ``reinstate``."""
        ...


class _Desks:
    recon: ReconDesk | None = None
    merchants: MerchantDesk | None = None


_desks = _Desks()


def install_recon_desk(desk: ReconDesk | None) -> None:
    _desks.recon = desk


def install_merchant_desk(desk: MerchantDesk | None) -> None:
    _desks.merchants = desk


def recon_desk() -> ReconDesk | None:
    return _desks.recon


def merchant_desk() -> MerchantDesk | None:
    return _desks.merchants
