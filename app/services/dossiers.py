"""Dossiers (hồ sơ): the citizen's application, the officers' workflow across agencies, the clock and fees.

Every change of status asks ``workflow.check_transition`` first (409 ``illegal_transition``), writes a
timeline entry (actor, role, time, note) and an audit row (last in the transaction). Who may see a dossier:
its applicant (``/me`` routes); officers of the agency holding it now; admins with the ``support`` duty
(read only). Anyone else gets 404, as if it did not exist.

Fees: a fee collected first is issued as a bill owned by the applicant at acceptance (``paying``); the
``BillsPaid`` subscriber (same transaction as the payment) starts the clock at the payment time. A fee
collected after processing is billed at approval and its payment releases the result.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.bills.errors import BILLER_NOT_FOUND
from app.bills.events import BillsPaid
from app.bills.refunds import cancel_unpaid_bill, refund_paid_bill
from app.bills.schemas import BillerIn, CustomerInput, SettlementAccount
from app.bills.service import get_biller, issue_bill, save_biller
from app.core.access import ensure_visible
from app.core.audit import AuditActor, record
from app.core.db import Database, database_of, utcnow
from app.core.errors import NOT_FOUND, VALIDATION_FAILED, AppError
from app.core.events import publish, subscribe
from app.core.security import Caller
from app.core.settings import Settings
from app.identity.inbox import post_notification
from app.services.calendar import WorkCalendar, classify
from app.services.documents import CheckedFile, FileStore
from app.services.dossier_models import (
    Dossier,
    DossierAttachment,
    DossierCounter,
    DossierEvent,
    StoredDocument,
)
from app.services.dossier_schemas import (
    AttachmentOut,
    DocumentOut,
    DossierOut,
    DossierPage,
    DossierSummary,
    QueueFilter,
    TimelineEntry,
)
from app.services.errors import (
    DOSSIER_INCOMPLETE,
    DOSSIER_LOCKED,
    FEE_NOT_CONFIGURED,
    ILLEGAL_TRANSITION,
    NO_NEXT_AGENCY,
    UNKNOWN_AGENCY,
    UNKNOWN_FEE_CASE,
)
from app.services.events import ResultIssued
from app.services.models import Agency
from app.services.schemas import FeeCase
from app.services.service import get_procedure, work_calendar
from app.services.workflow import STATUSES, Actor, DossierStatus, FeeDue, check_transition

__all__ = [
    "FEE_BILLER_PREFIX",
    "accept",
    "approve",
    "attach_existing",
    "attach_upload",
    "create_dossier",
    "deny",
    "document_content",
    "ensure_fee_biller",
    "fee_biller_code",
    "get_for_applicant",
    "get_for_officer",
    "list_documents",
    "list_mine",
    "officer_document_content",
    "process",
    "queue",
    "request_supplement",
    "resubmit",
    "set_fee_after",
    "stop",
    "store_document",
    "submit",
    "transfer",
    "withdraw",
]

S = DossierStatus
HUE = ZoneInfo("Asia/Ho_Chi_Minh")
DRAFT = "draft"
FEE_BILLER_PREFIX = "PSF_"
TREASURY_SETTLEMENT_BIN = "970415"
"""Bank BIN of the collecting bank used for default per-agency fee billers (VietinBank, a common State
Treasury collection partner). Admins replace the biller's settlement with the province's real one."""
_RUNNING = (S.NEW.value, S.PROCESSING.value)


# --- helpers --------------------------------------------------------------------------------------------


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _calendar_settings(session: AsyncSession) -> Settings:
    db = database_of(session)
    if db is None:
        raise RuntimeError("a dossier session must come from a Database")
    return db.settings


async def _calendar(session: AsyncSession) -> WorkCalendar:
    return await work_calendar(session, _calendar_settings(session))


async def _next_code(session: AsyncSession, agency: str, at: datetime) -> str:
    """``{agency}-{yyMMdd}-{NNNN}``; the counter row is claimed atomically (upsert + RETURNING)."""
    day = at.astimezone(HUE).date()
    statement = (
        _insert(session)(DossierCounter)
        .values(agency_code=agency, day=day, last=1)
        .on_conflict_do_update(
            index_elements=[DossierCounter.agency_code, DossierCounter.day],
            set_={"last": DossierCounter.last + 1},
        )
        .returning(DossierCounter.last)
    )
    number = (await session.execute(statement)).scalar_one()
    return f"{agency}-{day:%y%m%d}-{number:04d}"


def _not_found() -> Exception:
    return NOT_FOUND("Không tìm thấy hồ sơ", "No such dossier")


async def _load(session: AsyncSession, dossier_id: uuid.UUID, *, lock: bool = False) -> Dossier:
    query = select(Dossier).where(Dossier.id == dossier_id)
    if lock:
        query = query.with_for_update()
    dossier = await session.scalar(query)
    if dossier is None:
        raise _not_found()
    return dossier


async def _mine(
    session: AsyncSession, caller: Caller, dossier_id: uuid.UUID, *, lock: bool = False
) -> Dossier:
    dossier = await _load(session, dossier_id, lock=lock)
    if dossier.applicant_id != caller.user_id:
        raise _not_found()
    return dossier


async def _held(
    session: AsyncSession, caller: Caller, dossier_id: uuid.UUID, *, lock: bool = True
) -> Dossier:
    """A dossier the caller, an officer, may act on: held by the caller's agency now."""
    dossier = await _load(session, dossier_id, lock=lock)
    if (
        not (
            caller.has_role("officer")
            and caller.agency_id is not None
            and caller.agency_id == dossier.agency_code
        )
        or dossier.status == DRAFT
    ):
        raise _not_found()
    return dossier


def _fee_due(dossier: Dossier) -> FeeDue | None:
    return dossier.fee_collection if dossier.fee_collection in ("first", "after") else None  # type: ignore[return-value]


def _move(
    session: AsyncSession,
    dossier: Dossier,
    target: DossierStatus,
    actor: Actor,
    actor_id: uuid.UUID | None,
    *,
    note: str | None = None,
    at: datetime | None = None,
    details: dict[str, Any] | None = None,
) -> str:
    """Check and take a transition, and write its timeline entry; returns the action's name."""
    edge = check_transition(dossier.status, target, actor, fee_due=_fee_due(dossier))
    _event(session, dossier, edge.action, target.value, actor, actor_id, note=note, at=at, details=details)
    dossier.status = target.value
    return edge.action


def _event(
    session: AsyncSession,
    dossier: Dossier,
    action: str,
    to_status: str,
    actor: str,
    actor_id: uuid.UUID | None,
    *,
    note: str | None = None,
    at: datetime | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        DossierEvent(
            dossier_id=dossier.id,
            action=action,
            from_status=dossier.status,
            to_status=to_status,
            actor_id=actor_id,
            actor_role=actor,
            agency_code=dossier.agency_code,
            note=note,
            details=details,
            at=at or utcnow(),
        )
    )


async def _audit(
    session: AsyncSession, actor: Caller | AuditActor, action: str, dossier: Dossier, **details: Any
) -> None:
    await record(
        session,
        actor=actor,
        action=f"services.dossier_{action}",
        object_type="dossier",
        object_id=dossier.id,
        details={"code": dossier.code, "status": dossier.status, "agency": dossier.agency_code, **details},
    )


async def _notify(session: AsyncSession, dossier: Dossier, body_vi: str, body_en: str) -> None:
    info = STATUSES[S(dossier.status)]
    await post_notification(
        session,
        dossier.applicant_id,
        "dossier.status_changed",
        f"Hồ sơ {dossier.code}: {info.name_vi}",
        body_vi,
        title_en=f"Dossier {dossier.code}: {dossier.status}",
        body_en=body_en,
        data={"dossier_id": str(dossier.id), "status": dossier.status},
    )


def _owe_refund(session: AsyncSession, dossier: Dossier, actor: str, actor_id: uuid.UUID | None) -> bool:
    """Record that a paid fee must go back to the applicant, when it cannot be refunded right now (the fee
    was paid in the very payment being settled, for a dossier already withdrawn)."""
    if dossier.fee_paid_at is None or dossier.refund_state is not None:
        return False
    dossier.refund_state = "owed"
    _event(
        session,
        dossier,
        "fee_refund_owed",
        dossier.status,
        actor,
        actor_id,
        note=f"Hoàn trả phí {dossier.fee_amount} đồng / fee of {dossier.fee_amount} đồng to be refunded",
        details={"amount": dossier.fee_amount, "bill_id": str(dossier.fee_bill_id)},
    )
    return True


async def _refund_fee(session: AsyncSession, dossier: Dossier, why: str) -> bool:
    """A paid fee goes back to the applicant's wallet now, in this transaction (DOMAIN.md: withdrawn before
    processing, or stopped); an unpaid fee bill is cancelled so it can no longer be paid. Returns whether
    money moved."""
    if dossier.fee_bill_id is not None and dossier.fee_paid_at is None:
        await cancel_unpaid_bill(session, dossier.fee_bill_id)
        return False
    if dossier.fee_paid_at is None or dossier.refund_state is not None or dossier.fee_bill_id is None:
        return False
    refunded = await refund_paid_bill(
        session,
        dossier.fee_bill_id,
        reason=why,
        reference=f"{dossier.code}-FEE-R",
        description=f"Hoàn phí hồ sơ {dossier.code}",
    )
    if refunded is None:
        return _owe_refund(session, dossier, "system", None)
    dossier.refund_state = "refunded"
    _event(
        session,
        dossier,
        "fee_refunded",
        dossier.status,
        "system",
        None,
        note=f"Đã hoàn {refunded.amount} đồng vào ví / {refunded.amount} đồng refunded to the wallet",
        details={
            "amount": refunded.amount,
            "bill_id": str(dossier.fee_bill_id),
            "entry_id": str(refunded.entry_id),
        },
    )
    return True


# --- documents ------------------------------------------------------------------------------------------


def _document_out(doc: StoredDocument) -> DocumentOut:
    return DocumentOut(
        id=doc.id,
        filename=doc.filename,
        media_type=doc.media_type,
        size_bytes=doc.size_bytes,
        sha256=doc.sha256,
        created_at=doc.created_at,
    )


async def store_document(
    session: AsyncSession,
    store: FileStore,
    owner_id: uuid.UUID,
    checked: CheckedFile,
    *,
    uploaded_by: uuid.UUID,
) -> DocumentOut:
    """Put a checked file in ``owner_id``'s document store (the same content uploaded twice is kept once).
    The bytes go to the file store only when the content is new; should the unit of work then fail, the
    file stays behind unreferenced."""
    return _document_out(await _store_document(session, store, owner_id, checked, uploaded_by=uploaded_by))


async def _store_document(
    session: AsyncSession,
    store: FileStore,
    owner_id: uuid.UUID,
    checked: CheckedFile,
    *,
    uploaded_by: uuid.UUID,
) -> StoredDocument:
    same = await session.scalar(
        select(StoredDocument).where(
            StoredDocument.owner_id == owner_id, StoredDocument.sha256 == checked.sha256
        )
    )
    if same is not None:
        return same
    key = await store.put(checked.data)
    doc = StoredDocument(
        owner_id=owner_id,
        filename=checked.filename,
        media_type=checked.media_type,
        size_bytes=checked.size_bytes,
        sha256=checked.sha256,
        storage_key=key,
        uploaded_by=uploaded_by,
    )
    session.add(doc)
    await session.flush()
    return doc


async def list_documents(db: Database, caller: Caller) -> list[DocumentOut]:
    async with db.read() as session:
        docs = await session.scalars(
            select(StoredDocument)
            .where(StoredDocument.owner_id == caller.user_id)
            .order_by(StoredDocument.id)
        )
        return [_document_out(d) for d in docs]


async def document_content(
    db: Database, store: FileStore, caller: Caller, document_id: uuid.UUID
) -> tuple[DocumentOut, bytes]:
    """One of the caller's own documents (404 for anyone else's)."""
    async with db.read() as session:
        doc = await session.get(StoredDocument, document_id)
        if doc is None or doc.owner_id != caller.user_id:
            raise NOT_FOUND("Không tìm thấy giấy tờ", "No such document")
        out = _document_out(doc)
        key = doc.storage_key
    return out, await store.get(key)


async def officer_document_content(
    db: Database, store: FileStore, caller: Caller, dossier_id: uuid.UUID, document_id: uuid.UUID
) -> tuple[DocumentOut, bytes]:
    """A document attached to a dossier the caller (officer of its agency, or support admin) may read."""
    async with db.read() as session:
        dossier = await _load(session, dossier_id)
        _ensure_officer_visible(caller, dossier)
        doc = await session.scalar(
            select(StoredDocument)
            .join(DossierAttachment, DossierAttachment.document_id == StoredDocument.id)
            .where(DossierAttachment.dossier_id == dossier.id, StoredDocument.id == document_id)
        )
        if doc is None:
            raise NOT_FOUND("Không tìm thấy giấy tờ", "No such document")
        out = _document_out(doc)
        key = doc.storage_key
    return out, await store.get(key)


# --- citizen --------------------------------------------------------------------------------------------


def _pick_case(cases: list[FeeCase], code: str | None) -> FeeCase | None:
    if code is not None:
        for case in cases:
            if case.code == code:
                return case
        raise UNKNOWN_FEE_CASE(
            f"Thủ tục không có trường hợp thu phí {code}",
            f"The procedure has no fee case {code}",
            cases=[c.code for c in cases],
        )
    if not cases:
        return None
    return next((c for c in cases if c.default), cases[0])


def _case_amount(case: FeeCase | None) -> int | None:
    """What the case bills per dossier (the lines that are not optional); None if a line's amount is not
    configured."""
    if case is None or case.collection == "exempt":
        return 0
    total = 0
    for line in case.lines:
        if line.optional:
            continue
        if line.amount_vnd is None:
            return None
        total += line.amount_vnd
    return total


async def create_dossier(
    session: AsyncSession,
    caller: Caller,
    procedure_code: str,
    fee_case: str | None,
    note: str | None,
    *,
    receiving_agency: str | None = None,
) -> DossierOut:
    """A draft dossier following the procedure's agency chain (its first desk may be swapped for another
    active agency of the same level)."""
    procedure = await get_procedure(session, procedure_code)
    case = _pick_case(procedure.fee_schedule.cases, fee_case)
    chain = [a.code for a in procedure.agency_chain]
    if receiving_agency is not None and receiving_agency != chain[0]:
        desk = await session.get(Agency, receiving_agency)
        if desk is None or not desk.active or desk.level != procedure.agency_chain[0].level:
            raise UNKNOWN_AGENCY(
                f"Cơ quan {receiving_agency} không tiếp nhận hồ sơ của thủ tục này",
                f"Agency {receiving_agency} does not receive dossiers of this procedure",
                agency=receiving_agency,
            )
        chain = [receiving_agency, *chain[1:]]
    dossier = Dossier(
        procedure_code=procedure.code,
        applicant_id=caller.user_id,
        status=DRAFT,
        chain=chain,
        chain_position=0,
        agency_code=chain[0],
        fee_case=case.code if case else None,
        fee_collection=case.collection if case else None,
        note=note,
        due_provisional=False,
        paused_seconds=0,
        supplement_requests=0,
    )
    session.add(dossier)
    await session.flush()
    return await _view(session, dossier)


def _ensure_open(dossier: Dossier) -> None:
    if dossier.status not in (DRAFT, S.WAITING.value):
        raise DOSSIER_LOCKED(
            "Chỉ bổ sung giấy tờ khi hồ sơ chưa nộp hoặc đang chờ bổ sung",
            "Documents can be attached only before submission or while a supplement is requested",
            status=dossier.status,
        )


async def _attach(
    session: AsyncSession, dossier: Dossier, document_id: uuid.UUID, requirement: str | None
) -> None:
    _ensure_open(dossier)
    exists = await session.scalar(
        select(DossierAttachment.id).where(
            DossierAttachment.dossier_id == dossier.id, DossierAttachment.document_id == document_id
        )
    )
    if exists is None:
        session.add(
            DossierAttachment(
                dossier_id=dossier.id,
                document_id=document_id,
                purpose="application" if dossier.status == DRAFT else "supplement",
                requirement=requirement,
            )
        )
        await session.flush()


async def attach_existing(
    session: AsyncSession,
    caller: Caller,
    dossier_id: uuid.UUID,
    document_id: uuid.UUID,
    requirement: str | None,
) -> DossierOut:
    """Attach a document from the caller's own store (someone else's document: 404)."""
    dossier = await _mine(session, caller, dossier_id, lock=True)
    doc = await session.get(StoredDocument, document_id)
    if doc is None or doc.owner_id != caller.user_id:
        raise NOT_FOUND("Không tìm thấy giấy tờ", "No such document")
    await _attach(session, dossier, doc.id, requirement)
    return await _view(session, dossier)


async def attach_upload(
    session: AsyncSession,
    store: FileStore,
    caller: Caller,
    dossier_id: uuid.UUID,
    checked: CheckedFile,
    requirement: str | None,
) -> DossierOut:
    """Upload into the caller's document store and attach it to their dossier."""
    dossier = await _mine(session, caller, dossier_id, lock=True)
    _ensure_open(dossier)
    doc = await _store_document(session, store, caller.user_id, checked, uploaded_by=caller.user_id)
    await _attach(session, dossier, doc.id, requirement)
    return await _view(session, dossier)


async def submit(session: AsyncSession, caller: Caller, dossier_id: uuid.UUID) -> DossierOut:
    """Draft → ``receiving``: checks the required documents and gives the dossier its code."""
    dossier = await _mine(session, caller, dossier_id, lock=True)
    if dossier.status != DRAFT:
        raise ILLEGAL_TRANSITION(
            "Hồ sơ đã được nộp",
            "The dossier was already submitted",
            from_status=dossier.status,
            to_status=S.RECEIVING.value,
            actor="citizen",
        )
    procedure = await get_procedure(session, dossier.procedure_code)
    attached = await session.scalars(
        select(DossierAttachment.requirement).where(DossierAttachment.dossier_id == dossier.id)
    )
    have = set(attached)
    missing = [d.code for d in procedure.documents if d.required and d.code not in have]
    if not have or missing:
        raise DOSSIER_INCOMPLETE(
            "Hồ sơ còn thiếu giấy tờ bắt buộc", "Required documents are missing", missing=missing
        )
    now = utcnow()
    dossier.code = await _next_code(session, dossier.agency_code, now)
    dossier.submitted_at = now
    _event(session, dossier, "submit", S.RECEIVING.value, "citizen", caller.user_id, at=now)
    dossier.status = S.RECEIVING.value
    await session.flush()
    view = await _view(session, dossier)
    await _audit(session, caller, "submit", dossier)
    return view


async def withdraw(
    session: AsyncSession, caller: Caller, dossier_id: uuid.UUID, reason: str | None
) -> DossierOut:
    """→ ``cancelled`` (before processing starts); a paid fee is refunded, an unpaid fee bill cancelled."""
    dossier = await _mine(session, caller, dossier_id, lock=True)
    _move(session, dossier, S.CANCELLED, "citizen", caller.user_id, note=reason)
    dossier.reason = reason
    dossier.finished_at = utcnow()
    refunded = await _refund_fee(session, dossier, "dossier_withdrawn")
    await session.flush()
    view = await _view(session, dossier)
    await _audit(session, caller, "withdraw", dossier, fee_refunded=refunded)
    return view


async def resubmit(
    session: AsyncSession, caller: Caller, dossier_id: uuid.UUID, note: str | None
) -> DossierOut:
    """``waiting`` → ``processing``: the clock resumes; the due date moves by the paused working time."""
    dossier = await _mine(session, caller, dossier_id, lock=True)
    await _resume(session, dossier, "citizen", caller.user_id, note)
    await session.flush()
    view = await _view(session, dossier)
    await _audit(session, caller, "resubmit", dossier, paused_seconds=dossier.paused_seconds)
    return view


async def _resume(
    session: AsyncSession, dossier: Dossier, actor: Actor, actor_id: uuid.UUID, note: str | None
) -> None:
    now = utcnow()
    calendar = await _calendar(session)
    paused = timedelta(0)
    if dossier.paused_at is not None:
        paused = calendar.working_time_between(dossier.paused_at, now)
    _move(
        session,
        dossier,
        S.PROCESSING,
        actor,
        actor_id,
        note=note,
        at=now,
        details={"paused_working_seconds": int(paused.total_seconds())},
    )
    if dossier.due_at is not None and paused > timedelta(0):
        moved = calendar.add_working_time(dossier.due_at, paused)
        dossier.due_at = moved.at
        dossier.due_provisional = dossier.due_provisional or moved.provisional
    dossier.paused_seconds += int(paused.total_seconds())
    dossier.paused_at = None


async def list_mine(db: Database, caller: Caller, *, limit: int, cursor: str | None) -> DossierPage:
    query = select(Dossier).where(Dossier.applicant_id == caller.user_id)
    async with db.read() as session:
        return await _page(session, query, limit, cursor)


async def get_for_applicant(db: Database, caller: Caller, dossier_id: uuid.UUID) -> DossierOut:
    async with db.read() as session:
        return await _view(session, await _mine(session, caller, dossier_id))


# --- officers -------------------------------------------------------------------------------------------


def _ensure_officer_visible(caller: Caller, dossier: Dossier) -> None:
    if dossier.status == DRAFT:
        raise _not_found()
    ensure_visible(caller, agency_id=dossier.agency_code, admin_duties=("support",))


async def get_for_officer(db: Database, caller: Caller, dossier_id: uuid.UUID) -> DossierOut:
    async with db.read() as session:
        dossier = await _load(session, dossier_id)
        _ensure_officer_visible(caller, dossier)
        return await _view(session, dossier)


async def queue(
    db: Database,
    caller: Caller,
    *,
    which: QueueFilter,
    limit: int,
    cursor: str | None,
    now: datetime | None = None,
) -> DossierPage:
    """The dossiers held by the caller's agency (support admins: every agency), oldest first."""
    now = now or utcnow()
    query = select(Dossier).where(Dossier.status != DRAFT)
    if caller.has_role("officer") and caller.agency_id is not None:
        query = query.where(Dossier.agency_code == caller.agency_id)
    elif not caller.is_admin:
        query = query.where(Dossier.id.is_(None))
    async with db.read() as session:
        if which in ("receiving", "new", "processing", "waiting"):
            query = query.where(Dossier.status == which)
        elif which == "overdue":
            query = query.where(Dossier.status.in_(_RUNNING), Dossier.due_at < now)
        elif which == "due_soon":
            horizon = (await _calendar(session)).add_working_days(now, 1).at
            query = query.where(
                Dossier.status.in_(_RUNNING), Dossier.due_at >= now, Dossier.due_at <= horizon
            )
        return await _page(session, query, limit, cursor)


async def ensure_fee_biller(session: AsyncSession, agency_code: str, *, production: bool) -> str:
    """The per-agency public-service fee biller (``PSF_{agency}``), declared with defaults if missing."""
    code = fee_biller_code(agency_code)
    try:
        await get_biller(session, code, active_only=False)
        return code
    except AppError as error:
        if error.kind is not BILLER_NOT_FOUND:
            raise
    agency = await session.get(Agency, agency_code)
    if agency is None:
        raise _not_found()
    name = agency.name_vi
    account = re.sub(r"\D", "", agency.treasury_account or "").zfill(6)[-19:]
    await save_biller(
        session,
        code,
        BillerIn(
            name=f"Phí, lệ phí – {name}"[:200],
            category="public_service_fee",
            presentment="adhoc",
            amount_rule="exact",
            customer_input=CustomerInput(
                label_vi="Mã hồ sơ",
                label_en="Dossier code",
                pattern=r"^[A-Z0-9-]{6,32}$",
                min_length=6,
                max_length=32,
                example="PHU-XUAN-261123-0001",
            ),
            settlement=SettlementAccount(
                bank_bin=TREASURY_SETTLEMENT_BIN,
                account_number=account,
                account_name=f"Kho bạc Nhà nước – {name}"[:200],
            ),
            agency_code=agency_code,
        ),
        production=production,
    )
    return code


def fee_biller_code(agency_code: str) -> str:
    return (FEE_BILLER_PREFIX + re.sub(r"[^A-Z0-9]", "_", agency_code.upper()))[:32]


async def accept(
    session: AsyncSession, settings: Settings, caller: Caller, dossier_id: uuid.UUID, note: str | None
) -> DossierOut:
    """Intake accepted: → ``paying`` with a fee bill when the fee is collected first, else → ``new``
    (the clock starts now)."""
    dossier = await _held(session, caller, dossier_id)
    procedure = await get_procedure(session, dossier.procedure_code)
    case = _pick_case(procedure.fee_schedule.cases, dossier.fee_case) if dossier.fee_case else None
    amount = _case_amount(case)
    now = utcnow()
    dossier.accepted_at = now
    if dossier.fee_collection == "first" and amount != 0:
        if amount is None:
            raise FEE_NOT_CONFIGURED(
                "Chưa có mức phí cho trường hợp này; chưa thể thu phí",
                "The fee amount of this case is not configured; it cannot be billed",
                fee_case=dossier.fee_case,
            )
        check_transition(dossier.status, S.PAYING, "officer")
        biller = await ensure_fee_biller(session, dossier.agency_code, production=settings.is_production)
        dossier.fee_amount = amount
        await _bill(session, dossier, biller, amount)
        action = _move(session, dossier, S.PAYING, "officer", caller.user_id, note=note, at=now)
        await session.flush()
        await _notify(
            session,
            dossier,
            f"Hồ sơ đã được tiếp nhận. Vui lòng nộp phí {amount} đồng để bắt đầu xử lý.",
            f"Your dossier was accepted. Please pay the fee of {amount} đồng to start processing.",
        )
    else:
        action = _move(session, dossier, S.NEW, "officer", caller.user_id, note=note, at=now)
        await _start_clock(session, dossier, now, procedure.processing_days)
        await _notify(session, dossier, "Hồ sơ đã được tiếp nhận.", "Your dossier was accepted.")
    await session.flush()
    view = await _view(session, dossier)
    await _audit(session, caller, action, dossier, fee_amount=dossier.fee_amount)
    return view


async def _bill(session: AsyncSession, dossier: Dossier, biller: str, amount: int) -> None:
    assert dossier.code is not None
    bill = await issue_bill(
        session,
        biller_code=biller,
        customer_code=dossier.code,
        external_id=f"dossier-fee:{dossier.id}",
        period=dossier.code[-32:],
        amount=amount,
        description=f"Phí, lệ phí hồ sơ {dossier.code} (thủ tục {dossier.procedure_code})",
        owner_user_id=dossier.applicant_id,
    )
    dossier.fee_bill_id = bill.id


async def _start_clock(
    session: AsyncSession, dossier: Dossier, received_at: datetime, processing_days: int | None
) -> None:
    dossier.received_at = received_at
    if processing_days is not None:
        deadline = (await _calendar(session)).add_working_days(received_at, processing_days)
        dossier.due_at = deadline.at
        dossier.due_provisional = deadline.provisional


async def deny(session: AsyncSession, caller: Caller, dossier_id: uuid.UUID, reason: str) -> DossierOut:
    dossier = await _held(session, caller, dossier_id)
    _move(session, dossier, S.DENIED, "officer", caller.user_id, note=reason)
    dossier.reason = reason
    dossier.finished_at = utcnow()
    await _notify(
        session, dossier, f"Hồ sơ không được tiếp nhận: {reason}", f"Your dossier was refused: {reason}"
    )
    await session.flush()
    view = await _view(session, dossier)
    await _audit(session, caller, "deny", dossier)
    return view


async def process(
    session: AsyncSession, caller: Caller, dossier_id: uuid.UUID, note: str | None
) -> DossierOut:
    dossier = await _held(session, caller, dossier_id)
    _move(session, dossier, S.PROCESSING, "officer", caller.user_id, note=note)
    await session.flush()
    view = await _view(session, dossier)
    await _audit(session, caller, "start_processing", dossier)
    return view


async def transfer(
    session: AsyncSession, caller: Caller, dossier_id: uuid.UUID, note: str | None
) -> DossierOut:
    """Hand the dossier to the next agency of its chain (liên thông); it stays ``processing``."""
    dossier = await _held(session, caller, dossier_id)
    if dossier.status not in _RUNNING:
        raise ILLEGAL_TRANSITION(
            "Chỉ chuyển hồ sơ đang xử lý",
            "Only a dossier being processed can be transferred",
            from_status=dossier.status,
            to_status=S.PROCESSING.value,
            actor="officer",
        )
    if dossier.chain_position + 1 >= len(dossier.chain):
        raise NO_NEXT_AGENCY(
            "Cơ quan hiện tại là cơ quan cuối trong quy trình", "This agency is the last of the chain"
        )
    if dossier.status == S.NEW.value:
        _move(session, dossier, S.PROCESSING, "officer", caller.user_id)
    source = dossier.agency_code
    target = dossier.chain[dossier.chain_position + 1]
    _event(
        session,
        dossier,
        "transfer",
        dossier.status,
        "officer",
        caller.user_id,
        note=note,
        details={"from_agency": source, "to_agency": target},
    )
    dossier.chain_position += 1
    dossier.agency_code = target
    await session.flush()
    view = await _view(session, dossier)
    await _audit(session, caller, "transfer", dossier, from_agency=source, to_agency=target)
    return view


async def request_supplement(
    session: AsyncSession, caller: Caller, dossier_id: uuid.UUID, reason: str
) -> DossierOut:
    """→ ``waiting``: the clock pauses and the citizen is told what to add."""
    dossier = await _held(session, caller, dossier_id)
    now = utcnow()
    _move(session, dossier, S.WAITING, "officer", caller.user_id, note=reason, at=now)
    dossier.paused_at = now
    dossier.supplement_requests += 1
    dossier.reason = reason
    await _notify(
        session,
        dossier,
        f"Cần bổ sung giấy tờ: {reason}",
        f"Please add documents: {reason}",
    )
    await session.flush()
    view = await _view(session, dossier)
    await _audit(session, caller, "request_supplement", dossier, requests=dossier.supplement_requests)
    return view


async def set_fee_after(
    session: AsyncSession, caller: Caller, dossier_id: uuid.UUID, amount: int, note: str | None
) -> DossierOut:
    """Set the fee collected after processing (billed when the officer approves)."""
    dossier = await _held(session, caller, dossier_id)
    if dossier.status != S.PROCESSING.value or dossier.fee_collection == "first" or dossier.fee_paid_at:
        raise DOSSIER_LOCKED(
            "Chỉ đặt phí thu sau khi hồ sơ đang xử lý và chưa thu phí trước",
            "A fee after processing is set only while processing a dossier not charged first",
            status=dossier.status,
        )
    dossier.fee_collection = "after"
    dossier.fee_amount = amount
    _event(
        session,
        dossier,
        "set_fee",
        dossier.status,
        "officer",
        caller.user_id,
        note=note,
        details={"amount": amount},
    )
    await session.flush()
    view = await _view(session, dossier)
    await _audit(session, caller, "set_fee", dossier, amount=amount)
    return view


async def approve(
    session: AsyncSession,
    settings: Settings,
    store: FileStore,
    caller: Caller,
    dossier_id: uuid.UUID,
    checked: CheckedFile,
    note: str | None,
) -> DossierOut:
    """Processed, with its result document: → ``releasing``, or → ``paying`` when a fee is collected after."""
    dossier = await _held(session, caller, dossier_id)
    check_transition(dossier.status, S.RELEASING, "officer")
    doc = await _store_document(session, store, dossier.applicant_id, checked, uploaded_by=caller.user_id)
    now = utcnow()
    if dossier.fee_collection == "after" and dossier.fee_amount:
        check_transition(dossier.status, S.PAYING, "officer")
        biller = await ensure_fee_biller(session, dossier.agency_code, production=settings.is_production)
        await _bill(session, dossier, biller, dossier.fee_amount)
        action = _move(session, dossier, S.PAYING, "officer", caller.user_id, note=note, at=now)
        body = (
            f"Hồ sơ đã xử lý xong. Vui lòng nộp phí {dossier.fee_amount} đồng để nhận kết quả.",
            f"Your dossier is processed. Please pay {dossier.fee_amount} đồng to receive the result.",
        )
    else:
        action = _move(session, dossier, S.RELEASING, "officer", caller.user_id, note=note, at=now)
        body = ("Hồ sơ đã xử lý xong, có kết quả.", "Your dossier is processed; the result is ready.")
    dossier.finished_at = now
    dossier.result_document_id = doc.id
    session.add(
        DossierAttachment(dossier_id=dossier.id, document_id=doc.id, purpose="result", requirement=None)
    )
    await session.flush()
    await publish(session, ResultIssued(dossier.id, doc.id, caller.user_id, now))  # signs the result
    await _notify(session, dossier, *body)
    await session.flush()
    view = await _view(session, dossier)
    await _audit(session, caller, action, dossier, result_document=str(doc.id))
    return view


async def stop(session: AsyncSession, caller: Caller, dossier_id: uuid.UUID, reason: str) -> DossierOut:
    """→ ``unresolved``; a paid fee is refunded to the wallet (no procedure declares that its fee covers work
    already done)."""
    dossier = await _held(session, caller, dossier_id)
    _move(session, dossier, S.UNRESOLVED, "officer", caller.user_id, note=reason)
    dossier.reason = reason
    dossier.finished_at = utcnow()
    dossier.paused_at = None
    refunded = await _refund_fee(session, dossier, "dossier_stopped")
    await _notify(session, dossier, f"Hồ sơ bị dừng xử lý: {reason}", f"Processing was stopped: {reason}")
    await session.flush()
    view = await _view(session, dossier)
    await _audit(session, caller, "stop", dossier, fee_refunded=refunded)
    return view


# --- fee payments ---------------------------------------------------------------------------------------


@subscribe(BillsPaid)
async def on_bills_paid(session: AsyncSession, event: BillsPaid) -> None:
    """In the payment's transaction: a paid fee collected first starts the clock at the payment time
    (→ ``new``); a paid fee collected after releases the result (→ ``releasing``)."""
    ids = [b.bill_id for b in event.bills if b.biller_code.startswith(FEE_BILLER_PREFIX)]
    if not ids:
        return
    dossiers = list(
        await session.scalars(select(Dossier).where(Dossier.fee_bill_id.in_(ids)).with_for_update())
    )
    for dossier in dossiers:
        dossier.fee_paid_at = event.paid_at
        dossier.fee_payment_id = event.payment_id
        details = {"payment_id": str(event.payment_id), "amount": dossier.fee_amount}
        if dossier.status != S.PAYING.value:
            # Withdrawn (or stopped) before the bill was paid: the money goes back.
            _owe_refund(session, dossier, "system", None)
            await _audit(session, AuditActor.system("bills_paid"), "fee_paid_late", dossier, **details)
            continue
        if dossier.fee_collection == "first":
            procedure = await get_procedure(session, dossier.procedure_code)
            _move(session, dossier, S.NEW, "system", None, at=event.paid_at, details=details)
            await _start_clock(session, dossier, event.paid_at, procedure.processing_days)
        else:
            _move(session, dossier, S.RELEASING, "system", None, at=event.paid_at, details=details)
        await _notify(session, dossier, "Đã nhận phí, lệ phí của hồ sơ.", "The dossier's fee was received.")
        await _audit(session, AuditActor.system("bills_paid"), "fee_paid", dossier, **details)


# --- views ----------------------------------------------------------------------------------------------


def _status_name(status: str) -> str:
    return "Chưa nộp" if status == DRAFT else STATUSES[S(status)].name_vi


_OPEN_CLOCK = (S.NEW.value, S.PROCESSING.value, S.WAITING.value)
_NOT_CLASSIFIED = (S.CANCELLED.value,)


def _clock_open(d: Dossier) -> bool:
    return d.due_at is not None and d.finished_at is None and d.status in _OPEN_CLOCK


def _timeliness(d: Dossier) -> str | None:
    """DOMAIN.md: a finished dossier is early (finished a calendar day before its due date), on time (on
    the due date's day) or late (after, or more than one supplement requested), days in Asia/Ho_Chi_Minh;
    ``due_at`` already carries the supplement pauses. A withdrawn dossier, or one whose clock never ran
    (denied at intake), is not classified."""
    if d.finished_at is None or d.due_at is None or d.status in _NOT_CLASSIFIED:
        return None
    return classify(d.due_at, d.finished_at, supplement_requests=d.supplement_requests).value


def _remaining(d: Dossier, calendar: WorkCalendar | None, now: datetime) -> int | None:
    """Working seconds (office hours) left until the due date of an open dossier, negative once past it;
    frozen at the pause while a supplement is awaited."""
    if calendar is None or not _clock_open(d) or d.due_at is None:
        return None
    at = d.paused_at if d.status == S.WAITING.value and d.paused_at is not None else now
    if at <= d.due_at:
        return int(calendar.working_time_between(at, d.due_at).total_seconds())
    return -int(calendar.working_time_between(d.due_at, at).total_seconds())


def _summary(d: Dossier, calendar: WorkCalendar | None = None, now: datetime | None = None) -> DossierSummary:
    remaining = _remaining(d, calendar, now or utcnow())
    return DossierSummary(
        id=d.id,
        code=d.code,
        procedure_code=d.procedure_code,
        status=d.status,
        status_name_vi=_status_name(d.status),
        agency_code=d.agency_code,
        applicant_id=d.applicant_id,
        submitted_at=d.submitted_at,
        received_at=d.received_at,
        due_at=d.due_at,
        due_provisional=d.due_provisional,
        remaining_working_seconds=remaining,
        overdue=remaining is not None and remaining < 0,
        timeliness=_timeliness(d),  # type: ignore[arg-type]
        created_at=d.created_at,
    )


async def _view(session: AsyncSession, d: Dossier) -> DossierOut:
    rows = (
        await session.execute(
            select(DossierAttachment, StoredDocument)
            .join(StoredDocument, StoredDocument.id == DossierAttachment.document_id)
            .where(DossierAttachment.dossier_id == d.id)
            .order_by(DossierAttachment.id)
        )
    ).all()
    events = await session.scalars(
        select(DossierEvent).where(DossierEvent.dossier_id == d.id).order_by(DossierEvent.id)
    )
    s = _summary(d, await _calendar(session) if _clock_open(d) else None)
    return DossierOut(
        **{f: getattr(s, f) for f in s.__struct_fields__},
        chain=list(d.chain),
        fee_case=d.fee_case,
        fee_collection=d.fee_collection,
        fee_amount=d.fee_amount,
        fee_bill_id=d.fee_bill_id,
        fee_paid_at=d.fee_paid_at,
        refund_state=d.refund_state,
        paused_seconds=d.paused_seconds,
        supplement_requests=d.supplement_requests,
        finished_at=d.finished_at,
        reason=d.reason,
        result_document_id=d.result_document_id,
        note=d.note,
        attachments=[
            AttachmentOut(
                document=_document_out(doc),
                purpose=a.purpose,
                requirement=a.requirement,
                attached_at=a.created_at,
            )
            for a, doc in rows
        ],
        timeline=[
            TimelineEntry(
                action=e.action,
                from_status=e.from_status,
                to_status=e.to_status,
                actor_role=e.actor_role,
                actor_id=e.actor_id,
                agency_code=e.agency_code,
                note=e.note,
                at=e.at,
            )
            for e in events
        ],
    )


def _encode_cursor(dossier_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(dossier_id.bytes).decode().rstrip("=")


def _decode_cursor(cursor: str) -> uuid.UUID:
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise VALIDATION_FAILED(
            "Con trỏ trang không hợp lệ",
            "Invalid cursor",
            errors=[{"field": "cursor", "source": "query", "message": "invalid cursor"}],
        ) from None


async def _page(session: AsyncSession, query: Select[Any], limit: int, cursor: str | None) -> DossierPage:
    if cursor is not None:
        query = query.where(Dossier.id > _decode_cursor(cursor))
    rows = list(await session.scalars(query.order_by(Dossier.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    calendar = await _calendar(session) if any(_clock_open(r) for r in rows) else None
    return DossierPage(
        items=[_summary(r, calendar) for r in rows],
        next_cursor=_encode_cursor(rows[-1].id) if more and rows else None,
    )


# The signed result of an approval is made by a ResultIssued subscriber; import it wherever dossiers are.
from app.services import results as _results  # noqa: E402, F401
