"""Funding sources: the holder's own debit card or bank account, linked before the wallet can be used.

DOMAIN.md (Circular 23/2019, carried on by Circular 40/2024): the wallet must be linked to the holder's own
bank account or debit card before use; top-up only from it, withdrawal only back to it; no credit. So:

- a card is linked from a gateway payment method (``pm_...``); the gateway reports its funding type and
  anything but ``debit`` is refused (``credit_card_refused``);
- the card's issuer (through the gateway) or the bank confirms that the holder's personal ID number is the
  citizen's verified CCCD; a mismatch refuses the link (``funding_holder_mismatch``);
- :func:`require_linked_source` is part of every payment (``pay_from_wallet``): a wallet with no linked
  source can neither pay nor transfer (``funding_source_required``).

The gateway and bank calls happen outside any database transaction; only the final insert is in one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Database, utcnow
from app.core.errors import error_kind
from app.core.settings import Settings, get_settings
from app.identity.service import cccd_of, get_user, register_personal_data_exporter
from app.wallet.errors import FUNDING_SOURCE_REQUIRED
from app.wallet.funding_models import FundingSource
from app.wallet.gateway import CardGateway, GatewayError, GatewayUnavailableError

__all__ = [
    "CREDIT_CARD_REFUSED",
    "FUNDING_CHECK_UNAVAILABLE",
    "FUNDING_HOLDER_MISMATCH",
    "FUNDING_SOURCE_NOT_FOUND",
    "FUNDING_SOURCE_REQUIRED",
    "BankAccountVerifier",
    "HttpBankAccountVerifier",
    "SandboxBankAccountVerifier",
    "funding_source_required",
    "get_account_verifier",
    "has_linked_source",
    "link_bank_account",
    "link_card",
    "list_sources",
    "own_source",
    "record_source",
    "remove_source",
    "require_linked_source",
]

CREDIT_CARD_REFUSED = error_kind(
    "credit_card_refused", 422, "Không chấp nhận thẻ tín dụng", "Only your own debit card can be linked"
)
"""The gateway reports the card as ``credit`` (or ``prepaid``/``unknown``): only debit cards fund a wallet
(no credit, DOMAIN.md); the problem carries ``funding``."""
FUNDING_HOLDER_MISMATCH = error_kind(
    "funding_holder_mismatch",
    422,
    "Chủ thẻ/tài khoản không khớp",
    "The card or account belongs to someone else",
)
"""The issuer or bank says the holder's personal ID number is not the citizen's verified CCCD."""
FUNDING_CHECK_UNAVAILABLE = error_kind(
    "funding_check_unavailable", 503, "Chưa kiểm tra được", "The issuer or bank did not answer; try again"
)
FUNDING_SOURCE_NOT_FOUND = error_kind(
    "funding_source_not_found", 404, "Không tìm thấy nguồn tiền", "No such linked card or bank account"
)


async def has_linked_source(session: AsyncSession, user_id: uuid.UUID) -> bool:
    """Whether ``user_id`` has an active linked card or bank account (one indexed read)."""
    found = await session.scalar(
        select(FundingSource.id)
        .where(FundingSource.user_id == user_id, FundingSource.status == "active")
        .limit(1)
    )
    return found is not None


async def require_linked_source(session: AsyncSession, user_id: uuid.UUID) -> None:
    """``funding_source_required`` unless ``user_id`` has linked a source (a ledger rule of the wallet)."""
    if not await has_linked_source(session, user_id):
        raise funding_source_required()


def funding_source_required() -> Exception:
    return FUNDING_SOURCE_REQUIRED(
        "Hãy liên kết thẻ ghi nợ hoặc tài khoản ngân hàng của chính bạn trước khi thanh toán.",
        "Link your own debit card or bank account before paying or transferring.",
    )


async def list_sources(session: AsyncSession, user_id: uuid.UUID) -> list[FundingSource]:
    rows = await session.scalars(
        select(FundingSource)
        .where(FundingSource.user_id == user_id, FundingSource.status == "active")
        .order_by(FundingSource.created_at)
    )
    return list(rows)


async def own_source(
    session: AsyncSession, user_id: uuid.UUID, source_id: uuid.UUID, *, kind: str | None = None
) -> FundingSource:
    """``user_id``'s active source ``source_id`` (of ``kind``), or ``funding_source_not_found`` (also for
    someone else's)."""
    source = await session.get(FundingSource, source_id)
    if (
        source is None
        or source.user_id != user_id
        or source.status != "active"
        or (kind and source.kind != kind)
    ):
        raise FUNDING_SOURCE_NOT_FOUND()
    return source


async def record_source(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    kind: str,
    fingerprint: str,
    payment_method: str | None = None,
    brand: str | None = None,
    last4: str | None = None,
    funding: str | None = None,
    bank_bin: str | None = None,
    account_number: str | None = None,
    account_name: str | None = None,
) -> FundingSource:
    """Store a source whose holder was already confirmed (linking again re-activates it)."""
    existing = await session.scalar(
        select(FundingSource).where(
            FundingSource.user_id == user_id, FundingSource.fingerprint == fingerprint
        )
    )
    if existing is not None:
        existing.status = "active"
        existing.holder_verified_at = utcnow()
        await session.flush()
        return existing
    source = FundingSource(
        user_id=user_id,
        kind=kind,
        status="active",
        fingerprint=fingerprint,
        payment_method=payment_method,
        brand=brand,
        last4=last4,
        funding=funding,
        bank_bin=bank_bin,
        account_number=account_number,
        account_name=account_name,
        holder_verified_at=utcnow(),
    )
    session.add(source)
    await session.flush()
    return source


async def remove_source(session: AsyncSession, user_id: uuid.UUID, source_id: uuid.UUID) -> None:
    source = await own_source(session, user_id, source_id)
    await session.execute(update(FundingSource).where(FundingSource.id == source.id).values(status="removed"))


async def _verified_cccd(db: Database, user_id: uuid.UUID) -> str:
    from app.wallet.service import require_level

    async with db.read() as session:
        await require_level(session, user_id)
        user = await get_user(session, user_id)
        number = cccd_of(user, session)
    if not number:  # level 2 always has one; defensive
        raise FUNDING_HOLDER_MISMATCH()
    return number


def _mismatch() -> Exception:
    return FUNDING_HOLDER_MISMATCH(
        "Ngân hàng phát hành cho biết chủ thẻ/tài khoản không phải là bạn (số định danh không khớp).",
        "The issuer or bank says the holder's personal ID number is not yours.",
    )


@dataclass(frozen=True, slots=True)
class CardFacts:
    payment_method: str
    brand: str
    last4: str
    funding: str


async def check_card(
    db: Database, gateway: CardGateway, user_id: uuid.UUID, payment_method: str
) -> CardFacts:
    """Everything the gateway must confirm before a card is linked (no transaction open meanwhile)."""
    national_id = await _verified_cccd(db, user_id)
    try:
        method = await gateway.retrieve_payment_method(payment_method)
        card = method.get("card") or {}
        funding = str(card.get("funding") or "unknown")
        if method.get("type") != "card" or funding != "debit":
            raise CREDIT_CARD_REFUSED(
                "Chỉ liên kết được thẻ ghi nợ (debit) của chính bạn; thẻ tín dụng không được dùng để nạp ví.",
                "Only your own debit card can be linked; credit cards cannot fund a wallet.",
                funding=funding,
            )
        result = await gateway.verify_holder(
            payment_method, national_id, idempotency_key=f"link_{user_id}_{payment_method}"[:255]
        )
    except GatewayUnavailableError as exc:
        raise FUNDING_CHECK_UNAVAILABLE() from exc
    except GatewayError as exc:
        if exc.status == 404:
            raise FUNDING_SOURCE_NOT_FOUND(
                "Thẻ không tồn tại ở cổng thanh toán.", "Unknown payment method."
            ) from exc
        raise FUNDING_CHECK_UNAVAILABLE() from exc
    if result == "unavailable":
        raise FUNDING_CHECK_UNAVAILABLE()
    if result != "match":
        raise _mismatch()
    return CardFacts(payment_method, str(card.get("brand") or "card"), str(card.get("last4") or ""), funding)


async def link_card(session: AsyncSession, user_id: uuid.UUID, facts: CardFacts) -> FundingSource:
    """Store a card that :func:`check_card` accepted (in the caller's transaction)."""
    return await record_source(
        session,
        user_id,
        kind="card",
        fingerprint=f"card:{facts.payment_method}",
        payment_method=facts.payment_method,
        brand=facts.brand,
        last4=facts.last4,
        funding=facts.funding,
    )


# --- bank accounts ----------------------------------------------------------------------------------------


class BankAccountVerifier(Protocol):
    """The bank confirms who holds an account: ``match``, ``mismatch`` or ``unavailable``."""

    async def verify(self, bank_bin: str, account_number: str, national_id: str) -> str: ...


class SandboxBankAccountVerifier:
    """Deterministic sandbox: an account number ending in ``1111`` belongs to someone else (``mismatch``);
    any other account belongs to whoever links it. (The payout suffixes of ``SandboxBank`` — 0000, 9999,
    8888, 7777 — link normally, so their payout cases can be played.)"""

    async def verify(self, bank_bin: str, account_number: str, national_id: str) -> str:
        if account_number.endswith("1111") or not (len(national_id) == 12 and national_id.isdigit()):
            return "mismatch"
        return "match"


class HttpBankAccountVerifier:
    """The partner bank's account check: ``POST {BANK_API_URL}/v1/account-verifications`` with
    ``{bank_bin, account_number, national_id}`` answering ``{"result": "match" | "mismatch"}``."""

    def __init__(self, base_url: str, token: str) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(10.0, connect=3.0),
        )

    async def verify(self, bank_bin: str, account_number: str, national_id: str) -> str:
        try:
            response = await self._client.post(
                "/v1/account-verifications",
                json={"bank_bin": bank_bin, "account_number": account_number, "national_id": national_id},
            )
            if response.status_code >= 400:
                return "unavailable"
            return str(response.json().get("result", "unavailable"))
        except (httpx.HTTPError, ValueError, AttributeError):
            return "unavailable"


_verifier: BankAccountVerifier | None = None


def get_account_verifier(settings: Settings | None = None) -> BankAccountVerifier:
    global _verifier
    if _verifier is None:
        settings = settings or get_settings()
        _verifier = (
            HttpBankAccountVerifier(settings.bank_api_url, settings.bank_api_token or "")
            if settings.bank_api_url
            else SandboxBankAccountVerifier()
        )
    return _verifier


async def check_bank_account(
    db: Database, verifier: BankAccountVerifier, user_id: uuid.UUID, bank_bin: str, account_number: str
) -> None:
    national_id = await _verified_cccd(db, user_id)
    result = await verifier.verify(bank_bin, account_number, national_id)
    if result == "unavailable":
        raise FUNDING_CHECK_UNAVAILABLE()
    if result != "match":
        raise _mismatch()


async def link_bank_account(
    session: AsyncSession, user_id: uuid.UUID, *, bank_bin: str, account_number: str, account_name: str
) -> FundingSource:
    """Store a bank account that :func:`check_bank_account` accepted (in the caller's transaction)."""
    return await record_source(
        session,
        user_id,
        kind="bank_account",
        fingerprint=f"bank:{bank_bin}:{account_number}",
        bank_bin=bank_bin,
        account_number=account_number,
        account_name=account_name,
        last4=account_number[-4:],
    )


@register_personal_data_exporter
async def _export_funding(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    """The citizen's linked sources, top-ups and withdrawals, for their data download."""
    from app.wallet.funding_models import WalletTopup, WalletWithdrawal

    sources = await session.scalars(select(FundingSource).where(FundingSource.user_id == user_id))
    topups = await session.scalars(select(WalletTopup).where(WalletTopup.user_id == user_id))
    payouts = await session.scalars(select(WalletWithdrawal).where(WalletWithdrawal.user_id == user_id))
    return {
        "wallet_funding_sources": [
            {
                "id": str(s.id),
                "kind": s.kind,
                "status": s.status,
                "brand": s.brand,
                "last4": s.last4,
                "bank_bin": s.bank_bin,
                "account_number": s.account_number,
                "account_name": s.account_name,
                "linked_at": s.created_at.isoformat(),
            }
            for s in sources
        ],
        "wallet_topups": [
            {"id": str(t.id), "amount": t.amount, "status": t.status, "created_at": t.created_at.isoformat()}
            for t in topups
        ],
        "wallet_withdrawals": [
            {
                "id": str(w.id),
                "amount": w.amount,
                "status": w.status,
                "reference": w.reference,
                "created_at": w.created_at.isoformat(),
            }
            for w in payouts
        ],
    }
