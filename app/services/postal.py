"""Return of results by public post (bưu chính công ích): the postal-service interface and its sandbox,
the postage bill, and the scheduled poll that dispatches paid shipments and follows their delivery.

Flow: the citizen chooses ``post`` with an address → a postage bill (biller ``POSTAGE_VNPOST``, owned by the
citizen) appears in their bills and can be paid with the fee in one ``POST /api/v1/payments`` → the
``BillsPaid`` subscriber marks the postage paid (same transaction) → once the dossier is ``releasing``, the
poll (:func:`poll_postal`, every 5 minutes) hands the shipment to the postal service (the delivery's id is
the shipment reference, stored before the call, so a retried call never makes a second shipment) → later
polls read the tracking events; ``delivered`` moves the dossier ``releasing`` → ``done``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.bills.errors import BILLER_NOT_FOUND
from app.bills.events import BillsPaid
from app.bills.schemas import BillerIn, CustomerInput, SettlementAccount
from app.bills.service import get_biller, put_biller
from app.core.crypto import subkey
from app.core.db import Database, utcnow
from app.core.errors import AppError
from app.core.events import subscribe
from app.core.scheduler import JobContext, every, per_interval, scheduled_job
from app.core.settings import KeyRing, Settings
from app.services.dossier_models import Dossier
from app.services.result_models import DossierDelivery
from app.services.workflow import DossierStatus

__all__ = [
    "POSTAL_BILLER",
    "PostalEvent",
    "PostalService",
    "SandboxPostal",
    "ensure_postal_biller",
    "get_postal_service",
    "poll_postal",
    "verify_webhook",
    "webhook_signature",
]

log = structlog.get_logger("app.services.postal")
POSTAL_BILLER = "POSTAGE_VNPOST"
_CLOSED_WITHOUT_RESULT = (
    DossierStatus.CANCELLED.value,
    DossierStatus.UNRESOLVED.value,
    DossierStatus.DENIED.value,
)
"""The biller of postage for results returned by public post."""


@dataclass(frozen=True, slots=True)
class PostalEvent:
    code: str
    """``accepted``, ``in_transit``, ``delivered`` or ``returned``."""
    description: str
    at: datetime


class PostalService(Protocol):
    """What the app needs of a postal operator."""

    async def create_shipment(
        self, *, reference: str, recipient: str, address: str, phone: str | None
    ) -> str:
        """Book a shipment; returns its tracking number. The same ``reference`` again returns the same
        number (no second shipment)."""

    async def events(self, tracking_number: str) -> list[PostalEvent]:
        """Everything that happened to the shipment so far, oldest first."""


@dataclass
class _Shipment:
    reference: str
    created_at: datetime
    delivered_at: datetime | None = None


@dataclass
class SandboxPostal:
    """An in-process postal service for development and tests. Tracking numbers look like VNPost's
    (``EB123456789VN``) and are derived from the reference. A shipment is ``accepted`` at once, ``in_transit``
    after an hour and ``delivered`` after ``transit`` (default one day), or as soon as :meth:`deliver` is
    called. State lives in the process: it is a sandbox, not a store."""

    transit: timedelta = timedelta(days=1)
    shipments: dict[str, _Shipment] = field(default_factory=dict)

    @staticmethod
    def tracking_for(reference: str) -> str:
        digits = int.from_bytes(hashlib.sha256(reference.encode()).digest()[:8], "big") % 10**9
        return f"EB{digits:09d}VN"

    async def create_shipment(
        self, *, reference: str, recipient: str, address: str, phone: str | None
    ) -> str:
        tracking = self.tracking_for(reference)
        self.shipments.setdefault(tracking, _Shipment(reference, utcnow()))
        return tracking

    def deliver(self, tracking_number: str, at: datetime | None = None) -> None:
        """Sandbox control: the postman hands the letter over now (or at ``at``)."""
        self.shipments[tracking_number].delivered_at = at or utcnow()

    async def events(self, tracking_number: str) -> list[PostalEvent]:
        shipment = self.shipments.get(tracking_number)
        if shipment is None:
            return []
        now = utcnow()
        found = [PostalEvent("accepted", "Bưu cục đã nhận bưu gửi", shipment.created_at)]
        if now >= shipment.created_at + timedelta(hours=1):
            found.append(
                PostalEvent("in_transit", "Đang vận chuyển", shipment.created_at + timedelta(hours=1))
            )
        delivered = shipment.delivered_at
        if delivered is None and now >= shipment.created_at + self.transit:
            delivered = shipment.created_at + self.transit
        if delivered is not None:
            found.append(PostalEvent("delivered", "Phát thành công", delivered))
        return found


_SANDBOX = SandboxPostal()


def get_postal_service(settings: Settings) -> PostalService:
    """The postal operator. Only the sandbox exists so far (see the engineering note): no operator API
    contract was available to build against, so production refuses to pretend (the poll job fails loudly
    instead of posting nothing)."""
    if settings.is_production:
        raise RuntimeError("no postal operator API is configured; the postal sandbox is not for production")
    return _SANDBOX


async def ensure_postal_biller(db: Database, *, production: bool) -> str:
    """Declare the postage biller with defaults when it is missing (admins set its real settlement)."""
    async with db.read() as session:
        try:
            await get_biller(session, POSTAL_BILLER, active_only=False)
            return POSTAL_BILLER
        except AppError as error:
            if error.kind is not BILLER_NOT_FOUND:
                raise
    await put_biller(
        db,
        POSTAL_BILLER,
        BillerIn(
            name="Bưu chính công ích – cước trả kết quả TTHC",
            category="other",
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
                bank_bin="970405",
                account_number="000000000000",
                account_name="Tổng công ty Bưu điện Việt Nam",
            ),
            description="Cước gửi kết quả giải quyết thủ tục hành chính qua bưu chính công ích.",
        ),
        production=production,
    )
    return POSTAL_BILLER


_WEBHOOK_PURPOSE = "postal-webhook:hmac"


def webhook_signature(ring: KeyRing, body: bytes, key_id: str | None = None) -> str:
    """The ``X-Postal-Signature`` header of a webhook body: ``{key id}={hex HMAC-SHA256}``, keyed by a subkey
    of ``WEBHOOK_KEYS`` shared with the postal operator."""
    kid = key_id or ring.active_kid
    secret = ring.get(kid)
    if secret is None:
        raise KeyError(kid)
    return f"{kid}=" + hmac.new(subkey(secret, _WEBHOOK_PURPOSE), body, hashlib.sha256).hexdigest()


def verify_webhook(ring: KeyRing, body: bytes, header: str | None) -> bool:
    """Whether ``header`` signs ``body`` under any key of the ring (keys rotate)."""
    if not header or "=" not in header:
        return False
    kid = header.split("=", 1)[0]
    if ring.get(kid) is None:
        return False
    return hmac.compare_digest(webhook_signature(ring, body, kid), header)


@subscribe(BillsPaid)
async def on_postage_paid(session: AsyncSession, event: BillsPaid) -> None:
    """In the payment's transaction: the postage of a result is paid (the poll dispatches it once the
    result is ready)."""
    ids = [b.bill_id for b in event.bills if b.biller_code == POSTAL_BILLER]
    if not ids:
        return
    rows = await session.scalars(
        select(DossierDelivery).where(DossierDelivery.postage_bill_id.in_(ids)).with_for_update()
    )
    for delivery in rows:
        delivery.postage_paid_at = event.paid_at


async def poll_postal(
    db: Database, settings: Settings, postal: PostalService | None = None
) -> dict[str, int]:
    """Dispatch paid shipments of released results and read the events of dispatched ones; a delivered
    shipment moves its dossier to ``done``; the postage of a dossier closed without a result (withdrawn,
    stopped) is refunded, or its unpaid bill cancelled. Safe to run again at any time."""
    from app.services import results  # the dossier side of a delivery

    postal = postal or get_postal_service(settings)
    counts = {"dispatched": 0, "delivered": 0, "closed": 0}
    async with db.read() as session:
        closed = list(
            await session.scalars(
                select(DossierDelivery.id)
                .join(Dossier, Dossier.id == DossierDelivery.dossier_id)
                .where(
                    DossierDelivery.channel == "post",
                    DossierDelivery.state == "chosen",
                    DossierDelivery.postage_bill_id.is_not(None),
                    Dossier.status.in_(_CLOSED_WITHOUT_RESULT),
                )
            )
        )
        ready = list(
            (
                await session.execute(
                    select(
                        DossierDelivery.id,
                        DossierDelivery.recipient_name,
                        DossierDelivery.address,
                        DossierDelivery.phone,
                    )
                    .join(Dossier, Dossier.id == DossierDelivery.dossier_id)
                    .where(
                        DossierDelivery.channel == "post",
                        DossierDelivery.state == "chosen",
                        DossierDelivery.postage_paid_at.is_not(None),
                        Dossier.status == DossierStatus.RELEASING.value,
                    )
                )
            ).all()
        )
        travelling = list(
            (
                await session.execute(
                    select(DossierDelivery.id, DossierDelivery.tracking_number).where(
                        DossierDelivery.channel == "post", DossierDelivery.state == "dispatched"
                    )
                )
            ).all()
        )
    for delivery_id in closed:
        async with db.transaction() as session:
            if await results.close_postage(session, delivery_id):
                counts["closed"] += 1
    for delivery_id, name, address, phone in ready:
        tracking = await postal.create_shipment(
            reference=str(delivery_id), recipient=name or "", address=address or "", phone=phone
        )
        async with db.transaction() as session:
            if await results.mark_dispatched(session, delivery_id, tracking):
                counts["dispatched"] += 1
    for delivery_id, number in travelling:
        seen = await postal.events(number or "")
        async with db.transaction() as session:
            if await results.record_postal_events(session, delivery_id, seen):
                counts["delivered"] += 1
    return counts


@scheduled_job("results.postal_poll", trigger=every(minutes=5), period=per_interval(300))
async def postal_poll_job(ctx: JobContext) -> None:
    """Every five minutes: hand paid shipments to the post, follow the dispatched ones."""
    counts = await poll_postal(ctx.db, ctx.settings)
    log.info("postal_polled", **counts)
