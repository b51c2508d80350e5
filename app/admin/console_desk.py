"""The console's reconciliation desk (:class:`app.console.desks.ReconDesk`) over this module's service
functions: the same list query, the same maker-checker rules and audit rows as the API
(:mod:`app.admin.recon_routes`), each action in one transaction. Installed by ``create_app``."""

from __future__ import annotations

from app.admin import corrections
from app.admin.models import ReconException
from app.console.desks import ExceptionRow
from app.core.db import Database
from app.core.errors import AppError
from app.core.security import Caller
from app.wallet import ledger

__all__ = ["AdminReconDesk", "exception_row"]


def _account_names() -> dict[str, str]:
    return {str(ledger.system_account(kind)): name for name, kind in corrections.SYSTEM_NAMES.items()}


def exception_row(found: ReconException) -> ExceptionRow:
    """An exception as the console shows it: the gross amounts on each side, the proposal's postings with
    system accounts by name."""
    names = _account_names()
    proposal = found.proposal or {}
    postings = [
        (names.get(str(p["account_id"]), str(p["account_id"])), int(p["amount"]))
        for p in proposal.get("postings", [])
    ]
    return ExceptionRow(
        id=found.id,
        day=found.day,
        source=found.source,
        kind=found.kind,
        status=found.status,
        reference=found.reference,
        ledger_amount=found.ledger_gross,
        external_amount=found.external_gross,
        proposal_description=proposal.get("description"),
        proposal_postings=postings,
        proposed_by=found.proposed_by,
        decided_by=found.decided_by,
        note=found.note,
        created_at=found.created_at,
    )


class AdminReconDesk:
    """:class:`app.console.desks.ReconDesk` for finance admins (the console's guards check the duty)."""

    async def list_exceptions(
        self, db: Database, caller: Caller, *, status: str | None, limit: int
    ) -> list[ExceptionRow]:
        async with db.read() as session:
            page, _ = await corrections.list_exceptions(session, status=status, limit=limit)
            return [exception_row(found) for found in page]

    async def get_exception(self, db: Database, caller: Caller, exception_id: int) -> ExceptionRow:
        async with db.read() as session:
            return exception_row(await corrections.get_exception(session, exception_id))

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
        proposed = [corrections.ProposedPosting(account, amount) for account, amount in postings]
        async with db.transaction() as session:
            await corrections.propose(
                session,
                exception_id,
                caller,
                description=description,
                postings=proposed,
                client_address=client_address,
            )

    async def approve(
        self, db: Database, caller: Caller, exception_id: int, *, client_address: str | None
    ) -> None:
        try:
            async with db.transaction() as session:
                await corrections.approve(session, exception_id, caller, client_address=client_address)
        except AppError as exc:
            if exc.kind is corrections.RECON_FOUR_EYES:  # refused and rolled back: keep the attempt
                await corrections.record_refused_self_approval(
                    db, caller, exception_id, client_address=client_address
                )
            raise

    async def reject(
        self, db: Database, caller: Caller, exception_id: int, *, note: str, client_address: str | None
    ) -> None:
        async with db.transaction() as session:
            await corrections.reject(session, exception_id, caller, note=note, client_address=client_address)

    async def close(
        self, db: Database, caller: Caller, exception_id: int, *, note: str, client_address: str | None
    ) -> None:
        async with db.transaction() as session:
            await corrections.close(session, exception_id, caller, note=note, client_address=client_address)
