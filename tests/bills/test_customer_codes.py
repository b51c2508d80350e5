"""Customer codes are checked before a biller is asked; names are masked when shown to any payer.

The EVN rule comes from DOMAIN.md: codes start with P, have 11 to 13 characters, the second letter is the
power company (C = central region) and Huế's branches are PC03...
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.bills.customer_codes import check_rule, code_checker, mask_name, normalise_code
from app.bills.demo import demo_data
from app.bills.schemas import CustomerInput
from app.core.errors import AppError

EVN_HUE = msgspec.convert(demo_data()["billers"]["EVN_CPC_HUE"]["customer_input"], CustomerInput)


@pytest.mark.parametrize(
    "typed",
    ["PC03DD0123456", "PC03DD01234", "PC03AB012345", "pc03dd0123456", " PC03 DD 0123456 "],
)
def test_huế_evn_codes_are_accepted(typed: str) -> None:
    assert normalise_code(EVN_HUE, typed) == typed.replace(" ", "").upper()


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("PC03DD01234567", "14 characters: too long"),
        ("PC03DD0123", "10 characters: too short"),
        ("QC03DD0123456", "does not start with P"),
        ("PB03DD0123456", "B is not the central power company"),
        ("PC05DD0123456", "PC05 is not a Huế branch"),
        ("PC03DD01234X6", "the customer number is digits"),
        ("", "empty"),
    ],
)
def test_other_codes_are_refused_with_an_example(typed: str, why: str) -> None:
    with pytest.raises(AppError) as caught:
        normalise_code(EVN_HUE, typed)
    assert caught.value.kind.code == "invalid_customer_code", why
    assert caught.value.extra["example"] == "PC03DD0123456"
    assert "PC03DD0123456" in caught.value.detail_vi or not typed


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="PC03DDABXYZ0123456789 pc", max_size=16))
def test_fast_checker_agrees_with_the_full_check(typed: str) -> None:
    fast = code_checker(EVN_HUE)(typed)
    try:
        full: str | None = normalise_code(EVN_HUE, typed)
    except AppError:
        full = None
    assert fast == full


def test_names_are_masked_to_initials() -> None:
    assert mask_name("Nguyễn Văn An") == "N***** V** A*"
    assert mask_name("Tôn Nữ Thị Hà") == "T** N* T** H*"
    assert mask_name("  Lê   B ") == "L* B"
    assert mask_name("") is None
    assert mask_name(None) is None


def test_masking_keeps_letters_whole_whatever_the_unicode_form() -> None:
    decomposed = "Nguye\u0302\u0303n"  # NFD: e + combining circumflex + combining tilde
    assert mask_name(decomposed) == "N*****"


def test_declared_rules_are_checked() -> None:
    rule = msgspec.structs.replace(EVN_HUE, example="PC05DD0123456")
    assert "example" in (check_rule(rule) or "")
    assert "regular expression" in (check_rule(msgspec.structs.replace(EVN_HUE, pattern="(")) or "")
    assert "min_length" in (check_rule(msgspec.structs.replace(EVN_HUE, min_length=14)) or "")
    assert check_rule(EVN_HUE) is None
