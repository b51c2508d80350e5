"""The ledger on SQLite: every write is one hop to the connection's thread.

aiosqlite runs each statement in the connection's own thread, and each hop costs about as much as the
statement. Here a whole posting (read the accounts, check, insert the entry and its postings, update the
balances) is one plain ``sqlite3`` function run in that thread, inside the caller's ``BEGIN IMMEDIATE``
transaction: the database's single writer lock is what makes the check-then-write safe, so there are no
row locks and no deltas (every account's row is updated directly).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import note_raw_call
from app.wallet.errors import LedgerError
from app.wallet.ledger.base import Balance, Entry, LedgerBackend, Posted, Refusal

__all__ = ["SqliteLedger", "run_in_connection_thread"]

T = TypeVar("T")


def _ts(moment: datetime) -> str:
    """The text SQLAlchemy stores for a UTC ``DateTime`` on SQLite."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


async def run_in_connection_thread(
    session: AsyncSession, fn: Callable[..., T], *args: Any, write: bool = True
) -> T:
    """Run ``fn(sqlite3_connection, *args)`` in the session's connection thread, in its transaction.

    Refuses a write outside a ``BEGIN IMMEDIATE`` transaction (``Database.transaction()``): a deferred
    transaction that reads and then writes can fail with ``database is locked`` under concurrency.
    """
    note_raw_call()
    connection = await session.connection()
    options = connection.sync_connection.get_execution_options() if connection.sync_connection else {}
    if write and options.get("sqlite_begin") != "IMMEDIATE":
        raise LedgerError("ledger writes on SQLite need a write transaction (Database.transaction())")
    raw = await connection.get_raw_connection()
    driver = cast(Any, raw.driver_connection)
    return cast(T, await driver._execute(fn, driver._conn, *args))


def _post(
    conn: sqlite3.Connection,
    entry_id: str,
    entry: Entry,
    hold_id: str | None,
    now: datetime,
) -> tuple[str, str | None, int | None]:
    accounts = [p.account_id.hex for p in entry.postings]
    distinct = sorted(set(accounts))
    marks = ",".join("?" * len(distinct))
    rows = conn.execute(
        f"SELECT id, allow_negative, balance, held FROM ledger_accounts WHERE id IN ({marks})",  # noqa: S608
        distinct,
    ).fetchall()
    state = {r[0]: [bool(r[1]), int(r[2]), int(r[3])] for r in rows}
    if len(state) != len(distinct):
        raise LedgerError("an entry posts to an account that does not exist")
    released: dict[str, int] = {}
    if hold_id is not None:
        hold = conn.execute("SELECT account_id, amount, status FROM ledger_holds WHERE id = ?", (hold_id,))
        found = hold.fetchone()
        if found is None:
            return ("hold_not_found", None, None)
        if found[0] not in state:
            raise LedgerError("the captured hold's account is not in the entry")
        if found[2] != "active":
            return ("hold_not_active", found[0], None)
        released[found[0]] = int(found[1])
    net: dict[str, int] = {}
    for account, posting in zip(accounts, entry.postings, strict=True):
        net[account] = net.get(account, 0) + posting.amount
    for account in distinct:
        allow_negative, balance, held = state[account]
        available = balance - held + released.get(account, 0)
        if not allow_negative and available + net[account] < 0:
            return ("insufficient_funds", account, available)
    stamp = _ts(now)
    conn.execute(
        "INSERT INTO ledger_entries (id, created_at, kind, reference, description, metadata, reverses_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            entry_id,
            stamp,
            entry.kind,
            entry.reference,
            entry.description,
            msgspec.json.encode(entry.metadata).decode(),
            entry.reverses_id.hex if entry.reverses_id else None,
        ),
    )
    lines = []
    for account, posting in zip(accounts, entry.postings, strict=True):
        current = state[account]
        current[1] += posting.amount
        lines.append((entry_id, account, posting.amount, None if current[0] else current[1], stamp))
    conn.executemany(
        "INSERT INTO ledger_postings (entry_id, account_id, amount, balance_after, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        lines,
    )
    conn.executemany(
        "UPDATE ledger_accounts SET balance = balance + ?, held = held - ? WHERE id = ?",
        [(net[a], released.get(a, 0), a) for a in distinct if net[a] or released.get(a)],
    )
    if hold_id is not None:
        conn.execute(
            "UPDATE ledger_holds SET status = 'captured', entry_id = ?, resolved_at = ? WHERE id = ?",
            (entry_id, stamp, hold_id),
        )
    debited = next((a for a in distinct if net[a] < 0 and not state[a][0]), None)
    if debited is None:
        return ("ok", None, None)
    return ("ok", debited, state[debited][1] - state[debited][2] + released.get(debited, 0))


def _hold(
    conn: sqlite3.Connection,
    hold_id: str,
    account: str,
    amount: int,
    kind: str,
    reference: str | None,
    expires_at: datetime | None,
    now: datetime,
) -> tuple[str, int, int]:
    if amount <= 0:
        raise LedgerError("a hold is a positive amount")
    row = conn.execute(
        "SELECT allow_negative, balance, held FROM ledger_accounts WHERE id = ?", (account,)
    ).fetchone()
    if row is None:
        raise LedgerError("a hold on an account that does not exist")
    if row[0]:
        raise LedgerError("holds apply only to accounts that may not go negative")
    balance, held = int(row[1]), int(row[2])
    if balance - held < amount:
        return ("insufficient_funds", balance, held)
    conn.execute("UPDATE ledger_accounts SET held = held + ? WHERE id = ?", (amount, account))
    conn.execute(
        "INSERT INTO ledger_holds (id, created_at, account_id, amount, status, kind, reference, expires_at) "
        "VALUES (?, ?, ?, ?, 'active', ?, ?, ?)",
        (hold_id, _ts(now), account, amount, kind, reference, _ts(expires_at) if expires_at else None),
    )
    return ("ok", balance, held + amount)


def _release(conn: sqlite3.Connection, hold_id: str, now: datetime) -> tuple[str, str | None, int, int]:
    row = conn.execute(
        "SELECT account_id, amount, status FROM ledger_holds WHERE id = ?", (hold_id,)
    ).fetchone()
    if row is None:
        return ("hold_not_found", None, 0, 0)
    account, amount, status = row
    if status != "active":
        return ("hold_not_active", account, 0, 0)
    conn.execute("UPDATE ledger_accounts SET held = held - ? WHERE id = ?", (amount, account))
    conn.execute(
        "UPDATE ledger_holds SET status = 'released', resolved_at = ? WHERE id = ?", (_ts(now), hold_id)
    )
    balance, held = conn.execute(
        "SELECT balance, held FROM ledger_accounts WHERE id = ?", (account,)
    ).fetchone()
    return ("ok", account, int(balance), int(held))


def _post_counted(
    conn: sqlite3.Connection,
    user_id: str,
    buckets: Sequence[str],
    usage: int,
    entry_id: str,
    entry: Entry,
    now: datetime,
) -> tuple[tuple[str, str | None, int | None], list[int]]:
    totals = [
        int(
            conn.execute(
                "INSERT INTO wallet_usage (user_id, bucket, amount) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id, bucket) DO UPDATE SET amount = amount + excluded.amount "
                "RETURNING amount",
                (user_id, bucket, usage),
            ).fetchone()[0]
        )
        for bucket in buckets
    ]
    return _post(conn, entry_id, entry, None, now), totals


class SqliteLedger(LedgerBackend):
    async def post_counted(
        self,
        session: AsyncSession,
        entry: Entry,
        entry_id: uuid.UUID,
        user_id: uuid.UUID,
        buckets: Sequence[str],
        usage: int,
    ) -> tuple[Posted | Refusal, dict[str, int]]:
        now = datetime.now(UTC)
        (status, account, available), totals = await run_in_connection_thread(
            session, _post_counted, user_id.hex, list(buckets), usage, entry_id.hex, entry, now
        )
        counted = dict(zip(buckets, totals, strict=True))
        account_id = uuid.UUID(account) if account else None
        if status != "ok":
            return Refusal(status, account_id, available), counted
        return Posted(entry_id, now, account_id, available), counted

    async def post(
        self, session: AsyncSession, entry: Entry, entry_id: uuid.UUID, capture_hold: uuid.UUID | None
    ) -> Posted | Refusal:
        now = datetime.now(UTC)
        status, account, available = await run_in_connection_thread(
            session, _post, entry_id.hex, entry, capture_hold.hex if capture_hold else None, now
        )
        account_id = uuid.UUID(account) if account else None
        if status != "ok":
            return Refusal(status, account_id, available)
        return Posted(entry_id, now, account_id, available)

    async def hold(
        self,
        session: AsyncSession,
        hold_id: uuid.UUID,
        account_id: uuid.UUID,
        amount: int,
        kind: str,
        reference: str | None,
        expires_at: datetime | None,
    ) -> Balance | Refusal:
        status, balance, held = await run_in_connection_thread(
            session,
            _hold,
            hold_id.hex,
            account_id.hex,
            amount,
            kind,
            reference,
            expires_at,
            datetime.now(UTC),
        )
        if status != "ok":
            return Refusal(status, account_id, balance - held)
        return Balance(account_id, balance, held)

    async def release(self, session: AsyncSession, hold_id: uuid.UUID) -> Balance | Refusal:
        status, account, balance, held = await run_in_connection_thread(
            session, _release, hold_id.hex, datetime.now(UTC)
        )
        account_id = uuid.UUID(account) if account else None
        if status != "ok":
            return Refusal(status, account_id, None)
        assert account_id is not None
        return Balance(account_id, balance, held)

    async def fold_deltas(self, session: AsyncSession, limit: int) -> int:
        # Every SQLite posting updates its accounts' rows directly (one writer at a time): nothing to fold.
        return 0
