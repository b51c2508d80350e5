"""The procedure catalogue as files: reading the national list (``data/procedures.json``) or a province's
own file, and giving each procedure what such a file lacks.

The national list has codes, names, level, online level, processing days and flat fee lines; it lacks
agency chains, required documents, return channels and fee timing (DOMAIN.md). Defaults, from the level:

- agency chain: the agency marked ``default_for_level`` of the procedure's level (a commune-level procedure
  is received and decided by the default commune centre, a province-level one by the province centre);
- documents: the application form and the applicant's identity document, plus an authorisation when someone
  files on the applicant's behalf (the same at every level);
- return channels: a fully online procedure returns online, by post or at the desk; a partly online one
  (or one whose online level is not stated, taken as partly online) by post or at the desk;
- fee timing: collected first (paying is what starts the clock), unless the file says ``fee_collection``.

Flat fee lines become a schedule of cases: lines of one kind that are not optional are *alternatives* (the
judicial record's 200,000 / 100,000 / exempt; residence registration in person / online), one case each;
the other lines join every case. Lines whose note names the usual exempt groups give an extra exempt case.
A ``null`` amount stays ``null``: a fee whose amount is still to be configured, never a free one.

A province file has the same shape (``procedures``), may add ``agencies`` and, per procedure,
``agency_chain``, ``documents``, ``return_channels``, ``fee_collection`` or a structured ``fee_schedule``.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import msgspec

from app.services.schemas import FeeCase, FeeLine, FeeSchedule, RequiredDocument

__all__ = [
    "DEFAULT_AGENCIES_FILE",
    "HOLIDAYS_FILE",
    "NATIONAL_CATALOGUE_FILE",
    "REPO_ROOT",
    "AgencyRecord",
    "Catalogue",
    "CatalogueError",
    "ProcedureRecord",
    "default_documents",
    "default_return_channels",
    "fee_schedule_from_lines",
    "fee_schedule_problems",
    "has_fee",
    "load_json",
    "normalize_search",
    "parse_catalogue",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
_TEAM_DATA = REPO_ROOT.parent / "shared" / "data"
_BUNDLED_DATA = Path(__file__).resolve().parent / "data"
SHARED_DATA = _TEAM_DATA if (_TEAM_DATA / "procedures.json").exists() else _BUNDLED_DATA
"""The team's ``../shared/data`` when it sits beside the repository, else the copy shipped in the package
(so ``make run`` works from a bare clone)."""
NATIONAL_CATALOGUE_FILE = SHARED_DATA / "procedures.json"
"""``procedures.json``: the 26 national procedures."""
HOLIDAYS_FILE = SHARED_DATA / "vn_holidays.json"
"""``vn_holidays.json``: 2025–2026 as announced, 2027 as far as the law fixes it."""
DEFAULT_AGENCIES_FILE = "agencies.json"

FeeCollection = Literal["first", "after"]
OPTIONAL_MARKERS = ("nếu có yêu cầu", "optional")
EXEMPT_PHRASE = "families of revolutionary contributors, poor households, disabled people"
EXEMPT_GROUPS = ["Gia đình người có công với cách mạng", "Hộ nghèo", "Người khuyết tật"]
_KINDS = {"phi": "fee", "le_phi": "charge", "fee": "fee", "charge": "charge"}


class CatalogueError(ValueError):
    """A catalogue file cannot be loaded; the message says which entry and why."""


class _FileFee(msgspec.Struct, kw_only=True):
    kind: str
    name_vi: str
    amount_vnd: int | None = None
    note: str | None = None


class _FileAgency(msgspec.Struct, kw_only=True):
    code: str
    name_vi: str
    level: str
    name_en: str | None = None
    treasury_account: str | None = None
    active: bool = True
    default_for_level: bool = False


class _FileProcedure(msgspec.Struct, kw_only=True):
    code: str
    name_vi: str
    field: str
    level: str
    name_en: str | None = None
    online: Literal["full", "partial"] | None = None
    processing_days: int | None = None
    processing_days_by_channel: dict[str, int] | None = None
    fees: list[_FileFee] | None = None
    fee_schedule: FeeSchedule | None = None
    fee_collection: FeeCollection | None = None
    agency_chain: list[str] | None = None
    documents: list[RequiredDocument] | None = None
    return_channels: list[Literal["desk", "online", "post"]] | None = None
    result: str | None = None
    national_decision: str | None = None
    note: str | None = None
    source: list[str] | str | None = None


class _File(msgspec.Struct, kw_only=True):
    procedures: list[dict[str, Any]] = msgspec.field(default_factory=list)
    agencies: list[dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class AgencyRecord:
    code: str
    name_vi: str
    name_en: str | None
    level: str
    treasury_account: str | None
    active: bool
    default_for_level: bool


@dataclass(slots=True)
class ProcedureRecord:
    """One procedure as the file gives it, completed with defaults. ``from_file`` names the fields the
    file itself provided (the others are defaults, applied only when the procedure is new)."""

    code: str
    name_vi: str
    name_en: str | None
    field: str
    level: str
    online: str
    processing_days: int | None
    processing_days_by_channel: dict[str, int] | None
    result: str | None
    national_decision: str | None
    note: str | None
    sources: list[str]
    agency_chain: list[str]
    documents: list[RequiredDocument]
    return_channels: list[str]
    fee_schedule: FeeSchedule
    from_file: set[str] = dataclass_field(default_factory=set)


@dataclass(slots=True)
class Catalogue:
    agencies: list[AgencyRecord]
    agencies_from_file: bool
    """True when the file listed agencies (they replace the stored ones); False for the defaults (added
    only where missing)."""
    procedures: list[ProcedureRecord]


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CatalogueError(f"{path}: no such file") from exc
    except json.JSONDecodeError as exc:
        raise CatalogueError(f"{path}: not valid JSON ({exc})") from exc


def normalize_search(text: str) -> str:
    """Lower case without diacritics (``Đăng ký khai sinh`` -> ``dang ky khai sinh``), so searches typed
    without accents match."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.lower().split())


def default_documents() -> list[RequiredDocument]:
    return [
        RequiredDocument(
            code="application_form",
            name_vi="Tờ khai / đơn đề nghị theo mẫu",
            name_en="Application form (official template)",
        ),
        RequiredDocument(
            code="identity",
            name_vi="Căn cước công dân hoặc tài khoản định danh điện tử (VNeID) của người nộp",
            name_en="Applicant's citizen ID card or VNeID electronic identity",
        ),
        RequiredDocument(
            code="authorisation",
            name_vi="Văn bản ủy quyền (nếu nộp hồ sơ thay)",
            name_en="Authorisation (when filing on someone's behalf)",
            required=False,
        ),
    ]


def default_return_channels(online: str) -> list[str]:
    return ["online", "post", "desk"] if online == "full" else ["desk", "post"]


def _is_optional(fee: _FileFee) -> bool:
    text = f"{fee.name_vi} {fee.note or ''}".lower()
    return any(marker in text for marker in OPTIONAL_MARKERS)


def _unit(fee: _FileFee) -> Literal["dossier", "copy", "page"]:
    text = f"{fee.name_vi} {fee.note or ''}".lower()
    if "/trang" in text or "per page" in text:
        return "page"
    if "/bản sao" in text or "per copy" in text:
        return "copy"
    return "dossier"


def fee_schedule_from_lines(fees: list[_FileFee], collection: FeeCollection) -> FeeSchedule:
    """Cases from flat fee lines (see the module's docstring for the rules)."""
    if not fees:
        return FeeSchedule(cases=[])
    counters: dict[str, int] = {}
    lines: list[tuple[_FileFee, FeeLine]] = []
    for fee in fees:
        kind = _KINDS.get(fee.kind)
        if kind is None:
            raise CatalogueError(f"fee kind {fee.kind!r} is neither phi (fee) nor le_phi (charge)")
        counters[kind] = counters.get(kind, 0) + 1
        line = FeeLine(
            code=f"{kind}_{counters[kind]}",
            kind=kind,  # type: ignore[arg-type]
            name_vi=fee.name_vi,
            amount_vnd=fee.amount_vnd,
            unit=_unit(fee),
            optional=_is_optional(fee),
            note=fee.note,
        )
        lines.append((fee, line))
    main = [pair for pair in lines if not pair[1].optional]
    extras = [line for _, line in lines if line.optional]
    kinds_with_alternatives = sorted(
        {line.kind for _, line in main if sum(other.kind == line.kind for _, other in main) > 1}
    )
    if len(kinds_with_alternatives) > 1:
        raise CatalogueError(
            "several kinds of fee have alternative lines; give a structured fee_schedule instead"
        )
    alt_kind = kinds_with_alternatives[0] if kinds_with_alternatives else None
    fixed = [line for _, line in main if line.kind != alt_kind]
    alternatives: list[tuple[_FileFee, FeeLine] | None] = (
        [pair for pair in main if pair[1].kind == alt_kind] if alt_kind else [None]
    )
    cases: list[FeeCase] = []
    for index, alternative in enumerate(alternatives):
        case_lines = [*fixed, *([alternative[1]] if alternative else []), *extras]
        free = all(line.amount_vnd == 0 for line in case_lines)
        groups: list[str] = []
        if alternative is not None and alternative[1].amount_vnd == 0 and alternative[0].note:
            groups = [g.strip() for g in alternative[0].note.split(",") if g.strip()]
        cases.append(
            FeeCase(
                code=f"case_{index + 1}",
                name_vi=alternative[1].name_vi if alternative else "Mức thu chung",
                name_en=None if alternative else "Standard",
                collection="exempt" if free else collection,
                lines=case_lines,
                groups=groups,
                default=index == 0,
            )
        )
    waived = {line.code for fee, line in lines if fee.note and EXEMPT_PHRASE in fee.note}
    if waived:
        remaining = [line for line in cases[0].lines if line.code not in waived]
        cases.append(
            FeeCase(
                code="exempt_groups",
                name_vi="Đối tượng được miễn",
                name_en="Exempt applicant groups",
                collection="exempt" if all(line.amount_vnd == 0 for line in remaining) else collection,
                lines=remaining,
                groups=list(EXEMPT_GROUPS),
            )
        )
    return FeeSchedule(cases=cases)


def fee_schedule_problems(schedule: FeeSchedule) -> list[str]:
    """Why ``schedule`` cannot be used (empty when it can)."""
    problems: list[str] = []
    codes = [case.code for case in schedule.cases]
    if len(set(codes)) != len(codes):
        problems.append("case codes must be unique")
    defaults = sum(case.default for case in schedule.cases)
    if schedule.cases and defaults != 1:
        problems.append("exactly one case must be the default")
    for case in schedule.cases:
        line_codes = [line.code for line in case.lines]
        if len(set(line_codes)) != len(line_codes):
            problems.append(f"case {case.code}: line codes must be unique")
        if case.collection == "exempt":
            if any(line.amount_vnd != 0 for line in case.lines):
                problems.append(f"case {case.code}: an exempt case charges nothing (amounts must be 0)")
        elif not case.lines:
            problems.append(f"case {case.code}: a case collected {case.collection} needs fee lines")
    return problems


def has_fee(schedule: FeeSchedule) -> bool:
    """Whether some case can charge something (a ``null`` amount is a fee still to be configured)."""
    return any(
        case.collection != "exempt" and any(line.amount_vnd != 0 for line in case.lines)
        for case in schedule.cases
    )


def _default_agencies() -> list[dict[str, Any]]:
    text = resources.files("app.services").joinpath("data", DEFAULT_AGENCIES_FILE).read_text("utf-8")
    agencies: list[dict[str, Any]] = json.loads(text)["agencies"]
    return agencies


def parse_catalogue(data: Any, *, known_agencies: dict[str, str] | None = None) -> Catalogue:
    """Read a catalogue file's content. ``known_agencies`` (code -> level) are the agencies already stored,
    which chains may name besides the file's own."""
    try:
        document = msgspec.convert(data, _File)
    except msgspec.ValidationError as exc:
        raise CatalogueError(f"not a catalogue file: {exc}") from exc
    from_file = document.agencies is not None
    raw_agencies = document.agencies if document.agencies is not None else _default_agencies()
    agencies: list[AgencyRecord] = []
    for index, raw in enumerate(raw_agencies):
        try:
            agency = msgspec.convert(raw, _FileAgency)
        except msgspec.ValidationError as exc:
            raise CatalogueError(f"agencies[{index}]: {exc}") from exc
        agencies.append(AgencyRecord(**msgspec.structs.asdict(agency)))
    levels = dict(known_agencies or {})
    levels.update({a.code: a.level for a in agencies})
    default_for_level = {a.level: a.code for a in agencies if a.default_for_level}
    procedures: list[ProcedureRecord] = []
    seen: set[str] = set()
    for index, raw in enumerate(document.procedures):
        label = f"procedures[{index}] ({raw.get('code', '?') if isinstance(raw, dict) else '?'})"
        try:
            entry = msgspec.convert(raw, _FileProcedure)
        except msgspec.ValidationError as exc:
            raise CatalogueError(f"{label}: {exc}") from exc
        if entry.code in seen:
            raise CatalogueError(f"{label}: code {entry.code} appears twice")
        seen.add(entry.code)
        try:
            procedures.append(_procedure(entry, levels, default_for_level))
        except CatalogueError as exc:
            raise CatalogueError(f"{label}: {exc}") from exc
    return Catalogue(agencies=agencies, agencies_from_file=from_file, procedures=procedures)


def _procedure(
    entry: _FileProcedure, levels: dict[str, str], default_for_level: dict[str, str]
) -> ProcedureRecord:
    provided: set[str] = {"name_vi", "name_en", "field", "level", "processing_days", "result"}
    provided |= {"processing_days_by_channel", "national_decision", "note", "sources"}
    online = entry.online or "partial"
    if entry.online is not None:
        provided.add("online")
    if entry.agency_chain is not None:
        chain = entry.agency_chain
        provided.add("agency_chain")
    elif entry.level in default_for_level:
        chain = [default_for_level[entry.level]]
    else:
        raise CatalogueError(f"no default agency for level {entry.level!r}: add one or give agency_chain")
    unknown = [code for code in chain if code not in levels]
    if unknown or not chain:
        raise CatalogueError(f"agency_chain names unknown agencies {unknown}")
    documents = entry.documents if entry.documents is not None else default_documents()
    if entry.documents is not None:
        provided.add("documents")
    channels: list[str] = (
        list(entry.return_channels) if entry.return_channels else default_return_channels(online)
    )
    if entry.return_channels:
        provided.add("return_channels")
    if entry.fee_schedule is not None:
        schedule = entry.fee_schedule
        provided.add("fee_schedule")
    else:
        schedule = fee_schedule_from_lines(entry.fees or [], entry.fee_collection or "first")
        if entry.fees is not None or entry.fee_collection is not None:
            provided.add("fee_schedule")
    problems = fee_schedule_problems(schedule)
    if problems:
        raise CatalogueError("fee schedule: " + "; ".join(problems))
    sources = [entry.source] if isinstance(entry.source, str) else list(entry.source or [])
    return ProcedureRecord(
        code=entry.code,
        name_vi=entry.name_vi,
        name_en=entry.name_en,
        field=entry.field,
        level=entry.level,
        online=online,
        processing_days=entry.processing_days,
        processing_days_by_channel=entry.processing_days_by_channel,
        result=entry.result,
        national_decision=entry.national_decision,
        note=entry.note,
        sources=sources,
        agency_chain=list(chain),
        documents=list(documents),
        return_channels=channels,
        fee_schedule=schedule,
        from_file=provided,
    )
