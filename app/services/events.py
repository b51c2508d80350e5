"""What the dossier module announces to the rest of the app (see :mod:`app.core.events`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

__all__ = ["ResultIssued"]


@dataclass(frozen=True, slots=True)
class ResultIssued:
    """An officer approved a dossier with its result document; published in the approval's transaction,
    after the dossier row holds ``result_document_id`` (subscribers may replace it, e.g. by a signed copy)."""

    dossier_id: uuid.UUID
    document_id: uuid.UUID
    officer_id: uuid.UUID
    at: datetime
