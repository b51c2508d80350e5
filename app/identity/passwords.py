"""Passwords: argon2id (argon2-cffi), run off the event loop.

Parameters follow the OWASP minimum for argon2id (19 MiB, 2 passes, 1 lane): about 25-40 ms per hash on the
2-core reference machine. The ``test`` environment uses a tiny memory cost so the suite stays fast; hashes
carry their own parameters, so a hash made under other parameters still verifies and is upgraded on the
next successful sign-in.
"""

from __future__ import annotations

import asyncio
import contextlib
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.core.settings import Settings

__all__ = ["MAX_LENGTH", "MIN_LENGTH", "check_strength", "hash_password", "verify_password"]

MIN_LENGTH = 8
MAX_LENGTH = 128


@lru_cache(maxsize=2)
def _hasher(cheap: bool) -> PasswordHasher:
    if cheap:
        return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def _for(settings: Settings) -> PasswordHasher:
    return _hasher(settings.environment == "test")


@lru_cache(maxsize=2)
def _dummy_hash(cheap: bool) -> str:
    return _hasher(cheap).hash("not a password of anyone")


def check_strength(password: str) -> str | None:
    """Why ``password`` is refused, or ``None``: 8 to 128 characters, not only digits, not one repeated
    character."""
    if len(password) < MIN_LENGTH:
        return f"at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"at most {MAX_LENGTH} characters"
    if password.isdigit():
        return "not only digits"
    if len(set(password)) < 4:
        return "at least 4 different characters"
    return None


async def hash_password(settings: Settings, password: str) -> str:
    return await asyncio.to_thread(_for(settings).hash, password)


async def verify_password(settings: Settings, stored: str | None, password: str) -> tuple[bool, str | None]:
    """Whether ``password`` matches ``stored``, and a new hash when the stored one should be upgraded.

    With no stored hash the work is done anyway against a dummy, so the answer takes the same time whether
    the account exists or not."""
    hasher = _for(settings)

    def check() -> tuple[bool, str | None]:
        if stored is None:
            with contextlib.suppress(VerificationError, InvalidHashError):
                hasher.verify(_dummy_hash(settings.environment == "test"), password)
            return False, None
        try:
            hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False, None
        return True, hasher.hash(password) if hasher.check_needs_rehash(stored) else None

    return await asyncio.to_thread(check)
