"""Identity tests: until the shared stores are merged, apps get test-only in-process stores."""

from __future__ import annotations

import pytest
from litestar import Litestar

from app.core.settings import Settings
from app.identity.runtime import runtime_of
from tests.identity.memory_stores import MemoryCounters, memory_stores


@pytest.fixture
def app(settings: Settings) -> Litestar:
    from app.main import create_app

    application = create_app(settings)
    runtime = runtime_of(application.state.db)
    if runtime.stores is None:
        runtime.stores = memory_stores()
    if runtime.fallback_counters is None:
        runtime.fallback_counters = MemoryCounters()
    return application
