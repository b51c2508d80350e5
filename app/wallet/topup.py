"""Card top-ups: a payment intent at the gateway, the wallet credited exactly once when it succeeds.

Flow:
1. :func:`start_topup` (in the request's idempotent transaction) stores a ``pending`` top-up row. Commit.
2. :func:`drive_topup` (no transaction open) creates and confirms the payment intent with the
   ``Idempotency-Key`` ``topup_{id}``: a retry, a crash or the poll job re-sends it with the same key and the
   gateway answers with the same intent, so one top-up never becomes two charges.
3. The answer, a webhook (:func:`receive_webhook`) or the poll job (:func:`poll_pending_topups`) all end in
   :func:`apply_intent`: it locks the row and, if the intent succeeded and the row was not credited yet,
   posts ONE journal entry and marks it ``succeeded`` in the same transaction. Whoever comes second finds
   it credited and does nothing; a webhook never decides by its own (possibly stale) copy of the intent, the
   intent is read from the gateway first, so duplicates, late and out-of-order events change nothing.

The entry mirrors the gateway's balance transaction (amount, fee, net):

    debit  gateway clearing   net      (what the gateway now owes us: its balance, DESIGN.md's mirror)
    debit  gateway fees       fee      (expense)
    credit citizen wallet     amount   (the citizen gets the full amount; the provider bears the fee)

so the clearing account always equals the sum of ``net`` of the charges the gateway confirmed. The entry's
``reference`` is the charge id (``ch_...``): the ``source`` of the charge's balance transaction, the key
reconciliation matches the gateway's settlement report on (``app.admin.reconciliation``).
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Database, utcnow
from app.core.errors import WEBHOOK_SIGNATURE_INVALID, error_kind
from app.core.scheduler import JobContext, every, scheduled_job
from app.core.settings import Settings
from app.core.webhook_signature import SignatureError, verify
from app.identity.inbox import post_notification
from app.wallet import ledger
from app.wallet.funding import own_source
from app.wallet.funding_models import FundingSource, GatewayEvent, WalletTopup
from app.wallet.gateway import CardError, CardGateway, GatewayError, GatewayUnavailableError, get_card_gateway
from app.wallet.ledger import AccountType, Entry, Posting, credit
from app.wallet.service import require_level, wallet_account_id

__all__ = [
    "MAX_TOPUP",
    "MIN_TOPUP",
    "TOPUP_AMOUNT_INVALID",
    "WEBHOOK_SIGNATURE_INVALID",
    "apply_intent",
    "drive_topup",
    "get_topup",
    "poll_pending_topups",
    "receive_webhook",
    "start_topup",
]

log = structlog.get_logger("app.wallet.topup")

MIN_TOPUP = 10_000
MAX_TOPUP = 50_000_000
"""Đồng per top-up (product choices, like the transfer limits)."""

TOPUP_AMOUNT_INVALID = error_kind(
    "topup_amount_invalid", 422, "Số tiền nạp không hợp lệ", "Top-up amount out of range"
)
"""The amount is outside ``min``..``max`` đồng (in the problem)."""
TOPUP_NOT_FOUND = error_kind("topup_not_found", 404, "Không tìm thấy giao dịch nạp", "No such top-up")
GATEWAY_UNAVAILABLE = error_kind(
    "card_gateway_unavailable", 503, "Cổng thanh toán thẻ chưa trả lời", "The card gateway did not answer"
)

_OPEN = ("pending", "requires_action")


async def start_topup(
    session: AsyncSession, *, user_id: uuid.UUID, source_id: uuid.UUID, amount: int
) -> WalletTopup:
    """Store a ``pending`` top-up of ``amount`` đồng from ``user_id``'s linked card ``source_id``."""
    if not MIN_TOPUP <= amount <= MAX_TOPUP:
        raise TOPUP_AMOUNT_INVALID(
            f"Mỗi lần nạp từ {MIN_TOPUP:,} đến {MAX_TOPUP:,} đồng.".replace(",", "."),
            f"Each top-up is {MIN_TOPUP:,} to {MAX_TOPUP:,} VND.",
            min=MIN_TOPUP,
            max=MAX_TOPUP,
        )
    await require_level(session, user_id)
    await wallet_account_id(session, user_id, create=False)
    await own_source(session, user_id, source_id, kind="card")
    topup = WalletTopup(user_id=user_id, source_id=source_id, amount=amount, status="pending")
    session.add(topup)
    await session.flush()
    return topup


async def get_topup(session: AsyncSession, user_id: uuid.UUID, topup_id: uuid.UUID) -> WalletTopup:
    topup = await session.get(WalletTopup, topup_id)
    if topup is None or topup.user_id != user_id:
        raise TOPUP_NOT_FOUND()
    return topup


def _idempotency_key(topup_id: uuid.UUID) -> str:
    return f"topup_{topup_id}"


async def drive_topup(
    db: Database, gateway: CardGateway, topup_id: uuid.UUID, *, return_url: str | None = None
) -> str:
    """Move ``topup_id`` on at the gateway (create/confirm its intent, or read it) and apply the answer.
    Returns the top-up's status after. A gateway that does not answer leaves it as it was (the poll job
    tries again with the same idempotency key)."""
    async with db.read() as session:
        topup = await session.get(WalletTopup, topup_id)
        if topup is None:
            raise TOPUP_NOT_FOUND()
        if topup.status not in _OPEN:
            return topup.status
        source = await session.get(FundingSource, topup.source_id)
        intent_id, amount, user_id = topup.intent_id, topup.amount, topup.user_id
        payment_method = source.payment_method if source is not None else None
    try:
        if intent_id is None:
            try:
                intent = await gateway.create_payment_intent(
                    amount=amount,
                    payment_method=payment_method or "",
                    idempotency_key=_idempotency_key(topup_id),
                    metadata={"topup_id": str(topup_id), "user_id": str(user_id)},
                    return_url=return_url,
                    description=f"Nạp ví Hue-S {topup_id}",
                )
            except CardError as exc:
                if exc.payment_intent is None:
                    raise
                intent = exc.payment_intent
        else:
            intent = await gateway.retrieve_payment_intent(intent_id)
        return await apply_intent(db, gateway, intent, topup_id=topup_id)
    except GatewayUnavailableError:
        log.warning("topup_gateway_unavailable", topup_id=str(topup_id))
        await _touch(db, topup_id)
        return "pending"
    except GatewayError as exc:
        if intent_id is not None:
            # The gateway refuses to show an intent it gave us (404 from a sandbox in another process, an
            # outage answering 4xx): the money may have moved, so the top-up stays open for the poll.
            log.error("topup_intent_unreadable", topup_id=str(topup_id), code=exc.code, status=exc.status)
            await _touch(db, topup_id)
            return "pending"
        log.warning("topup_gateway_refused", topup_id=str(topup_id), code=exc.code)
        await _finish_failed(db, topup_id, exc.code or exc.type)
        return "failed"


async def _touch(db: Database, topup_id: uuid.UUID) -> None:
    async with db.transaction() as session:
        topup = await session.get(WalletTopup, topup_id)
        if topup is not None:
            topup.checked_at = utcnow()


async def _finish_failed(db: Database, topup_id: uuid.UUID, code: str) -> None:
    async with db.transaction() as session:
        topup = await _locked(session, topup_id=topup_id)
        if topup is not None and topup.status in _OPEN:
            topup.status, topup.failure_code, topup.checked_at = "failed", code[:64], utcnow()


async def _locked(
    session: AsyncSession, *, topup_id: uuid.UUID | None = None, intent_id: str | None = None
) -> WalletTopup | None:
    conditions = []
    if topup_id is not None:
        conditions.append(WalletTopup.id == topup_id)
    if intent_id is not None:
        conditions.append(WalletTopup.intent_id == intent_id)
    result = await session.scalars(
        select(WalletTopup)
        .where(or_(*conditions))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return result.first()


def _topup_id_of(intent: dict[str, Any]) -> uuid.UUID | None:
    raw = (intent.get("metadata") or {}).get("topup_id")
    try:
        return uuid.UUID(str(raw)) if raw else None
    except ValueError:
        return None


async def apply_intent(
    db: Database, gateway: CardGateway, intent: dict[str, Any], *, topup_id: uuid.UUID | None = None
) -> str:
    """Bring our top-up in line with the gateway's ``intent``; credit the wallet once if it succeeded.
    Returns the top-up's status (``unknown`` when the intent is not one of ours)."""
    intent_id = str(intent["id"])
    topup_id = topup_id or _topup_id_of(intent)
    charge = intent.get("latest_charge")
    if intent.get("status") == "succeeded" and not (
        isinstance(charge, dict) and isinstance(charge.get("balance_transaction"), dict)
    ):
        intent = await gateway.retrieve_payment_intent(intent_id)  # amount, fee and net live there
        charge = intent.get("latest_charge")
    async with db.transaction() as session:
        topup = await _locked(session, topup_id=topup_id, intent_id=intent_id)
        if topup is None:
            log.warning("topup_unknown_intent", intent_id=intent_id)
            return "unknown"
        if topup.intent_id is None:
            topup.intent_id = intent_id
        topup.checked_at = utcnow()
        if topup.status == "succeeded":
            return "succeeded"  # credited before: never twice
        status = intent.get("status")
        if status == "succeeded":
            assert isinstance(charge, dict)
            await _credit(session, topup, charge)
        elif status == "requires_action":
            redirect = ((intent.get("next_action") or {}).get("redirect_to_url") or {}).get("url")
            topup.status, topup.next_action_url = "requires_action", redirect
        elif status in ("requires_payment_method", "canceled"):
            error = intent.get("last_payment_error") or {}
            topup.status = "failed"
            topup.failure_code = str(error.get("decline_code") or error.get("code") or status)[:64]
            topup.next_action_url = None
        return topup.status


async def _credit(session: AsyncSession, topup: WalletTopup, charge: dict[str, Any]) -> None:
    txn = charge["balance_transaction"]
    amount, fee, net = int(txn["amount"]), int(txn["fee"]), int(txn["net"])
    if amount != topup.amount:
        log.error("topup_amount_differs", topup_id=str(topup.id), asked=topup.amount, charged=amount)
    wallet = await wallet_account_id(session, topup.user_id, create=True)
    postings = [credit(wallet, amount)]
    if net:
        postings.append(Posting(ledger.system_account(AccountType.GATEWAY_CLEARING), -net))
    if fee:
        postings.append(Posting(ledger.system_account(AccountType.GATEWAY_FEES), -fee))
    posted = await ledger.post(
        session,
        Entry(
            kind="topup",
            postings=postings,
            # the gateway's id of this money movement: the ``source`` of its balance transaction, what the
            # settlement report (reconciliation) matches on; the intent id stays in the metadata and the row
            reference=str(charge.get("id") or topup.intent_id),
            description="Nạp tiền từ thẻ / Card top-up",
            metadata={
                "topup_id": str(topup.id),
                "payment_intent": topup.intent_id,
                "charge": charge.get("id"),
                "balance_transaction": txn.get("id"),
                "amount": amount,
                "fee": fee,
                "net": net,
            },
        ),
    )
    topup.status, topup.entry_id, topup.credited_at = "succeeded", posted.entry_id, utcnow()
    topup.fee, topup.net, topup.next_action_url = fee, net, None
    topup.balance_transaction_id, topup.charge_id = txn.get("id"), charge.get("id")
    money = f"{amount:,}".replace(",", ".")
    await post_notification(
        session,
        topup.user_id,
        "wallet.topup_succeeded",
        "Nạp tiền thành công",
        f"Ví của bạn đã được nạp {money} đồng từ thẻ.",
        title_en="Top-up succeeded",
        body_en=f"{amount:,} VND was added to your wallet from your card.",
        data={"topup_id": str(topup.id)},
    )


# --- webhooks ---------------------------------------------------------------------------------------------


async def receive_webhook(
    db: Database, settings: Settings, gateway: CardGateway, body: bytes, signature: str | None
) -> dict[str, Any]:
    """Verify and apply one gateway event. Returns ``{"received": true, ...}``; raises
    ``webhook_signature_invalid`` (400) for a forged or stale signature and ``card_gateway_unavailable``
    (503, the gateway retries) when the intent could not be read back."""
    secrets = [secret for _, secret in settings.card_gateway_webhook_secrets.keys]
    try:
        verify(signature, body, secrets)
    except SignatureError as exc:
        raise WEBHOOK_SIGNATURE_INVALID(str(exc), str(exc)) from exc
    try:
        event = json.loads(body)
        event_id, kind = str(event["id"]), str(event["type"])
        obj = event["data"]["object"]
    except (ValueError, KeyError, TypeError) as exc:
        raise WEBHOOK_SIGNATURE_INVALID("Sự kiện không đọc được", "Unreadable event") from exc
    async with db.read() as session:
        if await session.get(GatewayEvent, event_id) is not None:
            return {"received": True, "duplicate": True}
    status = "ignored"
    intent_id = obj.get("id") if isinstance(obj, dict) and obj.get("object") == "payment_intent" else None
    if intent_id:
        try:
            current = await gateway.retrieve_payment_intent(str(intent_id))
            status = await apply_intent(db, gateway, current, topup_id=_topup_id_of(obj))
        except (GatewayUnavailableError, GatewayError) as exc:
            raise GATEWAY_UNAVAILABLE() from exc
    async with db.transaction() as session:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        await session.execute(
            insert(GatewayEvent)
            .values(id=event_id[:100], type=kind[:64], intent_id=intent_id, received_at=utcnow())
            .on_conflict_do_nothing(index_elements=["id"])
        )
    return {"received": True, "status": status}


# --- the reconciling poll -----------------------------------------------------------------------------------


async def poll_pending_topups(
    db: Database, gateway: CardGateway, *, older_than: timedelta = timedelta(seconds=30), batch: int = 200
) -> int:
    """Ask the gateway about top-ups still open (webhook late or lost, a create that timed out); returns how
    many were looked at. Idempotent: each is re-driven with its own idempotency key."""
    cutoff = utcnow() - older_than
    async with db.read() as session:
        ids = list(
            await session.scalars(
                select(WalletTopup.id)
                .where(WalletTopup.status.in_(_OPEN), WalletTopup.created_at <= cutoff)
                .order_by(WalletTopup.checked_at.is_not(None), WalletTopup.checked_at, WalletTopup.created_at)
                .limit(batch)
            )
        )
    for topup_id in ids:
        await drive_topup(db, gateway, topup_id)
    return len(ids)


@scheduled_job("wallet.poll_pending_topups", trigger=every(minutes=1))
async def poll_pending_topups_job(ctx: JobContext) -> None:
    """The webhook's safety net: top-ups the gateway never told us about are asked about every minute."""
    looked = await poll_pending_topups(ctx.db, get_card_gateway())
    log.info("topups_polled", looked=looked)
