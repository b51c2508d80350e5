"""Field encryption and keyed hashes over a :class:`~app.core.settings.KeyRing`.

- :func:`seal` / :func:`unseal`: AES-256-GCM with a key derived (HKDF-SHA256) from the ring's active key for
  one ``purpose``; the key id is returned so it is stored beside the ciphertext and old rows stay readable
  after a rotation. ``aad`` binds a ciphertext to its row (copied onto another row, it does not decrypt).
- :func:`blind_index` / :func:`blind_indexes`: a keyed HMAC of a value, for equality lookup and uniqueness of
  encrypted values without decrypting; :func:`blind_indexes` gives the hash under every key of the ring, so a
  lookup still finds rows written before a rotation.
- :func:`keyed_digest`: HMAC-SHA256 under a derived subkey, for secrets with little entropy (PINs, one-time
  codes): without the key, which lives outside the database, a leaked digest cannot be brute-forced.

Each purpose gets its own derived subkey, so one secret never serves two uses.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.core.settings import KeyRing

__all__ = ["CryptoError", "blind_index", "blind_indexes", "keyed_digest", "seal", "subkey", "unseal"]

_NONCE_BYTES = 12
_cache: dict[tuple[bytes, str], bytes] = {}


class CryptoError(ValueError):
    """A ciphertext cannot be opened: unknown key id, or altered/foreign data."""


def subkey(secret: bytes, purpose: str) -> bytes:
    """A 32-byte key for ``purpose`` derived from ``secret`` (HKDF-SHA256; cached per process)."""
    cache_key = (secret, purpose)
    derived = _cache.get(cache_key)
    if derived is None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=f"hue:{purpose}".encode()
        ).derive(secret)
        _cache[cache_key] = derived
    return derived


def seal(ring: KeyRing, purpose: str, plaintext: bytes, aad: bytes = b"") -> tuple[str, bytes]:
    """Encrypt ``plaintext`` under the active key; returns ``(key_id, nonce || ciphertext || tag)``."""
    key = subkey(ring.active_key, f"{purpose}:aes-gcm")
    nonce = os.urandom(_NONCE_BYTES)
    return ring.active_kid, nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(ring: KeyRing, purpose: str, key_id: str, blob: bytes, aad: bytes = b"") -> bytes:
    """Decrypt what :func:`seal` produced, or raise :class:`CryptoError`."""
    secret = ring.get(key_id)
    if secret is None:
        raise CryptoError(f"key id {key_id!r} is not in {ring.name}")
    key = subkey(secret, f"{purpose}:aes-gcm")
    try:
        return AESGCM(key).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], aad)
    except Exception as exc:
        raise CryptoError("ciphertext does not open with its key") from exc


def _index(secret: bytes, purpose: str, value: bytes) -> str:
    return hmac.new(subkey(secret, f"{purpose}:index"), value, hashlib.sha256).hexdigest()


def blind_index(ring: KeyRing, purpose: str, value: bytes) -> str:
    """The lookup hash of ``value`` under the active key (64 hex characters)."""
    return _index(ring.active_key, purpose, value)


def blind_indexes(ring: KeyRing, purpose: str, value: bytes) -> list[str]:
    """The lookup hash of ``value`` under every key of the ring (active first)."""
    return [_index(secret, purpose, value) for _, secret in ring.keys]


def keyed_digest(secret: bytes, purpose: str, *parts: bytes) -> bytes:
    """HMAC-SHA256 over the length-prefixed ``parts`` under the subkey for ``purpose``."""
    mac = hmac.new(subkey(secret, f"{purpose}:mac"), digestmod=hashlib.sha256)
    for part in parts:
        mac.update(len(part).to_bytes(4, "big"))
        mac.update(part)
    return mac.digest()
