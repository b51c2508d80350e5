"""Daily settlement of what was collected for others: each biller's payable to its bank account, and each
agency's public-service fees and charges to its State Treasury account.

One settlement per payable account and business day (Asia/Ho_Chi_Minh), unique, so a second run of the
same day (another worker, a restart) settles nothing twice. For day D and one payable account:

- ``collected``: the account's movements from bills (each bill paid, each refund) up to the end of D that
  no settlement has included yet (``settlement_items``, unique per movement): the day's own, plus any
  committed late after an earlier day was settled; when nothing is late, exactly the ledger's postings of
  the account in D other than payouts;
- ``held``: complaint holds still open at the cut-off that no settlement has withheld yet (minus), and holds
  withheld earlier and released since (plus) (:mod:`app.wallet.payout_holds`);
- ``carried``: the amounts of earlier days not paid (a net debt left by refunds, a failed payout);
- ``amount = collected - held + carried``: when positive, ONE journal entry debits the payable and credits
  the guarantee-bank mirror (the money leaves the guarantee account), and the payout is sent through the
  bank-transfer interface; otherwise nothing is paid and the amount is carried to the next day.

The remittance file (CSV, stored with the row) has one line per bill paid or refunded (for the treasury,
one per fee line, with procedure, agency, dossier code and fee code), one per hold withheld or returned and
one per carried amount; its lines add up to ``amount``.

A payout is never sent twice: the row, its reference and the journal entry are committed first, then the
order is sent with that reference. :class:`BankUnavailableError` leaves it ``unknown``; the resolver asks
``status(reference)`` later (and resends only what the bank never received). A definitive failure posts
the reversal entry and the amount is carried to the next day.
"""

from __future__ import annotations

import csv
import io
import secrets
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.bills.clock import VN_TZ
from app.bills.settlement_feed import Movement, Payee, payable_movements, payees
from app.core import audit
from app.core.bank_transfer import (
    BankTransferRejectedError,
    BankTransfers,
    BankUnavailableError,
    TransferNotFoundError,
    TransferOrder,
    TransferResult,
    TransferStatus,
)
from app.core.db import Database, utcnow
from app.services.fee_remittance import fee_remittance_info
from app.settlement.models import Settlement, SettlementItem
from app.wallet import ledger
from app.wallet.ledger import AccountType, Entry, credit, debit
from app.wallet.models import LedgerEntry, LedgerPosting
from app.wallet.payout_holds import PayoutHold, holds_at_cutoff

__all__ = [
    "PAYOUT_KINDS",
    "day_window",
    "held_now",
    "ledger_movement",
    "resolve_payouts",
    "settle_day",
]

log = structlog.get_logger("app.settlement")

LOOKBACK_DAYS = 35
"""How far back the first settlement of an account looks for movements."""
PAYOUT_KINDS = ("settlement_payout", "settlement_reversal")
"""Journal entry kinds of payouts: not part of a day's collected movements."""
_OPEN = ("sending", "unknown", "pending")
_BILLER_HEADER = [
    "line",
    "type",
    "biller_code",
    "customer_code",
    "bill_id",
    "bill_external_id",
    "period",
    "payment_reference",
    "time_local",
    "amount",
]
_TREASURY_HEADER = [
    "line",
    "type",
    "procedure_code",
    "agency_code",
    "dossier_code",
    "fee_code",
    "fee_kind",
    "payment_reference",
    "time_local",
    "amount",
]


def day_window(day: date) -> tuple[datetime, datetime]:
    """The UTC instants bounding the Asia/Ho_Chi_Minh day ``day``."""
    start = datetime.combine(day, time.min, tzinfo=VN_TZ)
    return start, datetime.combine(day + timedelta(days=1), time.min, tzinfo=VN_TZ)


async def ledger_movement(session: AsyncSession, account_id: uuid.UUID, day: date) -> int:
    """The sum of the ledger's postings on ``account_id`` during ``day``, payouts left out: what that day's
    remittance lines of collected money must add up to."""
    start, end = day_window(day)
    total = await session.scalar(
        select(func.coalesce(func.sum(LedgerPosting.amount), 0))
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .where(
            LedgerPosting.account_id == account_id,
            LedgerPosting.created_at >= start,
            LedgerPosting.created_at < end,
            LedgerEntry.kind.not_in(PAYOUT_KINDS),
        )
    )
    return int(total or 0)


@dataclass
class _Line:
    type: str
    amount: int
    fields: dict[str, str]
    at: datetime | None = None


def _local(at: datetime | None) -> str:
    return at.astimezone(VN_TZ).strftime("%Y-%m-%d %H:%M:%S") if at else ""


async def _bill_lines(session: AsyncSession, payee: Payee, moves: Sequence[Movement]) -> list[_Line]:
    if payee.kind == "biller":
        return [
            _Line(
                m.kind,
                m.amount,
                {
                    "biller_code": m.biller_code,
                    "customer_code": m.customer_code,
                    "bill_id": str(m.bill_id),
                    "bill_external_id": m.external_id,
                    "period": m.period,
                    "payment_reference": m.payment_reference,
                },
                m.at,
            )
            for m in moves
        ]
    info = await fee_remittance_info(session, {m.customer_code for m in moves})
    lines: list[_Line] = []
    for m in moves:
        dossier = info.get(m.customer_code)
        base = {
            "agency_code": payee.code,
            "dossier_code": m.customer_code,
            "payment_reference": m.payment_reference,
            "procedure_code": dossier.procedure_code if dossier else "",
        }
        fee_lines = dossier.lines if dossier else ()
        if m.kind == "bill_payment" and fee_lines and sum(f.amount for f in fee_lines) == m.amount:
            lines.extend(
                _Line(m.kind, f.amount, {**base, "fee_code": f.code, "fee_kind": f.kind}, m.at)
                for f in fee_lines
            )
        else:
            case = dossier.case_code if dossier else ""
            lines.append(_Line(m.kind, m.amount, {**base, "fee_code": case, "fee_kind": "fee"}, m.at))
    return lines


def _csv(kind: str, lines: Sequence[_Line], total: int) -> str:
    header = _BILLER_HEADER if kind == "biller" else _TREASURY_HEADER
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for number, line in enumerate(lines, start=1):
        row = {**line.fields, "line": str(number), "type": line.type, "time_local": _local(line.at)}
        row["amount"] = str(line.amount)
        writer.writerow([row.get(column, "") for column in header])
    writer.writerow(["", "total", *[""] * (len(header) - 3), str(total)])
    return out.getvalue()


async def _prepare(
    session: AsyncSession, payee: Payee, day: date
) -> tuple[Settlement, TransferOrder | None] | None:
    _start, end = day_window(day)
    exists = await session.scalar(
        select(Settlement.id).where(Settlement.account_id == payee.account_id, Settlement.business_day == day)
    )
    if exists is not None:
        return None
    last_day = await session.scalar(
        select(func.max(Settlement.business_day)).where(Settlement.account_id == payee.account_id)
    )
    # Scan from the day before the last settled one (movements committed late), or a month back at first.
    since = day_window(last_day - timedelta(days=1))[0] if last_day else end - timedelta(days=LOOKBACK_DAYS)
    candidates = await payable_movements(session, payee.account_id, since, end)
    settled: set[uuid.UUID] = set()
    for chunk_start in range(0, len(candidates), 500):
        chunk = [m.source_id for m in candidates[chunk_start : chunk_start + 500]]
        settled.update(
            await session.scalars(select(SettlementItem.source_id).where(SettlementItem.source_id.in_(chunk)))
        )
    moves = [m for m in candidates if m.source_id not in settled]
    lines = await _bill_lines(session, payee, moves)
    holds = await holds_at_cutoff(session, payee.account_id, end)
    withheld, returned = holds.withheld, holds.returned
    earlier = list(
        await session.scalars(
            select(Settlement)
            .where(
                Settlement.account_id == payee.account_id,
                Settlement.business_day < day,
                Settlement.status.in_(("no_payout", "failed")),
                Settlement.carried_into.is_(None),
                Settlement.amount != 0,
            )
            .order_by(Settlement.business_day)
            .with_for_update()
        )
    )
    lines += [
        _Line("complaint_hold", -h.amount, {"payment_reference": h.reference}, h.created_at) for h in withheld
    ]
    lines += [
        _Line("hold_released", h.amount, {"payment_reference": h.reference}, h.released_at) for h in returned
    ]
    lines += [
        _Line("carried", s.amount, {"payment_reference": s.reference, "period": s.business_day.isoformat()})
        for s in earlier
    ]
    if not lines:
        return None
    collected = sum(m.amount for m in moves)
    held = holds.net
    carried = sum(s.amount for s in earlier)
    amount = collected - held + carried
    assert amount == sum(line.amount for line in lines)
    reference = f"ST{day:%y%m%d}{secrets.token_hex(8).upper()}"
    settlement = Settlement(
        kind=payee.kind,
        payee_code=payee.code,
        account_id=payee.account_id,
        business_day=day,
        status="sending" if amount > 0 else "no_payout",
        collected=collected,
        held=held,
        carried=carried,
        amount=amount,
        reference=reference,
        bank_bin=payee.bank_bin,
        account_number=payee.account_number,
        account_name=payee.account_name,
        lines=len(lines),
        file_name=f"{'remittance' if payee.kind == 'biller' else 'treasury'}-{payee.code}-{day:%Y%m%d}.csv",
        file_csv=_csv(payee.kind, lines, amount),
    )
    session.add(settlement)
    await session.flush()
    session.add_all(
        SettlementItem(
            settlement_id=settlement.id, source_kind=m.kind, source_id=m.source_id, amount=m.amount
        )
        for m in moves
    )
    await session.flush()
    order = None
    if amount > 0:
        bank = ledger.system_account(AccountType.GUARANTEE_BANK)
        posted = await ledger.post(
            session,
            Entry(
                kind="settlement_payout",
                postings=[debit(payee.account_id, amount), credit(bank, amount)],
                reference=reference,
                description=f"Quyết toán {payee.code} ngày {day:%d/%m/%Y}",
                metadata={"settlement_id": str(settlement.id), "payee": payee.code, "kind": payee.kind},
            ),
        )
        settlement.entry_id = posted.entry_id
        order = TransferOrder(
            reference=reference,
            bank_bin=payee.bank_bin,
            account_number=payee.account_number,
            account_name=payee.account_name,
            amount=amount,
            description=f"HUES {payee.code} {day:%Y%m%d}",
        )
    await holds.mark(session, settlement.id)
    for previous in earlier:
        previous.carried_into = settlement.id
    await audit.record(
        session,
        actor=None,
        action="settlement.created",
        object_type="settlement",
        object_id=settlement.id,
        details={"payee": payee.code, "kind": payee.kind, "day": day.isoformat(), "amount": amount},
    )
    return settlement, order


async def settle_day(
    db: Database,
    bank: BankTransfers,
    day: date,
    *,
    kinds: Sequence[str] = ("biller", "treasury"),
    pause: Callable[[str], Awaitable[None]] | None = None,
) -> list[uuid.UUID]:
    """Settle every payee of ``kinds`` for the local day ``day``; returns the settlements created.
    ``pause(payee code)`` (tests) runs inside each settlement's transaction, before its commit."""
    async with db.transaction() as session:
        targets = [p for p in await payees(session) if p.kind in kinds]
    created: list[uuid.UUID] = []
    for payee in targets:
        try:
            async with db.transaction() as session:
                prepared = await _prepare(session, payee, day)
                if prepared is not None and pause is not None:
                    await pause(payee.code)
        except IntegrityError:  # another worker settled this account and day first
            continue
        if prepared is None:
            continue
        settlement, order = prepared
        created.append(settlement.id)
        if order is not None:
            await _send(db, bank, settlement.id, order)
    log.info("settled", day=day.isoformat(), settlements=len(created))
    return created


async def _send(db: Database, bank: BankTransfers, settlement_id: uuid.UUID, order: TransferOrder) -> None:
    try:
        result = await bank.send(order)
    except BankUnavailableError:
        await _apply(db, settlement_id, None, unknown=True)
        return
    except BankTransferRejectedError as exc:
        result = TransferResult(order.reference, TransferStatus.FAILED, None, f"rejected: {exc}"[:200])
    await _apply(db, settlement_id, result)


async def _apply(
    db: Database, settlement_id: uuid.UUID, result: TransferResult | None, *, unknown: bool = False
) -> None:
    async with db.transaction() as session:
        settlement = await session.get(Settlement, settlement_id, with_for_update=True)
        if settlement is None or settlement.status not in _OPEN:
            return
        now = utcnow()
        settlement.sent_at = settlement.sent_at or now
        if unknown or result is None:
            settlement.status = "unknown"
            return
        settlement.bank_reference = result.bank_reference or settlement.bank_reference
        if result.status is TransferStatus.PENDING:
            settlement.status = "pending"
            return
        settlement.finished_at = now
        if result.status is TransferStatus.SUCCEEDED:
            settlement.status = "succeeded"
        else:
            settlement.status = "failed"
            settlement.failure_reason = (result.failure_reason or "failed")[:200]
            if settlement.entry_id is not None:
                reversal = await ledger.reverse(
                    session,
                    settlement.entry_id,
                    kind="settlement_reversal",
                    description=f"Hoàn quyết toán thất bại {settlement.reference}",
                )
                settlement.reversal_entry_id = reversal.entry_id
        await audit.record(
            session,
            actor=None,
            action=f"settlement.{settlement.status}",
            object_type="settlement",
            object_id=settlement.id,
            details={"reference": settlement.reference, "amount": settlement.amount},
        )


async def resolve_payouts(db: Database, bank: BankTransfers) -> int:
    """Ask the bank about every payout whose outcome we do not know yet; resend those it never received."""
    async with db.read() as session:
        rows = list(await session.scalars(select(Settlement).where(Settlement.status.in_(_OPEN))))
    for settlement in rows:
        try:
            result = await bank.status(settlement.reference)
        except TransferNotFoundError:
            await _send(
                db,
                bank,
                settlement.id,
                TransferOrder(
                    reference=settlement.reference,
                    bank_bin=settlement.bank_bin,
                    account_number=settlement.account_number,
                    account_name=settlement.account_name,
                    amount=settlement.amount,
                    description=f"HUES {settlement.payee_code} {settlement.business_day:%Y%m%d}",
                ),
            )
            continue
        except BankUnavailableError:
            continue
        await _apply(db, settlement.id, result)
    return len(rows)


async def held_now(session: AsyncSession, account_id: uuid.UUID) -> int:
    """Đồng of ``account_id`` under active payout holds (for reports)."""
    total = await session.scalar(
        select(func.coalesce(func.sum(PayoutHold.amount), 0)).where(
            PayoutHold.account_id == account_id, PayoutHold.released_at.is_(None)
        )
    )
    return int(total or 0)
