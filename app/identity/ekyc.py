"""Electronic identity verification (eKYC): the provider interface and the development sandbox.

The mobile app runs the provider's SDK (photo of the CCCD chip/front, a selfie with liveness) and receives a
session reference; the server asks the provider for that session's result and decides itself: the document
read must be the citizen ID the person declared, the face must match the document photo, the selfie must be
live. Only then is the account raised to identity level 2.

The sandbox provider (development and test only) answers deterministically from the reference, so the
demo and tests need no network. A sandbox reference is ``sbx-<12-digit number>-<face>``:

- the number is what the sandbox "reads" from the document (it must equal the declared CCCD);
- ``<face>`` is ``match`` (face score 0.97, live), ``mismatch`` (score 0.12, live) or ``spoof`` (score
  0.95, not live).

Anything else is an unknown session. Example: a citizen who declared ``046095001234`` verifies with
``sbx-046095001234-match``.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

__all__ = ["FACE_MATCH_THRESHOLD", "EkycProvider", "EkycResult", "SandboxEkyc", "judge"]

FACE_MATCH_THRESHOLD = 0.80


@dataclass(frozen=True, slots=True)
class EkycResult:
    """What a provider reports about one verification session."""

    document_number: str
    face_match: float
    """Similarity of the selfie to the document photo, 0..1."""
    live: bool


class EkycProvider(ABC):
    name: str

    @abstractmethod
    async def fetch(self, reference: str) -> EkycResult | None:
        """The result of session ``reference``, or ``None`` if the provider does not know it."""


_SANDBOX = re.compile(r"^sbx-([0-9]{12})-(match|mismatch|spoof)$")


class SandboxEkyc(EkycProvider):
    name = "sandbox"

    async def fetch(self, reference: str) -> EkycResult | None:
        found = _SANDBOX.match(reference)
        if found is None:
            return None
        number, face = found.groups()
        score = {"match": 0.97, "mismatch": 0.12, "spoof": 0.95}[face]
        return EkycResult(document_number=number, face_match=score, live=face != "spoof")


def judge(result: EkycResult | None, declared_cccd: str) -> str | None:
    """Why the session does not verify the person who declared ``declared_cccd``, or ``None``."""
    if result is None:
        return "unknown_session"
    if not result.live:
        return "not_live"
    if result.document_number != declared_cccd:
        return "document_mismatch"
    if result.face_match < FACE_MATCH_THRESHOLD:
        return "face_mismatch"
    return None
