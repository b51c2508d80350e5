"""The rules of bills: the biller registry, presentment (fetch, store, withdraw), saved codes, the inbox.

No HTTP here. Calls to billers happen outside database transactions; what they answer is stored in one short
transaction afterwards. Who may see a bill:

- a household bill (no owner) is visible to a citizen who saved its biller + customer code;
- a bill with an owner (a dossier fee) only to that owner;
- a lookup by biller + customer code shows anyone the unpaid household bills, but only what is needed to
  pay them (period, amount, due date) and the customer's name masked.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import msgspec
import structlog
from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.bills.categories import is_limit_exempt
from app.bills.connectors import CustomerBills, PresentedBill
from app.bills.customer_codes import check_rule, mask_name, normalise_code
from app.bills.errors import (
    BILL_NOT_FOUND,
    BILLER_NOT_FOUND,
    CUSTOMER_CODE_NOT_FOUND,
    INVALID_BILLER,
    SAVED_CODE_NOT_FOUND,
)
from app.bills.gateway import BillerGateway
from app.bills.models import Bill, Biller, SavedCustomerCode
from app.bills.schemas import (
    BillDetail,
    BillerAdmin,
    BillerIn,
    BillerPublic,
    BillerSummary,
    BillGroup,
    BillInbox,
    BillItem,
    BillLookup,
    ConnectorConfig,
    CustomerInput,
    LookupBill,
    SavedCode,
    SettlementAccount,
)
from app.core.db import Database, new_id, utcnow

__all__ = [
    "DUE_SOON_DAYS",
    "CodeToSave",
    "RefreshReport",
    "bill_detail",
    "biller_admin_view",
    "biller_public_view",
    "check_code_to_save",
    "connector_config",
    "customer_input",
    "delete_saved_code",
    "get_biller",
    "inbox",
    "issue_bill",
    "list_billers",
    "list_saved_codes",
    "lookup",
    "put_biller",
    "refresh_customer",
    "refresh_saved_codes",
    "save_biller",
    "save_code",
    "store_presented",
    "store_saved_code",
]

log = structlog.get_logger("app.bills")

DUE_SOON_DAYS = 7
"""Default window of the inbox's "due soon" section, in days from today."""
PAID_WINDOW_DAYS = 90
PAID_LIMIT = 50


# --- the biller registry -------------------------------------------------------------------------------


def customer_input(biller: Biller) -> CustomerInput:
    return msgspec.convert(biller.customer_input, CustomerInput)


def connector_config(biller: Biller) -> ConnectorConfig | None:
    if biller.connector is None:
        return None
    config: ConnectorConfig = msgspec.convert(biller.connector, ConnectorConfig)  # type: ignore[arg-type]
    return config


def _summary(biller: Biller) -> BillerSummary:
    return BillerSummary(code=biller.code, name=biller.name, category=biller.category)  # type: ignore[arg-type]


def biller_public_view(biller: Biller) -> BillerPublic:
    return BillerPublic(
        code=biller.code,
        name=biller.name,
        description=biller.description,
        category=biller.category,  # type: ignore[arg-type]
        presentment=biller.presentment,  # type: ignore[arg-type]
        amount_rule=biller.amount_rule,  # type: ignore[arg-type]
        customer_input=customer_input(biller),
        limit_exempt=biller.limit_exempt,
    )


def biller_admin_view(biller: Biller) -> BillerAdmin:
    return BillerAdmin(
        id=str(biller.id),
        code=biller.code,
        name=biller.name,
        description=biller.description,
        category=biller.category,  # type: ignore[arg-type]
        presentment=biller.presentment,  # type: ignore[arg-type]
        amount_rule=biller.amount_rule,  # type: ignore[arg-type]
        customer_input=customer_input(biller),
        limit_exempt=biller.limit_exempt,
        settlement=SettlementAccount(
            bank_bin=biller.settlement_bank_bin,
            account_number=biller.settlement_account_number,
            account_name=biller.settlement_account_name,
        ),
        connector=connector_config(biller),
        payable_account_ref=biller.payable_account_ref,
        agency_code=biller.agency_code,
        active=biller.active,
        created_at=biller.created_at,
        updated_at=biller.updated_at,
    )


def default_payable_ref(code: str, data: BillerIn) -> str:
    """Public-service fees credit their agency's state-treasury payable; other billers their own payable."""
    if data.category == "public_service_fee" and data.agency_code:
        return f"treasury:{data.agency_code}:payable"
    return f"biller:{code}:payable"


def _refuse(detail_en: str, field: str) -> Exception:
    return INVALID_BILLER(f"Cấu hình nhà cung cấp không hợp lệ: {detail_en}", detail_en, field=field)


def _validate_biller(data: BillerIn, *, production: bool) -> bool:
    """Check a declaration; returns the limit-exempt flag to store."""
    problem = check_rule(data.customer_input)
    if problem is not None:
        raise _refuse(problem, "customer_input")
    if data.presentment == "fetch" and data.connector is None:
        raise _refuse("a fetch biller needs a connector", "connector")
    if production and data.connector is not None and data.connector.__struct_config__.tag == "sandbox":
        raise _refuse("sandbox connectors are not allowed in production", "connector")
    if data.category == "public_service_fee" and not data.agency_code:
        raise _refuse("a public-service fee biller needs its agency_code", "agency_code")
    exempt_by_law = is_limit_exempt(data.category)
    if data.limit_exempt and not exempt_by_law:
        raise _refuse(
            f"category {data.category} is not exempt from the monthly wallet limit (Circular 40/2024)",
            "limit_exempt",
        )
    return exempt_by_law if data.limit_exempt is None else data.limit_exempt


async def put_biller(db: Database, code: str, data: BillerIn, *, production: bool) -> tuple[Biller, bool]:
    """Create the biller ``code`` or replace its declaration; returns it and whether it was created."""
    async with db.transaction() as session:
        return await save_biller(session, code, data, production=production)


async def save_biller(
    session: AsyncSession, code: str, data: BillerIn, *, production: bool
) -> tuple[Biller, bool]:
    """:func:`put_biller` in the caller's unit of work."""
    limit_exempt = _validate_biller(data, production=production)
    values: dict[str, Any] = {
        "name": data.name.strip(),
        "description": data.description,
        "category": data.category,
        "presentment": data.presentment,
        "amount_rule": data.amount_rule,
        "customer_input": msgspec.to_builtins(data.customer_input),
        "limit_exempt": limit_exempt,
        "settlement_bank_bin": data.settlement.bank_bin,
        "settlement_account_number": data.settlement.account_number,
        "settlement_account_name": data.settlement.account_name,
        "connector": msgspec.to_builtins(data.connector) if data.connector is not None else None,
        "payable_account_ref": data.payable_account_ref or default_payable_ref(code, data),
        "agency_code": data.agency_code,
        "active": data.active,
    }
    biller = await session.scalar(select(Biller).where(Biller.code == code).with_for_update())
    created = biller is None
    if biller is None:
        biller = Biller(code=code, **values)
        session.add(biller)
    else:
        for key, value in values.items():
            setattr(biller, key, value)
    await session.flush()
    await session.refresh(biller)
    log.info("biller_saved", biller=code, created=created, active=data.active)
    return biller, created


async def list_billers(
    db: Database, *, include_inactive: bool = False, category: str | None = None
) -> list[Biller]:
    query = select(Biller).order_by(Biller.category, Biller.name)
    if not include_inactive:
        query = query.where(Biller.active.is_(True))
    if category is not None:
        query = query.where(Biller.category == category)
    async with db.read() as session:
        return list((await session.scalars(query)).all())


async def get_biller(session: AsyncSession, code: str, *, active_only: bool = True) -> Biller:
    biller = await session.scalar(select(Biller).where(Biller.code == code))
    if biller is None or (active_only and not biller.active):
        raise BILLER_NOT_FOUND(f"Không có nhà cung cấp {code}", f"No biller {code}", biller=code)
    return biller


# --- presentment ---------------------------------------------------------------------------------------


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


async def store_presented(
    session: AsyncSession,
    biller: Biller,
    customer_code: str,
    bills: Sequence[PresentedBill],
    *,
    customer_name: str | None,
    source: str,
    owner_user_id: uuid.UUID | None = None,
    withdraw_absent: bool = False,
) -> None:
    """Store what ``biller`` presents for ``customer_code``, idempotently (by the biller's bill id).

    New bills arrive unpaid. A known bill that is still unpaid takes the biller's current amount and dates (a
    withdrawn one presented again is payable again); a bill pending, paid, refunded or expired is never
    touched. With ``withdraw_absent`` (a fetch returns every unpaid bill of the customer), unpaid bills the
    biller no longer presents become ``cancelled``: paid at a counter, or withdrawn.
    """
    now = utcnow()
    if bills:
        rows = [
            {
                "id": new_id(),
                "created_at": now,
                "updated_at": now,
                "biller_id": biller.id,
                "customer_code": customer_code,
                "external_id": bill.external_id,
                "period": bill.period,
                "amount": bill.amount,
                "due_date": bill.due_date,
                "status": "unpaid",
                "customer_name": customer_name,
                "description": bill.description,
                "source": source,
                "owner_user_id": owner_user_id,
            }
            for bill in bills
        ]
        statement = _insert(session)(Bill).values(rows)
        excluded = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=[Bill.biller_id, Bill.external_id],
            set_={
                "period": excluded.period,
                "amount": excluded.amount,
                "due_date": excluded.due_date,
                "customer_name": excluded.customer_name,
                "description": excluded.description,
                "updated_at": excluded.updated_at,
                "status": "unpaid",
            },
            where=and_(
                Bill.status.in_(("unpaid", "cancelled")), Bill.customer_code == excluded.customer_code
            ),
        )
        await session.execute(statement)
    if withdraw_absent:
        await session.execute(
            update(Bill)
            .where(
                Bill.biller_id == biller.id,
                Bill.customer_code == customer_code,
                Bill.status == "unpaid",
                Bill.owner_user_id.is_(None),
                Bill.external_id.not_in([bill.external_id for bill in bills]),
            )
            .values(status="cancelled", updated_at=now)
        )


async def _fetch_and_store(
    db: Database, gateway: BillerGateway, biller: Biller, customer_code: str
) -> str | None:
    """Ask the biller (outside any transaction) and store its answer; returns the customer's name."""
    answer: CustomerBills = await gateway.connector(biller.code, connector_config(biller)).fetch_bills(
        customer_code
    )
    async with db.transaction() as session:
        await store_presented(
            session,
            biller,
            customer_code,
            answer.bills,
            customer_name=answer.customer_name,
            source="fetch",
            withdraw_absent=True,
        )
    return answer.customer_name


async def issue_bill(
    session: AsyncSession,
    *,
    biller_code: str,
    customer_code: str,
    external_id: str,
    period: str,
    amount: int,
    due_date: date | None = None,
    description: str | None = None,
    customer_name: str | None = None,
    owner_user_id: uuid.UUID | None = None,
) -> Bill:
    """Create a bill from inside the platform (e.g. a dossier fee, owned by its applicant), in the caller's
    transaction. Issuing the same ``external_id`` again keeps one bill (updated while it is unpaid)."""
    biller = await get_biller(session, biller_code)
    bill = PresentedBill(
        external_id=external_id, period=period, amount=amount, due_date=due_date, description=description
    )
    await store_presented(
        session,
        biller,
        customer_code,
        [bill],
        customer_name=customer_name,
        source="issued",
        owner_user_id=owner_user_id,
    )
    stored = await session.scalar(
        select(Bill).where(Bill.biller_id == biller.id, Bill.external_id == external_id)
    )
    assert stored is not None
    return stored


async def refresh_customer(db: Database, gateway: BillerGateway, biller_code: str, raw_code: str) -> None:
    """Ask a fetch biller for one customer's bills now and store them (for jobs and demo data)."""
    async with db.read() as session:
        biller = await get_biller(session, biller_code)
    if biller.presentment == "fetch":
        await _fetch_and_store(db, gateway, biller, normalise_code(customer_input(biller), raw_code))


async def lookup(
    db: Database, gateway: BillerGateway, biller_code: str, raw_code: str, *, caller_id: uuid.UUID
) -> BillLookup:
    """The unpaid bills anyone may pay for ``biller_code`` + a customer code (asked from fetch billers)."""
    async with db.read() as session:
        biller = await get_biller(session, biller_code)
    code = normalise_code(customer_input(biller), raw_code)
    name: str | None = None
    if biller.presentment == "fetch":
        name = await _fetch_and_store(db, gateway, biller, code)
    async with db.read() as session:
        visible = Bill.owner_user_id.is_(None) | (Bill.owner_user_id == caller_id)
        of_code = and_(Bill.biller_id == biller.id, Bill.customer_code == code, visible)
        bills = (
            await session.scalars(
                select(Bill)
                .where(of_code, Bill.status == "unpaid")
                .order_by(Bill.due_date.is_(None), Bill.due_date, Bill.period)
            )
        ).all()
        if biller.presentment != "fetch":
            latest = await session.scalar(
                select(Bill).where(of_code).order_by(Bill.created_at.desc()).limit(1)
            )
            if latest is None and biller.presentment == "batch":
                raise CUSTOMER_CODE_NOT_FOUND(
                    f"Chưa có hóa đơn nào của mã {code}",
                    f"No bill was ever issued to {code}",
                    biller=biller.code,
                )
            name = latest.customer_name if latest is not None else None
    return BillLookup(
        biller=_summary(biller),
        customer_code=code,
        customer_name_masked=mask_name(name),
        amount_rule=biller.amount_rule,  # type: ignore[arg-type]
        bills=[
            LookupBill(id=str(b.id), period=b.period, amount=b.amount, due_date=b.due_date) for b in bills
        ],
        total=sum(b.amount for b in bills),
    )


# --- saved customer codes ------------------------------------------------------------------------------


async def save_code(
    db: Database,
    gateway: BillerGateway,
    user_id: uuid.UUID,
    biller_code: str,
    raw_code: str,
    nickname: str,
) -> SavedCode:
    """Keep a customer code with a nickname (saving it again renames it). A fetch biller is asked first, so
    an unknown code is refused (404 ``customer_code_not_found``) and the inbox starts with its bills."""
    checked = await check_code_to_save(db, gateway, biller_code, raw_code)
    async with db.transaction() as session:
        return await store_saved_code(session, user_id, checked, nickname)


@dataclass(frozen=True, slots=True)
class CodeToSave:
    """A customer code checked by :func:`check_code_to_save`, ready for :func:`store_saved_code`."""

    biller_id: uuid.UUID
    customer_code: str


async def check_code_to_save(
    db: Database, gateway: BillerGateway, biller_code: str, raw_code: str
) -> CodeToSave:
    """Normalise ``raw_code`` by the biller's rule; a fetch biller is asked (its bills are stored, in a
    transaction of their own) and an unknown code refused (404 ``customer_code_not_found``)."""
    async with db.read() as session:
        biller = await get_biller(session, biller_code)
    code = normalise_code(customer_input(biller), raw_code)
    if biller.presentment == "fetch":
        await _fetch_and_store(db, gateway, biller, code)
    return CodeToSave(biller.id, code)


async def store_saved_code(
    session: AsyncSession, user_id: uuid.UUID, checked: CodeToSave, nickname: str
) -> SavedCode:
    """Save (or rename) a checked code in the caller's unit of work."""
    statement = _insert(session)(SavedCustomerCode).values(
        id=new_id(),
        created_at=utcnow(),
        user_id=user_id,
        biller_id=checked.biller_id,
        customer_code=checked.customer_code,
        nickname=nickname.strip(),
    )
    statement = statement.on_conflict_do_update(
        index_elements=[
            SavedCustomerCode.user_id,
            SavedCustomerCode.biller_id,
            SavedCustomerCode.customer_code,
        ],
        set_={"nickname": statement.excluded.nickname},
    )
    await session.execute(statement)
    saved = await _saved_codes_in(
        session,
        user_id,
        SavedCustomerCode.biller_id == checked.biller_id,
        SavedCustomerCode.customer_code == checked.customer_code,
    )
    return saved[0]


async def list_saved_codes(db: Database, user_id: uuid.UUID) -> list[SavedCode]:
    """The citizen's saved codes, each with its unpaid count and total."""
    return await _saved_codes(db, user_id)


async def _saved_codes(db: Database, user_id: uuid.UUID, *conditions: Any) -> list[SavedCode]:
    async with db.read() as session:
        return await _saved_codes_in(session, user_id, *conditions)


async def _saved_codes_in(session: AsyncSession, user_id: uuid.UUID, *conditions: Any) -> list[SavedCode]:
    unpaid = and_(
        Bill.biller_id == SavedCustomerCode.biller_id,
        Bill.customer_code == SavedCustomerCode.customer_code,
        Bill.status == "unpaid",
        Bill.owner_user_id.is_(None),
    )
    query = (
        select(SavedCustomerCode, Biller, func.count(Bill.id), func.coalesce(func.sum(Bill.amount), 0))
        .join(Biller, Biller.id == SavedCustomerCode.biller_id)
        .outerjoin(Bill, unpaid)
        .where(SavedCustomerCode.user_id == user_id, *conditions)
        .group_by(SavedCustomerCode.id, Biller.id)
        .order_by(SavedCustomerCode.created_at, SavedCustomerCode.id)
    )
    rows = (await session.execute(query)).all()
    return [
        SavedCode(
            id=str(saved.id),
            biller=_summary(biller),
            customer_code=saved.customer_code,
            nickname=saved.nickname,
            unpaid_count=int(count),
            unpaid_total=int(total),
            created_at=saved.created_at,
        )
        for saved, biller, count, total in rows
    ]


async def delete_saved_code(session: AsyncSession, user_id: uuid.UUID, saved_id: uuid.UUID) -> None:
    """Forget a saved code; another citizen's code (or none) is 404."""
    saved = await session.scalar(
        select(SavedCustomerCode).where(
            SavedCustomerCode.id == saved_id, SavedCustomerCode.user_id == user_id
        )
    )
    if saved is None:
        raise SAVED_CODE_NOT_FOUND()
    await session.delete(saved)


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """What a refresh of saved codes did."""

    codes: int
    refreshed: int
    failed: int


async def refresh_saved_codes(
    db: Database, gateway: BillerGateway, *, user_id: uuid.UUID | None = None, concurrency: int = 8
) -> RefreshReport:
    """Ask fetch billers again for every saved code (of ``user_id``, or everyone's): new bills appear in the
    inbox and bills paid elsewhere leave it. Meant for a scheduled job; a biller that fails is skipped."""
    query = (
        select(Biller, SavedCustomerCode.customer_code)
        .join(SavedCustomerCode, SavedCustomerCode.biller_id == Biller.id)
        .where(Biller.presentment == "fetch", Biller.active.is_(True))
        .distinct()
    )
    if user_id is not None:
        query = query.where(SavedCustomerCode.user_id == user_id)
    async with db.read() as session:
        targets = [(biller, code) for biller, code in (await session.execute(query)).all()]
    gate = asyncio.Semaphore(concurrency)

    async def one(biller: Biller, code: str) -> bool:
        async with gate:
            try:
                await _fetch_and_store(db, gateway, biller, code)
            except Exception as exc:
                log.warning("bill_refresh_failed", biller=biller.code, error=type(exc).__name__)
                return False
            return True

    results = await asyncio.gather(*(one(biller, code) for biller, code in targets))
    refreshed = sum(results)
    return RefreshReport(codes=len(targets), refreshed=refreshed, failed=len(targets) - refreshed)


# --- the inbox and a bill ------------------------------------------------------------------------------


async def _visible_bills(
    session: AsyncSession, user_id: uuid.UUID, *conditions: Any
) -> list[tuple[Bill, Biller, str | None]]:
    """Bills ``user_id`` may see (household bills of saved codes, and own bills), with the code's nickname."""
    household = (
        select(Bill, Biller, SavedCustomerCode.nickname)
        .join(
            SavedCustomerCode,
            and_(
                SavedCustomerCode.biller_id == Bill.biller_id,
                SavedCustomerCode.customer_code == Bill.customer_code,
            ),
        )
        .join(Biller, Biller.id == Bill.biller_id)
        .where(SavedCustomerCode.user_id == user_id, Bill.owner_user_id.is_(None), *conditions)
    )
    own = (
        select(Bill, Biller, SavedCustomerCode.nickname)
        .join(Biller, Biller.id == Bill.biller_id)
        .outerjoin(
            SavedCustomerCode,
            and_(
                SavedCustomerCode.user_id == user_id,
                SavedCustomerCode.biller_id == Bill.biller_id,
                SavedCustomerCode.customer_code == Bill.customer_code,
            ),
        )
        .where(Bill.owner_user_id == user_id, *conditions)
    )
    rows: list[tuple[Bill, Biller, str | None]] = []
    for query in (household, own):
        rows.extend(
            (bill, biller, nickname) for bill, biller, nickname in (await session.execute(query)).all()
        )
    return rows


def _shown_name(bill: Bill) -> str | None:
    return bill.customer_name if bill.owner_user_id is not None else mask_name(bill.customer_name)


def _item(bill: Bill, biller: Biller, nickname: str | None) -> BillItem:
    return BillItem(
        id=str(bill.id),
        biller=_summary(biller),
        customer_code=bill.customer_code,
        nickname=nickname,
        period=bill.period,
        amount=bill.amount,
        due_date=bill.due_date,
        status=bill.status,  # type: ignore[arg-type]
        customer_name=_shown_name(bill),
        description=bill.description,
        paid_at=bill.paid_at,
    )


def _group(items: list[BillItem]) -> BillGroup:
    return BillGroup(count=len(items), total=sum(i.amount for i in items), items=items)


def _by_due(item: BillItem) -> tuple[bool, date, str]:
    return (item.due_date is None, item.due_date or date.max, item.period)


async def inbox(
    db: Database,
    user_id: uuid.UUID,
    *,
    today: date,
    due_soon_days: int = DUE_SOON_DAYS,
    now: datetime | None = None,
) -> BillInbox:
    """Every bill the citizen should know about: overdue, due soon, upcoming, pending, recently paid."""
    paid_since = (now or utcnow()) - timedelta(days=PAID_WINDOW_DAYS)
    wanted = Bill.status.in_(("unpaid", "pending")) | ((Bill.status == "paid") & (Bill.paid_at >= paid_since))
    async with db.read() as session:
        rows = await _visible_bills(session, user_id, wanted)
    soon_until = today + timedelta(days=due_soon_days)
    overdue: list[BillItem] = []
    due_soon: list[BillItem] = []
    upcoming: list[BillItem] = []
    pending: list[BillItem] = []
    paid: list[BillItem] = []
    for bill, biller, nickname in rows:
        item = _item(bill, biller, nickname)
        if bill.status == "paid":
            paid.append(item)
        elif bill.status == "pending":
            pending.append(item)
        elif bill.due_date is not None and bill.due_date < today:
            overdue.append(item)
        elif bill.due_date is not None and bill.due_date <= soon_until:
            due_soon.append(item)
        else:
            upcoming.append(item)
    for section in (overdue, due_soon, upcoming, pending):
        section.sort(key=_by_due)
    paid.sort(key=lambda i: i.paid_at.timestamp() if i.paid_at else 0.0, reverse=True)
    del paid[PAID_LIMIT:]
    unpaid = overdue + due_soon + upcoming
    return BillInbox(
        as_of=today,
        overdue=_group(overdue),
        due_soon=_group(due_soon),
        upcoming=_group(upcoming),
        pending=_group(pending),
        paid=_group(paid),
        unpaid_count=len(unpaid),
        unpaid_total=sum(i.amount for i in unpaid),
    )


async def bill_detail(db: Database, user_id: uuid.UUID, bill_id: uuid.UUID, *, today: date) -> BillDetail:
    """One bill the citizen may see; any other bill (another's, or none) is 404 ``bill_not_found``."""
    async with db.read() as session:
        rows = await _visible_bills(session, user_id, Bill.id == bill_id)
    if not rows:
        raise BILL_NOT_FOUND()
    bill, biller, nickname = rows[0]
    return BillDetail(
        id=str(bill.id),
        biller=_summary(biller),
        customer_code=bill.customer_code,
        nickname=nickname,
        external_id=bill.external_id,
        period=bill.period,
        amount=bill.amount,
        due_date=bill.due_date,
        status=bill.status,  # type: ignore[arg-type]
        customer_name=_shown_name(bill),
        description=bill.description,
        amount_rule=biller.amount_rule,  # type: ignore[arg-type]
        limit_exempt=biller.limit_exempt,
        payable=bill.status == "unpaid",
        overdue=bill.status == "unpaid" and bill.due_date is not None and bill.due_date < today,
        paid_at=bill.paid_at,
        created_at=bill.created_at,
    )
