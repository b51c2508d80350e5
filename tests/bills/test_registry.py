"""The biller registry: superadmins declare billers; citizens see the active ones, without the internals."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.bills import service
from app.bills.demo import demo_data
from app.bills.schemas import BillerIn
from app.core.db import Database
from app.core.errors import AppError
from app.core.settings import Settings
from tests.bills.conftest import batch_biller, headers_for, http_biller
from tests.conftest import assert_problem


def superadmin(settings: Settings) -> dict[str, str]:
    return headers_for(settings, roles=("admin",), duties=("superadmin",))


def declaration(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(http_biller())
    body.update(changes)
    return body


async def test_superadmin_declares_then_replaces_a_biller(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    created = await client.put(
        "/api/v1/admin/billers/VNPT_HUE", json=declaration(), headers=superadmin(settings)
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["code"] == "VNPT_HUE"
    assert body["limit_exempt"] is True, "telecoms are exempt from the monthly limit"
    assert body["payable_account_ref"] == "biller:VNPT_HUE:payable"
    assert body["connector"]["kind"] == "http"

    replaced = await client.put(
        "/api/v1/admin/billers/VNPT_HUE",
        json=declaration(name="VNPT Thừa Thiên Huế"),
        headers=superadmin(settings),
    )
    assert replaced.status_code == 200
    assert replaced.json()["name"] == "VNPT Thừa Thiên Huế"
    assert replaced.json()["id"] == body["id"]
    listed = (await client.get("/api/v1/admin/billers/", headers=superadmin(settings))).json()
    assert [b["code"] for b in listed] == ["VNPT_HUE"]


INCONSISTENT = [
    ({"category": "sanitation_fee", "limit_exempt": True}, "limit_exempt"),
    ({"connector": None}, "connector"),
    ({"category": "public_service_fee"}, "agency_code"),
    (
        {"customer_input": {**msgspec.to_builtins(http_biller().customer_input), "pattern": "(unclosed"}},
        "customer_input",
    ),
    (
        {"customer_input": {**msgspec.to_builtins(http_biller().customer_input), "example": "HUE1"}},
        "customer_input",
    ),
]


async def test_inconsistent_declarations_are_refused(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    for changes, field in INCONSISTENT:
        response = await client.put(
            "/api/v1/admin/billers/VNPT_HUE", json=declaration(**changes), headers=superadmin(settings)
        )
        assert assert_problem(response, 422, "invalid_biller")["field"] == field
    assert (await client.get("/api/v1/admin/billers/", headers=superadmin(settings))).json() == []


async def test_an_exempt_category_may_still_count_towards_the_limit(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    response = await client.put(
        "/api/v1/admin/billers/VNPT_HUE", json=declaration(limit_exempt=False), headers=superadmin(settings)
    )
    assert response.json()["limit_exempt"] is False


async def test_public_service_fees_credit_the_agency_treasury_payable(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    body = msgspec.to_builtins(batch_biller())
    body.update(category="public_service_fee", agency_code="H46.01", presentment="adhoc")
    response = await client.put("/api/v1/admin/billers/PHI_TP_HUE", json=body, headers=superadmin(settings))
    assert response.status_code == 201, response.text
    assert response.json()["payable_account_ref"] == "treasury:H46.01:payable"
    assert response.json()["limit_exempt"] is True


async def test_sandboxes_are_refused_in_production(db: Database) -> None:
    declared = msgspec.convert(demo_data()["billers"]["HUEWACO"], BillerIn)
    with pytest.raises(AppError) as caught:
        await service.put_biller(db, "HUEWACO", declared, production=True)
    assert caught.value.kind.code == "invalid_biller"


async def test_only_superadmins_manage_billers(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    url = "/api/v1/admin/billers/VNPT_HUE"
    assert_problem(await client.put(url, json=declaration()), 401, "unauthenticated")
    for headers in (
        headers_for(settings),
        headers_for(settings, roles=("admin",), duties=("finance",)),
        headers_for(settings, roles=("citizen",), duties=("superadmin",)),
    ):
        assert_problem(await client.put(url, json=declaration(), headers=headers), 403, "forbidden")
        assert_problem(await client.get("/api/v1/admin/billers/", headers=headers), 403, "forbidden")
        assert_problem(await client.get(url, headers=headers), 403, "forbidden")


async def test_unknown_fields_are_refused(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    response = await client.put(
        "/api/v1/admin/billers/VNPT_HUE", json=declaration(secret="x"), headers=superadmin(settings)
    )
    assert_problem(response, 422, "validation_failed")


async def test_citizens_see_active_billers_without_internals(
    client: AsyncTestClient[Litestar], settings: Settings, billers: dict[str, Any]
) -> None:
    body = msgspec.to_builtins(batch_biller())
    body["active"] = False
    await client.put("/api/v1/admin/billers/HEPCO_BATCH", json=body, headers=superadmin(settings))

    listed = (await client.get("/api/v1/billers/")).json()
    codes = {b["code"] for b in listed}
    assert {"EVN_CPC_HUE", "HUEWACO", "HEPCO_VSMT", "MN_SEN_HONG", "VNPT_HUE"} <= codes
    assert "HEPCO_BATCH" not in codes
    for biller in listed:
        assert not {"settlement", "connector", "payable_account_ref"} & set(biller)
    electricity = (await client.get("/api/v1/billers/", params={"category": "electricity"})).json()
    assert [b["code"] for b in electricity] == ["EVN_CPC_HUE"]
    one = (await client.get("/api/v1/billers/EVN_CPC_HUE")).json()
    assert one["customer_input"]["example"] == "PC03DD0123456"
    assert one["limit_exempt"] is True
    assert (await client.get("/api/v1/billers/HEPCO_VSMT")).json()["limit_exempt"] is False
    assert_problem(await client.get("/api/v1/billers/HEPCO_BATCH"), 404, "biller_not_found")
    assert_problem(await client.get("/api/v1/billers/NOBODY"), 404, "biller_not_found")
    admin_view = await client.get("/api/v1/admin/billers/HEPCO_BATCH", headers=superadmin(settings))
    assert admin_view.json()["active"] is False
