"""What the public-service API reads and writes (msgspec structs), and the catalogue's own documents.

Fee schedules: a procedure's fees are *cases* (who or which channel pays what); a dossier is charged the
lines of exactly one case, so alternatives (200,000 đ / 100,000 đ / exempt for a judicial record) are never
charged together. Each line is a fee (phí) or a charge (lệ phí), which get separate e-receipts.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

__all__ = [
    "DAY_STATUSES",
    "AgencyOut",
    "AgencyPut",
    "AgencyRef",
    "CalendarDayIn",
    "CalendarDayOut",
    "CalendarDayPut",
    "CalendarYearIn",
    "CalendarYearOut",
    "DeadlineOut",
    "FeeCase",
    "FeeLine",
    "FeeSchedule",
    "ProcedureDetail",
    "ProcedurePage",
    "ProcedureSummary",
    "ProcedureUpdate",
    "RequiredDocument",
    "StatusModelOut",
    "StatusOut",
    "TransitionOut",
]

Code = Annotated[str, Meta(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9._-]+$")]
Level = Annotated[
    str,
    Meta(
        min_length=2,
        max_length=40,
        pattern=r"^[a-z_]+$",
        description="Administrative level, as data: `province`, `commune`, `ministry`, ...",
    ),
]
OnlineLevel = Literal["full", "partial"]
ReturnChannel = Literal["desk", "online", "post"]
FeeKind = Literal["fee", "charge"]
Collection = Literal["first", "after", "exempt"]
DayKind = Literal["holiday", "swap_off", "swap_work"]
DayStatus = Literal[
    "official",
    "statutory_schedule_not_announced",
    "derived_from_labour_code_rule",
    "announced_policy_not_yet_in_labour_code",
]
DAY_STATUSES: tuple[str, ...] = (
    "official",
    "statutory_schedule_not_announced",
    "derived_from_labour_code_rule",
    "announced_policy_not_yet_in_labour_code",
)
Text = Annotated[str, Meta(min_length=1, max_length=2000)]
Name = Annotated[str, Meta(min_length=1, max_length=300)]


# --- The catalogue's documents (stored as JSON, edited as a whole) ---------------------------------------


class FeeLine(Struct, kw_only=True, forbid_unknown_fields=True):
    """One fee (phí) or charge (lệ phí) line."""

    code: Code
    """Stable within its case, e.g. ``le_phi_1``."""
    kind: FeeKind
    """``fee`` (phí) or ``charge`` (lệ phí): they are receipted separately."""
    name_vi: Name
    """Name of the line as on the e-receipt, e.g. ``Lệ phí đăng ký khai sinh``."""
    name_en: Name | None = None
    """English name, when known."""
    amount_vnd: Annotated[int, Meta(ge=0)] | None
    """Amount in đồng per unit. ``null``: the fee exists but its amount (set by the provincial council) is
    not configured yet: it is NOT free, and a dossier cannot be billed for it until an admin sets it."""
    unit: Literal["dossier", "copy", "page"] = "dossier"
    """What the amount is per: the dossier, each copy requested, or each page."""
    optional: bool = False
    """Charged only when the applicant asks for it (e.g. extra certified copies)."""
    note: Text | None = None
    """Legal basis, exemptions or tiers, as free text."""


class FeeCase(Struct, kw_only=True, forbid_unknown_fields=True):
    """One alternative of a fee schedule: the lines charged together, and when they are collected."""

    code: Code
    """Stable within the schedule, e.g. ``case_1`` or ``exempt_groups``; a dossier records its case."""
    name_vi: Name
    """Who or what this case is for, e.g. ``Nộp trực tuyến`` or ``Sinh viên, người có công``."""
    name_en: Name | None = None
    """English description, when known."""
    collection: Collection
    """``first``: paid before processing (paying starts the clock); ``after``: paid once processed, before
    the result is released; ``exempt``: nothing is charged."""
    lines: list[FeeLine] = msgspec.field(default_factory=list)
    """The lines charged together in this case (never lines of another case)."""
    groups: list[Name] = msgspec.field(default_factory=list)
    """Applicant groups this case applies to (for an exempt case: who is exempt)."""
    default: bool = False
    """The case applied unless the officer or the applicant picks another."""


class FeeSchedule(Struct, kw_only=True, forbid_unknown_fields=True):
    """The fee cases of a procedure; no cases means the procedure is free of charge."""

    cases: list[FeeCase] = msgspec.field(default_factory=list)
    """The alternatives; exactly one is the default."""


class RequiredDocument(Struct, kw_only=True, forbid_unknown_fields=True):
    """A document the applicant must (or may) attach."""

    code: Code
    """Stable code, e.g. ``application_form``."""
    name_vi: Name
    """What to attach, in Vietnamese."""
    name_en: Name | None = None
    """English name, when known."""
    required: bool = True
    """False for a document needed only in some cases."""
    note: Text | None = None
    """When it is needed, how many copies, templates."""


# --- Agencies ---------------------------------------------------------------------------------------------


class AgencyRef(Struct, kw_only=True):
    """An agency in a procedure's chain."""

    code: str
    """Agency code."""
    name_vi: str
    """Vietnamese name, e.g. ``UBND phường Phú Xuân``."""
    name_en: str | None
    """English name, when known."""
    level: str
    """``province``, ``commune``, ..."""


class AgencyOut(Struct, kw_only=True):
    """An agency of the catalogue."""

    code: str
    """Stable agency code (also the prefix of its dossier codes)."""
    name_vi: str
    """Vietnamese name."""
    name_en: str | None
    """English name, when known."""
    level: str
    """``province``, ``commune``, ..."""
    treasury_account: str | None
    """Beneficiary account at the State Treasury for the fees it collects."""
    active: bool
    """Whether it currently receives dossiers."""


class AgencyPut(Struct, kw_only=True, forbid_unknown_fields=True):
    """Create or replace an agency."""

    name_vi: Name
    """Vietnamese name."""
    name_en: Name | None = None
    """English name."""
    level: Level
    """``province``, ``commune``, ``ministry``, ... (lower-case letters and ``_``)."""
    treasury_account: Annotated[str, Meta(min_length=1, max_length=80)] | None = None
    """Beneficiary account at the State Treasury for the fees it collects."""
    active: bool = True
    """Whether it receives dossiers."""


# --- Procedures -------------------------------------------------------------------------------------------


class ProcedureSummary(Struct, kw_only=True):
    """A procedure in a list."""

    code: str
    """National procedure code, e.g. ``1.001193``."""
    name_vi: str
    """Official Vietnamese name."""
    name_en: str | None
    """English name, when known."""
    field: str
    """Field (lĩnh vực), e.g. ``Hộ tịch (civil status)``."""
    level: str
    """Level of the agency that decides: ``commune``, ``province``, ..."""
    online: OnlineLevel
    """``full``: submitted, paid and returned online or by post; ``partial``: some step in person."""
    processing_days: int | None
    """Processing time in working days, counted from acceptance (or from paying a fee collected first);
    null when no statutory time is published."""
    has_fee: bool
    """Whether any case of the fee schedule can charge something."""


class ProcedurePage(Struct, kw_only=True):
    """One page of procedures."""

    items: list[ProcedureSummary]
    """Procedures of this page, in code order."""
    next_cursor: str | None
    """Pass as ``cursor`` for the next page; null on the last page."""


class ProcedureDetail(Struct, kw_only=True):
    """Everything a citizen needs to apply, and what the officers' workflow follows."""

    code: str
    """National procedure code."""
    name_vi: str
    """Official Vietnamese name."""
    name_en: str | None
    """English name, when known."""
    field: str
    """Field (lĩnh vực)."""
    level: str
    """Level of the agency that decides."""
    online: OnlineLevel
    """``full`` (toàn trình) or ``partial`` (một phần)."""
    processing_days: int | None
    """Working days from acceptance (or from paying a fee collected first); null if none is published."""
    processing_days_by_channel: dict[str, int] | None
    """Where the time differs by submission channel (``online``, ``postal``, ``in_person``)."""
    agency_chain: list[AgencyRef]
    """The agencies that handle a dossier, in order; the first receives it."""
    documents: list[RequiredDocument]
    """What to attach."""
    fee_schedule: FeeSchedule
    """Fee cases; exactly one applies to a dossier."""
    return_channels: list[ReturnChannel]
    """How the result can be returned: ``desk``, ``online`` or ``post`` (public postal service)."""
    result: str | None
    """The document the citizen receives."""
    national_decision: str | None
    """Decision publishing the procedure (legal basis)."""
    note: str | None
    """Curator's note on the data (uncertainties, special cases)."""
    sources: list[str]
    """Where the data was taken from."""
    updated_at: datetime
    """Last change of the catalogue entry (UTC)."""


class ProcedureUpdate(Struct, kw_only=True, forbid_unknown_fields=True):
    """An admin's edit: each field given replaces the stored one; the others stay. Edited fields are kept
    when a catalogue file is loaded again."""

    agency_chain: Annotated[list[Code], Meta(min_length=1, max_length=10)] | UnsetType = UNSET
    """Agency codes in handling order; every one must be in the catalogue."""
    documents: list[RequiredDocument] | UnsetType = UNSET
    """The documents to attach, replacing the list."""
    fee_schedule: FeeSchedule | UnsetType = UNSET
    """The fee cases, replacing the schedule (rules: see the route)."""
    return_channels: Annotated[list[ReturnChannel], Meta(min_length=1)] | UnsetType = UNSET
    """``desk``, ``online``, ``post``."""
    processing_days: Annotated[int, Meta(ge=0, le=365)] | UnsetType | None = UNSET
    """Working days; null when no statutory time applies."""
    online: OnlineLevel | UnsetType = UNSET
    """``full`` (toàn trình) or ``partial`` (một phần)."""


class DeadlineOut(Struct, kw_only=True):
    """When a dossier received at ``received_at`` would be due."""

    received_at: datetime
    """The instant asked about (UTC)."""
    clock_starts_at: datetime
    """The first working instant at or after ``received_at`` (after closing: the next working morning)."""
    due_at: datetime
    """The statutory due instant, counted in working hours."""
    provisional: bool
    """True when the count passes through a year whose holiday schedule is not announced yet (or a day off
    not yet confirmed): the date may still move."""
    processing_days: int
    """The procedure's processing time in working days."""


# --- Holiday table ----------------------------------------------------------------------------------------


class CalendarDayOut(Struct, kw_only=True):
    """A day off or a worked Saturday."""

    date: date
    """The day (in Asia/Ho_Chi_Minh)."""
    kind: DayKind
    """``holiday`` / ``swap_off``: no work; ``swap_work``: a Saturday worked in exchange for a day off."""
    name_vi: str
    """Vietnamese name, e.g. ``Tết Nguyên đán``."""
    name_en: str | None
    """English name."""
    status: str
    """``official`` when announced; other values make deadlines across the day provisional."""
    note: str | None
    """Source or remark."""


class CalendarYearOut(Struct, kw_only=True):
    """A year of the holiday table."""

    year: int
    """The calendar year."""
    announced: bool
    """Whether the year's schedule is loaded as announced. If not, the statutory holidays (fixed dates and
    the lunar ones as computed) are counted too and deadlines in the year are provisional."""
    days: list[CalendarDayOut]
    """The table's rows (weekends are implicit)."""


class CalendarDayPut(Struct, kw_only=True, forbid_unknown_fields=True):
    """Set one day of the holiday table."""

    kind: DayKind
    """``holiday`` or ``swap_off`` (a weekday off), ``swap_work`` (a weekend day worked)."""
    name_vi: Name
    """Vietnamese name."""
    name_en: Name | None = None
    """English name."""
    status: DayStatus = "official"
    """``official`` once announced; other values keep deadlines across the day provisional."""
    note: Text | None = None
    """Source (the announcing document) or remark."""


class CalendarDayIn(CalendarDayPut, kw_only=True, forbid_unknown_fields=True):
    """One day of a year's schedule."""

    date: date
    """The day, in the year being loaded."""


class CalendarYearIn(Struct, kw_only=True, forbid_unknown_fields=True):
    """A year's whole schedule, replacing what the table held for that year."""

    announced: bool = True
    """Load as the announced schedule (deadlines in the year stop being provisional)."""
    days: Annotated[list[CalendarDayIn], Meta(max_length=200)] = msgspec.field(default_factory=list)
    """Days off and worked weekend days (weekends are implicit)."""


# --- Status model -----------------------------------------------------------------------------------------


class TransitionOut(Struct, kw_only=True):
    """An allowed move of a dossier."""

    source: str
    """Status before the move."""
    target: str
    """Status after the move."""
    action: str
    """The business action, e.g. ``accept``, ``request_supplement``, ``fee_paid``."""
    actors: list[str]
    """Who may take it: ``citizen``, ``officer``, ``system``."""
    fee_due: str | None
    """For moves out of ``paying``: only for a fee collected ``first`` or ``after`` processing."""


class StatusOut(Struct, kw_only=True):
    """One of the ten dossier statuses of the national portal."""

    status: str
    """Portal word, e.g. ``processing``."""
    code: int
    """Portal code 1–10."""
    name_vi: str
    """The portal's Vietnamese name, e.g. ``Đang xử lý``."""
    meaning_en: str
    """What it means, in English."""
    clock: str
    """``not_started``, ``running``, ``paused`` or ``stopped``."""
    terminal: bool
    """No move leaves this status."""


class StatusModelOut(Struct, kw_only=True):
    """The dossier status model: every status and every allowed move."""

    statuses: list[StatusOut]
    """The ten statuses, by code."""
    transitions: list[TransitionOut]
    """Every allowed move."""
