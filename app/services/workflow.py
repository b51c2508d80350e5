"""The dossier status model as data: the ten statuses of the national portal, the allowed transitions and
who may take each.

The codes are those the national public service portal exchanges (DOMAIN.md, "Dossier statuses"). The
dossier module asks :func:`check_transition` before every change of status, so an illegal move answers
409 ``illegal_transition`` whatever route attempted it.

Moves out of ``paying`` depend on when the fee is collected: a fee collected first leads to ``new`` (the
payment starts the clock) and may still be abandoned by withdrawing; a fee collected after processing leads
to ``releasing``. Callers pass ``fee_due`` for those moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from app.services.errors import ILLEGAL_TRANSITION

__all__ = [
    "ROLES",
    "STATUSES",
    "TRANSITIONS",
    "Actor",
    "DossierStatus",
    "FeeDue",
    "StatusInfo",
    "Transition",
    "allowed_targets",
    "check_transition",
    "status_by_code",
]

Actor = Literal["citizen", "officer", "system"]
"""Who moves a dossier: the applicant, an officer of the agency holding it, or the platform itself (a paid
fee, an online delivery)."""
FeeDue = Literal["first", "after"]
"""When the fee a dossier waits for in ``paying`` is collected: before processing, or after it."""

ROLES: tuple[Actor, ...] = ("citizen", "officer", "system")


class DossierStatus(StrEnum):
    """A dossier's status, named by the national portal's word for it."""

    RECEIVING = "receiving"
    NEW = "new"
    DENIED = "denied"
    PROCESSING = "processing"
    WAITING = "waiting"
    PAYING = "paying"
    CANCELLED = "cancelled"
    UNRESOLVED = "unresolved"
    RELEASING = "releasing"
    DONE = "done"

    @property
    def code(self) -> int:
        return STATUSES[self].code

    @property
    def info(self) -> StatusInfo:
        return STATUSES[self]


ClockState = Literal["not_started", "running", "paused", "stopped"]


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """What a status means to people and to the clock."""

    status: DossierStatus
    code: int
    name_vi: str
    meaning_en: str
    clock: ClockState
    """``running`` while the agency holds the dossier and the deadline counts; ``paused`` while waiting for
    the citizen's supplement; ``stopped`` once processing has ended; ``not_started`` before acceptance (and
    while a fee collected first is unpaid)."""
    terminal: bool


S = DossierStatus

STATUSES: dict[DossierStatus, StatusInfo] = {
    info.status: info
    for info in (
        StatusInfo(S.RECEIVING, 1, "Mới đăng ký", "Submitted online, not yet accepted", "not_started", False),
        StatusInfo(
            S.NEW, 2, "Được tiếp nhận", "Accepted by the one-stop desk; the clock runs", "running", False
        ),
        StatusInfo(S.DENIED, 3, "Không được tiếp nhận", "Refused at intake, with a reason", "stopped", True),
        StatusInfo(S.PROCESSING, 4, "Đang xử lý", "With the handling agency", "running", False),
        StatusInfo(
            S.WAITING, 5, "Yêu cầu bổ sung giấy tờ", "Supplement requested; the clock pauses", "paused", False
        ),
        StatusInfo(
            S.PAYING,
            6,
            "Yêu cầu thực hiện nghĩa vụ tài chính",
            "A fee, charge or tax is due",
            "not_started",
            False,
        ),
        StatusInfo(S.CANCELLED, 7, "Công dân yêu cầu rút hồ sơ", "Withdrawn by the citizen", "stopped", True),
        StatusInfo(S.UNRESOLVED, 8, "Dừng xử lý", "Stopped: not eligible", "stopped", True),
        StatusInfo(S.RELEASING, 9, "Đã xử lý xong", "Processed; result ready", "stopped", False),
        StatusInfo(S.DONE, 10, "Đã trả kết quả", "Result delivered", "stopped", True),
    )
}
"""Note: a dossier in ``paying`` for a fee collected after processing has finished processing; its clock
is stopped, not unstarted. The dossier knows which (its fee timing); this table gives the common case."""

_BY_CODE = {info.code: info.status for info in STATUSES.values()}


def status_by_code(code: int) -> DossierStatus:
    """The status with portal ``code`` (1–10); ``KeyError`` for any other number."""
    return _BY_CODE[code]


@dataclass(frozen=True, slots=True)
class Transition:
    """One allowed move, who may take it, and what it means."""

    source: DossierStatus
    target: DossierStatus
    actors: frozenset[Actor]
    action: str
    """The business action behind the move (what the timeline shows)."""
    fee_due: FeeDue | None = None
    """For moves out of ``paying``: only when the awaited fee is collected ``first`` or ``after``."""


def _t(
    source: DossierStatus,
    target: DossierStatus,
    actors: tuple[Actor, ...],
    action: str,
    fee_due: FeeDue | None = None,
) -> Transition:
    return Transition(source, target, frozenset(actors), action, fee_due)


TRANSITIONS: tuple[Transition, ...] = (
    # Intake at the one-stop desk.
    _t(S.RECEIVING, S.NEW, ("officer",), "accept"),
    _t(S.RECEIVING, S.PAYING, ("officer",), "accept_fee_first"),
    _t(S.RECEIVING, S.DENIED, ("officer",), "deny"),
    _t(S.RECEIVING, S.CANCELLED, ("citizen",), "withdraw"),
    # A fee collected first: paying it starts the clock; until then the citizen may withdraw.
    _t(S.PAYING, S.NEW, ("system",), "fee_paid", "first"),
    _t(S.PAYING, S.CANCELLED, ("citizen",), "withdraw", "first"),
    # Accepted, processing not started yet: the citizen may still withdraw (a paid fee is refunded).
    _t(S.NEW, S.PROCESSING, ("officer",), "start_processing"),
    _t(S.NEW, S.CANCELLED, ("citizen",), "withdraw"),
    # Processing, across agencies (a transfer keeps the status).
    _t(S.PROCESSING, S.WAITING, ("officer",), "request_supplement"),
    _t(S.PROCESSING, S.RELEASING, ("officer",), "approve"),
    _t(S.PROCESSING, S.PAYING, ("officer",), "approve_fee_after"),
    _t(S.PROCESSING, S.UNRESOLVED, ("officer",), "stop"),
    # Supplement: the citizen resubmits online (or brings it to the desk, recorded by an officer).
    _t(S.WAITING, S.PROCESSING, ("citizen", "officer"), "resubmit"),
    _t(S.WAITING, S.UNRESOLVED, ("officer",), "stop"),
    # A fee collected after processing: paying it releases the result.
    _t(S.PAYING, S.RELEASING, ("system",), "fee_paid", "after"),
    # Delivery: at the desk or by post (officer), or online (system).
    _t(S.RELEASING, S.DONE, ("officer", "system"), "deliver"),
)

_EDGES: dict[tuple[DossierStatus, DossierStatus], Transition] = {(t.source, t.target): t for t in TRANSITIONS}


def allowed_targets(
    source: DossierStatus, actor: Actor, fee_due: FeeDue | None = None
) -> list[DossierStatus]:
    """The statuses ``actor`` may move a dossier in ``source`` to (for the UI's buttons)."""
    return [
        t.target
        for t in TRANSITIONS
        if t.source == source and actor in t.actors and (t.fee_due is None or t.fee_due == fee_due)
    ]


def check_transition(
    source: DossierStatus | str,
    target: DossierStatus | str,
    actor: Actor | str,
    *,
    fee_due: FeeDue | None = None,
) -> Transition:
    """The allowed transition from ``source`` to ``target`` by ``actor``, or 409 ``illegal_transition``.

    ``fee_due`` is required for the moves out of ``paying``, which differ for a fee collected ``first``
    (paid -> ``new``; withdrawal allowed) and one collected ``after`` processing (paid -> ``releasing``).
    """
    edge: Transition | None
    try:
        edge = _EDGES.get((DossierStatus(source), DossierStatus(target)))
    except ValueError:
        edge = None
    if edge is None or actor not in edge.actors or (edge.fee_due is not None and edge.fee_due != fee_due):
        raise ILLEGAL_TRANSITION(
            f"Không thể chuyển hồ sơ từ trạng thái {source!s} sang {target!s} (vai trò {actor!s}).",
            f"A dossier cannot move from {source!s} to {target!s} by {actor!s}.",
            from_status=str(source),
            to_status=str(target),
            actor=str(actor),
        )
    return edge
