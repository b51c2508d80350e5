"""Complaints on payments: logged -> in_review -> resolved (with a refund) or rejected; an SLA in working
days with escalation; a payout hold on the payee while open.

- Opening (the citizen who paid): the payment is loaded through its kind's loader (:mod:`registry`) and
  must be the caller's (otherwise 404, revealing nothing); one complaint per payment; the disputed amount
  is 1 đồng up to what is still refundable. The payee's payable (bills: the biller's or the treasury's) gets
  a payout hold of the disputed amount in the same transaction, so the next settlement is short by it.
- Review, resolve, reject (admins with the ``support`` duty): each under the complaint's row lock, each
  writes a timeline row, an audit row and an inbox notification in one transaction. Resolving refunds
  through the kind's refund function (the owning module's caps hold) and releases the hold; rejecting
  releases the hold.
- SLA: ``COMPLAINT_SLA_WORKING_DAYS`` working days of the offices' calendar (holidays, swap days) from the
  logging time. The hourly job escalates each open complaint past its due time once: timeline, audit
  (system actor) and a notice to the citizen.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.bills.clock import VN_TZ as _VN
from app.complaints import kinds as _kinds  # noqa: F401 - registers the bill and transfer kinds
from app.complaints.errors import (
    COMPLAINT_EXISTS,
    COMPLAINT_NOT_FOUND,
    COMPLAINT_STATE,
    NOTHING_TO_DISPUTE,
    PAYMENT_KIND_UNKNOWN,
    PAYMENT_NOT_DISPUTABLE,
)
from app.complaints.models import Complaint, ComplaintEvent
from app.complaints.registry import payment_kind
from app.complaints.schemas import ComplaintEventView, ComplaintIn, ComplaintView
from app.core import audit
from app.core.access import ensure_visible
from app.core.db import Database, utcnow
from app.core.scheduler import HOURLY, JobContext, cron, scheduled_job
from app.core.security import Caller
from app.core.settings import Settings
from app.identity.inbox import post_notification
from app.services.service import work_calendar
from app.wallet.payout_holds import place_payout_hold, release_payout_hold

__all__ = [
    "escalate_overdue",
    "get_complaint",
    "list_complaints",
    "open_complaint",
    "reject",
    "resolve",
    "take_in_review",
]

log = structlog.get_logger("app.complaints")

OPEN = ("logged", "in_review")


def _code(now: datetime) -> str:
    return f"KN-{now:%y%m%d}-{secrets.token_hex(3).upper()}"


async def _view(session: AsyncSession, complaint: Complaint) -> ComplaintView:
    events = await session.scalars(
        select(ComplaintEvent)
        .where(ComplaintEvent.complaint_id == complaint.id)
        .order_by(ComplaintEvent.created_at, ComplaintEvent.id)
    )
    return ComplaintView(
        id=complaint.id,
        code=complaint.code,
        kind=complaint.kind,
        payment_ref=complaint.payment_ref,
        payee_name=complaint.payee_name,
        paid_amount=complaint.paid_amount,
        disputed_amount=complaint.disputed_amount,
        reason=complaint.reason,
        description=complaint.description,
        status=complaint.status,  # type: ignore[arg-type]
        due_at=complaint.due_at,
        overdue=complaint.status in OPEN and complaint.due_at < utcnow(),
        escalated_at=complaint.escalated_at,
        refund_amount=complaint.refund_amount,
        resolution_note=complaint.resolution_note,
        created_at=complaint.created_at,
        closed_at=complaint.closed_at,
        user_id=complaint.user_id,
        events=[
            ComplaintEventView(
                action=e.action,
                from_status=e.from_status,
                to_status=e.to_status,
                note=e.note,
                at=e.created_at,
            )
            for e in events
        ],
    )


def _event(
    session: AsyncSession,
    complaint: Complaint,
    action: str,
    before: str | None,
    actor_id: uuid.UUID | None,
    note: str | None,
    at: datetime,
) -> None:
    session.add(
        ComplaintEvent(
            created_at=at,
            complaint_id=complaint.id,
            action=action,
            from_status=before,
            to_status=complaint.status,
            actor_id=actor_id,
            note=note,
        )
    )


async def _notify(
    session: AsyncSession, complaint: Complaint, title: tuple[str, str], body: tuple[str, str]
) -> None:
    await post_notification(
        session,
        complaint.user_id,
        "complaints.status_changed",
        title[0],
        body[0],
        title_en=title[1],
        body_en=body[1],
        data={"complaint_id": str(complaint.id), "status": complaint.status},
    )


async def open_complaint(
    session: AsyncSession, settings: Settings, caller: Caller, data: ComplaintIn
) -> ComplaintView:
    """Log the caller's complaint about one of their payments (module docstring)."""
    kind = payment_kind(data.kind)
    if kind is None:
        raise PAYMENT_KIND_UNKNOWN(kind=data.kind)
    payment = await kind.load(session, data.payment_id)
    if payment is None or payment.payer_id != caller.user_id:
        raise PAYMENT_NOT_DISPUTABLE()
    existing = await session.scalar(
        select(Complaint.id).where(Complaint.kind == kind.name, Complaint.payment_ref == payment.ref)
    )
    if existing is not None:
        raise COMPLAINT_EXISTS(complaint_id=str(existing))
    disputed = payment.refundable if data.amount is None else data.amount
    if disputed < 1 or disputed > payment.refundable:
        raise NOTHING_TO_DISPUTE(refundable=payment.refundable)
    now = utcnow()
    calendar = await work_calendar(session, settings)
    due = calendar.add_working_days(now, settings.complaint_sla_working_days).at
    complaint = Complaint(
        created_at=now,
        updated_at=now,
        code=_code(now),
        user_id=caller.user_id,
        kind=kind.name,
        payment_ref=payment.ref,
        payee_name=payment.payee_name[:200],
        paid_amount=payment.amount,
        disputed_amount=disputed,
        reason=data.reason,
        description=data.description,
        status="logged",
        due_at=due,
    )
    session.add(complaint)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent complaint on the same payment won
        raise COMPLAINT_EXISTS() from exc
    if payment.hold_account_id is not None:
        complaint.hold_id = await place_payout_hold(
            session,
            payment.hold_account_id,
            disputed,
            reason="complaint",
            reference=f"complaint:{complaint.id}",
        )
    _event(session, complaint, "logged", None, caller.user_id, None, now)
    await _notify(
        session,
        complaint,
        ("Đã tiếp nhận khiếu nại", "Complaint received"),
        (
            f"Khiếu nại {complaint.code} về khoản thanh toán cho {complaint.payee_name} đã được tiếp nhận. "
            f"Hạn trả lời: {due.astimezone(_VN):%d/%m/%Y %H:%M}.",
            f"Complaint {complaint.code} about your payment to {complaint.payee_name} was received. "
            f"We will answer by {due.astimezone(_VN):%d/%m/%Y %H:%M}.",
        ),
    )
    await session.flush()
    return await _view(session, complaint)


async def _locked(session: AsyncSession, complaint_id: uuid.UUID) -> Complaint:
    complaint = await session.get(Complaint, complaint_id, with_for_update=True, populate_existing=True)
    if complaint is None:
        raise COMPLAINT_NOT_FOUND()
    return complaint


def _require(complaint: Complaint, *allowed: str) -> None:
    if complaint.status not in allowed:
        raise COMPLAINT_STATE(status=complaint.status)


async def take_in_review(
    session: AsyncSession, caller: Caller, complaint_id: uuid.UUID, note: str | None
) -> ComplaintView:
    """Support takes a logged complaint in review."""
    complaint = await _locked(session, complaint_id)
    _require(complaint, "logged")
    now = utcnow()
    complaint.status, complaint.updated_at = "in_review", now
    _event(session, complaint, "in_review", "logged", caller.user_id, note, now)
    await _notify(
        session,
        complaint,
        ("Khiếu nại đang được xem xét", "Complaint in review"),
        (
            f"Khiếu nại {complaint.code} đang được bộ phận hỗ trợ xem xét.",
            f"Support is reviewing complaint {complaint.code}.",
        ),
    )
    await audit.record(
        session, actor=caller, action="complaints.in_review", object_type="complaint", object_id=complaint.id
    )
    return await _view(session, complaint)


async def resolve(
    session: AsyncSession, caller: Caller, complaint_id: uuid.UUID, refund_amount: int, note: str
) -> ComplaintView:
    """Uphold a complaint: refund ``refund_amount`` through the owning module and release the hold."""
    complaint = await _locked(session, complaint_id)
    _require(complaint, "in_review")
    if refund_amount > complaint.disputed_amount:
        raise NOTHING_TO_DISPUTE(refundable=complaint.disputed_amount)
    kind = payment_kind(complaint.kind)
    if kind is None:
        raise PAYMENT_KIND_UNKNOWN(kind=complaint.kind)
    await kind.refund(session, complaint.payment_ref, refund_amount, f"complaint:{complaint.code}")
    now = utcnow()
    if complaint.hold_id is not None:
        await release_payout_hold(session, complaint.hold_id, at=now)
    complaint.status, complaint.updated_at, complaint.closed_at = "resolved", now, now
    complaint.refund_amount, complaint.resolution_note = refund_amount, note
    _event(session, complaint, "resolved", "in_review", caller.user_id, note, now)
    await _notify(
        session,
        complaint,
        ("Khiếu nại đã được giải quyết", "Complaint resolved"),
        (
            f"Khiếu nại {complaint.code}: đã hoàn {refund_amount:,} đ vào ví của bạn. {note}".replace(
                ",", "."
            ),
            f"Complaint {complaint.code}: {refund_amount:,} VND refunded to your wallet. {note}",
        ),
    )
    await audit.record(
        session,
        actor=caller,
        action="complaints.resolved",
        object_type="complaint",
        object_id=complaint.id,
        details={"refund_amount": refund_amount, "kind": complaint.kind},
    )
    return await _view(session, complaint)


async def reject(
    session: AsyncSession, caller: Caller, complaint_id: uuid.UUID, reason: str
) -> ComplaintView:
    """Reject a complaint with a reason, releasing the hold."""
    complaint = await _locked(session, complaint_id)
    _require(complaint, *OPEN)
    before = complaint.status
    now = utcnow()
    if complaint.hold_id is not None:
        await release_payout_hold(session, complaint.hold_id, at=now)
    complaint.status, complaint.updated_at, complaint.closed_at = "rejected", now, now
    complaint.resolution_note = reason
    _event(session, complaint, "rejected", before, caller.user_id, reason, now)
    await _notify(
        session,
        complaint,
        ("Khiếu nại không được chấp nhận", "Complaint rejected"),
        (
            f"Khiếu nại {complaint.code} không được chấp nhận: {reason}",
            f"Complaint {complaint.code} was rejected: {reason}",
        ),
    )
    await audit.record(
        session, actor=caller, action="complaints.rejected", object_type="complaint", object_id=complaint.id
    )
    return await _view(session, complaint)


async def get_complaint(session: AsyncSession, caller: Caller, complaint_id: uuid.UUID) -> ComplaintView:
    """The complaint, for its citizen or support (404 for anyone else)."""
    complaint = await session.get(Complaint, complaint_id)
    if complaint is None:
        raise COMPLAINT_NOT_FOUND()
    ensure_visible(caller, owner_id=complaint.user_id)
    return await _view(session, complaint)


async def list_complaints(
    session: AsyncSession,
    *,
    user_id: uuid.UUID | None = None,
    status: str | None = None,
    overdue: bool = False,
    limit: int = 50,
) -> list[ComplaintView]:
    """Complaints, newest first: one citizen's (``user_id``), or any for support, by status/overdue."""
    query = select(Complaint).order_by(Complaint.created_at.desc()).limit(limit)
    if user_id is not None:
        query = query.where(Complaint.user_id == user_id)
    if status is not None:
        query = query.where(Complaint.status == status)
    if overdue:
        query = query.where(Complaint.status.in_(OPEN), Complaint.due_at < utcnow())
    return [await _view(session, c) for c in await session.scalars(query)]


async def escalate_overdue(db: Database, now: datetime | None = None) -> int:
    """Escalate, once each, the open complaints past their due time; returns how many."""
    moment = now or utcnow()
    async with db.read() as session:
        ids = list(
            await session.scalars(
                select(Complaint.id).where(
                    Complaint.status.in_(OPEN), Complaint.due_at < moment, Complaint.escalated_at.is_(None)
                )
            )
        )
    done = 0
    for complaint_id in ids:
        at = utcnow()
        async with db.transaction() as session:
            claimed = await session.execute(
                update(Complaint)
                .where(
                    Complaint.id == complaint_id, Complaint.escalated_at.is_(None), Complaint.status.in_(OPEN)
                )
                .values(escalated_at=at, updated_at=at)
                .execution_options(synchronize_session=False)
            )
            if not claimed.rowcount:  # type: ignore[attr-defined]
                continue
            complaint = await session.get(Complaint, complaint_id)
            assert complaint is not None
            _event(session, complaint, "escalated", complaint.status, None, "SLA overdue", at)
            await _notify(
                session,
                complaint,
                ("Khiếu nại đã được chuyển cấp trên", "Complaint escalated"),
                (
                    f"Khiếu nại {complaint.code} chưa được giải quyết đúng hạn "
                    "và đã được chuyển lên cấp quản lý.",
                    f"Complaint {complaint.code} is past its due date and was escalated to a manager.",
                ),
            )
            await audit.record(
                session,
                actor=None,
                action="complaints.escalated",
                object_type="complaint",
                object_id=complaint.id,
                details={
                    "due_at": complaint.due_at.isoformat(),
                    "overdue_by_s": int((moment - complaint.due_at) / timedelta(seconds=1)),
                },
            )
            done += 1
    return done


@scheduled_job("complaints.escalate_overdue", trigger=cron(minute=5), period=HOURLY)
async def escalate_job(ctx: JobContext) -> None:
    """Every hour: escalate open complaints past their SLA."""
    escalated = await escalate_overdue(ctx.db)
    log.info("complaints_escalated", escalated=escalated)
