"""Reading ../shared/data/procedures.json: fee cases, configurable amounts and the defaults DOMAIN.md asks
for (expectations from the file's own lines and notes)."""

from __future__ import annotations

from typing import Any

import pytest

from app.services.catalogue import (
    NATIONAL_CATALOGUE_FILE,
    CatalogueError,
    ProcedureRecord,
    fee_schedule_problems,
    has_fee,
    load_json,
    normalize_search,
    parse_catalogue,
)
from app.services.schemas import FeeCase, FeeLine, FeeSchedule


@pytest.fixture(scope="module")
def national() -> dict[str, ProcedureRecord]:
    catalogue = parse_catalogue(load_json(NATIONAL_CATALOGUE_FILE))
    return {p.code: p for p in catalogue.procedures}


def amounts(case: FeeCase) -> list[int | None]:
    return [line.amount_vnd for line in case.lines]


def test_all_26_procedures_load(national: dict[str, ProcedureRecord]) -> None:
    assert len(national) == 26


def test_judicial_record_alternatives_are_separate_cases(national: dict[str, ProcedureRecord]) -> None:
    # 200,000 standard / 100,000 students and contributors / exempt children, elderly, ... (file notes).
    cases = national["3.000333"].fee_schedule.cases
    assert [amounts(c) for c in cases] == [[200000], [100000], [0]]
    assert [c.default for c in cases] == [True, False, False]
    assert cases[2].collection == "exempt"
    assert "children" in cases[2].groups
    # Never charged together: no case holds two of the alternative lines.
    for case in cases:
        assert len(case.lines) == 1


def test_residence_registration_in_person_or_online(national: dict[str, ProcedureRecord]) -> None:
    cases = national["1.004222"].fee_schedule.cases
    assert [amounts(c) for c in cases] == [[20000], [10000]]
    assert all(line.kind == "charge" for c in cases for line in c.lines)


def test_unknown_amount_is_configurable_not_free(national: dict[str, ProcedureRecord]) -> None:
    # Marital status certificate: lệ phí set by Huế's council, amount_vnd null in the file.
    schedule = national["1.004873"].fee_schedule
    default = next(c for c in schedule.cases if c.default)
    assert amounts(default) == [None]
    assert default.collection == "first"
    assert has_fee(schedule)
    # ... and the usual exempt groups get a case of their own that charges nothing.
    exempt = next(c for c in schedule.cases if c.code == "exempt_groups")
    assert exempt.collection == "exempt"
    assert "Hộ nghèo" in exempt.groups


def test_optional_copies_join_every_case(national: dict[str, ProcedureRecord]) -> None:
    # Birth registration: free charge, plus 8,000 đ per copy if requested.
    cases = national["1.001193"].fee_schedule.cases
    default = cases[0]
    assert [(line.kind, line.amount_vnd, line.optional) for line in default.lines] == [
        ("charge", 0, False),
        ("fee", 8000, True),
    ]
    copy = default.lines[1]
    assert copy.unit == "copy"


def test_per_page_certification(national: dict[str, ProcedureRecord]) -> None:
    line = national["2.000815"].fee_schedule.cases[0].lines[0]
    assert (line.amount_vnd, line.unit) == (2000, "page")


def test_procedures_without_fee(national: dict[str, ProcedureRecord]) -> None:
    assert national["1.001699"].fee_schedule.cases == []
    assert not has_fee(national["1.001699"].fee_schedule)


def test_defaults_from_level(national: dict[str, ProcedureRecord]) -> None:
    # Commune-level procedures go to the default commune centre, province-level ones to the province's.
    assert national["1.001193"].agency_chain == ["PHU-XUAN"]
    assert national["3.000333"].agency_chain == ["HUE"]
    # Fully online: result online, by post or at the desk; online level not stated: partly online.
    assert national["1.001193"].online == "full"
    assert national["1.001193"].return_channels == ["online", "post", "desk"]
    assert national["1.000656"].online == "partial"
    assert national["1.000656"].return_channels == ["desk", "post"]
    assert [d.code for d in national["1.000656"].documents] == [
        "application_form",
        "identity",
        "authorisation",
    ]
    assert "agency_chain" not in national["1.001193"].from_file
    assert "fee_schedule" in national["1.001193"].from_file


def _province_file(**procedure: Any) -> dict[str, Any]:
    return {
        "agencies": [
            {"code": "X1", "name_vi": "UBND xã Một", "level": "commune", "default_for_level": True},
            {"code": "P1", "name_vi": "Sở Một", "level": "province", "treasury_account": "KB-1"},
        ],
        "procedures": [
            {
                "code": "9.000001",
                "name_vi": "Thủ tục thử",
                "field": "Thử",
                "level": "commune",
                **procedure,
            }
        ],
    }


def test_province_file_gives_chain_timing_documents_and_channels() -> None:
    catalogue = parse_catalogue(
        _province_file(
            agency_chain=["X1", "P1"],
            fees=[{"kind": "le_phi", "name_vi": "Lệ phí", "amount_vnd": 50000}],
            fee_collection="after",
            documents=[{"code": "form", "name_vi": "Tờ khai"}],
            return_channels=["post"],
        )
    )
    record = catalogue.procedures[0]
    assert catalogue.agencies_from_file
    assert record.agency_chain == ["X1", "P1"]
    assert record.fee_schedule.cases[0].collection == "after"
    assert [d.code for d in record.documents] == ["form"]
    assert record.return_channels == ["post"]


def test_province_file_errors_name_the_entry() -> None:
    with pytest.raises(CatalogueError, match=r"9\.000001.*unknown agencies \['NOPE'\]"):
        parse_catalogue(_province_file(agency_chain=["NOPE"]))
    with pytest.raises(CatalogueError, match="several kinds"):
        parse_catalogue(
            _province_file(
                fees=[
                    {"kind": "phi", "name_vi": "a", "amount_vnd": 1},
                    {"kind": "phi", "name_vi": "b", "amount_vnd": 2},
                    {"kind": "le_phi", "name_vi": "c", "amount_vnd": 3},
                    {"kind": "le_phi", "name_vi": "d", "amount_vnd": 4},
                ]
            )
        )
    with pytest.raises(CatalogueError, match="not a catalogue file"):
        parse_catalogue({"procedures": "nope"})


def test_fee_schedule_rules() -> None:
    line = FeeLine(code="a", kind="fee", name_vi="Phí", amount_vnd=1000)
    free = FeeLine(code="z", kind="fee", name_vi="Miễn", amount_vnd=0)
    unknown = FeeLine(code="u", kind="charge", name_vi="Lệ phí", amount_vnd=None)
    good = FeeSchedule(
        cases=[
            FeeCase(code="std", name_vi="Chung", collection="first", lines=[line], default=True),
            FeeCase(code="ex", name_vi="Miễn", collection="exempt", lines=[free]),
        ]
    )
    assert fee_schedule_problems(good) == []
    two_defaults = FeeSchedule(
        cases=[
            FeeCase(code="a", name_vi="A", collection="first", lines=[line], default=True),
            FeeCase(code="b", name_vi="B", collection="after", lines=[line], default=True),
        ]
    )
    assert fee_schedule_problems(two_defaults) == ["exactly one case must be the default"]
    charging_exempt = FeeSchedule(
        cases=[FeeCase(code="e", name_vi="E", collection="exempt", lines=[unknown], default=True)]
    )
    assert fee_schedule_problems(charging_exempt)
    empty_paid = FeeSchedule(cases=[FeeCase(code="p", name_vi="P", collection="first", default=True)])
    assert fee_schedule_problems(empty_paid)


def test_search_normalisation() -> None:
    assert normalize_search("Thủ tục  ĐĂNG KÝ khai sinh") == "thu tuc dang ky khai sinh"
    assert normalize_search("Lý lịch tư pháp") == "ly lich tu phap"
