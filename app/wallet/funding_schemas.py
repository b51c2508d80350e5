"""Funding sources, top-ups and withdrawals as the mobile app sees them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from app.wallet.funding_models import FundingSource, WalletTopup, WalletWithdrawal

__all__ = [
    "BankAccountIn",
    "CardIn",
    "FundingSourceOut",
    "FundingSourcesOut",
    "TopupIn",
    "TopupOut",
    "WithdrawalIn",
    "WithdrawalOut",
    "source_out",
    "topup_out",
    "withdrawal_out",
]


class CardIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Link the holder's own debit card."""

    payment_method: Annotated[str, msgspec.Meta(min_length=3, max_length=100, pattern=r"^pm_[A-Za-z0-9_]+$")]
    """The card gateway's payment method id (``pm_...``) made by the gateway's SDK in the app. Sandbox:
    ``pm_card_visa_debit`` (succeeds), ``pm_card_chargeDeclined`` (declined),
    ``pm_card_authenticationRequired`` (3-D Secure), ``pm_card_visa`` (a credit card: refused),
    ``pm_card_otherHolder`` (someone else's card)."""


class BankAccountIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Link the holder's own bank account (for withdrawals)."""

    bank_bin: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$")]
    """The bank's 6-digit NAPAS BIN (e.g. 970436 Vietcombank)."""
    account_number: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6,19}$")]
    """The account number. Sandbox: ending 1111 = someone else's account (refused); payouts to accounts
    ending 0000 fail, 9999 time out then fail, 8888 time out but succeed, 7777 stay pending."""
    account_name: Annotated[str, msgspec.Meta(min_length=2, max_length=100)]
    """The holder's name as the bank writes it (ASCII capitals, e.g. NGUYEN VAN AN)."""


class FundingSourceOut(msgspec.Struct, kw_only=True):
    """A linked card or bank account."""

    id: str
    """Funding source id."""
    kind: str
    """``card`` or ``bank_account``."""
    label: str
    """What to show: brand and last 4 digits, or the bank BIN and the account's last 4 digits."""
    last4: str | None
    """Last 4 digits of the card or account number."""
    brand: str | None = None
    """Card brand (visa, mastercard, ...)."""
    funding: str | None = None
    """Card funding type as the gateway reported it (always ``debit``)."""
    bank_bin: str | None = None
    """Bank BIN of an account."""
    holder_verified_at: datetime
    """When the issuer or bank confirmed that the holder's personal ID number is yours."""


class FundingSourcesOut(msgspec.Struct, kw_only=True):
    """The linked sources."""

    items: list[FundingSourceOut]
    """Oldest first."""


def source_out(source: FundingSource) -> FundingSourceOut:
    if source.kind == "card":
        label = f"{(source.brand or 'card').upper()} ···{source.last4}"
    else:
        label = f"{source.bank_bin} ···{source.last4}"
    return FundingSourceOut(
        id=str(source.id),
        kind=source.kind,
        label=label,
        last4=source.last4,
        brand=source.brand,
        funding=source.funding,
        bank_bin=source.bank_bin,
        holder_verified_at=source.holder_verified_at,
    )


class TopupIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Top up the wallet from a linked debit card."""

    funding_source_id: str
    """A linked card's id (``GET /api/v1/me/wallet/funding-sources``)."""
    amount: Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)]
    """Đồng, from 10.000 to 50.000.000."""
    return_url: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    """Where the 3-D Secure page sends the holder back (the app's deep link)."""


class TopupOut(msgspec.Struct, kw_only=True):
    """A top-up and where it stands."""

    id: str
    """Top-up id."""
    amount: int
    """Đồng asked for."""
    status: str
    """``pending`` (waiting for the gateway), ``requires_action`` (open ``next_action_url`` for 3-D Secure),
    ``succeeded`` (the wallet was credited) or ``failed``."""
    funding_source_id: str
    """The card charged."""
    next_action_url: str | None = None
    """The 3-D Secure page to open, while ``requires_action``."""
    failure_code: str | None = None
    """Why it failed (``generic_decline``, ``authentication_required``, ...)."""
    created_at: datetime
    """When it was asked for (UTC)."""
    credited_at: datetime | None = None
    """When the wallet was credited (UTC)."""


def topup_out(topup: WalletTopup) -> TopupOut:
    return TopupOut(
        id=str(topup.id),
        amount=topup.amount,
        status=topup.status,
        funding_source_id=str(topup.source_id),
        next_action_url=topup.next_action_url,
        failure_code=topup.failure_code,
        created_at=topup.created_at,
        credited_at=topup.credited_at,
    )


class WithdrawalIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Withdraw to a linked bank account."""

    funding_source_id: str
    """A linked bank account's id."""
    amount: Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)]
    """Đồng, at least 10.000."""
    pin: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$")]
    """6-digit payment PIN."""


class WithdrawalOut(msgspec.Struct, kw_only=True):
    """A withdrawal and where it stands."""

    id: str
    """Withdrawal id."""
    amount: int
    """Đồng."""
    status: str
    """``requested`` (held, payout queued), ``unknown`` / ``pending`` (asking the bank), ``succeeded`` (paid
    out; the held money left the wallet) or ``failed`` (the held money is available again)."""
    reference: str
    """Our payout reference, shown on the bank statement."""
    funding_source_id: str
    """The bank account paid."""
    failure_reason: str | None = None
    """Why it failed."""
    created_at: datetime
    """When it was asked for (UTC)."""
    resolved_at: datetime | None = None
    """When it succeeded or failed (UTC)."""


def withdrawal_out(row: WalletWithdrawal) -> WithdrawalOut:
    return WithdrawalOut(
        id=str(row.id),
        amount=row.amount,
        status=row.status,
        reference=row.reference,
        funding_source_id=str(row.source_id),
        failure_reason=row.failure_reason,
        created_at=row.created_at,
        resolved_at=row.resolved_at,
    )
