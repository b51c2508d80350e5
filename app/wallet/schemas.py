"""The wallet as the mobile app sees it (msgspec structs at the edge)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from app.wallet.ledger import Balance
from app.wallet.service import StatementLine, TransferDone

__all__ = [
    "StatementItem",
    "StatementPage",
    "TransferIn",
    "TransferOut",
    "WalletLimitsOut",
    "WalletOut",
    "statement_item",
    "transfer_out",
    "wallet_out",
]

Dong = Annotated[int, msgspec.Meta(description="Amount in đồng (VND), an integer.")]


class WalletLimitsOut(msgspec.Struct, kw_only=True):
    """What the customer may still send by transfer (đồng; null = no such limit)."""

    per_transaction: Annotated[int | None, msgspec.Meta(description="Most one transfer may send.")]
    today: Annotated[int | None, msgspec.Meta(description="Left today (Asia/Ho_Chi_Minh day).")]
    this_month: Annotated[int | None, msgspec.Meta(description="Left this month for transfers.")]
    monthly_cap: Annotated[
        int | None,
        msgspec.Meta(
            description="Left this month under the 100,000,000 đồng cap on payments and transfers "
            "(exempt bill categories are not counted)."
        ),
    ]


class WalletOut(msgspec.Struct, kw_only=True):
    """The signed-in citizen's wallet."""

    balance: Annotated[Dong, msgspec.Meta(description="Money in the wallet, including held amounts.")]
    held: Annotated[Dong, msgspec.Meta(description="Reserved by payments still in progress.")]
    available: Annotated[Dong, msgspec.Meta(description="What can be spent now: balance minus held.")]
    currency: Annotated[str, msgspec.Meta(description="Always VND.")] = "VND"
    funding_source_linked: Annotated[
        bool,
        msgspec.Meta(
            description="Whether the holder's own debit card or bank account is linked (without one the "
            "wallet can neither pay nor transfer)."
        ),
    ] = False
    limits: Annotated[WalletLimitsOut | None, msgspec.Meta(description="Transfer limits left.")] = None


def wallet_out(
    balance: Balance, limits: dict[str, int | None] | None = None, *, linked: bool = False
) -> WalletOut:
    return WalletOut(
        balance=balance.balance,
        held=balance.held,
        available=balance.available,
        funding_source_linked=linked,
        limits=WalletLimitsOut(**limits) if limits is not None else None,
    )


class StatementItem(msgspec.Struct, kw_only=True):
    """One line of the statement."""

    id: Annotated[str, msgspec.Meta(description="The journal entry (for a transfer: the transfer id).")]
    kind: Annotated[str, msgspec.Meta(description="transfer, bill_payment, refund, topup, demo_funding, ...")]
    amount: Annotated[int, msgspec.Meta(description="Đồng: positive = money in, negative = money out.")]
    balance_after: Annotated[Dong, msgspec.Meta(description="The wallet's balance right after this line.")]
    description: Annotated[str, msgspec.Meta(description="What it was (the transfer's message, the bill).")]
    created_at: Annotated[datetime, msgspec.Meta(description="When it was booked (UTC).")]


def statement_item(line: StatementLine) -> StatementItem:
    return StatementItem(
        id=str(line.entry_id),
        kind=line.kind,
        amount=line.amount,
        balance_after=line.balance_after,
        description=line.description,
        created_at=line.created_at,
    )


class StatementPage(msgspec.Struct, kw_only=True):
    """A page of the statement, newest first."""

    items: Annotated[list[StatementItem], msgspec.Meta(description="Lines, newest first.")]
    next_cursor: Annotated[
        str | None, msgspec.Meta(description="Pass as `cursor` for the next (older) page; null at the end.")
    ] = None


class TransferIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Send money to another citizen's wallet."""

    phone: Annotated[
        str,
        msgspec.Meta(
            min_length=9, max_length=20, description="Recipient's mobile number (0912345678, +84...)."
        ),
    ]
    amount: Annotated[int, msgspec.Meta(ge=1_000, le=1_000_000_000, description="Đồng, at least 1.000.")]
    pin: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$", description="6-digit payment PIN.")]
    message: Annotated[str, msgspec.Meta(max_length=140, description="Shown to the recipient.")] = ""


class TransferOut(msgspec.Struct, kw_only=True):
    """A transfer as its sender or receiver sees it."""

    id: Annotated[str, msgspec.Meta(description="Transfer id.")]
    amount: Annotated[int, msgspec.Meta(description="Đồng: negative when sent, positive when received.")]
    message: Annotated[str, msgspec.Meta(description="The sender's message.")]
    created_at: Annotated[datetime, msgspec.Meta(description="When it was booked (UTC).")]
    recipient_name: Annotated[
        str | None, msgspec.Meta(description="Recipient's name, masked (sender's view at creation).")
    ] = None
    available_after: Annotated[
        int | None, msgspec.Meta(description="Sender's available balance right after (at creation).")
    ] = None
    balance_after: Annotated[int | None, msgspec.Meta(description="This wallet's balance right after.")] = (
        None
    )


def transfer_out(done: TransferDone) -> TransferOut:
    return TransferOut(
        id=str(done.id),
        amount=-done.amount,
        message=done.message,
        created_at=done.created_at,
        recipient_name=done.recipient_name,
        available_after=done.available_after,
    )
