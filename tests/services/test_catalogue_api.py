"""The catalogue through the API: loading (idempotent), public reading, admins' edits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from typer.testing import CliRunner

from app.core.db import Database
from app.core.settings import Settings, get_settings
from app.services.catalogue import NATIONAL_CATALOGUE_FILE, load_json
from app.services.demo import seed_services
from app.services.service import load_catalogue
from tests.conftest import Backend, assert_problem
from tests.services.conftest import bearer

PROVINCE_LEVEL = {"3.000333", "1.012784", "1.012783", "3.000347"}  # "level": "province" in the file


async def _all_codes(client: AsyncTestClient[Litestar], **params: Any) -> list[str]:
    codes: list[str] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/services/procedures", params=query)).json()
        codes += [item["code"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return codes


async def test_loading_twice_changes_nothing(db: Database, client: AsyncTestClient[Litestar]) -> None:
    first = await load_catalogue(db, load_json(NATIONAL_CATALOGUE_FILE))
    assert (first.created, first.agencies_created) == (26, 3)
    second = await load_catalogue(db, load_json(NATIONAL_CATALOGUE_FILE))
    assert (second.created, second.updated, second.unchanged, second.agencies_created) == (0, 0, 26, 0)
    codes = await _all_codes(client, limit=10)
    assert len(codes) == len(set(codes)) == 26
    assert codes == sorted(codes)
    agencies = (await client.get("/api/v1/services/agencies")).json()
    assert {a["code"]: a["level"] for a in agencies} == {
        "HUE": "province",
        "PHU-XUAN": "commune",
        "THUAN-HOA": "commune",
    }


async def _public_reading_needs_no_sign_in(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    anonymous = await client.get("/api/v1/services/procedures/1.001193")
    assert anonymous.status_code == 200
    signed_in = await client.get(
        "/api/v1/services/procedures/1.001193", headers=await bearer(client, settings, "citizen")
    )
    assert signed_in.json() == anonymous.json()


async def _search_without_accents(client: AsyncTestClient[Litestar]) -> None:
    found = await _all_codes(client, q="khai sinh")
    assert "1.001193" in found  # Thủ tục đăng ký khai sinh
    assert "1.004884" in found  # Thủ tục đăng ký lại khai sinh
    assert "3.000333" not in found
    assert await _all_codes(client, q="LY LICH tu phap") == ["3.000333"]
    assert await _all_codes(client, q="1.001193") == ["1.001193"]
    assert await _all_codes(client, q="100%_x") == []


async def _filters(client: AsyncTestClient[Litestar]) -> None:
    assert set(await _all_codes(client, level="province")) == PROVINCE_LEVEL
    full = set(await _all_codes(client, online="full"))
    assert {"1.001193", "1.004873", "2.000635", "1.012575"} == full
    assert set(await _all_codes(client, agency="HUE")) == PROVINCE_LEVEL
    civil_status = {
        "1.001193",
        "1.000656",
        "1.000894",
        "1.004873",
        "2.000635",
        "1.004859",
        "1.004884",
        "1.001022",
    }
    assert (
        set(await _all_codes(client, field="Hộ tịch")) == civil_status
    )  # "Hộ tịch (civil status)" in the file
    assert set(await _all_codes(client, field="Hộ tịch (civil status)")) == civil_status
    response = await client.get("/api/v1/services/procedures", params={"online": "sometimes"})
    assert_problem(response, 422, "validation_failed")


async def _pages_and_bad_cursor(client: AsyncTestClient[Litestar]) -> None:
    first = (await client.get("/api/v1/services/procedures", params={"limit": 10})).json()
    assert len(first["items"]) == 10
    assert first["next_cursor"]
    last = (await client.get("/api/v1/services/procedures", params={"limit": 26})).json()
    assert len(last["items"]) == 26
    assert last["next_cursor"] is None
    bad = await client.get("/api/v1/services/procedures", params={"cursor": "%%%"})
    assert_problem(bad, 422, "validation_failed")
    too_big = await client.get("/api/v1/services/procedures", params={"limit": 1000})
    assert_problem(too_big, 422, "validation_failed")


async def _judicial_record_detail(client: AsyncTestClient[Litestar]) -> None:
    body = (await client.get("/api/v1/services/procedures/3.000333")).json()
    assert [a["code"] for a in body["agency_chain"]] == ["HUE"]
    assert body["agency_chain"][0]["level"] == "province"
    assert body["processing_days"] == 10
    assert body["online"] == "partial"
    assert body["return_channels"] == ["desk", "post"]
    cases = body["fee_schedule"]["cases"]
    assert [[line["amount_vnd"] for line in case["lines"]] for case in cases] == [[200000], [100000], [0]]
    assert [case["collection"] for case in cases] == ["first", "first", "exempt"]
    assert [d["code"] for d in body["documents"]] == ["application_form", "identity", "authorisation"]


async def _configurable_amount_is_shown_as_null_and_counts_as_a_fee(
    client: AsyncTestClient[Litestar],
) -> None:
    detail = (await client.get("/api/v1/services/procedures/1.004873")).json()
    assert detail["fee_schedule"]["cases"][0]["lines"][0]["amount_vnd"] is None
    summary = (await client.get("/api/v1/services/procedures", params={"q": "1.004873"})).json()["items"][0]
    assert summary["has_fee"] is True
    free = (await client.get("/api/v1/services/procedures", params={"q": "1.001699"})).json()["items"][0]
    assert free["has_fee"] is False


async def _unknown_procedure(client: AsyncTestClient[Litestar]) -> None:
    assert_problem(await client.get("/api/v1/services/procedures/9.999999"), 404, "procedure_not_found")


async def _dossier_status_model(client: AsyncTestClient[Litestar]) -> None:
    body = (await client.get("/api/v1/services/dossier-statuses")).json()
    assert [(s["code"], s["status"]) for s in body["statuses"]][:3] == [
        (1, "receiving"),
        (2, "new"),
        (3, "denied"),
    ]
    assert len(body["statuses"]) == 10
    assert {
        "source": "paying",
        "target": "new",
        "action": "fee_paid",
        "actors": ["system"],
        "fee_due": "first",
    } in body["transitions"]


async def test_reading_the_catalogue(
    loaded: Database, client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    """The public routes on one loaded catalogue (one database for all of them keeps the suite fast)."""
    await _public_reading_needs_no_sign_in(client, settings)
    await _judicial_record_detail(client)
    await _configurable_amount_is_shown_as_null_and_counts_as_a_fee(client)
    await _unknown_procedure(client)
    await _dossier_status_model(client)


async def test_searching_the_catalogue(loaded: Database, client: AsyncTestClient[Litestar]) -> None:
    await _search_without_accents(client)
    await _filters(client)
    await _pages_and_bad_cursor(client)


ADMIN_ROUTES: list[tuple[str, str, Any]] = [
    ("PATCH", "/api/v1/admin/services/procedures/1.001193", {"processing_days": 2}),
    ("PUT", "/api/v1/admin/services/agencies/NEW", {"name_vi": "Mới", "level": "commune"}),
    ("GET", "/api/v1/admin/services/calendar/2026", None),
    ("PUT", "/api/v1/admin/services/calendar/2028", {"announced": False, "days": []}),
    ("PUT", "/api/v1/admin/services/calendar/days/2028-03-01", {"kind": "holiday", "name_vi": "Nghỉ"}),
    ("DELETE", "/api/v1/admin/services/calendar/days/2028-03-01", None),
]


async def test_admin_routes_need_the_superadmin_duty(
    loaded: Database, client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    refused = (
        await bearer(client, settings, "citizen"),
        await bearer(client, settings, "officer", agency="PHU-XUAN"),
        await bearer(client, settings, "admin", duties=("finance",)),
        await bearer(client, settings, "admin", duties=("support",)),
        await bearer(
            client, settings, "citizen", duties=("superadmin",)
        ),  # a duty without the admin role is nothing
    )
    for method, path, body in ADMIN_ROUTES:
        kwargs: dict[str, Any] = {"json": body} if body is not None else {}
        assert_problem(await client.request(method, path, **kwargs), 401, "unauthenticated")
        for headers in refused:
            assert_problem(await client.request(method, path, headers=headers, **kwargs), 403, "forbidden")
        allowed = await client.request(
            method, path, headers=await bearer(client, settings, "admin", duties=("superadmin",)), **kwargs
        )
        assert allowed.status_code in (200, 204), (method, path, allowed.text)


async def test_admin_edits_chain_and_fees_and_reload_keeps_them(
    loaded: Database, client: AsyncTestClient[Litestar], superadmin: dict[str, str]
) -> None:
    schedule = {
        "cases": [
            {
                "code": "standard",
                "name_vi": "Mức thu theo Nghị quyết HĐND",
                "collection": "first",
                "default": True,
                "lines": [{"code": "le_phi", "kind": "charge", "name_vi": "Lệ phí", "amount_vnd": 15000}],
            },
            {"code": "exempt", "name_vi": "Hộ nghèo", "collection": "exempt", "groups": ["Hộ nghèo"]},
        ]
    }
    response = await client.patch(
        "/api/v1/admin/services/procedures/1.004873",
        json={"agency_chain": ["PHU-XUAN", "HUE"], "fee_schedule": schedule},
        headers=superadmin,
    )
    assert response.status_code == 200, response.text
    assert [a["code"] for a in response.json()["agency_chain"]] == ["PHU-XUAN", "HUE"]
    report = await load_catalogue(loaded, load_json(NATIONAL_CATALOGUE_FILE))
    assert report.kept_admin_edits == ["1.004873.fee_schedule"]
    assert report.updated == 0
    detail = (await client.get("/api/v1/services/procedures/1.004873")).json()
    assert [a["code"] for a in detail["agency_chain"]] == ["PHU-XUAN", "HUE"]
    assert detail["fee_schedule"]["cases"][0]["lines"][0]["amount_vnd"] == 15000
    # Fields the admin left alone still follow the file.
    assert detail["processing_days"] == 3


async def test_admin_edits_are_validated(
    loaded: Database, client: AsyncTestClient[Litestar], superadmin: dict[str, str]
) -> None:
    path = "/api/v1/admin/services/procedures/1.001193"
    unknown = await client.patch(path, json={"agency_chain": ["PHU-XUAN", "NOWHERE"]}, headers=superadmin)
    assert assert_problem(unknown, 422, "unknown_agency")["agencies"] == ["NOWHERE"]
    twice = await client.patch(path, json={"agency_chain": ["HUE", "HUE"]}, headers=superadmin)
    assert_problem(twice, 422, "unknown_agency")
    line = {"code": "x", "kind": "fee", "name_vi": "Phí", "amount_vnd": 1000}
    two_defaults = {
        "cases": [
            {"code": "a", "name_vi": "A", "collection": "first", "default": True, "lines": [line]},
            {"code": "b", "name_vi": "B", "collection": "first", "default": True, "lines": [line]},
        ]
    }
    assert_problem(
        await client.patch(path, json={"fee_schedule": two_defaults}, headers=superadmin),
        422,
        "invalid_fee_schedule",
    )
    charging_exempt = {
        "cases": [
            {
                "code": "a",
                "name_vi": "A",
                "collection": "exempt",
                "default": True,
                "lines": [{**line, "amount_vnd": None}],
            }
        ]
    }
    assert_problem(
        await client.patch(path, json={"fee_schedule": charging_exempt}, headers=superadmin),
        422,
        "invalid_fee_schedule",
    )
    negative = {
        "cases": [
            {
                "code": "a",
                "name_vi": "A",
                "collection": "first",
                "default": True,
                "lines": [{**line, "amount_vnd": -5}],
            }
        ]
    }
    assert_problem(
        await client.patch(path, json={"fee_schedule": negative}, headers=superadmin),
        422,
        "validation_failed",
    )
    assert_problem(await client.patch(path, json={"price": 1}, headers=superadmin), 422, "validation_failed")
    assert_problem(
        await client.patch(
            "/api/v1/admin/services/procedures/9.999999", json={"online": "full"}, headers=superadmin
        ),
        404,
        "procedure_not_found",
    )
    # Nothing of the refused edits stuck.
    body = (await client.get("/api/v1/services/procedures/1.001193")).json()
    assert [a["code"] for a in body["agency_chain"]] == ["PHU-XUAN"]


async def test_admin_adds_an_agency_and_uses_it_in_a_chain(
    loaded: Database, client: AsyncTestClient[Litestar], superadmin: dict[str, str]
) -> None:
    put = await client.put(
        "/api/v1/admin/services/agencies/HUE-POLICE",
        json={"name_vi": "Công an thành phố Huế", "level": "province", "treasury_account": "KB-99"},
        headers=superadmin,
    )
    assert put.status_code == 200, put.text
    patch = await client.patch(
        "/api/v1/admin/services/procedures/3.000333",
        json={
            "agency_chain": ["HUE", "HUE-POLICE"],
            "documents": [{"code": "form", "name_vi": "Tờ khai"}],
            "return_channels": ["online", "post"],
        },
        headers=superadmin,
    )
    assert patch.status_code == 200, patch.text
    body = patch.json()
    assert [a["name_vi"] for a in body["agency_chain"]] == [
        "Trung tâm Phục vụ hành chính công thành phố Huế",
        "Công an thành phố Huế",
    ]
    assert body["return_channels"] == ["online", "post"]
    assert set(await _all_codes(client, agency="HUE-POLICE")) == {"3.000333"}
    bad_level = await client.put(
        "/api/v1/admin/services/agencies/X", json={"name_vi": "X", "level": "Tỉnh"}, headers=superadmin
    )
    assert_problem(bad_level, 422, "validation_failed")


def test_cli_loads_a_province_file(
    backend_env: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.cli import cli

    province = {
        "agencies": [
            {"code": "HUE", "name_vi": "Trung tâm PVHCC Huế", "level": "province", "default_for_level": True},
            {
                "code": "KIM-LONG",
                "name_vi": "UBND phường Kim Long",
                "level": "commune",
                "default_for_level": True,
            },
        ],
        "procedures": [
            {
                "code": "1.001193",
                "name_vi": "Thủ tục đăng ký khai sinh",
                "field": "Hộ tịch",
                "level": "commune",
                "online": "full",
                "processing_days": 1,
                "agency_chain": ["KIM-LONG", "HUE"],
                "fee_collection": "after",
                "fees": [{"kind": "le_phi", "name_vi": "Lệ phí", "amount_vnd": 5000}],
            }
        ],
    }
    path = tmp_path / "hue.json"
    path.write_text(json.dumps(province, ensure_ascii=False))
    monkeypatch.setenv("DATABASE_URL", backend_env.database_url)
    monkeypatch.setenv("APP_ENV", "test")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        first = runner.invoke(cli, ["services", "load-catalogue", "--file", str(path)])
        assert first.exit_code == 0, first.output
        again = runner.invoke(cli, ["services", "load-catalogue", "--file", str(path)])
        assert again.exit_code == 0, again.output
        missing = runner.invoke(cli, ["services", "load-catalogue", "--file", str(tmp_path / "none.json")])
        assert missing.exit_code == 1
        holidays = runner.invoke(cli, ["services", "load-holidays"])
        assert holidays.exit_code == 0, holidays.output
    finally:
        get_settings.cache_clear()
    assert '"created": 1' in first.output
    assert '"unchanged": 1' in again.output
    assert "no such file" in " ".join(missing.output.split())
    assert "2027" in holidays.output


async def test_demo_seeder_is_idempotent(db: Database, settings: Settings) -> None:
    credentials: dict[str, Any] = {}
    await seed_services(db, settings, credentials)
    assert credentials["services"]["procedures_created"] == 26
    assert credentials["services"]["holiday_years_loaded"] == [2025, 2026, 2027]
    await seed_services(db, settings, credentials)
    assert credentials["services"]["procedures_created"] == 0
    assert credentials["services"]["procedures_total"] == 26
    assert credentials["services"]["holiday_years_loaded"] == []


@pytest.mark.sqlite_only
async def test_public_catalogue_is_rate_limited(backend_env: Backend) -> None:
    from app.main import create_app

    app = create_app(backend_env.settings(RATE_LIMIT_DEFAULT="3/60"))
    async with AsyncTestClient(app=app) as limited:
        for _ in range(3):
            assert (await limited.get("/api/v1/services/dossier-statuses")).status_code == 200
        refused = await limited.get("/api/v1/services/agencies")
        assert_problem(refused, 429, "rate_limited")
        assert int(refused.headers["retry-after"]) > 0
