"""E-receipts (biên lai điện tử) of paid bills: content, numbering, the issuer's signature, the PDF.

A receipt carries the fields Decree 123/2020 asks of receipts for fees and charges: number and series, the
issuer, the payer, the amount in figures and in words (Vietnamese), the time, and the issuer's signature.

Signature: Ed25519 over the canonical JSON of the content (keys sorted, UTF-8, no spaces), base64url without
padding. The private key is derived from the ``RECEIPT_KEYS`` key ring (HKDF-SHA256 of the ring's secret for
the purpose ``receipt:ed25519``), so the key id of the secret is the key id of the signature and old receipts
stay verifiable after a rotation while the old secret stays in the ring. Anyone holding the receipt can check
it offline with the public key (given with every receipt and by the verify route).

Numbering: numbers increase within a series (``C{yy}THU``, one series per calendar year in Huế time). On
PostgreSQL they come from the sequence ``bill_receipt_number_seq`` (no hot counter row that every payment
would have to lock; a rolled-back payment leaves a gap in the numbers). On SQLite, whose writers are
serialised, the next number is the series' highest plus one (no gaps).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.bills.models import Receipt
from app.core import signing
from app.core.settings import KeyRing

__all__ = [
    "CHECK_LENGTH",
    "NUMBERS_SQL",
    "VN",
    "amount_in_words",
    "check_code",
    "money_vi",
    "next_numbers",
    "public_key_b64",
    "receipt_code",
    "render_pdf",
    "series_for",
    "sign",
    "verify",
]

VN = ZoneInfo("Asia/Ho_Chi_Minh")
CHECK_LENGTH = 16
"""Characters of the signature printed on the receipt as its look-up code (mã tra cứu)."""
_FONTS = Path(__file__).parent / "data" / "fonts"

# --- amount in words --------------------------------------------------------------------------------------

_DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
_GROUPS = ("", " nghìn", " triệu")


def _triple(n: int, *, leading: bool) -> str:
    """Words of 0 < n < 1000; ``leading`` is false when a higher group precedes (``không trăm``, ``linh``)."""
    hundreds, tens, units = n // 100, n // 10 % 10, n % 10
    words: list[str] = []
    if hundreds or not leading:
        words.append(f"{_DIGITS[hundreds]} trăm")
    if tens == 0:
        if units and words:
            words.append("linh")
    elif tens == 1:
        words.append("mười")
    else:
        words.append(f"{_DIGITS[tens]} mươi")
    if units:
        if units == 1 and tens >= 2:
            words.append("mốt")
        elif units == 5 and tens >= 1:
            words.append("lăm")
        else:
            words.append(_DIGITS[units])
    return " ".join(words)


def _below_billion(n: int, *, leading: bool) -> list[str]:
    parts: list[str] = []
    groups = [n // 1_000_000 % 1000, n // 1000 % 1000, n % 1000]
    for index, value in enumerate(groups):
        if value == 0:
            continue
        parts.append(_triple(value, leading=leading and not parts) + _GROUPS[2 - index])
    return parts


def _words(n: int, *, leading: bool) -> list[str]:
    if n >= 1_000_000_000:
        head, rest = divmod(n, 1_000_000_000)
        parts = [*_words(head, leading=leading), "tỷ"]
        parts[-2:] = [f"{parts[-2]} tỷ"]
        return parts + _below_billion(rest, leading=False)
    return _below_billion(n, leading=leading)


def amount_in_words(amount: int) -> str:
    """``150000`` -> ``Một trăm năm mươi nghìn đồng`` (as written on Vietnamese invoices and receipts)."""
    if amount < 0:
        raise ValueError("amount must not be negative")
    text_ = "không" if amount == 0 else " ".join(_words(amount, leading=True))
    return f"{text_[0].upper()}{text_[1:]} đồng"


# --- numbering --------------------------------------------------------------------------------------------


NUMBERS_SQL = "SELECT nextval('bill_receipt_number_seq') FROM generate_series(1, {count})"
"""PostgreSQL's next numbers, one row each (in no order: sort them); ``count`` is a placeholder's text."""


def series_for(moment: datetime) -> str:
    """The receipt series (ký hiệu) of a payment made at ``moment``: one per calendar year in Huế time."""
    return f"C{moment.astimezone(VN):%y}THU"


def receipt_code(series: str, number: int) -> str:
    """How a receipt is quoted and verified: ``C26THU-00000042``."""
    return f"{series}-{number:08d}"


async def next_numbers(session: AsyncSession, series: str, count: int) -> list[int]:
    """The next ``count`` receipt numbers of ``series``, increasing (see the module docstring)."""
    if session.get_bind().dialect.name == "postgresql":
        rows = await session.execute(text(NUMBERS_SQL.format(count=":n")), {"n": count})
        return sorted(int(value) for value in rows.scalars())
    highest = int(await session.scalar(select(func.max(Receipt.number)).where(Receipt.series == series)) or 0)
    return list(range(highest + 1, highest + 1 + count))


# --- signature --------------------------------------------------------------------------------------------


_PURPOSE = "receipt:ed25519"
"""HKDF purpose of the receipt signing key (kept from before the shared helper, so old receipts verify)."""


def public_key_b64(ring: KeyRing, key_id: str) -> str | None:
    """The raw 32-byte Ed25519 public key of ``key_id``, base64url (no padding)."""
    return signing.public_key_b64(ring, _PURPOSE, key_id)


def sign(ring: KeyRing, content: dict[str, Any]) -> tuple[str, str]:
    """``(key_id, signature)`` of ``content`` under the ring's active key."""
    return signing.sign(ring, _PURPOSE, content)


def verify(ring: KeyRing, content: dict[str, Any], key_id: str, signature: str) -> bool:
    return signing.verify(ring, _PURPOSE, content, key_id, signature)


def check_code(signature: str) -> str:
    """The look-up code printed on a receipt: the first characters of its signature."""
    return signature[:CHECK_LENGTH]


# --- PDF --------------------------------------------------------------------------------------------------


def money_vi(amount: int) -> str:
    """``440450`` -> ``440.450 đ`` (Vietnamese grouping)."""
    return f"{amount:,}".replace(",", ".") + " đ"


def render_pdf(content: dict[str, Any], *, key_id: str, signature: str, status: str) -> bytes:
    """The receipt as an A5 PDF with an embedded font that renders Vietnamese (DejaVu Sans)."""
    from fpdf import FPDF

    pdf = FPDF(orientation="P", unit="mm", format=(148, 210))  # A5
    pdf.set_title(f"Biên lai {content['series']}-{content['number']:08d}")
    pdf.set_author(str(content["issuer"]["name"]))
    pdf.set_creator("Hue-S")
    pdf.add_font("DejaVu", "", str(_FONTS / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(_FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_auto_page_break(auto=True, margin=10)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    pdf.set_font("DejaVu", "B", 13)
    pdf.multi_cell(width, 7, "BIÊN LAI THU TIỀN ĐIỆN TỬ", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 8)
    pdf.multi_cell(width, 4, "(Electronic receipt)", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    if status != "valid":
        pdf.set_font("DejaVu", "B", 10)
        pdf.multi_cell(
            width, 5, "ĐÃ HỦY - hoàn tiền (cancelled: refunded)", align="C", new_x="LMARGIN", new_y="NEXT"
        )
    issuer = content["issuer"]
    payer = content["payer"]
    bill = content["bill"]
    rows = [
        ("Ký hiệu (series)", content["series"]),
        ("Số (number)", f"{content['number']:08d}"),
        ("Đơn vị thu (issuer)", f"{issuer['name']} ({issuer['code']})"),
        ("Thu hộ qua (collected by)", content["collected_by"]),
        ("Người nộp (payer)", payer["name"] or "-"),
        ("Dịch vụ (service)", bill["description"]),
        ("Mã khách hàng (customer code)", bill["customer_code"]),
        ("Tên khách hàng (customer)", bill["customer_name"] or "-"),
        ("Kỳ (period)", bill["period"]),
        ("Số tiền (amount)", money_vi(int(content["amount"]))),
        ("Bằng chữ (in words)", content["amount_in_words"]),
        ("Thời gian (time)", content["paid_at_local"]),
        ("Mã giao dịch (payment)", content["payment_reference"]),
    ]
    label_width = width * 0.42
    for label, value in rows:
        pdf.set_font("DejaVu", "", 9)
        y = pdf.get_y()
        pdf.multi_cell(label_width, 5, label, align="L", new_x="RIGHT", new_y="TOP")
        pdf.set_font("DejaVu", "B", 9)
        pdf.multi_cell(width - label_width, 5, str(value), align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.set_y(max(pdf.get_y(), y + 5))
    pdf.ln(3)
    pdf.set_font("DejaVu", "", 7)
    pdf.multi_cell(
        width,
        3.5,
        "Chữ ký số của đơn vị thu (issuer's signature, Ed25519)\n"
        f"Mã khóa (key id): {key_id}\nChữ ký (signature): {signature}\n"
        f"Mã tra cứu (look-up code): {check_code(signature)}",
        align="L",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    return bytes(pdf.output())


def new_receipt_content(
    *,
    series: str,
    number: int,
    receipt_id: uuid.UUID,
    issuer: dict[str, Any],
    payer: dict[str, Any],
    bill: dict[str, Any],
    amount: int,
    paid_at: datetime,
    payment_reference: str,
) -> dict[str, Any]:
    """The signed content of a receipt (plain JSON types only, so it round-trips through the database)."""
    return {
        "version": 1,
        "receipt_id": str(receipt_id),
        "series": series,
        "number": number,
        "issuer": issuer,
        "collected_by": "Ví điện tử Hue-S",
        "payer": payer,
        "bill": bill,
        "amount": amount,
        "currency": "VND",
        "amount_in_words": amount_in_words(amount),
        "paid_at": paid_at.isoformat(),
        "paid_at_local": paid_at.astimezone(VN).strftime("%H:%M:%S %d/%m/%Y"),
        "payment_reference": payment_reference,
    }
