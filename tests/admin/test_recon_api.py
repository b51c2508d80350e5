"""The admin API of reconciliation and reports: finance admins only, uploads, four eyes, audit, reports.

(The test client serves the app on a loop of its own, so the test reaches the database through a Database
of its own.)
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from app.core.db import Database, utcnow
from app.core.scheduler import LOCAL_TZ
from app.core.settings import Settings
from app.wallet import ledger
from app.wallet.ledger import AccountType, Entry, credit, debit
from tests.conftest import assert_problem
from tests.factories import make_user

RUNS = "/api/v1/admin/reconciliation/runs"
EXCEPTIONS = "/api/v1/admin/reconciliation/exceptions"
CLEARING = ledger.system_account(AccountType.GATEWAY_CLEARING)
FEES = ledger.system_account(AccountType.GATEWAY_FEES)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings)
    try:
        yield database
    finally:
        await database.dispose()


def gateway_csv(*lines: tuple[str, str, int, int]) -> bytes:
    now = int(utcnow().timestamp())
    rows = ["id,amount,fee,net,currency,type,source,created,status,reporting_category"]
    rows += [
        f"{txn},{gross},{fee},{gross - fee},vnd,charge,{src},{now},available,charge"
        for txn, src, gross, fee in lines
    ]
    return ("\n".join(rows) + "\n").encode()


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def test_finance_reconciles_an_uploaded_report_and_corrects_under_four_eyes(
    client: Any, db: Database
) -> None:
    maker = await make_user(client, roles=("admin",), duties=("finance",))
    checker = await make_user(client, roles=("admin",), duties=("finance",))
    support = await make_user(client, roles=("admin",), duties=("support",))
    citizen = await make_user(client)
    async with db.transaction() as session:
        wallet = await ledger.ensure_account(session, AccountType.CITIZEN_WALLET, uuid.uuid4())
        await ledger.post(
            session,
            Entry(
                kind="topup",
                postings=[
                    debit(CLEARING, 250_000),
                    credit(wallet, 250_000),
                    debit(FEES, 2_500),
                    credit(CLEARING, 2_500),
                ],
                reference="pi_api_1",
            ),
        )
    today = datetime.now(LOCAL_TZ).date().isoformat()
    files = {
        "gateway_report": (
            "balance_transactions.csv",
            gateway_csv(("txn_a", "pi_api_1", 250_000, 2_500), ("txn_b", "pi_nobody", 99_000, 990)),
            "text/csv",
        ),
        "bank_statement": (
            "statement.csv",
            b"booked_on,reference,amount,description,balance\n" + f"{today},,0,opening,100000\n".encode(),
            "text/csv",
        ),
    }

    # only finance admins
    for outsider in (support, citizen):
        refused = await client.post(
            RUNS, data={"day": today}, files=files, headers={**outsider.headers, **key()}
        )
        assert refused.status_code == 403
    once = key()
    response = await client.post(RUNS, data={"day": today}, files=files, headers={**maker.headers, **once})
    assert response.status_code == 201, response.text
    run = response.json()
    replay = await client.post(RUNS, data={"day": today}, files=files, headers={**maker.headers, **once})
    assert replay.json()["id"] == run["id"]
    assert run["counts"]["gateway"] == {"lines": 2, "matched": 1, "missing_in_ledger": 1}
    assert run["status"] == "attention"
    assert run["checks"]["bank"]["covered"] is False  # 250,000 in wallets, 100,000 in the bank
    bad = await client.post(
        RUNS,
        data={"day": today},
        files={"gateway_report": ("x.csv", b"id,amount\nx,1\n", "text/csv")},
        headers={**maker.headers, **key()},
    )
    assert_problem(bad, 422, "validation_failed")

    listed = (await client.get(EXCEPTIONS, params={"status": "open"}, headers=maker.headers)).json()
    assert [(e["source"], e["kind"], e["key"]) for e in listed["items"]] == [
        ("gateway", "missing_in_ledger", "txn_b")
    ]
    exception_id = listed["items"][0]["id"]

    proposal = {
        "description": "Unclaimed card payment held in suspense",
        "postings": [
            {"account": "gateway_clearing", "amount": -98_010},
            {"account": "gateway_fees", "amount": -990},
            {"account": "suspense", "amount": 99_000},
        ],
    }
    unbalanced = {
        "description": "x",
        "postings": [{"account": "suspense", "amount": 1}, {"account": "gateway_fees", "amount": 2}],
    }
    assert_problem(
        await client.post(
            f"{EXCEPTIONS}/{exception_id}/proposal", json=unbalanced, headers={**maker.headers, **key()}
        ),
        422,
        "validation_failed",
    )
    proposed = await client.post(
        f"{EXCEPTIONS}/{exception_id}/proposal", json=proposal, headers={**maker.headers, **key()}
    )
    assert proposed.status_code == 200, proposed.text
    assert proposed.json()["status"] == "proposed"
    assert_problem(
        await client.post(f"{EXCEPTIONS}/{exception_id}/approve", headers={**maker.headers, **key()}),
        403,
        "recon_four_eyes",
    )
    approved = await client.post(f"{EXCEPTIONS}/{exception_id}/approve", headers={**checker.headers, **key()})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "resolved"
    assert approved.json()["entry_id"]
    assert_problem(
        await client.post(
            f"{EXCEPTIONS}/{exception_id}/close", json={"note": "late"}, headers={**checker.headers, **key()}
        ),
        409,
        "recon_exception_state",
    )
    async with db.read() as session:
        assert (await ledger.check_books(session)).ok

    # every step is in the audit trail
    admin = await make_user(client, roles=("admin",), duties=("superadmin",))
    trail = (
        await client.get("/api/v1/admin/audit", params={"action": "recon.*"}, headers=admin.headers)
    ).json()
    actions = [e["action"] for e in trail["items"]]
    for action in (
        "recon.run",
        "recon.correction_proposed",
        "recon.correction_self_approval",
        "recon.correction_approved",
    ):
        assert action in actions

    # reports
    totals = (
        await client.get("/api/v1/admin/reports/totals", params={"dimension": "kind"}, headers=maker.headers)
    ).json()
    assert {"key": "topup", "label": "topup", "count": 1, "amount": 252_500} in totals["rows"]
    csv = await client.get(
        "/api/v1/admin/reports/totals.csv", params={"period": "month"}, headers=maker.headers
    )
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == "from,to,dimension,key,label,count,amount_vnd"
    headline = (await client.get("/api/v1/admin/reports/headline", headers=maker.headers)).json()
    assert headline["wallet_accounts"] >= 1
    assert headline["active_acceptance_points"] == 0
    assert headline["satisfaction"] is None
    chart = await client.get("/api/v1/admin/reports/charts/timeliness", headers=maker.headers)
    assert chart.headers["content-type"].startswith("image/svg+xml")
    assert chart.text.startswith("<svg")
    assert (await client.get("/api/v1/admin/reports/headline", headers=support.headers)).status_code == 403
