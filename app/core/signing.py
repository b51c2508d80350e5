"""Ed25519 signatures over canonical JSON, with keys derived from a :class:`~app.core.settings.KeyRing`.

One helper for every signed artefact (e-receipts, dossier results): the private key of ``(ring key id,
purpose)`` is HKDF-SHA256 of the ring's secret for ``purpose`` (:func:`app.core.crypto.subkey`), so one
ring can serve several purposes (e.g. one key per agency: ``result:{agency}:ed25519``) without two uses
ever sharing a key, the ring's key id is the signature's key id, and old signatures stay verifiable after a
rotation while the old secret stays in the ring. Signatures and public keys are base64url without padding.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from app.core.crypto import subkey
from app.core.settings import KeyRing

__all__ = ["b64", "canonical", "public_key_b64", "sign", "unb64", "verify"]


@lru_cache(maxsize=256)
def _private_key(secret: bytes, purpose: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(subkey(secret, purpose))


def _public_key(ring: KeyRing, purpose: str, key_id: str) -> Ed25519PublicKey | None:
    secret = ring.get(key_id)
    return None if secret is None else _private_key(secret, purpose).public_key()


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def canonical(content: dict[str, Any]) -> bytes:
    """The signed bytes: JSON with sorted keys, UTF-8, no spaces."""
    return msgspec.json.encode(content, order="sorted")


def public_key_b64(ring: KeyRing, purpose: str, key_id: str) -> str | None:
    """The raw 32-byte Ed25519 public key of ``key_id`` for ``purpose``, base64url (no padding)."""
    key = _public_key(ring, purpose, key_id)
    if key is None:
        return None
    return b64(key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def sign(
    ring: KeyRing, purpose: str, content: dict[str, Any], *, key_id: str | None = None
) -> tuple[str, str]:
    """``(key_id, signature)`` of ``content`` under ``key_id`` (default: the ring's active key)."""
    kid = key_id or ring.active_kid
    secret = ring.get(kid)
    if secret is None:
        raise KeyError(f"key id {kid!r} is not in {ring.name}")
    return kid, b64(_private_key(secret, purpose).sign(canonical(content)))


def verify(ring: KeyRing, purpose: str, content: dict[str, Any], key_id: str, signature: str) -> bool:
    key = _public_key(ring, purpose, key_id)
    if key is None:
        return False
    try:
        key.verify(unb64(signature), canonical(content))
    except (InvalidSignature, ValueError):
        return False
    return True
