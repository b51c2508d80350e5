"""Citizen ID numbers (CCCD / số định danh cá nhân): 12 digits, validated as DOMAIN.md describes.

- digits 1-3: province of birth registration, one of the 63 codes of the 2004 list (numbers keep their code
  after the 2025 province mergers);
- digit 4: century and sex: 0/1 = 1900s male/female, 2/3 = 2000s, 4/5 = 2100s, 6/7 = 2200s, 8/9 = 2300s;
- digits 5-6: the last two digits of the birth year;
- digits 7-12: random. There is no check digit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

__all__ = ["PROVINCE_CODES", "CccdFacts", "mask_cccd", "parse_cccd", "validate_cccd"]

PROVINCE_CODES: dict[str, str] = {
    "001": "Hà Nội",
    "002": "Hà Giang",
    "004": "Cao Bằng",
    "006": "Bắc Kạn",
    "008": "Tuyên Quang",
    "010": "Lào Cai",
    "011": "Điện Biên",
    "012": "Lai Châu",
    "014": "Sơn La",
    "015": "Yên Bái",
    "017": "Hòa Bình",
    "019": "Thái Nguyên",
    "020": "Lạng Sơn",
    "022": "Quảng Ninh",
    "024": "Bắc Giang",
    "025": "Phú Thọ",
    "026": "Vĩnh Phúc",
    "027": "Bắc Ninh",
    "030": "Hải Dương",
    "031": "Hải Phòng",
    "033": "Hưng Yên",
    "034": "Thái Bình",
    "035": "Hà Nam",
    "036": "Nam Định",
    "037": "Ninh Bình",
    "038": "Thanh Hóa",
    "040": "Nghệ An",
    "042": "Hà Tĩnh",
    "044": "Quảng Bình",
    "045": "Quảng Trị",
    "046": "Thừa Thiên Huế",
    "048": "Đà Nẵng",
    "049": "Quảng Nam",
    "051": "Quảng Ngãi",
    "052": "Bình Định",
    "054": "Phú Yên",
    "056": "Khánh Hòa",
    "058": "Ninh Thuận",
    "060": "Bình Thuận",
    "062": "Kon Tum",
    "064": "Gia Lai",
    "066": "Đắk Lắk",
    "067": "Đắk Nông",
    "068": "Lâm Đồng",
    "070": "Bình Phước",
    "072": "Tây Ninh",
    "074": "Bình Dương",
    "075": "Đồng Nai",
    "077": "Bà Rịa–Vũng Tàu",
    "079": "Hồ Chí Minh",
    "080": "Long An",
    "082": "Tiền Giang",
    "083": "Bến Tre",
    "084": "Trà Vinh",
    "086": "Vĩnh Long",
    "087": "Đồng Tháp",
    "089": "An Giang",
    "091": "Kiên Giang",
    "092": "Cần Thơ",
    "093": "Hậu Giang",
    "094": "Sóc Trăng",
    "095": "Bạc Liêu",
    "096": "Cà Mau",
}
"""The 63 province codes of the 2004 list of administrative units (DOMAIN.md)."""

_TWELVE_DIGITS = re.compile(r"^[0-9]{12}$")


@dataclass(frozen=True, slots=True)
class CccdFacts:
    """What a valid number says about its holder."""

    number: str
    province_code: str
    province: str
    birth_year: int
    female: bool


def parse_cccd(raw: str) -> tuple[CccdFacts | None, str]:
    """The facts encoded in ``raw`` (spaces and dots ignored), or ``(None, reason)`` with reason ``format``
    (not 12 digits) or ``province_unknown``."""
    number = raw.replace(" ", "").replace(".", "")
    if not _TWELVE_DIGITS.match(number):
        return None, "format"
    province_code = number[:3]
    province = PROVINCE_CODES.get(province_code)
    if province is None:
        return None, "province_unknown"
    sex_century = int(number[3])
    century = 1900 + (sex_century // 2) * 100
    return (
        CccdFacts(
            number=number,
            province_code=province_code,
            province=province,
            birth_year=century + int(number[4:6]),
            female=sex_century % 2 == 1,
        ),
        "",
    )


def validate_cccd(raw: str, date_of_birth: date) -> CccdFacts:
    """The facts of ``raw`` when it is a valid number for someone born on ``date_of_birth``; else
    ``cccd_invalid`` with the reason."""
    from app.identity.errors import CCCD_INVALID

    facts, reason = parse_cccd(raw)
    if facts is None:
        vi, en = _TEXTS[reason]
        raise CCCD_INVALID(f"Số CCCD không hợp lệ: {vi}", f"Invalid citizen ID: {en}", reason=reason)
    if facts.birth_year != date_of_birth.year:
        vi, en = _TEXTS["birth_year_mismatch"]
        raise CCCD_INVALID(
            f"Số CCCD không hợp lệ: {vi}", f"Invalid citizen ID: {en}", reason="birth_year_mismatch"
        )
    return facts


_TEXTS = {
    "format": ("phải gồm đúng 12 chữ số", "must be exactly 12 digits"),
    "province_unknown": (
        "mã tỉnh (3 chữ số đầu) không tồn tại",
        "the province code (first 3 digits) does not exist",
    ),
    "birth_year_mismatch": (
        "chữ số thế kỷ và năm sinh không khớp với ngày sinh",
        "the century and year digits contradict the date of birth",
    ),
}


def mask_cccd(number: str) -> str:
    """``********1234``: the last four digits only."""
    return "*" * (len(number) - 4) + number[-4:]
