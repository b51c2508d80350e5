"""Shared helpers of the bills tests: tokens, the Huế billers, an HTTP biller played by respx."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import msgspec
import pytest
from litestar import Litestar

from app.bills import service
from app.bills.demo import demo_data
from app.bills.gateway import BillerGateway
from app.bills.schemas import BillerIn, CustomerInput, HttpConnector, SettlementAccount
from app.core.db import Database
from app.core.security import Caller, issue_access_token
from app.core.settings import Settings
from tests.factories import auto_idempotency_keys

HTTP_BILLER_URL = "https://billing.vnpt-hue.test/api"
SANDBOX_TODAY = date(2025, 6, 20)
"""The day the sandbox billers are asked on, so their bills are known in advance."""


@pytest.fixture(autouse=True)
def _tokens_without_identity_sessions(tokens_without_sessions: None) -> None:
    """Every bills test signs callers in with tokens of its own making (see tests/conftest.py)."""


@pytest.fixture(autouse=True)
def _fresh_idempotency_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each state-changing request without an Idempotency-Key gets a fresh one (a new operation): these
    tests are about bills; the payment route's keys are set explicitly where they matter."""
    auto_idempotency_keys(monkeypatch)


def headers_for(
    settings: Settings,
    user_id: uuid.UUID | None = None,
    *,
    roles: tuple[str, ...] = ("citizen",),
    duties: tuple[str, ...] = (),
    level: int = 2,
) -> dict[str, str]:
    caller = Caller(
        user_id=user_id or uuid.uuid4(),
        session_id=uuid.uuid4(),
        roles=frozenset(roles),
        duties=frozenset(duties),
        identity_level=level,
    )
    token, _ = issue_access_token(settings, caller)
    return {"Authorization": f"Bearer {token}"}


class Citizen:
    """A signed-in citizen: an id and the headers of their requests."""

    def __init__(self, settings: Settings) -> None:
        self.id = uuid.uuid4()
        self.headers = headers_for(settings, self.id)


def batch_biller() -> BillerIn:
    return BillerIn(
        name="Phí vệ sinh phường Phú Hội (file tháng)",
        category="sanitation_fee",
        presentment="batch",
        amount_rule="exact",
        customer_input=CustomerInput(
            label_vi="Mã hộ",
            label_en="Household code",
            pattern=r"^VS[0-9]{8}$",
            min_length=10,
            max_length=10,
            example="VS24051987",
        ),
        settlement=SettlementAccount(bank_bin="970418", account_number="5510000000009", account_name="HEPCO"),
    )


def http_biller() -> BillerIn:
    return BillerIn(
        name="VNPT Huế",
        category="telecom",
        presentment="fetch",
        amount_rule="at_least",
        customer_input=CustomerInput(
            label_vi="Số thuê bao",
            label_en="Subscriber number",
            pattern=r"^HUE[0-9]{6}$",
            min_length=9,
            max_length=9,
            example="HUE123456",
        ),
        settlement=SettlementAccount(
            bank_bin="970415", account_number="1160000000010", account_name="VNPT HUE"
        ),
        connector=HttpConnector(
            base_url=HTTP_BILLER_URL,
            auth_header="X-Api-Key",
            auth_secret="VNPT_HUE",
            timeout_seconds=0.5,
            retries=2,
            backoff_seconds=0,
        ),
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    """The test's own connection to the app's database (the test client runs the app in another loop)."""
    database = Database(settings)
    yield database
    await database.dispose()


@pytest.fixture
async def billers(app: Litestar, db: Database) -> dict[str, Any]:
    """The four Huế sandbox billers, a batch biller and an HTTP biller; the sandboxes answer for
    :data:`SANDBOX_TODAY` and the HTTP biller's key is ``secret-key``."""
    declared: dict[str, Any] = {}
    for code, declaration in demo_data()["billers"].items():
        declared[code], _ = await service.put_biller(
            db, code, msgspec.convert(declaration, BillerIn), production=False
        )
    declared["HEPCO_BATCH"], _ = await service.put_biller(db, "HEPCO_BATCH", batch_biller(), production=False)
    declared["VNPT_HUE"], _ = await service.put_biller(db, "VNPT_HUE", http_biller(), production=False)
    gateway = BillerGateway(
        allow_sandbox=True, secrets={"VNPT_HUE": "secret-key"}, today=lambda: SANDBOX_TODAY
    )
    previous = app.state.biller_gateway
    app.state.biller_gateway = gateway
    yield declared
    app.state.biller_gateway = previous
    await gateway.aclose()
