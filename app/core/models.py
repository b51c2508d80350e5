"""Tables owned by core. Each platform mechanism (idempotency, outbox, jobs, audit) adds its own here."""

from __future__ import annotations

__all__: list[str] = []
