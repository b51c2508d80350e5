"""Results of dossiers (issue 9): the signed result document, its public verification, the return of the
result by the chosen channel (desk, online, post), and the apology with a new date.

Signing happens in the approval's own transaction: ``dossiers.approve`` publishes :class:`ResultIssued`, and
:func:`on_result_issued` turns the officer's file into the issued result, a PDF carrying the metadata and a QR
code that opens the public verification (``{PUBLIC_BASE_URL}/api/v1/results/{id}``), with the officer's file
inside (drawn when it is an image, attached when it is a PDF). That PDF goes into the citizen's document store
(reusable in later dossiers) and its SHA-256 with the metadata is signed by the agency's key
(:mod:`app.services.signing`). The signature cannot sit inside the file it covers, so it lives beside it:
the QR code's address returns it, with the public key, for anyone to check.

Return: releasing → done when the result is collected at the desk (the officer marks it), downloaded (online;
also when no channel was chosen) or delivered by the post (:mod:`app.services.postal`).
"""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import app.bills
from app.bills.refunds import cancel_unpaid_bill, refund_paid_bill
from app.bills.service import issue_bill
from app.core.audit import AuditActor, record
from app.core.db import Database, database_of, utcnow
from app.core.errors import NOT_FOUND, VALIDATION_FAILED
from app.core.events import subscribe
from app.core.security import Caller
from app.core.settings import Settings
from app.identity.inbox import post_notification
from app.identity.service import get_user_brief
from app.services.documents import file_store
from app.services.dossier_models import Dossier, DossierAttachment, DossierEvent, StoredDocument
from app.services.dossier_schemas import DocumentOut
from app.services.errors import ILLEGAL_TRANSITION
from app.services.events import ResultIssued
from app.services.models import Agency
from app.services.postal import POSTAL_BILLER, PostalEvent
from app.services.result_errors import (
    CHANNEL_NOT_OFFERED,
    RESULT_KEY_REVOKED,
    RESULT_NOT_RELEASED,
    RETURN_LOCKED,
)
from app.services.result_models import DossierApology, DossierDelivery, ResultKeyRevocation, SignedResult
from app.services.result_schemas import (
    ApologyIn,
    ApologyOut,
    DeliveryOut,
    KeyOut,
    PostalEventOut,
    ResultCheck,
    ResultOut,
    ReturnChoice,
)
from app.services.service import get_procedure
from app.services.signing import public_key, result_content, sign_result, verify_result
from app.services.workflow import DossierStatus, check_transition

__all__ = [
    "choose_return",
    "close_postage",
    "download_result",
    "get_delivery",
    "get_result",
    "list_apologies",
    "list_keys",
    "mark_collected",
    "mark_dispatched",
    "on_result_issued",
    "receive_postal_event",
    "record_postal_events",
    "render_result_pdf",
    "revoke_key",
    "send_apology",
    "verify_file",
]

S = DossierStatus
HUE = ZoneInfo("Asia/Ho_Chi_Minh")
_FONTS = Path(app.bills.__file__).parent / "data" / "fonts"
_CLOSED = (S.DENIED.value, S.CANCELLED.value, S.UNRESOLVED.value, S.DONE.value)


def _not_found() -> Exception:
    return NOT_FOUND("Không tìm thấy hồ sơ", "No such dossier")


def _settings(session: AsyncSession) -> Settings:
    db = database_of(session)
    if db is None:
        raise RuntimeError("a results session must come from a Database")
    return db.settings


def _event(
    session: AsyncSession,
    dossier: Dossier,
    action: str,
    to_status: str,
    actor: str,
    actor_id: uuid.UUID | None,
    *,
    note: str | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
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


async def _notify(
    session: AsyncSession, dossier: Dossier, kind: str, vi: tuple[str, str], en: tuple[str, str], **data: str
) -> None:
    await post_notification(
        session,
        dossier.applicant_id,
        kind,
        vi[0],
        vi[1],
        title_en=en[0],
        body_en=en[1],
        data={"dossier_id": str(dossier.id), **data},
    )


async def _mine(
    session: AsyncSession, caller: Caller, dossier_id: uuid.UUID, *, lock: bool = False
) -> Dossier:
    query = select(Dossier).where(Dossier.id == dossier_id)
    if lock:
        query = query.with_for_update()
    dossier = await session.scalar(query)
    if dossier is None or dossier.applicant_id != caller.user_id:
        raise _not_found()
    return dossier


async def _held(
    session: AsyncSession, caller: Caller, dossier_id: uuid.UUID, *, lock: bool = True, read: bool = False
) -> Dossier:
    """A dossier held now by the caller's agency (officer); ``read`` also admits support admins."""
    query = select(Dossier).where(Dossier.id == dossier_id)
    if lock:
        query = query.with_for_update()
    dossier = await session.scalar(query)
    officer = caller.has_role("officer") and caller.agency_id is not None
    if dossier is None or dossier.status == "draft":
        raise _not_found()
    if officer and caller.agency_id == dossier.agency_code:
        return dossier
    if read and caller.is_admin and caller.duties & {"support", "superadmin"}:
        return dossier
    raise _not_found()


async def _audit(
    session: AsyncSession, caller: Caller | AuditActor, action: str, dossier: Dossier, **details: Any
) -> None:
    await record(
        session,
        actor=caller,
        action=f"services.{action}",
        object_type="dossier",
        object_id=dossier.id,
        details={"code": dossier.code, "status": dossier.status, "agency": dossier.agency_code, **details},
    )


# --- the signed result ------------------------------------------------------------------------------------


def render_result_pdf(
    content: dict[str, Any], *, verify_url: str, original: bytes, original_type: str, original_name: str
) -> bytes:
    """The issued result: metadata, the officer's document (image drawn, PDF attached) and the QR code."""
    import segno
    from fpdf import FPDF

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_title(f"Kết quả hồ sơ {content['dossier_code']}")
    pdf.set_author(str(content["agency_name"]))
    pdf.set_creator("Hue-S")
    pdf.set_creation_date(datetime.fromisoformat(str(content["issued_at"])))
    pdf.add_font("DejaVu", "", str(_FONTS / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(_FONTS / "DejaVuSans-Bold.ttf"))
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    pdf.set_font("DejaVu", "B", 11)
    pdf.multi_cell(width, 6, str(content["agency_name"]).upper(), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("DejaVu", "B", 14)
    pdf.multi_cell(
        width, 8, "KẾT QUẢ GIẢI QUYẾT THỦ TỤC HÀNH CHÍNH", align="C", new_x="LMARGIN", new_y="NEXT"
    )
    pdf.set_font("DejaVu", "", 8)
    pdf.multi_cell(width, 4, "(Result of a public-service dossier)", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    rows = [
        ("Thủ tục (procedure)", f"{content['procedure_name']} ({content['procedure_code']})"),
        ("Mã hồ sơ (dossier)", content["dossier_code"]),
        ("Người nhận kết quả (holder)", content["holder"]),
        ("Cơ quan cấp (issuer)", f"{content['agency_name']} ({content['agency_code']})"),
        ("Ngày cấp (date)", date.fromisoformat(str(content["issued_on"])).strftime("%d/%m/%Y")),
        ("Mã kết quả (result id)", content["result_id"]),
    ]
    for label, value in rows:
        pdf.set_font("DejaVu", "", 10)
        y = pdf.get_y()
        pdf.multi_cell(width * 0.38, 6, label, new_x="RIGHT", new_y="TOP")
        pdf.set_font("DejaVu", "B", 10)
        pdf.multi_cell(width * 0.62, 6, str(value), new_x="LMARGIN", new_y="NEXT")
        pdf.set_y(max(pdf.get_y(), y + 6))
    pdf.ln(4)
    if original_type in ("image/png", "image/jpeg"):
        try:
            pdf.image(io.BytesIO(original), w=width * 0.8, x=pdf.l_margin + width * 0.1)
        except Exception:
            pdf.embed_file(bytes=original, basename=original_name, desc="Văn bản kết quả")
    else:
        pdf.embed_file(bytes=original, basename=original_name, desc="Văn bản kết quả (result document)")
        pdf.set_font("DejaVu", "", 9)
        pdf.multi_cell(
            width,
            5,
            f"Văn bản kết quả đính kèm trong tệp này: {original_name} (the result document is attached to "
            "this PDF).",
            new_x="LMARGIN",
            new_y="NEXT",
        )
    pdf.ln(4)
    qr = io.BytesIO()
    segno.make(verify_url, error="m").save(qr, kind="png", scale=4, border=2)
    qr.seek(0)
    y = pdf.get_y()
    if y > pdf.h - 60:
        pdf.add_page()
        y = pdf.get_y()
    pdf.image(qr, x=pdf.l_margin, y=y, w=35, h=35)
    pdf.set_xy(pdf.l_margin + 40, y)
    pdf.set_font("DejaVu", "", 8)
    pdf.multi_cell(
        width - 40,
        4,
        "Kết quả được ký số bởi cơ quan cấp (Ed25519). Quét mã QR hoặc mở địa chỉ dưới đây để xác minh; "
        "gửi tệp này tới /api/v1/results/verify để kiểm tra tệp không bị sửa đổi.\n"
        f"Signed by the issuing agency. Verify: {verify_url}",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    return bytes(pdf.output())


async def _revoked(session: AsyncSession, agency_code: str, key_id: str) -> ResultKeyRevocation | None:
    return await session.scalar(
        select(ResultKeyRevocation).where(
            ResultKeyRevocation.agency_code == agency_code, ResultKeyRevocation.key_id == key_id
        )
    )


@subscribe(ResultIssued)
async def on_result_issued(session: AsyncSession, event: ResultIssued) -> None:
    """In the approval's transaction: issue the signed result PDF into the citizen's document store."""
    settings = _settings(session)
    ring = settings.result_ring
    dossier = await session.get(Dossier, event.dossier_id)
    original = await session.get(StoredDocument, event.document_id)
    if dossier is None or original is None or dossier.code is None:
        raise RuntimeError("a result was issued for a missing dossier or document")
    if await _revoked(session, dossier.agency_code, ring.active_kid) is not None:
        raise RESULT_KEY_REVOKED(
            "Khóa ký kết quả đang dùng của cơ quan đã bị thu hồi",
            "The agency's active result-signing key is revoked",
            agency=dossier.agency_code,
            key_id=ring.active_kid,
        )
    store = file_store(settings)
    procedure = await get_procedure(session, dossier.procedure_code)
    agency = await session.get(Agency, dossier.agency_code)
    holder = await get_user_brief(session, dossier.applicant_id)
    result_id = uuid.uuid4()
    verify_url = f"{settings.public_base_url}/api/v1/results/{result_id}"
    metadata = {
        "result_id": str(result_id),
        "dossier_code": dossier.code,
        "procedure_code": procedure.code,
        "procedure_name": procedure.name_vi,
        "holder": (holder.full_name if holder and holder.full_name else "") or "-",
        "agency_code": dossier.agency_code,
        "agency_name": agency.name_vi if agency else dossier.agency_code,
        "issued_at": event.at,
    }
    preview = result_content(sha256="", **metadata)  # type: ignore[arg-type]
    pdf = render_result_pdf(
        preview,
        verify_url=verify_url,
        original=await store.get(original.storage_key),
        original_type=original.media_type,
        original_name=original.filename,
    )
    sha256 = hashlib.sha256(pdf).hexdigest()
    key = await store.put(pdf)
    signed_doc = StoredDocument(
        owner_id=dossier.applicant_id,
        filename=f"ket-qua-{dossier.code}.pdf",
        media_type="application/pdf",
        size_bytes=len(pdf),
        sha256=sha256,
        storage_key=key,
        uploaded_by=event.officer_id,
    )
    session.add(signed_doc)
    await session.flush()
    session.add(DossierAttachment(dossier_id=dossier.id, document_id=signed_doc.id, purpose="result"))
    content = result_content(sha256=sha256, **metadata)  # type: ignore[arg-type]
    key_id, signature = sign_result(ring, content)
    session.add(
        SignedResult(
            id=result_id,
            dossier_id=dossier.id,
            document_id=signed_doc.id,
            agency_code=dossier.agency_code,
            content=content,
            key_id=key_id,
            signature=signature,
            issued_by=event.officer_id,
        )
    )
    dossier.result_document_id = signed_doc.id
    _event(
        session,
        dossier,
        "result_signed",
        dossier.status,
        "officer",
        event.officer_id,
        note=f"Kết quả đã ký số, mã {result_id}",
        details={"result_id": str(result_id), "key_id": key_id, "sha256": sha256},
        at=event.at,
    )
    await session.flush()


async def _result_out(session: AsyncSession, settings: Settings, row: SignedResult) -> ResultOut:
    ring = settings.result_ring
    revoked = await _revoked(session, row.agency_code, row.key_id) is not None
    verdict = verify_result(ring, row.content, row.key_id, row.signature, revoked=revoked)
    c = row.content
    return ResultOut(
        result_id=row.id,
        valid=verdict == "valid",
        verdict=verdict,
        dossier_code=str(c.get("dossier_code")),
        procedure_code=str(c.get("procedure_code")),
        procedure_name=str(c.get("procedure_name")),
        holder=str(c.get("holder")),
        agency_code=str(c.get("agency_code")),
        agency_name=str(c.get("agency_name")),
        issued_at=datetime.fromisoformat(str(c.get("issued_at"))),
        sha256=str(c.get("sha256")),
        algorithm="Ed25519",
        key_id=row.key_id,
        public_key=public_key(ring, row.agency_code, row.key_id),
        signature=row.signature,
        content=dict(c),
    )


async def get_result(session: AsyncSession, settings: Settings, result_id: uuid.UUID) -> ResultOut:
    """The public record of a signed result (what its QR code opens), checked now."""
    row = await session.get(SignedResult, result_id)
    if row is None:
        raise NOT_FOUND("Không tìm thấy kết quả", "No such result")
    return await _result_out(session, settings, row)


async def verify_file(
    session: AsyncSession, settings: Settings, data: bytes, result_id: uuid.UUID | None
) -> ResultCheck:
    """Is ``data`` a genuine result? By the result id read from its QR code, or else by its hash."""
    sha256 = hashlib.sha256(data).hexdigest()
    if result_id is not None:
        row = await session.get(SignedResult, result_id)
    else:
        row = await session.scalar(
            select(SignedResult)
            .join(StoredDocument, StoredDocument.id == SignedResult.document_id)
            .where(StoredDocument.sha256 == sha256)
        )
    if row is None:
        return ResultCheck(valid=False, verdict="unknown_document", sha256=sha256, result=None)
    out = await _result_out(session, settings, row)
    revoked = out.verdict == "key_revoked"
    verdict = verify_result(
        settings.result_ring, row.content, row.key_id, row.signature, revoked=revoked, document_sha256=sha256
    )
    return ResultCheck(valid=verdict == "valid", verdict=verdict, sha256=sha256, result=out)


async def list_keys(session: AsyncSession, settings: Settings, agency_code: str) -> list[KeyOut]:
    """The agency's result-signing keys (every key id of the ring), with revocations."""
    if await session.get(Agency, agency_code) is None:
        raise NOT_FOUND("Không tìm thấy cơ quan", "No such agency")
    ring = settings.result_ring
    revocations = {
        r.key_id: r
        for r in await session.scalars(
            select(ResultKeyRevocation).where(ResultKeyRevocation.agency_code == agency_code)
        )
    }
    out = []
    for kid, _secret in ring.keys:
        revocation = revocations.get(kid)
        out.append(
            KeyOut(
                agency_code=agency_code,
                key_id=kid,
                public_key=public_key(ring, agency_code, kid) or "",
                active=kid == ring.active_kid and revocation is None,
                revoked_at=revocation.created_at if revocation else None,
                revocation_reason=revocation.reason if revocation else None,
            )
        )
    return out


async def revoke_key(
    session: AsyncSession, settings: Settings, caller: Caller, agency_code: str, key_id: str, reason: str
) -> KeyOut:
    """Revoke one agency's key: every result it signed stops verifying (admin; audited)."""
    ring = settings.result_ring
    if await session.get(Agency, agency_code) is None or ring.get(key_id) is None:
        raise NOT_FOUND("Không tìm thấy khóa", "No such key")
    existing = await _revoked(session, agency_code, key_id)
    if existing is None:
        existing = ResultKeyRevocation(
            agency_code=agency_code, key_id=key_id, reason=reason, revoked_by=caller.user_id
        )
        session.add(existing)
        await session.flush()
        await record(
            session,
            actor=caller,
            action="services.result_key_revoked",
            object_type="result_key",
            object_id=f"{agency_code}:{key_id}",
            details={"agency": agency_code, "key_id": key_id, "reason": reason},
        )
    return KeyOut(
        agency_code=agency_code,
        key_id=key_id,
        public_key=public_key(ring, agency_code, key_id) or "",
        active=False,
        revoked_at=existing.created_at,
        revocation_reason=existing.reason,
    )


# --- return of the result --------------------------------------------------------------------------------


def _delivery_out(dossier_id: uuid.UUID, d: DossierDelivery | None) -> DeliveryOut:
    if d is None:
        return DeliveryOut(
            dossier_id=dossier_id,
            channel="online",
            state="chosen",
            recipient_name=None,
            address=None,
            phone=None,
            postage_amount=None,
            postage_bill_id=None,
            postage_paid_at=None,
            tracking_number=None,
            events=[],
            delivered_at=None,
        )
    return DeliveryOut(
        dossier_id=dossier_id,
        channel=d.channel,  # type: ignore[arg-type]
        state=d.state,  # type: ignore[arg-type]
        recipient_name=d.recipient_name,
        address=d.address,
        phone=d.phone,
        postage_amount=d.postage_amount,
        postage_bill_id=d.postage_bill_id,
        postage_paid_at=d.postage_paid_at,
        tracking_number=d.tracking_number,
        events=[
            PostalEventOut(code=e["code"], description=e["description"], at=datetime.fromisoformat(e["at"]))
            for e in d.postal_events or []
        ],
        delivered_at=d.delivered_at,
    )


async def _delivery(
    session: AsyncSession, dossier_id: uuid.UUID, *, lock: bool = False
) -> DossierDelivery | None:
    query = select(DossierDelivery).where(DossierDelivery.dossier_id == dossier_id)
    if lock:
        query = query.with_for_update()
    return await session.scalar(query)


async def choose_return(
    session: AsyncSession, settings: Settings, caller: Caller, dossier_id: uuid.UUID, choice: ReturnChoice
) -> DeliveryOut:
    """The citizen picks how to receive the result (any time after submission, until it is on its way).
    ``post`` needs an address and bills the postage (``POSTAGE_VNPOST``, biller declared beforehand by
    :func:`app.services.postal.ensure_postal_biller`); leaving ``post`` cancels an unpaid postage bill."""
    dossier = await _mine(session, caller, dossier_id, lock=True)
    if dossier.status == "draft" or dossier.code is None or dossier.status in _CLOSED:
        raise RETURN_LOCKED(
            "Chọn hình thức nhận kết quả sau khi nộp và trước khi nhận",
            "Choose after submission, before return",
            status=dossier.status,
        )
    procedure = await get_procedure(session, dossier.procedure_code)
    if choice.channel not in procedure.return_channels:
        raise CHANNEL_NOT_OFFERED(
            "Thủ tục không trả kết quả qua hình thức này",
            "The procedure does not return results this way",
            offered=list(procedure.return_channels),
        )
    if choice.channel == "post" and not (choice.address and choice.recipient_name):
        raise VALIDATION_FAILED(
            "Gửi qua bưu điện cần người nhận và địa chỉ",
            "Post needs a recipient and an address",
            errors=[{"field": "address", "source": "body", "message": "required for post"}],
        )
    delivery = await _delivery(session, dossier.id, lock=True)
    if delivery is not None and (
        delivery.state != "chosen" or (delivery.postage_paid_at is not None and choice.channel != "post")
    ):
        raise RETURN_LOCKED(
            "Cước đã nộp hoặc kết quả đã được gửi; không thể đổi hình thức",
            "Postage is paid or the result is on its way; the channel cannot change",
            state=delivery.state,
        )
    if delivery is None:
        delivery = DossierDelivery(
            dossier_id=dossier.id, channel=choice.channel, state="chosen", postal_events=[]
        )
        session.add(delivery)
    if delivery.channel == "post" and choice.channel != "post" and delivery.postage_bill_id is not None:
        await cancel_unpaid_bill(session, delivery.postage_bill_id)
        delivery.postage_bill_id = None
        delivery.postage_amount = None
    delivery.channel = choice.channel
    delivery.recipient_name = choice.recipient_name if choice.channel == "post" else None
    delivery.address = choice.address if choice.channel == "post" else None
    delivery.phone = choice.phone if choice.channel == "post" else None
    if choice.channel == "post" and delivery.postage_bill_id is None and settings.result_postage_vnd > 0:
        bill = await issue_bill(
            session,
            biller_code=POSTAL_BILLER,
            customer_code=dossier.code,
            external_id=f"dossier-postage:{dossier.id}",
            period=dossier.code[-32:],
            amount=settings.result_postage_vnd,
            description=f"Cước gửi kết quả hồ sơ {dossier.code} qua bưu chính công ích",
            owner_user_id=dossier.applicant_id,
        )
        delivery.postage_bill_id = bill.id
        delivery.postage_amount = settings.result_postage_vnd
    elif choice.channel == "post" and settings.result_postage_vnd == 0:
        delivery.postage_paid_at = delivery.postage_paid_at or utcnow()
    _event(
        session,
        dossier,
        "return_channel",
        dossier.status,
        "citizen",
        caller.user_id,
        note=f"Nhận kết quả: {choice.channel}",
        details={"channel": choice.channel},
    )
    await session.flush()
    return _delivery_out(dossier.id, delivery)


async def get_delivery(
    session: AsyncSession, caller: Caller, dossier_id: uuid.UUID, *, officer: bool
) -> DeliveryOut:
    if officer:
        dossier = await _held(session, caller, dossier_id, lock=False, read=True)
    else:
        dossier = await _mine(session, caller, dossier_id)
    return _delivery_out(dossier.id, await _delivery(session, dossier.id))


async def _deliver(
    session: AsyncSession,
    dossier: Dossier,
    delivery: DossierDelivery,
    actor: str,
    actor_id: uuid.UUID | None,
    how: str,
    at: datetime,
) -> None:
    """releasing → done (DOMAIN.md: the result was delivered), with the timeline and the inbox."""
    check_transition(dossier.status, S.DONE, "officer" if actor == "officer" else "system")
    delivery.state = "delivered"
    delivery.delivered_at = at
    words = {"desk": "nhận tại bộ phận một cửa", "online": "tải về trực tuyến", "post": "phát qua bưu điện"}
    _event(
        session,
        dossier,
        "deliver",
        S.DONE.value,
        actor,
        actor_id,
        note=words[how],
        details={"channel": how},
        at=at,
    )
    dossier.status = S.DONE.value
    await _notify(
        session,
        dossier,
        "dossier.status_changed",
        (
            f"Hồ sơ {dossier.code}: Đã trả kết quả",
            f"Kết quả đã được trả ({words[how]}). Mời bạn đánh giá dịch vụ.",
        ),
        (
            f"Dossier {dossier.code}: result delivered",
            f"The result was delivered ({how}). Please rate the service.",
        ),
        status=dossier.status,
    )


async def download_result(
    db: Database, settings: Settings, caller: Caller, dossier_id: uuid.UUID
) -> tuple[DocumentOut, bytes, uuid.UUID | None]:
    """The citizen's signed result; the first download of a ``releasing`` dossier whose channel is online
    (or not chosen) returns it: → ``done``."""
    async with db.transaction() as session:
        dossier = await _mine(session, caller, dossier_id, lock=True)
        if dossier.status not in (S.RELEASING.value, S.DONE.value) or dossier.result_document_id is None:
            raise RESULT_NOT_RELEASED(
                "Kết quả chưa được trả", "The result is not released", status=dossier.status
            )
        doc = await session.get(StoredDocument, dossier.result_document_id)
        assert doc is not None
        signed = await session.scalar(select(SignedResult.id).where(SignedResult.dossier_id == dossier.id))
        delivery = await _delivery(session, dossier.id, lock=True)
        if dossier.status == S.RELEASING.value and (delivery is None or delivery.channel == "online"):
            if delivery is None:
                delivery = DossierDelivery(
                    dossier_id=dossier.id, channel="online", state="chosen", postal_events=[]
                )
                session.add(delivery)
            await _deliver(session, dossier, delivery, "system", caller.user_id, "online", utcnow())
        out = DocumentOut(
            id=doc.id,
            filename=doc.filename,
            media_type=doc.media_type,
            size_bytes=doc.size_bytes,
            sha256=doc.sha256,
            created_at=doc.created_at,
        )
        key = doc.storage_key
    return out, await file_store(settings).get(key), signed


async def mark_collected(session: AsyncSession, caller: Caller, dossier_id: uuid.UUID) -> DeliveryOut:
    """The officer hands the result over at the desk: → ``done``."""
    dossier = await _held(session, caller, dossier_id)
    if dossier.status != S.RELEASING.value:
        raise ILLEGAL_TRANSITION(
            "Chỉ trả kết quả của hồ sơ đã xử lý xong",
            "Only a processed dossier's result can be handed over",
            from_status=dossier.status,
            to_status=S.DONE.value,
            actor="officer",
        )
    delivery = await _delivery(session, dossier.id, lock=True)
    if delivery is not None and delivery.channel == "post" and delivery.state == "dispatched":
        raise RETURN_LOCKED(
            "Kết quả đang được gửi qua bưu điện", "The result is with the post", state=delivery.state
        )
    if delivery is None:
        delivery = DossierDelivery(dossier_id=dossier.id, channel="desk", state="chosen", postal_events=[])
        session.add(delivery)
    if (
        delivery.channel == "post"
        and delivery.postage_bill_id is not None
        and delivery.postage_paid_at is None
    ):
        await cancel_unpaid_bill(session, delivery.postage_bill_id)
    delivery.channel = "desk"
    await _deliver(session, dossier, delivery, "officer", caller.user_id, "desk", utcnow())
    await session.flush()
    out = _delivery_out(dossier.id, delivery)
    await _audit(session, caller, "dossier_result_collected", dossier)
    return out


async def mark_dispatched(session: AsyncSession, delivery_id: uuid.UUID, tracking: str) -> bool:
    """The postal service took the shipment (the poll, after booking it)."""
    delivery = await session.scalar(
        select(DossierDelivery).where(DossierDelivery.id == delivery_id).with_for_update()
    )
    if delivery is None or delivery.state != "chosen":
        return False
    dossier = await session.get(Dossier, delivery.dossier_id)
    assert dossier is not None
    delivery.tracking_number = tracking
    delivery.state = "dispatched"
    _event(
        session,
        dossier,
        "result_posted",
        dossier.status,
        "system",
        None,
        note=f"Mã bưu gửi {tracking}",
        details={"tracking_number": tracking},
    )
    await _notify(
        session,
        dossier,
        "dossier.result_posted",
        (f"Hồ sơ {dossier.code}: kết quả đã gửi bưu điện", f"Mã bưu gửi: {tracking}"),
        (f"Dossier {dossier.code}: result posted", f"Tracking number: {tracking}"),
        tracking_number=tracking,
    )
    return True


def _merge_events(delivery: DossierDelivery, events: list[PostalEvent], event_id: str | None = None) -> bool:
    """Add the events not seen yet (by event id when the operator gives one, else by code and time);
    returns whether any was new."""
    kept = list(delivery.postal_events or [])
    seen = {(e["code"], e["at"]) for e in kept} | {e["event_id"] for e in kept if e.get("event_id")}
    added = False
    for e in events:
        key = (e.code, e.at.isoformat())
        if key in seen or (event_id is not None and event_id in seen):
            continue
        row = {"code": e.code, "description": e.description, "at": e.at.isoformat()}
        if event_id is not None:
            row["event_id"] = event_id
        kept.append(row)
        seen.add(key)
        added = True
    kept.sort(key=lambda row: row["at"])
    delivery.postal_events = kept
    return added


async def receive_postal_event(
    session: AsyncSession, event_id: str, tracking_number: str, event: PostalEvent
) -> bool:
    """One event pushed by the postal operator's webhook (deduplicated by its id); ``delivered`` moves the
    dossier to ``done``. Returns whether the event was new."""
    delivery = await session.scalar(
        select(DossierDelivery).where(DossierDelivery.tracking_number == tracking_number).with_for_update()
    )
    if delivery is None:
        raise NOT_FOUND("Không tìm thấy bưu gửi", "No such shipment")
    if not _merge_events(delivery, [event], event_id):
        return False
    if event.code == "delivered" and delivery.state == "dispatched":
        dossier = await session.scalar(
            select(Dossier).where(Dossier.id == delivery.dossier_id).with_for_update()
        )
        assert dossier is not None
        if dossier.status == S.RELEASING.value:
            await _deliver(session, dossier, delivery, "system", None, "post", event.at)
        else:
            delivery.state = "delivered"
            delivery.delivered_at = event.at
    return True


async def record_postal_events(
    session: AsyncSession, delivery_id: uuid.UUID, events: list[PostalEvent]
) -> bool:
    """Keep the shipment's events; returns True when it was just delivered (→ ``done``)."""
    delivery = await session.scalar(
        select(DossierDelivery).where(DossierDelivery.id == delivery_id).with_for_update()
    )
    if delivery is None or delivery.state != "dispatched":
        return False
    _merge_events(delivery, events)
    delivered = next((e for e in events if e.code == "delivered"), None)
    if delivered is None:
        return False
    dossier = await session.scalar(select(Dossier).where(Dossier.id == delivery.dossier_id).with_for_update())
    assert dossier is not None
    if dossier.status != S.RELEASING.value:
        delivery.state = "delivered"
        delivery.delivered_at = delivered.at
        return False
    await _deliver(session, dossier, delivery, "system", None, "post", delivered.at)
    return True


async def close_postage(session: AsyncSession, delivery_id: uuid.UUID) -> bool:
    """A dossier closed without a result to post (withdrawn, stopped, denied): its postage goes back to the
    wallet when paid (the one refund path of bills), or its unpaid postage bill is cancelled. Returns whether
    anything changed."""
    delivery = await session.scalar(
        select(DossierDelivery).where(DossierDelivery.id == delivery_id).with_for_update()
    )
    if delivery is None or delivery.state != "chosen" or delivery.postage_bill_id is None:
        return False
    dossier = await session.get(Dossier, delivery.dossier_id)
    assert dossier is not None
    if dossier.status not in (S.CANCELLED.value, S.UNRESOLVED.value, S.DENIED.value):
        return False
    delivery.state = "cancelled"
    if delivery.postage_paid_at is None:
        await cancel_unpaid_bill(session, delivery.postage_bill_id)
        _event(session, dossier, "postage_cancelled", dossier.status, "system", None)
        return True
    refunded = await refund_paid_bill(
        session,
        delivery.postage_bill_id,
        reason="dossier_closed",
        reference=f"{dossier.code}-POST-R",
        description=f"Hoàn cước bưu chính hồ sơ {dossier.code}",
    )
    amount = refunded.amount if refunded else 0
    _event(
        session,
        dossier,
        "postage_refunded",
        dossier.status,
        "system",
        None,
        note=f"Đã hoàn {amount} đồng cước bưu chính vào ví / {amount} đồng postage refunded",
        details={"amount": amount, "bill_id": str(delivery.postage_bill_id)},
    )
    if refunded is not None:
        await _notify(
            session,
            dossier,
            "dossier.postage_refunded",
            (f"Hồ sơ {dossier.code}: hoàn cước bưu chính", f"Đã hoàn {amount} đồng vào ví của bạn."),
            (f"Dossier {dossier.code}: postage refunded", f"{amount} đồng went back to your wallet."),
        )
    return True


# --- apology and new date ---------------------------------------------------------------------------------


def _apology_out(a: DossierApology) -> ApologyOut:
    return ApologyOut(
        id=a.id,
        dossier_id=a.dossier_id,
        agency_code=a.agency_code,
        reason=a.reason,
        previous_due_at=a.previous_due_at,
        new_due_at=a.new_due_at,
        sent_at=a.created_at,
    )


async def send_apology(
    session: AsyncSession, settings: Settings, caller: Caller, dossier_id: uuid.UUID, data: ApologyIn
) -> ApologyOut:
    """Phiếu xin lỗi và hẹn lại: the officer apologises and promises ``new_due_date`` (end of office hours
    that day). The statutory due date stays what the dossier is classified against."""
    dossier = await _held(session, caller, dossier_id)
    if dossier.status not in (S.NEW.value, S.PROCESSING.value, S.WAITING.value):
        raise ILLEGAL_TRANSITION(
            "Chỉ gửi phiếu xin lỗi cho hồ sơ đang giải quyết",
            "An apology is sent only for a dossier being processed",
            from_status=dossier.status,
            to_status=dossier.status,
            actor="officer",
        )
    today = utcnow().astimezone(HUE).date()
    floor = max(today, dossier.due_at.astimezone(HUE).date()) if dossier.due_at else today
    if data.new_due_date <= floor:
        raise VALIDATION_FAILED(
            "Ngày hẹn mới phải sau hạn hiện tại",
            "The new date must be after the current due date",
            errors=[
                {"field": "new_due_date", "source": "body", "message": f"must be after {floor.isoformat()}"}
            ],
        )
    closing = settings.office_hours[-1][1] if settings.office_hours else time(17, 0)
    new_due_at = datetime.combine(data.new_due_date, closing, tzinfo=HUE)
    apology = DossierApology(
        dossier_id=dossier.id,
        agency_code=dossier.agency_code,
        officer_id=caller.user_id,
        reason=data.reason,
        previous_due_at=dossier.due_at,
        new_due_at=new_due_at,
    )
    session.add(apology)
    day = data.new_due_date.strftime("%d/%m/%Y")
    _event(
        session,
        dossier,
        "apology",
        dossier.status,
        "officer",
        caller.user_id,
        note=f"Xin lỗi và hẹn lại ngày {day}: {data.reason}",
        details={
            "new_due_at": new_due_at.isoformat(),
            "previous_due_at": dossier.due_at.isoformat() if dossier.due_at else None,
        },
    )
    await _notify(
        session,
        dossier,
        "dossier.apology",
        (
            f"Hồ sơ {dossier.code}: thư xin lỗi và hẹn lại",
            f"Hồ sơ sẽ trễ hạn. Ngày hẹn mới: {day}. Lý do: {data.reason}",
        ),
        (
            f"Dossier {dossier.code}: apology and new date",
            f"Your dossier will be late. New date: {day}. Reason: {data.reason}",
        ),
        new_due_at=new_due_at.isoformat(),
    )
    await session.flush()
    out = _apology_out(apology)
    await _audit(session, caller, "dossier_apology", dossier, new_due_at=new_due_at.isoformat())
    return out


async def list_apologies(
    session: AsyncSession, caller: Caller, dossier_id: uuid.UUID, *, officer: bool
) -> list[ApologyOut]:
    if officer:
        dossier = await _held(session, caller, dossier_id, lock=False, read=True)
    else:
        dossier = await _mine(session, caller, dossier_id)
    rows = await session.scalars(
        select(DossierApology)
        .where(DossierApology.dossier_id == dossier.id)
        .order_by(DossierApology.created_at)
    )
    return [_apology_out(a) for a in rows]
