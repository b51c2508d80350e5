"""In-process domain events, handled inside the publisher's transaction.

A module announces what happened (``await publish(session, BillsPaid(...))``) without importing the modules
that care; those subscribe at import time (``@subscribe(BillsPaid)``). Handlers run in the publisher's
session, before its commit, so the announcement and every reaction commit or roll back together — what
DESIGN.md asks of "paying a dossier's fee moves the dossier on". Anything that must leave the process goes
to the outbox from the handler, never directly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["Handler", "publish", "subscribe", "subscribers"]

E = TypeVar("E")
Handler = Callable[[AsyncSession, Any], Awaitable[None]]

_handlers: dict[type, list[Handler]] = defaultdict(list)


def subscribe(event_type: type[E]) -> Callable[[Callable[[AsyncSession, E], Awaitable[None]]], Any]:
    """Register the decorated coroutine to run, in the publisher's transaction, for every ``event_type``."""

    def register(handler: Callable[[AsyncSession, E], Awaitable[None]]) -> Any:
        if handler not in _handlers[event_type]:
            _handlers[event_type].append(handler)
        return handler

    return register


def subscribers(event_type: type) -> list[Handler]:
    return list(_handlers.get(event_type, ()))


async def publish(session: AsyncSession, event: object) -> None:
    """Run every subscriber of ``type(event)`` now, in ``session``'s transaction; an exception in one
    aborts the publisher's whole unit of work."""
    for handler in _handlers.get(type(event), ()):
        await handler(session, event)
