"""The dossier status model against DOMAIN.md, written out here (not read from the code's table).

DOMAIN.md, "Dossier statuses" and "The flow this product follows":
- submitted online -> receiving; the desk denies (-> denied, nothing charged) or accepts: no fee due first
  -> new (clock starts); a fee collected first -> paying;
- paying the fee collected first -> new (the payment starts the clock); that is the platform's doing;
- a fee collected after processing: processed -> paying -> paid -> releasing;
- withdrawn before processing starts -> cancelled (receiving, paying a fee due first, new);
- stopped (not eligible) -> unresolved, by the handling agency, during processing (including while it
  waits for a supplement the citizen never brings);
- a supplement request pauses the clock (processing -> waiting); the citizen's resubmission resumes it
  (waiting -> processing; an officer records it when the citizen brings the papers to the desk);
- processed -> releasing; result delivered -> done (by an officer at the desk or by post; by the platform
  when it is delivered online).
Denial happens only at intake.
"""

from __future__ import annotations

import itertools

import pytest

from app.core.errors import AppError
from app.services.workflow import STATUSES, DossierStatus, allowed_targets, check_transition, status_by_code

PORTAL_CODES = {
    "receiving": 1,
    "new": 2,
    "denied": 3,
    "processing": 4,
    "waiting": 5,
    "paying": 6,
    "cancelled": 7,
    "unresolved": 8,
    "releasing": 9,
    "done": 10,
}
ROLES = ("citizen", "officer", "system")
FEE_DUE = (None, "first", "after")

# (from, to, role, fee_due required for the move or None when it does not matter)
EXPECTED = {
    ("receiving", "new", "officer", None),
    ("receiving", "paying", "officer", None),
    ("receiving", "denied", "officer", None),
    ("receiving", "cancelled", "citizen", None),
    ("paying", "new", "system", "first"),
    ("paying", "cancelled", "citizen", "first"),
    ("paying", "releasing", "system", "after"),
    ("new", "processing", "officer", None),
    ("new", "cancelled", "citizen", None),
    ("processing", "waiting", "officer", None),
    ("processing", "releasing", "officer", None),
    ("processing", "paying", "officer", None),
    ("processing", "unresolved", "officer", None),
    ("waiting", "processing", "citizen", None),
    ("waiting", "processing", "officer", None),
    ("waiting", "unresolved", "officer", None),
    ("releasing", "done", "officer", None),
    ("releasing", "done", "system", None),
}


def _allowed(source: str, target: str, role: str, fee_due: str | None) -> bool:
    return any(
        (s, t, r) == (source, target, role) and (needed is None or needed == fee_due)
        for s, t, r, needed in EXPECTED
    )


def test_ten_statuses_with_portal_codes() -> None:
    assert {s.value: s.code for s in DossierStatus} == PORTAL_CODES
    assert {code: status_by_code(code).value for code in range(1, 11)} == {
        v: k for k, v in PORTAL_CODES.items()
    }
    with pytest.raises(KeyError):
        status_by_code(11)


def test_vietnamese_names_are_the_portals() -> None:
    assert STATUSES[DossierStatus.WAITING].name_vi == "Yêu cầu bổ sung giấy tờ"
    assert STATUSES[DossierStatus.DONE].name_vi == "Đã trả kết quả"


def test_every_allowed_edge_passes_and_every_other_is_refused() -> None:
    allowed = refused = 0
    for source, target, role, fee_due in itertools.product(PORTAL_CODES, PORTAL_CODES, ROLES, FEE_DUE):
        if _allowed(source, target, role, fee_due):
            edge = check_transition(source, target, role, fee_due=fee_due)  # type: ignore[arg-type]
            assert (edge.source.value, edge.target.value) == (source, target)
            allowed += 1
        else:
            with pytest.raises(AppError) as refusal:
                check_transition(source, target, role, fee_due=fee_due)  # type: ignore[arg-type]
            assert refusal.value.kind.code == "illegal_transition"
            assert refusal.value.kind.status == 409
            assert refusal.value.extra == {"from_status": source, "to_status": target, "actor": role}
            refused += 1
    # 15 (from, to, role) moves whatever the fee timing (x 3 values of fee_due), 3 only for one timing.
    assert allowed == 15 * 3 + 3
    assert allowed + refused == 10 * 10 * 3 * 3


def test_terminal_statuses_have_no_way_out() -> None:
    for status in ("denied", "cancelled", "unresolved", "done"):
        assert STATUSES[DossierStatus(status)].terminal
        for role in ROLES:
            assert allowed_targets(DossierStatus(status), role, "first") == []  # type: ignore[arg-type]


def test_unknown_statuses_are_refused() -> None:
    with pytest.raises(AppError):
        check_transition("archived", "done", "officer")


def test_officer_buttons() -> None:
    assert set(allowed_targets(DossierStatus.PROCESSING, "officer")) == {
        DossierStatus.WAITING,
        DossierStatus.RELEASING,
        DossierStatus.PAYING,
        DossierStatus.UNRESOLVED,
    }
    assert allowed_targets(DossierStatus.PAYING, "citizen", "after") == []
    assert allowed_targets(DossierStatus.PAYING, "citizen", "first") == [DossierStatus.CANCELLED]
