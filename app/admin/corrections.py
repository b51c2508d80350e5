"""Settling reconciliation exceptions: a correcting journal entry under maker-checker, or a note.

A finance admin proposes a correcting entry for an open exception (balanced postings on named ledger
accounts); another finance admin (never the proposer) approves it, which posts it through the ledger
(kind ``recon_correction``, the exception's reference as the entry's reference, so the next reconciliation
of the day matches) and resolves the exception; or rejects it (the exception is open again). An exception
can also be closed with a note (e.g. an item in transit that cleared the next day). Every step is audited
in the same transaction as the change.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.models import ReconException
from app.admin.reconciliation import CORRECTION_KIND
from app.core.audit import AuditActor, record, record_separately
from app.core.db import Database, utcnow
from app.core.errors import VALIDATION_FAILED, FieldError, error_kind
from app.core.security import Caller
from app.wallet import ledger
from app.wallet.errors import LedgerError
from app.wallet.ledger import AccountType, Entry, Posting
from app.wallet.ledger.base import ACCOUNT_SPECS, validate_entry
from app.wallet.models import LedgerAccount

__all__ = [
    "RECON_EXCEPTION_NOT_FOUND",
    "RECON_EXCEPTION_STATE",
    "RECON_FOUR_EYES",
    "ProposedPosting",
    "approve",
    "close",
    "get_exception",
    "list_exceptions",
    "propose",
    "record_refused_self_approval",
    "reject",
    "resolve_account",
]

RECON_EXCEPTION_NOT_FOUND = error_kind(
    "recon_exception_not_found",
    404,
    "Không tìm thấy chênh lệch đối soát",
    "Reconciliation exception not found",
)
RECON_EXCEPTION_STATE = error_kind(
    "recon_exception_state",
    409,
    "Chênh lệch đối soát không ở trạng thái cho phép thao tác này",
    "The reconciliation exception is not in a state that allows this",
)
RECON_FOUR_EYES = error_kind(
    "recon_four_eyes",
    403,
    "Bút toán điều chỉnh phải do một quản trị viên tài chính khác duyệt",
    "A correcting entry must be approved by another finance admin",
)

SYSTEM_NAMES = {t.value: t for t in AccountType if ACCOUNT_SPECS[t].system}
"""System accounts a correction may name instead of an id (``suspense``, ``gateway_clearing``, ...)."""


@dataclass(frozen=True, slots=True)
class ProposedPosting:
    account: str
    """A system account's name (``suspense``, ``gateway_clearing``, ``gateway_fees``, ``guarantee_bank``,
    ``fee_revenue``) or a ledger account id."""
    amount: int
    """Signed đồng: positive credits the account, negative debits it."""


async def _load(session: AsyncSession, exception_id: int, *, lock: bool = True) -> ReconException:
    query = select(ReconException).where(ReconException.id == exception_id)
    if lock:
        query = query.with_for_update()
    found = (await session.execute(query)).scalar_one_or_none()
    if found is None:
        raise RECON_EXCEPTION_NOT_FOUND()
    return found


def _state(found: ReconException, *allowed: str) -> None:
    if found.status not in allowed:
        raise RECON_EXCEPTION_STATE(
            f"Chênh lệch đang ở trạng thái {found.status}.", f"The exception is {found.status}."
        )


def _invalid(field: str, message: str) -> Exception:
    return VALIDATION_FAILED(
        "Bút toán điều chỉnh không hợp lệ",
        f"Invalid correcting entry: {message}",
        errors=[FieldError(field=field, source="body", message=message)],
    )


async def resolve_account(session: AsyncSession, name: str) -> uuid.UUID:
    """The ledger account a proposal names (system name or existing account id)."""
    if name in SYSTEM_NAMES:
        return ledger.system_account(SYSTEM_NAMES[name])
    try:
        account_id = uuid.UUID(name)
    except ValueError:
        raise _invalid("postings", f"unknown account {name!r}") from None
    if await session.scalar(select(LedgerAccount.id).where(LedgerAccount.id == account_id)) is None:
        raise _invalid("postings", f"no ledger account {name}")
    return account_id


async def list_exceptions(
    session: AsyncSession,
    *,
    status: str | None = None,
    day: date | None = None,
    limit: int = 50,
    before: int | None = None,
) -> tuple[list[ReconException], int | None]:
    """Exceptions newest first, only those of ``status`` / ``day`` when given, ids below ``before`` (the
    cursor); returns one page and the next cursor (None on the last page). The API and the console list
    through here."""
    query = select(ReconException).order_by(ReconException.id.desc()).limit(limit + 1)
    if status is not None:
        query = query.where(ReconException.status == status)
    if day is not None:
        query = query.where(ReconException.day == day)
    if before is not None:
        query = query.where(ReconException.id < before)
    rows = list((await session.scalars(query)).all())
    page = rows[:limit]
    return page, (page[-1].id if len(rows) > limit else None)


async def get_exception(session: AsyncSession, exception_id: int) -> ReconException:
    """One exception (``recon_exception_not_found`` otherwise)."""
    return await _load(session, exception_id, lock=False)


async def record_refused_self_approval(
    db: Database, caller: Caller, exception_id: int, *, client_address: str | None = None
) -> None:
    """Keep on record that ``caller`` tried to approve their own proposal (``recon_four_eyes``): written in a
    transaction of its own, since the refused one has rolled back. The API and the console call it."""
    await record_separately(
        db,
        actor=caller,
        action="recon.correction_self_approval",
        object_type="recon_exception",
        object_id=str(exception_id),
        outcome="denied",
        client_address=client_address,
    )


async def propose(
    session: AsyncSession,
    exception_id: int,
    caller: Caller,
    *,
    description: str,
    postings: list[ProposedPosting],
    client_address: str | None = None,
) -> ReconException:
    """Propose a correcting entry for an open exception (the maker's step)."""
    found = await _load(session, exception_id)
    _state(found, "open")
    resolved = [Posting(await resolve_account(session, p.account), p.amount) for p in postings]
    try:
        validate_entry(Entry(kind=CORRECTION_KIND, postings=resolved, description=description))
    except LedgerError as exc:
        raise _invalid("postings", str(exc)) from None
    now = utcnow()
    found.status = "proposed"
    found.proposal = {
        "description": description,
        "postings": [{"account_id": str(p.account_id), "amount": p.amount} for p in resolved],
    }
    found.proposed_by = caller.user_id
    found.proposed_at = now
    found.updated_at = now
    await session.flush()
    await record(
        session,
        actor=AuditActor.of(caller),
        action="recon.correction_proposed",
        object_type="recon_exception",
        object_id=str(found.id),
        client_address=client_address,
        details={"kind": found.kind, "source": found.source, "proposal": found.proposal},
    )
    return found


async def approve(
    session: AsyncSession, exception_id: int, caller: Caller, *, client_address: str | None = None
) -> ReconException:
    """Post the proposed entry and resolve the exception (the checker's step: never the proposer)."""
    found = await _load(session, exception_id)
    _state(found, "proposed")
    if found.proposed_by == caller.user_id:
        # the refusal is audited by the caller once this transaction has rolled back (record_separately)
        raise RECON_FOUR_EYES()
    proposal = found.proposal or {}
    posted = await ledger.post(
        session,
        Entry(
            kind=CORRECTION_KIND,
            postings=[Posting(uuid.UUID(p["account_id"]), int(p["amount"])) for p in proposal["postings"]],
            reference=found.reference or found.key,
            description=str(proposal.get("description", ""))[:255],
            metadata={
                "recon_exception_id": found.id,
                "proposed_by": str(found.proposed_by),
                "approved_by": str(caller.user_id),
            },
        ),
    )
    now = utcnow()
    found.status = "resolved"
    found.decided_by = caller.user_id
    found.decided_at = now
    found.entry_id = posted.entry_id
    found.updated_at = now
    await session.flush()
    await record(
        session,
        actor=AuditActor.of(caller),
        action="recon.correction_approved",
        object_type="recon_exception",
        object_id=str(found.id),
        client_address=client_address,
        details={"entry_id": str(posted.entry_id), "proposed_by": str(found.proposed_by)},
    )
    return found


async def reject(
    session: AsyncSession, exception_id: int, caller: Caller, *, note: str, client_address: str | None = None
) -> ReconException:
    """Turn a proposal down: the exception is open again, the note kept."""
    found = await _load(session, exception_id)
    _state(found, "proposed")
    now = utcnow()
    found.status = "open"
    found.note = note
    found.decided_by = caller.user_id
    found.decided_at = now
    found.updated_at = now
    await session.flush()
    await record(
        session,
        actor=AuditActor.of(caller),
        action="recon.correction_rejected",
        object_type="recon_exception",
        object_id=str(found.id),
        client_address=client_address,
        details={"note": note, "proposal": found.proposal},
    )
    return found


async def close(
    session: AsyncSession, exception_id: int, caller: Caller, *, note: str, client_address: str | None = None
) -> ReconException:
    """Close an exception that needs no entry, saying why."""
    found = await _load(session, exception_id)
    _state(found, "open", "proposed")
    now = utcnow()
    found.status = "closed"
    found.note = note
    found.decided_by = caller.user_id
    found.decided_at = now
    found.updated_at = now
    await session.flush()
    await record(
        session,
        actor=AuditActor.of(caller),
        action="recon.exception_closed",
        object_type="recon_exception",
        object_id=str(found.id),
        client_address=client_address,
        details={"note": note},
    )
    return found
