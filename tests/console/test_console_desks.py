"""The pages over later modules' desks (app/console/desks.py): reconciliation's maker-checker flow and
merchant review, driven through the console against in-memory desks that keep the rules those modules
state (the proposer may not approve; only pending merchants are approved). The real merchant desk
(app/console/merchant_desk.py, installed by create_app) is driven in test_console_pages.py, both
backends."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import date

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.console.desks import (
    ExceptionRow,
    MerchantRow,
    install_merchant_desk,
    install_recon_desk,
    merchant_desk,
)
from app.core.db import Database
from app.core.errors import FORBIDDEN, NOT_FOUND
from app.core.security import Caller
from tests.console.test_console_pages import Desk
from tests.factories import make_user

pytestmark = pytest.mark.sqlite_only


class MemoryRecon:
    def __init__(self) -> None:
        self.rows = {
            7: ExceptionRow(
                7, date(2026, 11, 22), "gateway", "missing_in_ledger", "open", "pi_123", None, 50_000
            )
        }
        self.entries: list[list[tuple[str, int]]] = []

    async def list_exceptions(
        self, db: Database, caller: Caller, *, status: str | None, limit: int
    ) -> list[ExceptionRow]:
        return [r for r in self.rows.values() if status is None or r.status == status][:limit]

    async def get_exception(self, db: Database, caller: Caller, exception_id: int) -> ExceptionRow:
        if exception_id not in self.rows:
            raise NOT_FOUND()
        return self.rows[exception_id]

    async def propose(
        self,
        db: Database,
        caller: Caller,
        exception_id: int,
        *,
        description: str,
        postings: list[tuple[str, int]],
        client_address: str | None,
    ) -> None:
        row = await self.get_exception(db, caller, exception_id)
        self.rows[exception_id] = replace(
            row,
            status="proposed",
            proposal_description=description,
            proposal_postings=postings,
            proposed_by=caller.user_id,
        )

    async def approve(
        self, db: Database, caller: Caller, exception_id: int, *, client_address: str | None
    ) -> None:
        row = await self.get_exception(db, caller, exception_id)
        if row.proposed_by == caller.user_id:
            raise FORBIDDEN("Người đề xuất không được tự duyệt", "The proposer cannot approve it")
        self.entries.append(row.proposal_postings)
        self.rows[exception_id] = replace(row, status="resolved", decided_by=caller.user_id)

    async def reject(
        self, db: Database, caller: Caller, exception_id: int, *, note: str, client_address: str | None
    ) -> None:
        row = await self.get_exception(db, caller, exception_id)
        self.rows[exception_id] = replace(row, status="open", note=note)

    async def close(
        self, db: Database, caller: Caller, exception_id: int, *, note: str, client_address: str | None
    ) -> None:
        row = await self.get_exception(db, caller, exception_id)
        self.rows[exception_id] = replace(row, status="closed", note=note)


class MemoryMerchants:
    def __init__(self) -> None:
        self.row = MerchantRow(
            uuid.uuid4(), "Quán Bún Bò O Xuân", "3301234567", "pending", "090****123", None
        )

    async def list_merchants(
        self, db: Database, caller: Caller, *, status: str, limit: int
    ) -> list[MerchantRow]:
        return [self.row] if self.row.status == status else []

    async def find_merchant(self, db: Database, caller: Caller, query: str) -> list[MerchantRow]:
        return [self.row] if query in (str(self.row.id), self.row.tax_code) else []

    async def decide(
        self, db: Database, caller: Caller, merchant_id: uuid.UUID, *, action: str, reason: str
    ) -> None:
        if action == "approve" and self.row.status == "pending":
            self.row = replace(self.row, status="approved")


@pytest.fixture
def desks() -> Iterator[tuple[MemoryRecon, MemoryMerchants]]:
    recon, merchants = MemoryRecon(), MemoryMerchants()
    installed = merchant_desk()  # the merchants module's (create_app installs it): put back afterwards
    install_recon_desk(recon)
    install_merchant_desk(merchants)
    try:
        yield recon, merchants
    finally:
        install_recon_desk(None)
        install_merchant_desk(installed)


async def test_a_correction_needs_a_second_finance_admin(
    client: AsyncTestClient[Litestar], desks: tuple[MemoryRecon, MemoryMerchants]
) -> None:
    recon, _ = desks
    maker = Desk(client)
    await maker.sign_in((await make_user(client, roles=("admin",), duties=("finance",))).phone)
    checker = Desk(client)
    await checker.sign_in((await make_user(client, roles=("admin",), duties=("finance",))).phone)
    support = Desk(client)
    await support.sign_in((await make_user(client, roles=("admin",), duties=("support",))).phone)

    listing = await maker.get("/console/admin/recon")
    assert listing.status_code == 200
    assert "pi_123" in listing.text
    assert 'href="/console/admin/recon"' in listing.text, "the menu shows reconciliation to finance"
    assert (await support.get("/console/admin/recon")).status_code == 403, "finance duty, as the API"

    await maker.get("/console/admin/recon/7")
    proposed = await maker.post(
        "/console/admin/recon/7/propose",
        {"description": "Khoản thu thẻ chưa ghi sổ", "postings": "gateway_clearing -50000\nsuspense 50000"},
    )
    assert proposed.status_code == 303
    page = await maker.get("/console/admin/recon/7")
    assert 'data-status="proposed"' in page.text
    assert 'id="four-eyes"' in page.text

    await maker.post("/console/admin/recon/7/approve", {})
    refused = await maker.get("/console/admin/recon/7")
    assert "Người đề xuất không được tự duyệt" in refused.text
    assert 'data-status="proposed"' in refused.text
    assert recon.entries == []

    await checker.get("/console/admin/recon/7")
    assert (await checker.post("/console/admin/recon/7/approve", {}, token=False)).status_code == 403
    await checker.post("/console/admin/recon/7/approve", {})
    assert 'data-status="resolved"' in (await checker.get("/console/admin/recon/7")).text
    assert recon.entries == [[("gateway_clearing", -50_000), ("suspense", 50_000)]]


async def test_support_approves_a_pending_merchant_and_pages_hide_without_their_module(
    client: AsyncTestClient[Litestar], desks: tuple[MemoryRecon, MemoryMerchants]
) -> None:
    _, merchants = desks
    support = Desk(client)
    await support.sign_in((await make_user(client, roles=("admin",), duties=("support",))).phone)
    pending = await support.get("/console/admin/merchants")
    assert "Quán Bún Bò O Xuân" in pending.text
    assert (await support.post(f"/console/admin/merchants/{merchants.row.id}/approve", {})).status_code == 303
    assert merchants.row.status == "approved"
    assert 'data-status="approved"' in (await support.get("/console/admin/merchants?q=3301234567")).text

    install_merchant_desk(None)
    install_recon_desk(None)
    assert (await support.get("/console/admin/merchants")).status_code == 404
    dashboard = await support.get("/console/admin")
    assert "/console/admin/merchants" not in dashboard.text
    assert "/console/admin/recon" not in dashboard.text
