"""Imports every module's tables so that ``Base.metadata`` (and Alembic) sees the whole schema."""

from __future__ import annotations

from app.bills import autopay_models  # noqa: F401
from app.bills import models as bills_models  # noqa: F401
from app.complaints import models as complaints_models  # noqa: F401
from app.core import audit_models  # noqa: F401
from app.core import models as core_models  # noqa: F401
from app.identity import inbox_models  # noqa: F401
from app.identity import models as identity_models  # noqa: F401
from app.merchants import models as merchants_models  # noqa: F401
from app.services import (
    dossier_models,  # noqa: F401
    result_models,  # noqa: F401
)
from app.services import models as services_models  # noqa: F401
from app.settlement import models as settlement_models  # noqa: F401
from app.wallet import (
    funding_models,  # noqa: F401
    payout_holds,  # noqa: F401
)
from app.wallet import models as wallet_models  # noqa: F401

__all__: list[str] = []
