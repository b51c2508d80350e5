"""Imports every module's outbox delivery handlers and scheduled jobs, so that the worker (``hue worker``,
or the API process in embedded mode) sees them all. A module that registers handlers or jobs at import
adds its import here, in dependency order."""

from __future__ import annotations

from app.admin import reconciliation as admin_reconciliation  # noqa: F401
from app.bills import confirmations as bill_confirmations  # noqa: F401
from app.core import housekeeping  # noqa: F401
from app.wallet import jobs as wallet_jobs  # noqa: F401

__all__: list[str] = []
