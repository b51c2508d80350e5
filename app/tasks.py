"""Imports every module's outbox delivery handlers and scheduled jobs, so that the worker (``hue worker``,
or the API process in embedded mode) sees them all. A module that registers handlers or jobs at import
adds its import here, in dependency order."""

from __future__ import annotations

from app.bills import autopay as bill_autopay  # noqa: F401
from app.bills import confirmations as bill_confirmations  # noqa: F401
from app.complaints import service as complaints_service  # noqa: F401
from app.core import housekeeping  # noqa: F401
from app.merchants import settlement as merchant_settlement  # noqa: F401
from app.merchants import webhooks as merchant_webhooks  # noqa: F401
from app.services import postal as services_postal  # noqa: F401
from app.settlement import jobs as settlement_jobs  # noqa: F401
from app.wallet import jobs as wallet_jobs  # noqa: F401
from app.wallet import topup as wallet_topup  # noqa: F401
from app.wallet import withdrawals as wallet_withdrawals  # noqa: F401

__all__: list[str] = []
