"""Daily settlement: each merchant's payable balance (already net of fees) paid to its bank account.

For business day D (Asia/Ho_Chi_Minh), run after D ends: the amount is the merchant payable's balance at
the end of D, i.e. the sum of its postings before that instant (payments net of fees, minus refunds, minus
earlier payouts, which are posted when they are sent, so they count in the day they were sent). A payout is
never sent twice:

1. in one transaction: insert the ``merchant_payouts`` row (unique per merchant and day, with our
   reference) and post ONE entry (payable -> guarantee-bank mirror); commit;
2. send through :func:`app.core.bank_transfer.get_bank_transfers` with that reference;
3. record the answer: ``succeeded``; ``failed`` (the entry is reversed, the money is owed again and goes out
   with a later day); :class:`BankUnavailableError` -> ``unknown``, asked again with ``status(reference)`` by
   :func:`recheck_unknown` on the next run.

A balance of zero or less records a ``nothing`` row (a debt from refunds is netted by the next days).

Complaint holds (:mod:`app.wallet.payout_holds`, placed by complaints on the merchant's payable): the payout
is ``balance - kept back earlier - held now + released now``. A held amount stays on the payable (the
books do not change) until the complaint ends; the settlement after that pays it, less any refund (the
refund has already taken its share off the payable).

The per-merchant per-day CSV report lists the day's postings on the payable account: opening balance + the
lines = closing balance (what the ledger says). When holds touch that day's payout, rows after the closing
balance show them (``kept_back_earlier``, ``complaint_hold``, ``hold_released``) and ``payout``: closing
balance + those rows = the payout amount.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.core.bank_transfer import (
    BankTransferRejectedError,
    BankUnavailableError,
    TransferNotFoundError,
    TransferOrder,
    TransferStatus,
    get_bank_transfers,
)
from app.core.db import Database, utcnow
from app.core.scheduler import DAILY, LOCAL_TZ, JobContext, cron, scheduled_job
from app.merchants.models import Merchant, MerchantPayout
from app.wallet import ledger
from app.wallet.ledger import AccountType, Entry, credit, debit
from app.wallet.models import LedgerEntry, LedgerPosting
from app.wallet.payout_holds import PayoutHold, holds_at_cutoff, holds_kept_back

__all__ = [
    "SettlementRun",
    "day_bounds",
    "payout_reference",
    "recheck_unknown",
    "settle_day",
    "settlement_csv",
]

log = structlog.get_logger("app.merchants.settlement")


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """UTC-aware start and end of a local business day."""
    start = datetime.combine(day, time.min, tzinfo=LOCAL_TZ)
    return start, start + timedelta(days=1)


@dataclass
class SettlementRun:
    """What one run did."""

    paid: int = 0
    nothing: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    """Already settled for that day (an earlier run)."""
    total: int = 0


def payout_reference(merchant: Merchant, day: date) -> str:
    """Our reference of a merchant's payout for a day (also the journal entry's reference)."""
    return f"MS{day:%Y%m%d}{merchant.id.hex[:20].upper()}"


async def _balance_before(db: Database, account_id: uuid.UUID, moment: datetime) -> int:
    async with db.read() as session:
        found = await session.scalar(
            select(func.coalesce(func.sum(LedgerPosting.amount), 0)).where(
                LedgerPosting.account_id == account_id, LedgerPosting.created_at < moment
            )
        )
    return int(found or 0)


async def settle_day(db: Database, day: date) -> SettlementRun:
    """Settle every approved or suspended merchant for ``day`` (idempotent: a merchant already settled for
    that day is skipped)."""
    run = SettlementRun()
    await recheck_unknown(db)
    _start, end = day_bounds(day)
    async with db.read() as session:
        merchants = list(
            await session.scalars(
                select(Merchant).where(Merchant.status.in_(("approved", "suspended"))).order_by(Merchant.id)
            )
        )
    bank = get_bank_transfers()
    for merchant in merchants:
        balance = await _balance_before(db, merchant.payable_account_id, end)
        reference = payout_reference(merchant, day)
        try:
            async with db.transaction() as session:
                # Complaint holds: what earlier days kept back is still on the payable (not paid now), the
                # open holds not kept back yet are kept back now, the released ones are paid now.
                holds = await holds_at_cutoff(session, merchant.payable_account_id, end)  # locks them
                kept = await holds_kept_back(session, merchant.payable_account_id)
                amount = balance - kept - holds.net
                payout = MerchantPayout(
                    merchant_id=merchant.id,
                    day=day,
                    amount=max(amount, 0),
                    reference=reference,
                    status="sending" if amount > 0 else "nothing",
                )
                if amount > 0:
                    posted = await ledger.post(
                        session,
                        Entry(
                            kind="merchant_payout",
                            postings=[
                                debit(merchant.payable_account_id, amount),
                                credit(ledger.system_account(AccountType.GUARANTEE_BANK), amount),
                            ],
                            reference=reference,
                            description=f"Quyet toan {day.isoformat()}",
                            metadata={"merchant_id": str(merchant.id), "day": day.isoformat()},
                        ),
                    )
                    payout.entry_id = posted.entry_id
                session.add(payout)
                await session.flush()
                await holds.mark(session, payout.id)
        except IntegrityError:
            run.skipped += 1
            continue
        if amount <= 0:
            run.nothing += 1
            continue
        order = TransferOrder(
            reference=reference,
            bank_bin=merchant.settlement_bank_bin,
            account_number=merchant.settlement_account_number,
            account_name=merchant.settlement_account_name,
            amount=amount,
            description=f"Hue-S quyet toan {day:%d/%m/%Y}",
        )
        try:
            result = await bank.send(order)
        except BankUnavailableError:
            await _mark(db, reference, "unknown")
            run.unknown += 1
            continue
        except BankTransferRejectedError as exc:
            await _fail(db, reference, str(exc)[:200])
            run.failed += 1
            continue
        if result.status is TransferStatus.FAILED:
            await _fail(db, reference, result.failure_reason or "failed")
            run.failed += 1
        else:
            status = "succeeded" if result.status is TransferStatus.SUCCEEDED else "unknown"
            await _mark(db, reference, status, result.bank_reference)
            run.paid += 1
            run.total += amount
    log.info("merchant_settlement", day=day.isoformat(), **vars(run))
    return run


async def _mark(db: Database, reference: str, status: str, bank_reference: str | None = None) -> None:
    async with db.transaction() as session:
        payout = await session.scalar(select(MerchantPayout).where(MerchantPayout.reference == reference))
        if payout is not None:
            payout.status = status
            payout.bank_reference = bank_reference or payout.bank_reference
            payout.updated_at = utcnow()


async def _fail(db: Database, reference: str, reason: str) -> None:
    """A definitive failure: the payout's entry is reversed, the money is owed to the merchant again."""
    async with db.transaction() as session:
        payout = await session.scalar(
            select(MerchantPayout).where(MerchantPayout.reference == reference).with_for_update()
        )
        if payout is None or payout.status == "failed":
            return
        if payout.entry_id is not None:
            reversal = await ledger.reverse(session, payout.entry_id, kind="merchant_payout_failed")
            payout.reversal_entry_id = reversal.entry_id
        payout.status = "failed"
        payout.failure_reason = reason
        payout.updated_at = utcnow()


async def recheck_unknown(db: Database) -> int:
    """Ask the bank about payouts whose outcome was unknown; returns how many were decided."""
    async with db.read() as session:
        references = list(
            await session.scalars(select(MerchantPayout.reference).where(MerchantPayout.status == "unknown"))
        )
    bank = get_bank_transfers()
    decided = 0
    for reference in references:
        try:
            result = await bank.status(reference)
        except (BankUnavailableError, TransferNotFoundError):
            continue
        if result.status is TransferStatus.SUCCEEDED:
            await _mark(db, reference, "succeeded", result.bank_reference)
            decided += 1
        elif result.status is TransferStatus.FAILED:
            await _fail(db, reference, result.failure_reason or "failed")
            decided += 1
    return decided


async def settlement_csv(db: Database, merchant: Merchant, day: date) -> str:
    """The day's report: opening balance, every posting on the merchant's payable (payments net of fee,
    refunds, payouts), closing balance. Opening + lines = closing = the ledger's balance at the day's end."""
    start, end = day_bounds(day)
    opening = await _balance_before(db, merchant.payable_account_id, start)
    async with db.read() as session:
        rows = (
            await session.execute(
                select(
                    LedgerPosting.created_at,
                    LedgerEntry.kind,
                    LedgerEntry.reference,
                    LedgerPosting.amount,
                    LedgerEntry.details,
                )
                .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
                .where(
                    LedgerPosting.account_id == merchant.payable_account_id,
                    LedgerPosting.created_at >= start,
                    LedgerPosting.created_at < end,
                )
                .order_by(LedgerPosting.id)
            )
        ).all()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["time_local", "kind", "reference", "gross", "fee", "net", "balance_after"])
    writer.writerow([start.isoformat(), "opening_balance", "", "", "", "", opening])
    balance = opening
    for created_at, kind, reference, amount, details in rows:
        fee = int((details or {}).get("fee", 0)) if kind == "merchant_payment" else 0
        net = int(amount)
        balance += net
        gross = net + fee if kind == "merchant_payment" else net
        writer.writerow(
            [created_at.astimezone(LOCAL_TZ).isoformat(), kind, reference or "", gross, fee, net, balance]
        )
    writer.writerow([end.isoformat(), "closing_balance", "", "", "", "", balance])
    await _hold_rows(db, merchant, day, writer, balance)
    return out.getvalue()


async def _hold_rows(db: Database, merchant: Merchant, day: date, writer: Any, closing: int) -> None:
    """The day's payout as closing balance less holds, when holds touch it (nothing written otherwise)."""
    async with db.read() as session:
        payout = await session.scalar(
            select(MerchantPayout).where(MerchantPayout.merchant_id == merchant.id, MerchantPayout.day == day)
        )
        if payout is None:
            return
        # A settlement run before the day ended (tests, a manual run) has its own payout in the balance.
        early = 0
        if payout.entry_id is not None:
            early = int(
                await session.scalar(
                    select(func.coalesce(func.sum(LedgerPosting.amount), 0)).where(
                        LedgerPosting.entry_id == payout.entry_id,
                        LedgerPosting.account_id == merchant.payable_account_id,
                        LedgerPosting.created_at < day_bounds(day)[1],
                    )
                )
                or 0
            )
        earlier = select(MerchantPayout.id).where(
            MerchantPayout.merchant_id == merchant.id, MerchantPayout.day < day
        )
        not_before = select(MerchantPayout.id).where(
            MerchantPayout.merchant_id == merchant.id, MerchantPayout.day >= day
        )
        kept = await session.scalar(
            select(func.coalesce(func.sum(PayoutHold.amount), 0)).where(
                PayoutHold.account_id == merchant.payable_account_id,
                PayoutHold.withheld_in.in_(earlier),
                PayoutHold.returned_in.is_(None) | PayoutHold.returned_in.in_(not_before),
            )
        )
        touched = list(
            await session.scalars(
                select(PayoutHold)
                .where(
                    PayoutHold.account_id == merchant.payable_account_id,
                    (PayoutHold.withheld_in == payout.id) | (PayoutHold.returned_in == payout.id),
                )
                .order_by(PayoutHold.created_at)
            )
        )
    if not kept and not touched:
        return
    balance = closing
    if early:
        balance -= early
        writer.writerow(["", "own_payout_added_back", payout.reference, "", "", -early, balance])
    if kept:
        balance -= int(kept)
        writer.writerow(["", "kept_back_earlier", "", "", "", -int(kept), balance])
    for hold in touched:
        if hold.withheld_in == payout.id:
            balance -= hold.amount
            writer.writerow(["", "complaint_hold", hold.reference, "", "", -hold.amount, balance])
        if hold.returned_in == payout.id:
            balance += hold.amount
            writer.writerow(["", "hold_released", hold.reference, "", "", hold.amount, balance])
    writer.writerow(["", "payout", payout.reference, "", "", "", payout.amount])


@scheduled_job("merchants.daily_settlement", trigger=cron(hour=1, minute=30), period=DAILY)
async def daily_settlement(ctx: JobContext) -> None:
    """At 01:30 local, settle the day before (each merchant at most once per day, see the module docs)."""
    day = ctx.local_time.date() - timedelta(days=1)
    await settle_day(ctx.db, day)
