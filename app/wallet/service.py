"""Wallet rules: opening a wallet, paying from it (identity level, PIN, limits, one ledger entry), refunds.

For other modules (all inside the caller's ``Database.transaction()`` session):

    await pay_from_wallet(session, payer_id=..., session_id=caller.session_id, pin=...,
                          category="electricity", limit_exempt=True,
                          credits=[(biller_account, 90_000)], kind="bill_payment",
                          reference=str(bill_id), description="...", metadata={...}) -> Posted
        raises identity_level_required (403), wallet_not_found (404), funding_source_required (409),
        limit_exceeded (422), pin_invalid /
        pin_locked / pin_not_set, insufficient_funds (422) -- having written nothing the caller keeps
        (a refusal is an exception: let it roll the transaction back).
    await wallet_account_id(session, user_id, create=False) -> uuid   (wallet_not_found if none is open)
    await refund_to_wallet(session, user_id=..., debits=[(biller_account, 90_000)], kind="refund",
                           reference=..., description=..., metadata={...}) -> Posted
        system-initiated: no PIN, no limits; receive-only accounts may go negative (DESIGN.md); the
        wallet is opened on demand.

The payer's wallet must have been opened (``wallet_not_found`` otherwise): a wallet is opened explicitly by
a verified citizen, so nobody pays from a wallet they never asked for. Refunds open it on demand (money
owed to a citizen always has somewhere to land).

Round trips of a payment on PostgreSQL: identity level and name (1), PIN (1 + the shared counters), the usage
upsert and the posting together (1: the ``wallet_pay`` function; on SQLite one hop to the connection's
thread); the wallet's id is cached per process after its first lookup and the limit table for
:data:`app.wallet.limits.CACHE_SECONDS`.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import new_id
from app.core.errors import AppError
from app.identity.inbox import post_notification
from app.identity.service import (
    ClosureRefusal,
    full_name_of,
    level_and_name,
    payer_and_recipient,
    register_closure_check,
    verify_payment_pin,
)
from app.wallet import ledger, limits
from app.wallet.errors import (
    IDENTITY_LEVEL_REQUIRED,
    RECIPIENT_NOT_FOUND,
    REFUND_EXCEEDS_PAYMENT,
    SELF_TRANSFER,
    WALLET_NOT_FOUND,
    LedgerError,
)
from app.wallet.funding import require_linked_source
from app.wallet.ledger import AccountType, Balance, Entry, Posted, credit, debit
from app.wallet.limits import VN
from app.wallet.models import LedgerAccount, LedgerEntry, LedgerPosting

__all__ = [
    "REQUIRED_LEVEL",
    "StatementLine",
    "TransferDone",
    "TransferFacts",
    "TransferNotice",
    "find_transfer",
    "load_transfer",
    "mask_name",
    "month_statement",
    "open_wallet",
    "pay_from_wallet",
    "recipient_not_found",
    "refund_to_wallet",
    "refund_transfer",
    "require_level",
    "required_level",
    "self_transfer",
    "statement",
    "transfer",
    "transfer_notice",
    "wallet_account_id",
    "wallet_balance",
    "wallet_key",
    "wallet_not_found",
]

REQUIRED_LEVEL = 2
"""DOMAIN.md: identity level 2 (verified) is needed to move money."""

_wallet_ids: weakref.WeakKeyDictionary[Any, dict[uuid.UUID, uuid.UUID]] = weakref.WeakKeyDictionary()
"""Committed wallet ids by owner, per database (an account's id never changes)."""


def wallet_key(user_id: uuid.UUID) -> str:
    """The ledger key of ``user_id``'s wallet account."""
    return f"{AccountType.CITIZEN_WALLET.value}:{user_id}"


async def wallet_account_id(session: AsyncSession, user_id: uuid.UUID, *, create: bool) -> uuid.UUID:
    """The ledger account of ``user_id``'s wallet; with ``create``, opened now if it is not yet (no level
    check here: :func:`open_wallet` is the citizen's door). ``wallet_not_found`` otherwise."""
    known = _wallet_ids.setdefault(session.get_bind().engine.pool, {})
    if (cached := known.get(user_id)) is not None:
        return cached
    if create:
        return await ledger.ensure_account(session, AccountType.CITIZEN_WALLET, user_id)
    found = await session.scalar(select(LedgerAccount.id).where(LedgerAccount.key == wallet_key(user_id)))
    if found is None:
        raise wallet_not_found()
    if wallet_key(user_id) not in session.info.get("ledger_created_accounts", set()):
        known[user_id] = found
    return found


async def require_level(session: AsyncSession, user_id: uuid.UUID) -> int:
    """``user_id``'s identity level, or ``identity_level_required`` below :data:`REQUIRED_LEVEL`.

    One statement that also reads the person's name, remembered for the transaction
    (``identity.service.full_name_of``): a payment's notification or receipt then needs no second query."""
    level, _name = await level_and_name(session, user_id)
    return required_level(level)


def required_level(level: int) -> int:
    if level < REQUIRED_LEVEL:
        raise IDENTITY_LEVEL_REQUIRED(
            "Cần xác thực danh tính mức 2 (VNeID mức 2 hoặc tại bộ phận một cửa) để dùng ví.",
            "Verify your identity (level 2) to use the wallet.",
            required=REQUIRED_LEVEL,
            current=level,
        )
    return level


async def open_wallet(session: AsyncSession, user_id: uuid.UUID) -> uuid.UUID:
    """Open ``user_id``'s wallet (verified citizens only); opening an open wallet returns it."""
    await require_level(session, user_id)
    return await wallet_account_id(session, user_id, create=True)


def _total(lines: Sequence[tuple[uuid.UUID, int]]) -> int:
    if not lines:
        raise LedgerError("a payment needs at least one line")
    total = 0
    for _account, amount in lines:
        if type(amount) is not int or amount <= 0:
            raise LedgerError(f"payment lines are positive int đồng, got {amount!r}")
        total += amount
    return total


async def pay_from_wallet(
    session: AsyncSession,
    *,
    payer_id: uuid.UUID,
    session_id: uuid.UUID | None,
    pin: str | None,
    category: str,
    limit_exempt: bool,
    credits: Sequence[tuple[uuid.UUID, int]],
    kind: str,
    reference: str,
    description: str,
    metadata: Mapping[str, Any],
    authority: str | None = None,
) -> Posted:
    """Pay ``sum(credits)`` from ``payer_id``'s wallet as ONE ledger entry, in the caller's transaction.

    Order: identity level, wallet, a linked funding source (``funding_source_required``: a wallet with no
    linked debit card or bank account can neither pay nor transfer), per-payment limit (before the PIN: no
    PIN try is spent on a payment that could never pass), PIN, day/month/cap/new-device limits (counted
    under the payer's usage-row locks), then the posting (the wallet's row lock and balance check). Any
    refusal raises having written nothing the caller keeps, provided the caller lets the exception roll its
    transaction back.

    A movement the system starts on the payer's standing word (an auto-pay mandate confirmed with the PIN)
    passes ``pin=None`` and its recorded ``authority`` (e.g. ``mandate:{id}``) instead, written into the
    entry's metadata; every other check and limit applies as for a PIN payment.
    """
    return await _pay(
        session,
        level=None,
        payer_id=payer_id,
        session_id=session_id,
        pin=pin,
        category=category,
        limit_exempt=limit_exempt,
        credits=credits,
        kind=kind,
        reference=reference,
        description=description,
        metadata=metadata,
        authority=authority,
    )


async def _pay(
    session: AsyncSession,
    *,
    level: int | None,
    payer_id: uuid.UUID,
    session_id: uuid.UUID | None,
    pin: str | None,
    category: str,
    limit_exempt: bool,
    credits: Sequence[tuple[uuid.UUID, int]],
    kind: str,
    reference: str,
    description: str,
    metadata: Mapping[str, Any],
    authority: str | None = None,
) -> Posted:
    """:func:`pay_from_wallet`; ``level``: the payer's identity level if this transaction has just read it
    (with the payer's PIN row, ``identity.service.payer_and_recipient``), else ``None`` to read it here."""
    if (pin is None) == (authority is None):
        raise LedgerError("a payment has either the payer's PIN or a recorded authority")
    amount = _total(credits)
    level = await require_level(session, payer_id) if level is None else required_level(level)
    wallet = await wallet_account_id(session, payer_id, create=False)
    await require_linked_source(session, payer_id)
    await limits.check_per_transaction(session, level=level, category=category, amount=amount)
    if pin is not None:
        await verify_payment_pin(session, payer_id, pin)
    plan = await limits.planned_count(
        session,
        user_id=payer_id,
        level=level,
        category=category,
        amount=amount,
        limit_exempt=limit_exempt,
        session_id=session_id,
        device_check=authority is None,
    )
    entry = Entry(
        kind=kind,
        postings=[debit(wallet, amount), *(credit(account, value) for account, value in credits)],
        reference=reference,
        description=description,
        metadata={
            **metadata,
            "category": category,
            "payer_id": str(payer_id),
            **({"authority": authority} if authority else {}),
        },
    )
    # The usage upsert and the posting in ONE call; the limits are checked on the totals it returns
    # (before an insufficient-funds refusal), and any refusal rolls both back with the caller's transaction.
    return await ledger.post_counted(
        session, entry, user_id=payer_id, buckets=plan.buckets, usage=amount, check=plan.check
    )


async def refund_to_wallet(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    debits: Sequence[tuple[uuid.UUID, int]],
    kind: str,
    reference: str,
    description: str,
    metadata: Mapping[str, Any],
) -> Posted:
    """Give money back to ``user_id``'s wallet from receive-only accounts (system-initiated: no PIN, no
    limits; the accounts may go negative, DESIGN.md). Opens the wallet if needed."""
    amount = _total(debits)
    wallet = await wallet_account_id(session, user_id, create=True)
    entry = Entry(
        kind=kind,
        postings=[*(debit(account, value) for account, value in debits), credit(wallet, amount)],
        reference=reference,
        description=description,
        metadata=dict(metadata),
    )
    return await ledger.post(session, entry)


# --- the citizen's own wallet ----------------------------------------------------------------------------


async def wallet_balance(session: AsyncSession, user_id: uuid.UUID) -> Balance:
    """The balance of ``user_id``'s wallet (``wallet_not_found`` if it is not open)."""
    return await ledger.balance(session, await wallet_account_id(session, user_id, create=False))


def mask_name(full_name: str) -> str:
    """ "Nguyễn Văn An" -> "N***** V** A*": enough for the sender to recognise, not to harvest."""
    return " ".join(w[0] + "*" * (len(w) - 1) for w in full_name.split() if w)


@dataclass(frozen=True, slots=True)
class TransferDone:
    id: uuid.UUID
    amount: int
    recipient_name: str
    message: str
    created_at: datetime
    available_after: int


def wallet_not_found() -> Exception:
    return WALLET_NOT_FOUND("Bạn chưa mở ví. Hãy mở ví trong ứng dụng.", "You have not opened a wallet yet.")


def self_transfer() -> Exception:
    return SELF_TRANSFER("Không thể chuyển tiền cho chính mình.", "You cannot send money to yourself.")


def recipient_not_found() -> Exception:
    """The same answer for an unknown number and for one without an open wallet: wallets cannot be
    enumerated."""
    return RECIPIENT_NOT_FOUND(
        "Số điện thoại này chưa có ví đang hoạt động.", "No active wallet for this phone number."
    )


@dataclass(frozen=True, slots=True)
class TransferNotice:
    """What the recipient of a transfer reads in their inbox."""

    kind: str
    title_vi: str
    body_vi: str
    title_en: str
    body_en: str
    data: dict[str, Any]


def transfer_notice(payer_name: str, amount: int, message: str, entry_id: uuid.UUID) -> TransferNotice:
    money = f"{amount:,}".replace(",", ".")
    return TransferNotice(
        kind="wallet.transfer_received",
        title_vi="Bạn vừa nhận tiền",
        body_vi=f"{payer_name} đã chuyển {money} đồng vào ví của bạn."
        + (f" Lời nhắn: {message}" if message else ""),
        title_en="Money received",
        body_en=f"{payer_name} sent {amount:,} VND to your wallet."
        + (f" Message: {message}" if message else ""),
        data={"transfer_id": str(entry_id)},
    )


async def transfer(
    session: AsyncSession,
    *,
    payer_id: uuid.UUID,
    session_id: uuid.UUID,
    phone: str,
    amount: int,
    pin: str,
    message: str,
) -> TransferDone:
    """Send ``amount`` đồng to the wallet of the customer with ``phone``; notify them in their inbox.

    The recipient must be active and have an open wallet (``recipient_not_found`` otherwise, the same
    answer for both so wallets cannot be enumerated). Everything (posting, limits usage, notification) is in
    the caller's transaction.
    """
    # One statement: the payer's level, name and PIN row, and the recipient's id and name.
    level, found = await payer_and_recipient(session, payer_id, phone)
    recipient, recipient_name = found if found is not None else (None, None)
    if recipient == payer_id:
        raise self_transfer()
    not_found = recipient_not_found()
    if recipient is None:
        raise not_found
    try:
        to_wallet = await wallet_account_id(session, recipient, create=False)
    except AppError as exc:
        raise not_found from exc
    reference = str(new_id())
    posted = await _pay(
        session,
        level=level,
        payer_id=payer_id,
        session_id=session_id,
        pin=pin,
        category="transfer",
        limit_exempt=False,
        credits=[(to_wallet, amount)],
        kind="transfer",
        reference=reference,
        description=message or "Chuyển tiền",
        metadata={"message": message, "to_user_id": str(recipient)},
    )
    notice = transfer_notice(await full_name_of(session, payer_id) or "", amount, message, posted.entry_id)
    await post_notification(
        session,
        recipient,
        notice.kind,
        notice.title_vi,
        notice.body_vi,
        title_en=notice.title_en,
        body_en=notice.body_en,
        data=notice.data,
    )
    return TransferDone(
        id=posted.entry_id,
        amount=amount,
        recipient_name=mask_name(recipient_name or ""),
        message=message,
        created_at=posted.created_at,
        available_after=posted.debited_available or 0,
    )


@dataclass(frozen=True, slots=True)
class StatementLine:
    posting_id: int
    entry_id: uuid.UUID
    kind: str
    amount: int
    """Signed: positive money in, negative money out."""
    balance_after: int
    description: str
    reference: str | None
    metadata: dict[str, Any]
    created_at: datetime


def _local_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=VN)


async def statement(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    limit: int,
    before: int | None = None,
    kind: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    oldest_first: bool = False,
) -> list[StatementLine]:
    """Lines of ``user_id``'s wallet, newest first (``before``: a posting id, the cursor), each with the
    running balance after it. ``date_from``/``date_to`` are Asia/Ho_Chi_Minh days, both included."""
    wallet = await wallet_account_id(session, user_id, create=False)
    conditions = [LedgerPosting.account_id == wallet]
    if before is not None:
        conditions.append(LedgerPosting.id > before if oldest_first else LedgerPosting.id < before)
    if kind is not None:
        conditions.append(LedgerEntry.kind == kind)
    if date_from is not None:
        conditions.append(LedgerPosting.created_at >= _local_start(date_from))
    if date_to is not None:
        conditions.append(LedgerPosting.created_at < _local_start(date_to + timedelta(days=1)))
    order = LedgerPosting.id.asc() if oldest_first else LedgerPosting.id.desc()
    rows = await session.execute(
        select(
            LedgerPosting.id,
            LedgerPosting.entry_id,
            LedgerEntry.kind,
            LedgerPosting.amount,
            LedgerPosting.balance_after,
            LedgerEntry.description,
            LedgerEntry.reference,
            LedgerEntry.details,
            LedgerPosting.created_at,
        )
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .where(and_(*conditions))
        .order_by(order)
        .limit(limit)
    )
    return [
        StatementLine(r[0], r[1], r[2], int(r[3]), int(r[4] or 0), r[5], r[6], dict(r[7] or {}), r[8])
        for r in rows
    ]


async def month_statement(
    session: AsyncSession, user_id: uuid.UUID, year: int, month: int
) -> tuple[int, list[StatementLine]]:
    """Opening balance and every line of one Asia/Ho_Chi_Minh month, oldest first (for the CSV export)."""
    first = date(year, month, 1)
    last = (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)
    lines: list[StatementLine] = []
    after: int | None = None
    while True:
        page = await statement(
            session, user_id, limit=1000, before=after, date_from=first, date_to=last, oldest_first=True
        )
        lines.extend(page)
        if len(page) < 1000:
            break
        after = page[-1].posting_id
    opening = (
        lines[0].balance_after - lines[0].amount if lines else await _balance_before(session, user_id, first)
    )
    return opening, lines


async def _balance_before(session: AsyncSession, user_id: uuid.UUID, day: date) -> int:
    wallet = await wallet_account_id(session, user_id, create=False)
    found = await session.scalar(
        select(LedgerPosting.balance_after)
        .where(LedgerPosting.account_id == wallet, LedgerPosting.created_at < _local_start(day))
        .order_by(LedgerPosting.id.desc())
        .limit(1)
    )
    return int(found or 0)


async def find_transfer(
    session: AsyncSession, user_id: uuid.UUID, transfer_id: uuid.UUID
) -> StatementLine | None:
    """The line of transfer ``transfer_id`` on ``user_id``'s wallet (sent or received), or ``None``
    (also when it is someone else's)."""
    try:
        wallet = await wallet_account_id(session, user_id, create=False)
    except AppError:
        return None
    row = (
        await session.execute(
            select(
                LedgerPosting.id,
                LedgerPosting.entry_id,
                LedgerEntry.kind,
                LedgerPosting.amount,
                LedgerPosting.balance_after,
                LedgerEntry.description,
                LedgerEntry.reference,
                LedgerEntry.details,
                LedgerPosting.created_at,
            )
            .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
            .where(
                LedgerPosting.entry_id == transfer_id,
                LedgerPosting.account_id == wallet,
                LedgerEntry.kind == "transfer",
            )
        )
    ).first()
    if row is None:
        return None
    r = row
    return StatementLine(r[0], r[1], r[2], int(r[3]), int(r[4] or 0), r[5], r[6], dict(r[7] or {}), r[8])


@register_closure_check
async def _wallet_must_be_empty(session: AsyncSession, user_id: uuid.UUID) -> ClosureRefusal | None:
    """An account whose wallet still holds money (or pending amounts) cannot be closed."""
    try:
        found = await wallet_balance(session, user_id)
    except AppError:
        return None
    if found.balance == 0 and found.held == 0:
        return None
    return ClosureRefusal(
        "wallet_balance_not_zero",
        "Ví của bạn vẫn còn tiền. Hãy rút hết số dư trước khi đóng tài khoản.",
        "Your wallet still holds money. Withdraw the balance before closing the account.",
    )


# --- transfers under complaint ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransferFacts:
    """A wallet-to-wallet transfer as the complaint module sees it."""

    id: uuid.UUID
    payer_id: uuid.UUID
    recipient_id: uuid.UUID
    amount: int
    created_at: datetime
    refunded: int
    """Đồng already given back to the payer under complaints."""


async def _transfer_refunded(session: AsyncSession, transfer_id: uuid.UUID, payer_wallet: uuid.UUID) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(LedgerPosting.amount), 0))
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .where(
            LedgerEntry.kind == "transfer_refund",
            LedgerEntry.reference == str(transfer_id),
            LedgerPosting.account_id == payer_wallet,
        )
    )
    return int(total or 0)


async def load_transfer(session: AsyncSession, transfer_id: uuid.UUID) -> TransferFacts | None:
    """The transfer whose journal entry is ``transfer_id`` (None if there is no such transfer)."""
    entry = await session.get(LedgerEntry, transfer_id)
    if entry is None or entry.kind != "transfer":
        return None
    details = dict(entry.details or {})
    payer_id = uuid.UUID(str(details["payer_id"]))
    recipient_id = uuid.UUID(str(details["to_user_id"]))
    payer_wallet = await wallet_account_id(session, payer_id, create=False)
    amount = await session.scalar(
        select(LedgerPosting.amount).where(
            LedgerPosting.entry_id == transfer_id, LedgerPosting.account_id == payer_wallet
        )
    )
    refunded = await _transfer_refunded(session, transfer_id, payer_wallet)
    return TransferFacts(transfer_id, payer_id, recipient_id, -int(amount or 0), entry.created_at, refunded)


async def refund_transfer(
    session: AsyncSession, transfer_id: uuid.UUID, amount: int, *, reason: str, authority: str
) -> Posted:
    """Give ``amount`` đồng of a transfer back to its sender from the receiver's wallet (a complaint
    upheld: a mistaken or fraudulent transfer), in the caller's transaction.

    Caps: all refunds of a transfer never exceed it (``refund_exceeds_payment``), and the receiver's
    wallet never goes below zero (``insufficient_funds``: the money is no longer there, and the platform
    does not pay it from anyone else's). Callers serialise refunds of one transfer (the complaint's row
    lock); the receiver's wallet row lock serialises the money.
    """
    facts = await load_transfer(session, transfer_id)
    refundable = 0 if facts is None else facts.amount - facts.refunded
    if facts is None or type(amount) is not int or amount <= 0 or amount > refundable:
        raise REFUND_EXCEEDS_PAYMENT(
            f"Chỉ có thể hoàn tối đa {refundable} đ cho giao dịch này",
            f"At most {refundable} VND can be refunded for this transfer",
            refundable=refundable,
        )
    receiver = await wallet_account_id(session, facts.recipient_id, create=True)
    sender = await wallet_account_id(session, facts.payer_id, create=True)
    posted = await ledger.post(
        session,
        Entry(
            kind="transfer_refund",
            postings=[debit(receiver, amount), credit(sender, amount)],
            reference=str(transfer_id),
            description="Hoàn tiền chuyển khoản (khiếu nại)",
            metadata={"transfer_id": str(transfer_id), "reason": reason, "authority": authority},
        ),
    )
    money = f"{amount:,}".replace(",", ".")
    await post_notification(
        session,
        facts.recipient_id,
        "wallet.transfer_refunded",
        "Hoàn trả tiền chuyển khoản",
        f"{money} đồng của một khoản chuyển khoản bạn đã nhận được hoàn lại cho người gửi theo kết quả xử lý "
        "khiếu nại.",
        title_en="Transfer returned",
        body_en=f"{amount:,} VND of a transfer you received was returned to its sender after a complaint.",
        data={"transfer_id": str(transfer_id)},
    )
    return posted
