"""Auto-pay mandates and due-soon reminders.

A citizen confirms a mandate once, with the payment PIN, on one saved customer code: "pay its bills
``days_before`` the due date, each up to ``max_amount``". From then on the daily job pays each such bill on
the mandate's authority: the payment row (``bill_payments.mandate_id``) and the journal entry's metadata
(``authority: mandate:{id}``) carry the mandate instead of a PIN check; identity level, limits and funds are
checked as for any payment.

Once per bill, whatever the number of workers: each (mandate, bill) is claimed by inserting its
``autopay_runs`` row in the payment's own transaction. A second worker's insert of the same pair waits for
the first transaction (PostgreSQL: the unique index; SQLite: the single writer) and then does nothing. A
refused payment rolls back with its claim; its failure is then recorded by a second insert of the same
pair (status ``failed``), and only the worker whose insert lands tells the citizen. The bill's row lock in
:func:`app.bills.payments.pay_bills` is the last line: a bill is never paid twice, even by two mandates of
two family members on the same household code (the second finds it paid and records ``skipped``).

Failures told to the inbox: ``amount_above_max`` (the bill exceeds the mandate's maximum),
``insufficient_funds``, ``limit_exceeded``, and any other refusal by its code. A failed bill is not retried
by the job: the citizen pays it by hand (one tap) after the notice.

Reminders: every unpaid household bill of a saved code due within ``AUTOPAY_REMINDER_DAYS`` days is
announced once per citizen and bill (``bill_reminders`` unique pair), saying whether a mandate will pay it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.bills.autopay_models import AutopayMandate, AutopayRun, BillReminder
from app.bills.autopay_schemas import MandateView
from app.bills.errors import MANDATE_NOT_FOUND, SAVED_CODE_NOT_FOUND
from app.bills.models import Bill, Biller, SavedCustomerCode
from app.bills.payments import MandateAuthority, PayItem, pay_bills
from app.bills.receipts import money_vi
from app.core.db import Database, utcnow
from app.core.errors import AppError
from app.core.scheduler import DAILY, JobContext, cron, scheduled_job
from app.core.settings import KeyRing
from app.identity.inbox import post_notification
from app.identity.service import verify_payment_pin
from app.wallet import service as wallet

__all__ = [
    "AMOUNT_ABOVE_MAX",
    "AutopayReport",
    "cancel_mandate",
    "confirm_mandate",
    "list_mandates",
    "run_autopay",
    "send_reminders",
]

log = structlog.get_logger("app.bills.autopay")

AMOUNT_ABOVE_MAX = "amount_above_max"
_SILENT = frozenset({"bill_already_paid", "bill_not_payable", "bill_not_found"})
"""Refusals that mean "nothing to do" (someone paid it, the biller withdrew it): recorded, not told."""

Pause = Callable[[uuid.UUID, uuid.UUID], Awaitable[None]]
"""A test hook called inside a run's transaction right after its claim: (mandate id, bill id)."""


def _view(mandate: AutopayMandate, biller_code: str) -> MandateView:
    return MandateView(
        id=mandate.id,
        saved_code_id=mandate.saved_code_id,
        biller_code=biller_code,
        customer_code=mandate.customer_code,
        days_before=mandate.days_before,
        max_amount=mandate.max_amount,
        status=mandate.status,  # type: ignore[arg-type]
        confirmed_at=mandate.confirmed_at,
        cancelled_at=mandate.cancelled_at,
    )


async def confirm_mandate(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    saved_code_id: uuid.UUID,
    days_before: int,
    max_amount: int,
    pin: str,
) -> MandateView:
    """Create (or change, or reactivate) the mandate on one of the citizen's saved codes, confirmed with the
    PIN now. Needs identity level 2 and an open wallet, as any payment would."""
    saved = await session.get(SavedCustomerCode, saved_code_id)
    if saved is None or saved.user_id != user_id:
        raise SAVED_CODE_NOT_FOUND()
    await wallet.require_level(session, user_id)
    await wallet.wallet_account_id(session, user_id, create=False)
    await verify_payment_pin(session, user_id, pin)
    biller = await session.get(Biller, saved.biller_id)
    assert biller is not None
    mandate = await session.scalar(
        select(AutopayMandate).where(AutopayMandate.saved_code_id == saved_code_id).with_for_update()
    )
    now = utcnow()
    if mandate is None:
        mandate = AutopayMandate(
            user_id=user_id,
            saved_code_id=saved_code_id,
            biller_id=saved.biller_id,
            customer_code=saved.customer_code,
            days_before=days_before,
            max_amount=max_amount,
            status="active",
            confirmed_at=now,
        )
        session.add(mandate)
    else:
        mandate.days_before, mandate.max_amount = days_before, max_amount
        mandate.status, mandate.confirmed_at, mandate.cancelled_at = "active", now, None
    await session.flush()
    await post_notification(
        session,
        user_id,
        "bills.autopay_confirmed",
        "Đã bật tự động thanh toán",
        f"Hóa đơn {biller.name} mã {saved.customer_code} sẽ được tự động thanh toán {days_before} ngày trước "
        f"hạn, tối đa {money_vi(max_amount)} mỗi hóa đơn.",
        title_en="Auto-pay on",
        body_en=f"Bills of {biller.name} code {saved.customer_code} will be paid {days_before} day(s) before "
        f"they are due, up to {max_amount:,} VND each.",
        data={"mandate_id": str(mandate.id)},
    )
    return _view(mandate, biller.code)


async def list_mandates(session: AsyncSession, user_id: uuid.UUID) -> list[MandateView]:
    """The citizen's mandates, newest first."""
    rows = await session.execute(
        select(AutopayMandate, Biller.code)
        .join(Biller, Biller.id == AutopayMandate.biller_id)
        .where(AutopayMandate.user_id == user_id)
        .order_by(AutopayMandate.created_at.desc())
    )
    return [_view(mandate, code) for mandate, code in rows.all()]


async def cancel_mandate(session: AsyncSession, user_id: uuid.UUID, mandate_id: uuid.UUID) -> MandateView:
    """Stop a mandate (no PIN needed to stop paying); cancelling a cancelled one returns it."""
    mandate = await session.get(AutopayMandate, mandate_id, with_for_update=True)
    if mandate is None or mandate.user_id != user_id:
        raise MANDATE_NOT_FOUND()
    if mandate.status == "active":
        mandate.status, mandate.cancelled_at = "cancelled", utcnow()
        await session.flush()
    biller = await session.get(Biller, mandate.biller_id)
    return _view(mandate, biller.code if biller is not None else "")


# --- the daily job ----------------------------------------------------------------------------------------


class AutopayReport:
    """What one run did (for logs and tests)."""

    def __init__(self) -> None:
        self.paid: list[uuid.UUID] = []
        self.failed: list[tuple[uuid.UUID, str]] = []
        self.skipped: list[uuid.UUID] = []
        self.claimed_elsewhere: list[uuid.UUID] = []


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


async def _claim(
    session: AsyncSession, mandate_id: uuid.UUID, bill_id: uuid.UUID, status: str, code: str | None
) -> bool:
    insert = _insert(session)
    found = await session.execute(
        insert(AutopayRun)
        .values(
            id=uuid.uuid4(),
            created_at=utcnow(),
            mandate_id=mandate_id,
            bill_id=bill_id,
            status=status,
            error_code=code,
        )
        .on_conflict_do_nothing(index_elements=["mandate_id", "bill_id"])
        .returning(AutopayRun.id)
    )
    return found.scalar_one_or_none() is not None


async def _due_pairs(db: Database, today: date) -> list[tuple[AutopayMandate, Bill, str]]:
    """(mandate, bill, biller name) for every unpaid bill an active mandate should pay by ``today``."""
    async with db.read() as session:
        rows = await session.execute(
            select(AutopayMandate, Bill, Biller.name)
            .join(
                Bill,
                and_(
                    Bill.biller_id == AutopayMandate.biller_id,
                    Bill.customer_code == AutopayMandate.customer_code,
                ),
            )
            .join(Biller, Biller.id == Bill.biller_id)
            .outerjoin(
                AutopayRun, and_(AutopayRun.mandate_id == AutopayMandate.id, AutopayRun.bill_id == Bill.id)
            )
            .where(
                AutopayMandate.status == "active",
                Bill.status == "unpaid",
                Bill.owner_user_id.is_(None),
                Bill.due_date.is_not(None),
                AutopayRun.id.is_(None),
                Biller.active.is_(True),
            )
            .order_by(Bill.due_date, Bill.id)
        )
        return [
            (mandate, bill, name)
            for mandate, bill, name in rows.all()
            if bill.due_date is not None and bill.due_date - timedelta(days=mandate.days_before) <= today
        ]


async def run_autopay(
    db: Database, receipt_keys: KeyRing, today: date, *, pause: Pause | None = None
) -> AutopayReport:
    """Pay every bill due under an active mandate by ``today`` (local day), each once (module docstring)."""
    report = AutopayReport()
    for mandate, bill, biller_name in await _due_pairs(db, today):
        error: AppError | None = None
        try:
            async with db.transaction() as session:
                if not await _claim(session, mandate.id, bill.id, "paid", None):
                    report.claimed_elsewhere.append(bill.id)
                    continue
                if pause is not None:
                    await pause(mandate.id, bill.id)
                current = await session.get(AutopayMandate, mandate.id)
                if current is None or current.status != "active":
                    raise _CancelledError()
                if bill.amount > current.max_amount:
                    raise _AboveMaxError()
                view = await pay_bills(
                    session,
                    caller=None,
                    pin=None,
                    items=[PayItem(bill.id)],
                    receipt_keys=receipt_keys,
                    mandate=MandateAuthority(mandate.user_id, mandate.id),
                )
                run = await session.scalar(
                    select(AutopayRun).where(
                        AutopayRun.mandate_id == mandate.id, AutopayRun.bill_id == bill.id
                    )
                )
                assert run is not None
                run.payment_id = view.id
            report.paid.append(bill.id)
            continue
        except _CancelledError:
            continue
        except _AboveMaxError:
            code = AMOUNT_ABOVE_MAX
        except AppError as exc:
            error = exc
            code = exc.kind.code
        await _record_failure(db, mandate, bill, biller_name, code, error, report)
    log.info(
        "autopay_ran",
        day=today.isoformat(),
        paid=len(report.paid),
        failed=len(report.failed),
        skipped=len(report.skipped),
        claimed_elsewhere=len(report.claimed_elsewhere),
    )
    return report


class _AboveMaxError(Exception):
    pass


class _CancelledError(Exception):
    pass


async def _record_failure(
    db: Database,
    mandate: AutopayMandate,
    bill: Bill,
    biller_name: str,
    code: str,
    error: AppError | None,
    report: AutopayReport,
) -> None:
    silent = code in _SILENT
    async with db.transaction() as session:
        if not await _claim(session, mandate.id, bill.id, "skipped" if silent else "failed", code):
            report.claimed_elsewhere.append(bill.id)
            return
        if silent:
            report.skipped.append(bill.id)
            return
        report.failed.append((bill.id, code))
        why_vi, why_en = _why(code, bill, mandate, error)
        await post_notification(
            session,
            mandate.user_id,
            "bills.autopay_failed",
            "Tự động thanh toán không thành công",
            f"Hóa đơn {biller_name} kỳ {bill.period} ({money_vi(bill.amount)}) chưa được thanh toán: "
            f"{why_vi}. "
            "Bạn hãy thanh toán trong ứng dụng trước hạn.",
            title_en="Auto-pay did not go through",
            body_en=f"The {biller_name} bill for {bill.period} ({bill.amount:,} VND) was not paid: {why_en}. "
            "Please pay it in the app before it is due.",
            data={"mandate_id": str(mandate.id), "bill_id": str(bill.id), "reason": code},
        )


def _why(code: str, bill: Bill, mandate: AutopayMandate, error: AppError | None) -> tuple[str, str]:
    if code == AMOUNT_ABOVE_MAX:
        return (
            f"số tiền vượt mức tối đa {money_vi(mandate.max_amount)} bạn đã đặt",
            f"it is above the maximum of {mandate.max_amount:,} VND you set",
        )
    if code == "insufficient_funds":
        return "số dư ví không đủ", "your wallet balance is not enough"
    if code == "limit_exceeded":
        return "vượt hạn mức giao dịch của ví", "it is above your wallet's limits"
    return (error.detail_vi if error else code), (error.detail_en if error else code)


async def send_reminders(db: Database, today: date, *, days: int) -> int:
    """Tell each citizen once about each unpaid bill of their saved codes due within ``days`` days."""
    async with db.read() as session:
        rows = (
            await session.execute(
                select(
                    SavedCustomerCode.user_id,
                    Bill,
                    Biller.name,
                    SavedCustomerCode.nickname,
                    AutopayMandate.id,
                )
                .join(
                    Bill,
                    and_(
                        Bill.biller_id == SavedCustomerCode.biller_id,
                        Bill.customer_code == SavedCustomerCode.customer_code,
                    ),
                )
                .join(Biller, Biller.id == Bill.biller_id)
                .outerjoin(
                    AutopayMandate,
                    and_(
                        AutopayMandate.saved_code_id == SavedCustomerCode.id,
                        AutopayMandate.status == "active",
                    ),
                )
                .outerjoin(
                    BillReminder,
                    and_(BillReminder.user_id == SavedCustomerCode.user_id, BillReminder.bill_id == Bill.id),
                )
                .where(
                    Bill.status == "unpaid",
                    Bill.owner_user_id.is_(None),
                    Bill.due_date.is_not(None),
                    Bill.due_date >= today,
                    Bill.due_date <= today + timedelta(days=days),
                    BillReminder.id.is_(None),
                )
            )
        ).all()
    sent = 0
    for user_id, bill, biller_name, nickname, mandate_id in rows:
        async with db.transaction() as session:
            insert = _insert(session)
            claimed = (
                await session.execute(
                    insert(BillReminder)
                    .values(id=uuid.uuid4(), created_at=utcnow(), user_id=user_id, bill_id=bill.id)
                    .on_conflict_do_nothing(index_elements=["user_id", "bill_id"])
                    .returning(BillReminder.id)
                )
            ).scalar_one_or_none()
            if claimed is None:
                continue
            due = bill.due_date.strftime("%d/%m/%Y") if bill.due_date else ""
            auto_vi = " Hóa đơn sẽ được tự động thanh toán." if mandate_id else ""
            auto_en = " It will be paid automatically." if mandate_id else ""
            await post_notification(
                session,
                user_id,
                "bills.due_soon",
                "Hóa đơn sắp đến hạn",
                f"{nickname}: hóa đơn {biller_name} kỳ {bill.period} {money_vi(bill.amount)} "
                f"đến hạn ngày {due}." + auto_vi,
                title_en="Bill due soon",
                body_en=f"{nickname}: the {biller_name} bill for {bill.period}, {bill.amount:,} VND, "
                f"is due on "
                f"{due}." + auto_en,
                data={"bill_id": str(bill.id), "autopay": bool(mandate_id)},
            )
            sent += 1
    return sent


@scheduled_job("bills.autopay_and_reminders", trigger=cron(hour=6, minute=0), period=DAILY)
async def autopay_job(ctx: JobContext) -> None:
    """Every morning (06:00 Huế): pay what mandates cover, then remind citizens of bills due soon."""
    today = ctx.local_time.date()
    await run_autopay(ctx.db, ctx.settings.receipt_keys, today)
    sent = await send_reminders(ctx.db, today, days=ctx.settings.autopay_reminder_days)
    log.info("bill_reminders_sent", sent=sent, day=today.isoformat())
