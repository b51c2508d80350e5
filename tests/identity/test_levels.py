"""Identity levels: 1 = CCCD declared; 2 = verified by eKYC (sandbox) or by an officer at a desk."""

from __future__ import annotations

from datetime import date
from typing import Any

from tests.conftest import assert_problem
from tests.factories import make_user, valid_cccd
from tests.identity.helpers import Client


async def _ekyc(client: Client, headers: dict[str, str], reference: str) -> Any:
    return await client.post("/api/v1/me/ekyc", json={"provider_reference": reference}, headers=headers)


async def test_ekyc_sandbox_verifies_a_match(client: Client) -> None:
    user = await make_user(client, level=1)
    response = await _ekyc(client, user.headers, f"sbx-{user.cccd}-match")
    assert response.status_code == 200, response.text
    assert response.json()["identity_level"] == 2
    assert response.json()["verification_method"] == "ekyc"


async def test_ekyc_refusals(client: Client) -> None:
    user = await make_user(client, level=1)
    other = valid_cccd(date(1990, 5, 17))
    for reference, reason in (
        (f"sbx-{user.cccd}-mismatch", "face_mismatch"),
        (f"sbx-{user.cccd}-spoof", "not_live"),
        (f"sbx-{other}-match", "document_mismatch"),
        ("vendor-session-123", "unknown_session"),
    ):
        problem = assert_problem(await _ekyc(client, user.headers, reference), 422, "ekyc_rejected")
        assert problem["reason"] == reason
    me = await client.get("/api/v1/me", headers=user.headers)
    assert me.json()["identity_level"] == 1
    export = (await client.get("/api/v1/me/data-export", headers=user.headers)).json()
    assert [c["outcome"] for c in export["identity"]["ekyc_checks"]] == ["rejected"] * 4


async def test_ekyc_needs_a_declared_identity_and_consent(client: Client) -> None:
    bare = await make_user(client, level=0)
    assert_problem(await _ekyc(client, bare.headers, "sbx-046090001234-match"), 409, "profile_incomplete")
    user = await make_user(client, level=1)
    await client.put("/api/v1/me/consents/ekyc", json={"granted": False}, headers=user.headers)
    problem = assert_problem(
        await _ekyc(client, user.headers, f"sbx-{user.cccd}-match"), 409, "consent_required"
    )
    assert problem["purpose"] == "ekyc"


async def _desk(
    client: Client, officer: Any, person: Any, cccd: str | None = None, born: str = "1990-05-17"
) -> Any:
    return await client.post(
        "/api/v1/officer/identity-verifications",
        json={
            "phone": person.phone,
            "cccd": cccd or person.cccd,
            "full_name": "Nguyễn Văn An",
            "date_of_birth": born,
        },
        headers=officer.headers,
    )


async def test_officer_verifies_at_the_desk(client: Client) -> None:
    officer = await make_user(
        client, roles=("officer",), agency_id="ubnd-phuong-thuan-hoa", level=0, pin=None
    )
    person = await make_user(client, level=1)
    response = await _desk(client, officer, person)
    assert response.status_code == 200, response.text
    assert response.json()["identity_level"] == 2
    me = (await client.get("/api/v1/me", headers=person.headers)).json()
    assert me["verification_method"] == "desk"


async def test_officer_fills_in_an_undeclared_person(client: Client) -> None:
    officer = await make_user(
        client, roles=("officer",), agency_id="ubnd-phuong-thuan-hoa", level=0, pin=None
    )
    person = await make_user(client, level=0)
    number = valid_cccd(date(1990, 5, 17))
    response = await _desk(client, officer, person, cccd=number)
    assert response.status_code == 200, response.text
    assert response.json()["cccd_masked"].endswith(number[-4:])


async def test_card_differing_from_declaration_is_refused(client: Client) -> None:
    officer = await make_user(
        client, roles=("officer",), agency_id="ubnd-phuong-thuan-hoa", level=0, pin=None
    )
    person = await make_user(client, level=1)
    problem = assert_problem(
        await _desk(client, officer, person, cccd=valid_cccd(date(1990, 5, 17))), 422, "cccd_invalid"
    )
    assert problem["reason"] == "declared_mismatch"


async def test_only_officers_verify_and_not_themselves(client: Client) -> None:
    citizen = await make_user(client, level=2)
    person = await make_user(client, level=1)
    assert_problem(await _desk(client, citizen, person), 403, "forbidden")
    officer = await make_user(
        client, roles=("officer",), agency_id="ubnd-phuong-thuan-hoa", level=1, pin=None
    )
    assert_problem(await _desk(client, officer, officer), 403, "forbidden")
