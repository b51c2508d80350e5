"""Withdrawals to the holder's own linked bank account, never paid out twice.

1. :func:`request_withdrawal` (the request's idempotent transaction, PIN checked): holds the amount on the
   wallet (``ledger.hold``, no expiry), stores the withdrawal with its payout ``reference`` and enqueues the
   outbox message ``wallet.withdrawal_payout``. Commit: the reference exists before anything is sent.
2. The outbox handler (and the :func:`resolve_open_withdrawals` job, its safety net) call
   :func:`advance_withdrawal`, which talks to the bank (``app.core.bank_transfer``) with no transaction open:
   - a withdrawal never sent (``requested``) is sent; a withdrawal whose send had no answer (``unknown``) or
     is ``pending`` at the bank is only asked about (``status(reference)``), and resent with the same
     reference only when the bank says it never got it. The bank deduplicates by reference besides.
   - ``succeeded``: the hold is captured by ONE entry (debit wallet, credit the guarantee-bank mirror: the
     money left the guarantee account); ``failed`` (or refused by the bank): the hold is released.
   Each outcome is applied under the withdrawal's row lock, only if it is still open, so two workers
   finishing the same withdrawal move the money once.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.bank_transfer import (
    BankTransferRejectedError,
    BankTransfers,
    BankUnavailableError,
    TransferNotFoundError,
    TransferOrder,
    TransferResult,
    TransferStatus,
    get_bank_transfers,
)
from app.core.db import Database, new_id, utcnow
from app.core.errors import error_kind
from app.core.outbox import Envelope, enqueue, register_handler
from app.core.scheduler import JobContext, every, scheduled_job
from app.identity.inbox import post_notification
from app.identity.service import verify_payment_pin
from app.wallet import ledger
from app.wallet.funding import own_source
from app.wallet.funding_models import FundingSource, WalletWithdrawal
from app.wallet.ledger import AccountType, Entry, credit, debit
from app.wallet.service import require_level, wallet_account_id

__all__ = [
    "MIN_WITHDRAWAL",
    "PAYOUT_TOPIC",
    "WITHDRAWAL_NOT_FOUND",
    "advance_withdrawal",
    "get_withdrawal",
    "request_withdrawal",
    "resolve_open_withdrawals",
]

log = structlog.get_logger("app.wallet.withdrawals")

PAYOUT_TOPIC = "wallet.withdrawal_payout"
MIN_WITHDRAWAL = 10_000
WITHDRAWAL_AMOUNT_INVALID = error_kind(
    "withdrawal_amount_invalid", 422, "Số tiền rút không hợp lệ", "Withdrawal amount too small"
)
WITHDRAWAL_NOT_FOUND = error_kind(
    "withdrawal_not_found", 404, "Không tìm thấy lệnh rút", "No such withdrawal"
)
_OPEN = ("requested", "unknown", "pending")


class PayoutNotSettledError(Exception):
    """The payout's outcome is not known yet: the outbox tries again later."""


async def request_withdrawal(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    source_id: uuid.UUID,
    amount: int,
    pin: str,
) -> WalletWithdrawal:
    """Hold ``amount`` on ``user_id``'s wallet and queue its payout to their linked bank account."""
    if amount < MIN_WITHDRAWAL:
        raise WITHDRAWAL_AMOUNT_INVALID(
            f"Mỗi lần rút ít nhất {MIN_WITHDRAWAL:,} đồng.".replace(",", "."),
            f"Withdraw at least {MIN_WITHDRAWAL:,} VND.",
            min=MIN_WITHDRAWAL,
        )
    await require_level(session, user_id)
    wallet = await wallet_account_id(session, user_id, create=False)
    await own_source(session, user_id, source_id, kind="bank_account")
    await verify_payment_pin(session, user_id, pin)
    withdrawal_id = new_id()
    reference = f"WD{withdrawal_id.hex[:30].upper()}"
    hold_id = await ledger.hold(session, wallet, amount, kind="withdrawal", reference=reference)
    withdrawal = WalletWithdrawal(
        id=withdrawal_id,
        user_id=user_id,
        source_id=source_id,
        amount=amount,
        reference=reference,
        hold_id=hold_id,
        status="requested",
        sends=0,
    )
    session.add(withdrawal)
    await session.flush()
    await enqueue(session, PAYOUT_TOPIC, {"withdrawal_id": str(withdrawal_id)}, key=str(withdrawal_id))
    return withdrawal


async def get_withdrawal(
    session: AsyncSession, user_id: uuid.UUID, withdrawal_id: uuid.UUID
) -> WalletWithdrawal:
    found = await session.get(WalletWithdrawal, withdrawal_id)
    if found is None or found.user_id != user_id:
        raise WITHDRAWAL_NOT_FOUND()
    return found


async def _mark(db: Database, withdrawal_id: uuid.UUID, status: str, *, sent: bool = False) -> None:
    async with db.transaction() as session:
        row = await _locked(session, withdrawal_id)
        if row is not None and row.status in _OPEN:
            row.status = status
            if sent:
                row.sends += 1


async def _locked(session: AsyncSession, withdrawal_id: uuid.UUID) -> WalletWithdrawal | None:
    return (
        await session.scalars(
            select(WalletWithdrawal)
            .where(WalletWithdrawal.id == withdrawal_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()


async def advance_withdrawal(db: Database, bank: BankTransfers, withdrawal_id: uuid.UUID) -> str:
    """Move one withdrawal on with the bank; returns its status after (see the module's docstring)."""
    async with db.read() as session:
        row = await session.get(WalletWithdrawal, withdrawal_id)
        if row is None:
            return "missing"
        if row.status not in _OPEN:
            return row.status
        source = await session.get(FundingSource, row.source_id)
        assert source is not None
        order = TransferOrder(
            reference=row.reference,
            bank_bin=source.bank_bin or "",
            account_number=source.account_number or "",
            account_name=source.account_name or "",
            amount=row.amount,
            description=f"Rut tien vi Hue-S {row.reference}",
        )
        status = row.status
    result: TransferResult | None = None
    try:
        if status != "requested":
            try:
                result = await bank.status(order.reference)
            except TransferNotFoundError:
                status = "requested"  # the bank never got it: sending is safe
        if result is None:
            await _mark(db, withdrawal_id, "unknown", sent=True)  # from here on, only ask before resending
            result = await bank.send(order)
    except BankUnavailableError:
        log.warning("withdrawal_outcome_unknown", withdrawal_id=str(withdrawal_id))
        return "unknown"
    except BankTransferRejectedError as exc:
        log.warning("withdrawal_rejected", withdrawal_id=str(withdrawal_id), reason=str(exc))
        return await _finish(
            db, withdrawal_id, succeeded=False, reason="rejected_by_bank", bank_reference=None
        )
    if result.status is TransferStatus.SUCCEEDED:
        return await _finish(
            db, withdrawal_id, succeeded=True, reason=None, bank_reference=result.bank_reference
        )
    if result.status is TransferStatus.FAILED:
        return await _finish(
            db,
            withdrawal_id,
            succeeded=False,
            reason=result.failure_reason,
            bank_reference=result.bank_reference,
        )
    await _mark(db, withdrawal_id, "pending")
    return "pending"


async def _finish(
    db: Database, withdrawal_id: uuid.UUID, *, succeeded: bool, reason: str | None, bank_reference: str | None
) -> str:
    async with db.transaction() as session:
        row = await _locked(session, withdrawal_id)
        if row is None:
            return "missing"
        if row.status not in _OPEN:
            return row.status  # someone finished it first: the money moved once
        wallet = await wallet_account_id(session, row.user_id, create=False)
        money = f"{row.amount:,}".replace(",", ".")
        if succeeded:
            bank = ledger.system_account(AccountType.GUARANTEE_BANK)
            posted = await ledger.capture(
                session,
                row.hold_id,
                Entry(
                    kind="withdrawal",
                    postings=[debit(wallet, row.amount), credit(bank, row.amount)],
                    reference=row.reference,
                    description="Rút tiền về tài khoản ngân hàng / Withdrawal to bank",
                    metadata={"withdrawal_id": str(row.id), "bank_reference": bank_reference},
                ),
            )
            row.status, row.entry_id = "succeeded", posted.entry_id
            title, body = (
                "Rút tiền thành công",
                f"{money} đồng đã được chuyển về tài khoản ngân hàng của bạn.",
            )
            title_en, body_en = "Withdrawal paid", f"{row.amount:,} VND was sent to your bank account."
        else:
            await ledger.release(session, row.hold_id)
            row.status, row.failure_reason = "failed", (reason or "failed")[:64]
            title, body = (
                "Rút tiền không thành công",
                f"Lệnh rút {money} đồng không thành công; tiền đã về lại ví.",
            )
            title_en, body_en = (
                "Withdrawal failed",
                f"The withdrawal of {row.amount:,} VND failed; the money is back.",
            )
        row.bank_reference, row.resolved_at = bank_reference, utcnow()
        await post_notification(
            session,
            row.user_id,
            f"wallet.withdrawal_{row.status}",
            title,
            body,
            title_en=title_en,
            body_en=body_en,
            data={"withdrawal_id": str(row.id)},
        )
        return row.status


_runtime_db: Database | None = None


def install(db: Database) -> None:
    """The database the outbox handler works on (``create_app`` installs it; a bare worker builds one)."""
    global _runtime_db
    _runtime_db = db


def _db() -> Database:
    global _runtime_db
    if _runtime_db is None:
        from app.core.settings import get_settings

        _runtime_db = Database(get_settings())
    return _runtime_db


async def _deliver_payout(envelope: Envelope) -> None:
    status = await advance_withdrawal(
        _db(), get_bank_transfers(), uuid.UUID(envelope.payload["withdrawal_id"])
    )
    if status in _OPEN:
        raise PayoutNotSettledError(f"withdrawal {status}")


register_handler(PAYOUT_TOPIC, _deliver_payout, max_attempts=20)


async def resolve_open_withdrawals(
    db: Database, bank: BankTransfers, *, older_than: timedelta = timedelta(minutes=2), batch: int = 200
) -> int:
    """Advance withdrawals still open after ``older_than`` (a dead-lettered or pending payout)."""
    cutoff = utcnow() - older_than
    async with db.read() as session:
        ids = list(
            await session.scalars(
                select(WalletWithdrawal.id)
                .where(WalletWithdrawal.status.in_(_OPEN), WalletWithdrawal.created_at <= cutoff)
                .order_by(WalletWithdrawal.created_at)
                .limit(batch)
            )
        )
    for withdrawal_id in ids:
        await advance_withdrawal(db, bank, withdrawal_id)
    return len(ids)


@scheduled_job("wallet.resolve_open_withdrawals", trigger=every(minutes=5))
async def resolve_open_withdrawals_job(ctx: JobContext) -> None:
    """Safety net of the payout outbox: ask the bank about withdrawals whose outcome is still open."""
    looked = await resolve_open_withdrawals(ctx.db, get_bank_transfers())
    log.info("withdrawals_resolved", looked=looked)
