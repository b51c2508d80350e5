"""Which bills count towards the 100,000,000 đồng monthly wallet limit (DOMAIN.md, Circular 40/2024 Art. 26).

Exempt: the national public service portal, electricity, water, telecoms, tuition, hospital fees,
social/health insurance, loan repayments. The expectations are written here from the text, not read from the
data file.
"""

from __future__ import annotations

import pytest

from app.bills.categories import categories, is_limit_exempt

EXEMPT_BY_LAW = {
    "public_service_fee",
    "electricity",
    "water",
    "telecom",
    "tuition",
    "hospital_fee",
    "insurance",
    "loan_repayment",
}


@pytest.mark.parametrize("category", sorted(categories()))
def test_exemption_follows_circular_40(category: str) -> None:
    assert is_limit_exempt(category) == (category in EXEMPT_BY_LAW)


def test_a_sanitation_fee_counts_towards_the_limit() -> None:
    assert not is_limit_exempt("sanitation_fee")


def test_unknown_category_is_not_exempt() -> None:
    assert not is_limit_exempt("casino")
