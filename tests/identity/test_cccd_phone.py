"""CCCD and phone rules as DOMAIN.md states them (pure functions: no backend)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.errors import AppError
from app.identity.cccd import PROVINCE_CODES, mask_cccd, parse_cccd, validate_cccd
from app.identity.phone import mask_phone, try_normalize_phone

# The 63 codes listed in DOMAIN.md, typed from it (not from the code under test).
DOMAIN_CODES = [
    "001",
    "002",
    "004",
    "006",
    "008",
    "010",
    "011",
    "012",
    "014",
    "015",
    "017",
    "019",
    "020",
    "022",
    "024",
    "025",
    "026",
    "027",
    "030",
    "031",
    "033",
    "034",
    "035",
    "036",
    "037",
    "038",
    "040",
    "042",
    "044",
    "045",
    "046",
    "048",
    "049",
    "051",
    "052",
    "054",
    "056",
    "058",
    "060",
    "062",
    "064",
    "066",
    "067",
    "068",
    "070",
    "072",
    "074",
    "075",
    "077",
    "079",
    "080",
    "082",
    "083",
    "084",
    "086",
    "087",
    "089",
    "091",
    "092",
    "093",
    "094",
    "095",
    "096",
]


def test_the_63_province_codes() -> None:
    assert len(DOMAIN_CODES) == 63
    assert set(PROVINCE_CODES) == set(DOMAIN_CODES)
    assert PROVINCE_CODES["046"] == "Thừa Thiên Huế"


@pytest.mark.parametrize(
    ("number", "born", "female"),
    [
        ("046090001234", date(1990, 1, 1), False),  # 0 = 1900s male
        ("046190001234", date(1990, 1, 1), True),  # 1 = 1900s female
        ("001201001234", date(2001, 6, 30), False),  # 2 = 2000s male
        ("079305123456", date(2005, 12, 31), True),  # 3 = 2000s female
        ("096400123456", date(2100, 1, 1), False),  # 4 = 2100s male
    ],
)
def test_valid_numbers(number: str, born: date, female: bool) -> None:
    facts = validate_cccd(number, born)
    assert facts.birth_year == born.year
    assert facts.female is female


@pytest.mark.parametrize(
    ("number", "born", "reason"),
    [
        ("003090001234", date(1990, 1, 1), "province_unknown"),  # 003 is not a 2004 province code
        ("097090001234", date(1990, 1, 1), "province_unknown"),
        ("000090001234", date(1990, 1, 1), "province_unknown"),
        ("04609000123", date(1990, 1, 1), "format"),  # 11 digits
        ("0460900012345", date(1990, 1, 1), "format"),  # 13 digits
        ("04609000123a", date(1990, 1, 1), "format"),
        ("046091001234", date(1990, 1, 1), "birth_year_mismatch"),  # year digits 91, born 1990
        ("046290001234", date(1990, 1, 1), "birth_year_mismatch"),  # century digit says 2090
        ("046001001234", date(2001, 1, 1), "birth_year_mismatch"),  # century digit says 1901
    ],
)
def test_invalid_numbers(number: str, born: date, reason: str) -> None:
    with pytest.raises(AppError) as caught:
        validate_cccd(number, born)
    assert caught.value.kind.code == "cccd_invalid"
    assert caught.value.extra["reason"] == reason


def test_spaces_and_dots_are_ignored() -> None:
    assert validate_cccd("046 090 001.234", date(1990, 2, 2)).number == "046090001234"


@settings(max_examples=200, deadline=None)
@given(
    code=st.sampled_from(DOMAIN_CODES),
    year=st.integers(1900, 2299),
    female=st.booleans(),
    rest=st.integers(0, 999_999),
)
def test_any_consistent_number_is_valid(code: str, year: int, female: bool, rest: int) -> None:
    digit = (year // 100 - 19) * 2 + int(female)
    number = f"{code}{digit}{year % 100:02d}{rest:06d}"
    facts, reason = parse_cccd(number)
    assert facts is not None, reason
    assert validate_cccd(number, date(year, 7, 1)).birth_year == year


def test_masking() -> None:
    assert mask_cccd("046090001234") == "********1234"
    assert mask_phone("+84905123456") == "+84905***456"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0905123456", "+84905123456"),
        ("+84905123456", "+84905123456"),
        ("84905123456", "+84905123456"),
        ("0905 123 456", "+84905123456"),
        ("0905.123.456", "+84905123456"),
        ("0321234567", "+84321234567"),  # Viettel 03x
        ("0701234567", "+84701234567"),  # MobiFone 07x
        ("0812345678", "+84812345678"),  # VinaPhone 08x
        ("0561234567", "+84561234567"),  # Vietnamobile 05x
        ("0241234567", None),  # Hà Nội landline
        ("0123456789", None),  # retired 11-digit-era prefix
        ("+14155550100", None),  # not Vietnamese
        ("", None),
        ("hello", None),
    ],
)
def test_phone_normalisation(raw: str, expected: str | None) -> None:
    assert try_normalize_phone(raw) == expected
