"""Identity tests exercise what each route does; every state-changing request gets a fresh Idempotency-Key
unless the module sets ``EXPLICIT_IDEMPOTENCY_KEYS = True`` (the key's semantics are tested there)."""

from __future__ import annotations

import pytest

from tests.factories import auto_idempotency_keys


@pytest.fixture(autouse=True)
def _fresh_idempotency_keys(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if not getattr(request.module, "EXPLICIT_IDEMPOTENCY_KEYS", False):
        auto_idempotency_keys(monkeypatch)
