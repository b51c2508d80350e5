"""The state treasury remittance (issue 11, item 4): a day's public-service fees go to the agency's treasury
account, one line per fee line with procedure, agency, dossier code and fee code; billers' settlements never
carry them."""

from __future__ import annotations

import csv
import io
import uuid

from sqlalchemy import select

from app.bills import service as bills
from app.bills.clock import local_today
from app.core.bank_transfer import SandboxBank
from app.services.dossier_models import Dossier
from app.services.dossiers import ensure_fee_biller
from app.services.models import Agency, Procedure
from app.settlement import service as settlement
from app.settlement.models import Settlement
from app.wallet import ledger
from tests.afterpay.conftest import World
from tests.factories import make_user

PROCEDURE = "T-HUE-280"
SCHEDULE = {
    "cases": [
        {
            "code": "case_1",
            "name_vi": "Nộp trực tuyến",
            "collection": "first",
            "default": True,
            "lines": [
                {"code": "le_phi_1", "kind": "charge", "name_vi": "Lệ phí", "amount_vnd": 50_000},
                {"code": "phi_tham_dinh", "kind": "fee", "name_vi": "Phí thẩm định", "amount_vnd": 20_000},
                {
                    "code": "ban_sao",
                    "kind": "fee",
                    "name_vi": "Bản sao",
                    "amount_vnd": 3_000,
                    "optional": True,
                },
            ],
        }
    ]
}


async def test_a_days_fees_go_to_the_agencys_treasury_with_the_platform_fields(world: World) -> None:
    # Given a dossier of agency PHU-XUAN whose 70,000 đ fee (two lines) and an electricity bill were paid
    citizen = await make_user(world.app)
    await world.fund(citizen.user_id, 500_000)
    code = "PHU-XUAN-261123-0001"
    async with world.db.transaction() as session:
        session.add(
            Agency(
                code="PHU-XUAN",
                name_vi="UBND phường Phú Xuân",
                level="commune",
                treasury_account="3711-0000-1234",
            )
        )
        session.add(
            Procedure(
                code=PROCEDURE,
                name_vi="Thủ tục thử",
                field="Hộ tịch",
                level="commune",
                online="full",
                documents=[],
                return_channels=[],
                fee_schedule=SCHEDULE,
                sources=[],
                search_text="thu tuc",
                edited_fields=[],
            )
        )
        await session.flush()
        session.add(
            Dossier(
                code=code,
                procedure_code=PROCEDURE,
                applicant_id=citizen.user_id,
                status="processing",
                chain=["PHU-XUAN"],
                agency_code="PHU-XUAN",
                fee_case="case_1",
                fee_collection="first",
                fee_amount=70_000,
            )
        )
    async with world.db.transaction() as session:
        biller = await ensure_fee_biller(session, "PHU-XUAN", production=False)
        fee = await bills.issue_bill(
            session,
            biller_code=biller,
            customer_code=code,
            external_id=f"test-fee:{uuid.uuid4()}",
            period="2026-11",
            amount=70_000,
            due_date=None,
            customer_name="Nguyễn Văn An",
            owner_user_id=citizen.user_id,
        )
    electricity = await world.bill("EVN_CPC_HUE", "PC03DD0123456", 150_000)
    assert (await world.pay(citizen, [fee.id, electricity])).status_code == 201

    # When the day is settled
    bank = SandboxBank()
    today = local_today()
    await settlement.settle_day(world.db, bank, today)

    # Then the treasury got the fee alone, line by fee line, and EVN got the electricity bill alone
    async with world.db.read() as session:
        rows = {
            s.payee_code: s
            for s in await session.scalars(select(Settlement).where(Settlement.business_day == today))
        }
        movement = await settlement.ledger_movement(session, rows["PHU-XUAN"].account_id, today)
        books = await ledger.check_books(session)
    treasury, evn = rows["PHU-XUAN"], rows["EVN_CPC_HUE"]
    assert (treasury.kind, treasury.amount, treasury.status) == ("treasury", 70_000, "succeeded")
    assert (evn.kind, evn.amount) == ("biller", 150_000)
    lines = list(csv.DictReader(io.StringIO(treasury.file_csv)))
    assert [
        (r["procedure_code"], r["agency_code"], r["dossier_code"], r["fee_code"], r["fee_kind"], r["amount"])
        for r in lines[:-1]
    ] == [
        (PROCEDURE, "PHU-XUAN", code, "le_phi_1", "charge", "50000"),
        (PROCEDURE, "PHU-XUAN", code, "phi_tham_dinh", "fee", "20000"),
    ]
    assert lines[-1]["type"] == "total"
    assert int(lines[-1]["amount"]) == 70_000 == movement
    assert "PSF" not in evn.file_csv
    assert code not in evn.file_csv
    order = next(o for o, _r in bank.transfers.values() if o.amount == 70_000)
    assert order.account_number == treasury.account_number
    assert order.bank_bin == treasury.bank_bin
    assert books.ok
