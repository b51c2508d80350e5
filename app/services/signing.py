"""Signatures of dossier results: each agency signs with its own Ed25519 key.

The key of agency ``A`` under ring key id ``k`` is derived from the ring's secret ``k`` for the purpose
``result:{A}:ed25519`` (:mod:`app.core.signing`), so every agency has its own key pair, a rotation of the ring
(a new key id in front) gives every agency a new key, and a key can be revoked for one agency alone
(``result_key_revocations``). The signed content is the document's SHA-256 plus its metadata (dossier code,
procedure, holder, issuing agency, date): a changed byte changes the hash, a changed field changes the
content, and either breaks the signature.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from app.core import signing
from app.core.settings import KeyRing

__all__ = ["Verdict", "purpose", "result_content", "sign_result", "verify_result"]

HUE = ZoneInfo("Asia/Ho_Chi_Minh")
Verdict = Literal["valid", "document_changed", "signature_invalid", "key_revoked", "unknown_key"]


def purpose(agency_code: str) -> str:
    """The HKDF purpose of ``agency_code``'s result-signing key."""
    return f"result:{agency_code}:ed25519"


def result_content(
    *,
    result_id: str,
    sha256: str,
    dossier_code: str,
    procedure_code: str,
    procedure_name: str,
    holder: str,
    agency_code: str,
    agency_name: str,
    issued_at: datetime,
) -> dict[str, Any]:
    """What a result's signature covers (plain JSON types)."""
    return {
        "version": 1,
        "result_id": result_id,
        "sha256": sha256,
        "dossier_code": dossier_code,
        "procedure_code": procedure_code,
        "procedure_name": procedure_name,
        "holder": holder,
        "agency_code": agency_code,
        "agency_name": agency_name,
        "issued_at": issued_at.isoformat(),
        "issued_on": issued_at.astimezone(HUE).date().isoformat(),
    }


def sign_result(ring: KeyRing, content: dict[str, Any]) -> tuple[str, str]:
    """``(key_id, signature)`` under the issuing agency's active key."""
    return signing.sign(ring, purpose(str(content["agency_code"])), content)


def public_key(ring: KeyRing, agency_code: str, key_id: str) -> str | None:
    return signing.public_key_b64(ring, purpose(agency_code), key_id)


def verify_result(
    ring: KeyRing,
    content: dict[str, Any],
    key_id: str,
    signature: str,
    *,
    revoked: bool,
    document_sha256: str | None = None,
) -> Verdict:
    """Check a result: ``document_sha256`` (of the file in hand, when given) must be the signed hash, the
    signature must hold over ``content`` under the agency's key ``key_id``, and that key must not be
    revoked."""
    if ring.get(key_id) is None:
        return "unknown_key"
    if document_sha256 is not None and document_sha256 != content.get("sha256"):
        return "document_changed"
    if not signing.verify(ring, purpose(str(content.get("agency_code"))), content, key_id, signature):
        return "signature_invalid"
    if revoked:
        return "key_revoked"
    return "valid"
