"""``on_commit``: effects that must wait for durable data run after the commit, and never after a rollback."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.core.db import Database, database_of, on_commit
from app.core.settings import Settings


async def test_callbacks_run_after_commit_only(settings: Settings) -> None:
    db = Database(settings)
    ran: list[str] = []
    try:
        async with db.transaction() as session:
            assert database_of(session) is db

            async def first() -> None:
                ran.append("first")

            async def broken() -> None:
                raise RuntimeError("push service down")

            async def last() -> None:
                ran.append("last")

            for callback in (first, broken, last):
                on_commit(session, callback)
            await session.execute(text("SELECT 1"))
            assert ran == [], "nothing runs before the commit"
        assert ran == ["first", "last"], "a failing callback neither stops the others nor undoes the commit"

        async def refused() -> None:
            async with db.transaction() as session:

                async def never() -> None:
                    ran.append("never")

                on_commit(session, never)
                raise ValueError("rolled back")

        with pytest.raises(ValueError):
            await refused()
        assert ran == ["first", "last"]
    finally:
        await db.dispose()
