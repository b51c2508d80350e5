"""VietQR (NAPAS, EMVCo merchant-presented QR) payloads: build, strict parse, PNG and SVG images.

A payload is a string of TLV fields (two-digit tag, two-digit length, value), ending with field ``63``: the
CRC-16/CCITT-FALSE (polynomial 0x1021, initial 0xFFFF, no reflection, no final XOR) of everything before
it including ``6304``, as 4 uppercase hex digits. See ../shared/DOMAIN.md, "VietQR".

What we emit (the order of the public example, every value ASCII)::

    00 01 | 01 11 static or 12 dynamic
    38 [00 A000000727 | 01 [00 BIN | 01 account] | 02 QRIBFTTA]
    52 MCC | 53 704 | 54 amount (dynamic) | 58 VN | 59 name (<= 25) | 60 city (<= 15)
    62 [03 store | 05 reference (dynamic) | 08 purpose]
    63 CRC

:func:`parse` is strict: a wrong CRC, a length running past the end, a non-numeric tag or length, a
missing mandatory field or a field we do not know how to read raises :class:`QrInvalidError` with a reason.
"""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass

import segno

__all__ = [
    "CURRENCY_VND",
    "NAPAS_GUID",
    "SERVICE_TO_ACCOUNT",
    "QrInvalidError",
    "VietQr",
    "ascii_text",
    "build",
    "crc16_ccitt_false",
    "parse",
    "png",
    "svg",
    "tlv",
]

NAPAS_GUID = "A000000727"
SERVICE_TO_ACCOUNT = "QRIBFTTA"
SERVICE_TO_CARD = "QRIBFTTC"
CURRENCY_VND = "704"
MAX_NAME = 25
MAX_CITY = 15


class QrInvalidError(ValueError):
    """The scanned text is not a VietQR payload we can read; ``reason`` says why (stable, snake_case)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final XOR (check: b"123456789" ->
    0x29B1)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def ascii_text(text: str, limit: int | None = None) -> str:
    """``text`` without Vietnamese diacritics (đ -> d), printable ASCII only, cut to ``limit`` with no
    space left dangling at the cut (a bank app shows field 59/60 as it is)."""
    text = text.replace("đ", "d").replace("Đ", "D")
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    plain = " ".join("".join(c for c in plain if 32 <= ord(c) < 127).split())
    return plain[:limit].rstrip() if limit is not None else plain


def tlv(tag: str, value: str) -> str:
    """One field: tag, two-digit length, value (at most 99 characters)."""
    if len(tag) != 2 or not tag.isdigit():
        raise ValueError(f"bad tag {tag!r}")
    if not 0 < len(value) <= 99 or not value.isascii():
        raise ValueError(f"field {tag}: a value is 1-99 ASCII characters")
    return f"{tag}{len(value):02d}{value}"


@dataclass(frozen=True, slots=True)
class VietQr:
    """The fields of a VietQR payload that matter to us."""

    bank_bin: str
    account: str
    dynamic: bool = False
    amount: int | None = None
    mcc: str | None = None
    name: str | None = None
    city: str | None = None
    store: str | None = None
    """Field 62-03 (store label)."""
    reference: str | None = None
    """Field 62-05 (our order reference, for a dynamic QR)."""
    purpose: str | None = None
    """Field 62-08."""
    bill_number: str | None = None
    """Field 62-01."""
    terminal: str | None = None
    """Field 62-07."""
    service: str = SERVICE_TO_ACCOUNT
    country: str = "VN"


def build(qr: VietQr) -> str:
    """The payload of ``qr`` with its CRC (names and city made ASCII and cut to the EMVCo maxima)."""
    if not (len(qr.bank_bin) == 6 and qr.bank_bin.isdigit()):
        raise ValueError("the bank BIN is 6 digits")
    beneficiary = tlv("00", qr.bank_bin) + tlv("01", qr.account)
    account_info = tlv("00", NAPAS_GUID) + tlv("01", beneficiary) + tlv("02", qr.service)
    parts = [tlv("00", "01"), tlv("01", "12" if qr.dynamic else "11"), tlv("38", account_info)]
    if qr.mcc:
        parts.append(tlv("52", qr.mcc))
    parts.append(tlv("53", CURRENCY_VND))
    if qr.amount is not None:
        if type(qr.amount) is not int or qr.amount <= 0:
            raise ValueError("an amount is a positive int of đồng")
        parts.append(tlv("54", str(qr.amount)))
    parts.append(tlv("58", qr.country))
    if qr.name and (name := ascii_text(qr.name, MAX_NAME)):
        parts.append(tlv("59", name))
    if qr.city and (city := ascii_text(qr.city, MAX_CITY)):
        parts.append(tlv("60", city))
    extra = ""
    for sub, value in (
        ("01", qr.bill_number),
        ("03", qr.store),
        ("05", qr.reference),
        ("07", qr.terminal),
        ("08", qr.purpose),
    ):
        if value and (plain := ascii_text(value, 25)):
            extra += tlv(sub, plain)
    if extra:
        parts.append(tlv("62", extra))
    body = "".join(parts) + "6304"
    return body + f"{crc16_ccitt_false(body.encode('ascii')):04X}"


def _fields(text: str, where: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    i = 0
    while i < len(text):
        if i + 4 > len(text):
            raise QrInvalidError("bad_length", f"{where}: a field header runs past the end")
        tag, size = text[i : i + 2], text[i + 2 : i + 4]
        if not (tag.isdigit() and size.isdigit()):
            raise QrInvalidError("bad_tlv", f"{where}: tag and length are two digits each")
        length = int(size)
        value = text[i + 4 : i + 4 + length]
        if length == 0 or len(value) != length:
            raise QrInvalidError("bad_length", f"{where}: field {tag} declares {length} characters")
        if tag in fields:
            raise QrInvalidError("bad_tlv", f"{where}: field {tag} appears twice")
        fields[tag] = value
        i += 4 + length
    return fields


def parse(payload: str) -> VietQr:
    """Read a scanned VietQR payload strictly (see the module docstring); raises :class:`QrInvalidError`."""
    payload = payload.strip()
    if not payload.isascii() or len(payload) > 512:
        raise QrInvalidError("not_vietqr", "a VietQR payload is ASCII text of at most 512 characters")
    if len(payload) < 12 or payload[-8:-4] != "6304":
        raise QrInvalidError("bad_crc", "the payload does not end with a CRC field (6304....)")
    expected = f"{crc16_ccitt_false(payload[:-4].encode('ascii')):04X}"
    if payload[-4:].upper() != expected:
        raise QrInvalidError("bad_crc", "the CRC does not match the payload")
    fields = _fields(payload, "payload")
    if list(fields)[-1:] != ["63"]:
        raise QrInvalidError("bad_tlv", "the CRC must be the last field")
    if fields.get("00") != "01":
        raise QrInvalidError("not_vietqr", "field 00 (format) must be 01")
    method = fields.get("01")
    if method not in ("11", "12"):
        raise QrInvalidError("not_vietqr", "field 01 must be 11 (static) or 12 (dynamic)")
    if "38" not in fields:
        raise QrInvalidError("not_vietqr", "field 38 (NAPAS merchant account) is missing")
    account_info = _fields(fields["38"], "field 38")
    if account_info.get("00") != NAPAS_GUID:
        raise QrInvalidError("not_vietqr", "field 38-00 is not the NAPAS GUID")
    service = account_info.get("02")
    if service not in (SERVICE_TO_ACCOUNT, SERVICE_TO_CARD):
        raise QrInvalidError("not_vietqr", "field 38-02 must be QRIBFTTA or QRIBFTTC")
    beneficiary = _fields(account_info.get("01", ""), "field 38-01")
    bank_bin, account = beneficiary.get("00", ""), beneficiary.get("01", "")
    if not (len(bank_bin) == 6 and bank_bin.isdigit()) or not account:
        raise QrInvalidError("not_vietqr", "field 38-01 needs a 6-digit BIN and an account number")
    if fields.get("53") != CURRENCY_VND:
        raise QrInvalidError("bad_currency", "field 53 must be 704 (VND)")
    if fields.get("58", "VN") != "VN":
        raise QrInvalidError("not_vietqr", "field 58 must be VN")
    amount: int | None = None
    if "54" in fields:
        text = fields["54"]
        if not text.isdigit() or int(text) <= 0:
            raise QrInvalidError("bad_amount", "field 54 (amount) must be a positive whole number of đồng")
        amount = int(text)
    mcc = fields.get("52")
    if mcc is not None and not (len(mcc) == 4 and mcc.isdigit()):
        raise QrInvalidError("bad_tlv", "field 52 (MCC) is 4 digits")
    extra = _fields(fields["62"], "field 62") if "62" in fields else {}
    return VietQr(
        bank_bin=bank_bin,
        account=account,
        dynamic=method == "12",
        amount=amount,
        mcc=mcc,
        name=fields.get("59"),
        city=fields.get("60"),
        store=extra.get("03"),
        reference=extra.get("05"),
        purpose=extra.get("08"),
        bill_number=extra.get("01"),
        terminal=extra.get("07"),
        service=service,
        country=fields.get("58", "VN"),
    )


def png(payload: str, *, scale: int = 8) -> bytes:
    """A PNG of the QR code (error correction M, quiet zone of 4 modules)."""
    buffer = io.BytesIO()
    segno.make(payload, error="m", micro=False).save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


def svg(payload: str, *, scale: int = 8) -> bytes:
    """An SVG of the QR code."""
    buffer = io.BytesIO()
    segno.make(payload, error="m", micro=False).save(buffer, kind="svg", scale=scale, border=4, xmldecl=True)
    return buffer.getvalue()
