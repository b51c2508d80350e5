"""Object-level authorization: may this caller see this row?

Every module asks the same question the same way, so the answer is written once. A row is described by who
it belongs to (``owner_id``), which agency handles it (``agency_id``) and which merchant it belongs to
(``merchant_id``). The caller sees it when:

- it is the owner;
- it is an officer of that agency (only when the row names an agency);
- it is staff (owner or cashier) of that merchant (only when the row names a merchant);
- it is an admin holding one of ``admin_duties`` (a superadmin holds every duty). Pass ``admin_duties=()``
  for rows no admin may read through this route.

Anything else is answered ``404 not_found``, exactly as if the row did not exist, so ids of other people's
objects cannot be probed (a 403 would confirm that the id exists).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

from app.core.errors import NOT_FOUND
from app.core.security import Caller

__all__ = ["ensure_visible", "is_visible"]

_MERCHANT_STAFF = ("merchant_owner", "merchant_cashier")


def is_visible(
    caller: Caller,
    *,
    owner_id: uuid.UUID | None = None,
    agency_id: str | uuid.UUID | None = None,
    merchant_id: str | uuid.UUID | None = None,
    admin_duties: Collection[str] = ("support",),
) -> bool:
    """Whether ``caller`` may see a row with these owners (see the module docstring for the rules)."""
    if owner_id is not None and caller.user_id == owner_id:
        return True
    if (
        agency_id is not None
        and caller.agency_id is not None
        and caller.has_role("officer")
        and caller.agency_id == str(agency_id)
    ):
        return True
    if (
        merchant_id is not None
        and caller.merchant_id is not None
        and caller.has_role(*_MERCHANT_STAFF)
        and caller.merchant_id == str(merchant_id)
    ):
        return True
    if caller.is_admin and admin_duties:
        return bool(caller.duties & (frozenset(admin_duties) | {"superadmin"}))
    return False


def ensure_visible(
    caller: Caller,
    *,
    owner_id: uuid.UUID | None = None,
    agency_id: str | uuid.UUID | None = None,
    merchant_id: str | uuid.UUID | None = None,
    admin_duties: Collection[str] = ("support",),
) -> None:
    """Raise ``not_found`` unless ``caller`` may see the row (see :func:`is_visible`)."""
    if not is_visible(
        caller, owner_id=owner_id, agency_id=agency_id, merchant_id=merchant_id, admin_duties=admin_duties
    ):
        raise NOT_FOUND("Không tìm thấy đối tượng", "No such object")
