"""Demo data of reconciliation: two finance admins (a maker and a checker), a sample gateway report, and a
reconciliation of today so the console has something to show."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.admin.reconciliation import GATEWAY_CSV_COLUMNS, reconcile_day
from app.core.db import Database
from app.core.scheduler import LOCAL_TZ
from app.core.settings import Settings
from app.identity.bootstrap import _ensure_installed
from app.identity.service import create_user, find_user_id_by_phone

__all__ = ["seed_reconciliation"]

_FINANCE = [
    (
        "finance_maker",
        "+84905100031",
        "HueS-finance-2025",
        "Lê Thị Thu",
        "finance admin: proposes corrections",
    ),
    ("finance_checker", "+84905100032", "HueS-finance-2025", "Trần Quốc Huy", "finance admin: approves"),
]


async def seed_reconciliation(db: Database, settings: Settings, credentials: dict[str, Any]) -> None:
    """Two finance admins, a sample report under ``VAR_DIR/demo``, and one reconciliation run of today."""
    _ensure_installed(db, settings)
    for key, phone, password, name, note in _FINANCE:
        async with db.transaction() as session:
            user_id = await find_user_id_by_phone(session, phone)
            if user_id is None:
                user = await create_user(
                    session,
                    phone=phone,
                    password=password,
                    full_name=name,
                    roles=(("admin", "finance"),),
                    consents=("account",),
                )
                user_id = user.id
        credentials[key] = {"user_id": str(user_id), "phone": phone, "password": password, "note": note}
    today = datetime.now(LOCAL_TZ).date()
    sample = settings.var_dir / "demo" / "gateway_report_sample.csv"
    sample.parent.mkdir(parents=True, exist_ok=True)
    created = int(datetime.now(LOCAL_TZ).timestamp())
    sample.write_text(
        ",".join(GATEWAY_CSV_COLUMNS)
        + "\n"
        + f"txn_demo_1,200000,2000,198000,vnd,charge,ch_demo_unknown,{created},available,charge\n",
        encoding="utf-8",
    )
    # reconciled with the sample report: its charge is unknown to the ledger, one exception to resolve
    # (console: Reconciliation; the maker proposes, the checker approves)
    async with db.transaction() as session:
        with sample.open("rb") as report:
            await reconcile_day(session, today, trigger="on_demand", gateway_csv=report)
    credentials["reconciliation"] = {
        "run": "POST /api/v1/admin/reconciliation/runs (multipart: day, gateway_report, "
        "biller_confirmations, bank_statement) as finance_maker, with an Idempotency-Key",
        "sample_gateway_report": str(sample),
        "exceptions": "GET /api/v1/admin/reconciliation/exceptions; propose a correction as finance_maker, "
        "approve it as finance_checker",
        "reports": "GET /api/v1/admin/reports/totals, /totals.csv, /headline, /charts/{chart}",
    }
