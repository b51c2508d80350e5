"""The one object-level authorization rule every module uses."""

from __future__ import annotations

import uuid

import pytest

from app.core.access import ensure_visible, is_visible
from app.core.errors import AppError
from app.core.security import Caller

OWNER = uuid.uuid4()


def caller(
    *roles: str,
    duties: tuple[str, ...] = (),
    agency: str | None = None,
    merchant: str | None = None,
    me: uuid.UUID | None = None,
) -> Caller:
    return Caller(
        user_id=me or uuid.uuid4(),
        session_id=uuid.uuid4(),
        roles=frozenset(roles),
        duties=frozenset(duties),
        agency_id=agency,
        merchant_id=merchant,
    )


def test_owner_sees_own_rows_and_nobody_elses() -> None:
    assert is_visible(caller("citizen", me=OWNER), owner_id=OWNER)
    assert not is_visible(caller("citizen"), owner_id=OWNER)
    with pytest.raises(AppError) as refused:
        ensure_visible(caller("citizen"), owner_id=OWNER)
    assert refused.value.kind.code == "not_found"
    assert refused.value.kind.status == 404


def test_officer_sees_rows_of_their_agency_only() -> None:
    officer = caller("officer", agency="hue-1")
    assert is_visible(officer, owner_id=OWNER, agency_id="hue-1")
    assert not is_visible(officer, owner_id=OWNER, agency_id="hue-2")
    assert not is_visible(officer, owner_id=OWNER)
    # The agency claim without the officer role counts for nothing.
    assert not is_visible(caller("citizen", agency="hue-1"), agency_id="hue-1")


def test_merchant_staff_see_their_merchant_only() -> None:
    merchant = uuid.uuid4()
    assert is_visible(caller("merchant_cashier", merchant=str(merchant)), merchant_id=merchant)
    assert is_visible(caller("merchant_owner", merchant=str(merchant)), merchant_id=str(merchant))
    assert not is_visible(caller("merchant_owner", merchant=str(uuid.uuid4())), merchant_id=merchant)
    assert not is_visible(caller("citizen", merchant=str(merchant)), merchant_id=merchant)


def test_admins_by_duty() -> None:
    assert is_visible(caller("admin", duties=("support",)), owner_id=OWNER)
    assert not is_visible(caller("admin", duties=("finance",)), owner_id=OWNER)
    assert is_visible(caller("admin", duties=("finance",)), owner_id=OWNER, admin_duties=("finance",))
    assert is_visible(caller("admin", duties=("superadmin",)), owner_id=OWNER, admin_duties=("finance",))
    assert not is_visible(caller("admin", duties=("superadmin",)), owner_id=OWNER, admin_duties=())
    # Duties without the admin role count for nothing.
    assert not is_visible(caller("citizen", duties=("superadmin",)), owner_id=OWNER)
