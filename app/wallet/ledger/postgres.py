"""The ledger on PostgreSQL: every write is one round trip.

Each write calls a PL/pgSQL function created by the ``0006_ledger`` migration (``ledger_post``,
``ledger_hold``, ``ledger_release``) on the asyncpg connection under the caller's SQLAlchemy session, so it
joins the session's transaction. asyncpg prepares each statement once per connection and keeps it (its
statement cache), so a posting costs one Bind/Execute round trip and ~0.1 ms of Python, instead of the
seven round trips and ~2 ms of an ORM transfer.

Inside ``ledger_post``: the accounts that may not go negative (wallets) are locked in id order
(``FOR UPDATE``, so two opposite transfers cannot deadlock), checked (balance - held + change >= 0) and
updated; accounts that may go negative (receive-only payables, system accounts) are never locked: their
change is appended to ``ledger_balance_deltas`` and folded into their row later by :meth:`fold_deltas`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import msgspec
from asyncpg.exceptions import ForeignKeyViolationError, InvalidParameterValueError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import note_raw_call
from app.wallet.errors import LedgerError
from app.wallet.ledger.base import Balance, Entry, LedgerBackend, Posted, Refusal

__all__ = ["WALLET_PAY", "PostgresLedger", "asyncpg_connection"]

_POST = (
    "SELECT status, account_id, available, posted_at "
    "FROM ledger_post($1, $2, $3, $4, $5, $6::uuid[], $7::bigint[], $8, $9)"
)
WALLET_PAY = (
    "SELECT status, account_id, available, posted_at, totals "
    "FROM wallet_pay($1, $2::text[], $3, $4, $5, $6, $7, $8, $9::uuid[], $10::bigint[])"
)
_HOLD = "SELECT status, balance, held FROM ledger_hold($1, $2, $3, $4, $5, $6)"
_RELEASE = "SELECT status, account_id, balance, held FROM ledger_release($1)"
_FOLD = """
WITH moved AS (
    DELETE FROM ledger_balance_deltas
     WHERE id IN (SELECT id FROM ledger_balance_deltas ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
 RETURNING account_id, amount
), sums AS (
    SELECT account_id, sum(amount) AS total, count(*) AS n FROM moved GROUP BY account_id
), applied AS (
    UPDATE ledger_accounts a SET balance = a.balance + s.total FROM sums s WHERE a.id = s.account_id
 RETURNING s.n
)
SELECT coalesce(sum(n), 0)::bigint FROM applied
"""


async def asyncpg_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under ``session``, inside the session's (started) transaction.

    SQLAlchemy's asyncpg adapter sends BEGIN lazily, at its first statement; a statement sent straight to
    the driver before that would run outside the transaction (and SQLAlchemy's COMMIT would then do
    nothing), so the adapter's transaction is started here first.
    """
    note_raw_call()
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    adapted = cast(Any, raw.dbapi_connection)
    if adapted._transaction is None and not adapted.autocommit:
        await adapted._start_transaction()
    return raw.driver_connection


class PostgresLedger(LedgerBackend):
    async def post(
        self, session: AsyncSession, entry: Entry, entry_id: uuid.UUID, capture_hold: uuid.UUID | None
    ) -> Posted | Refusal:
        conn = await asyncpg_connection(session)
        try:
            row = await conn.fetchrow(
                _POST,
                entry_id,
                entry.kind,
                entry.reference,
                entry.description,
                msgspec.json.encode(entry.metadata).decode() if entry.metadata else "{}",
                [p.account_id for p in entry.postings],
                [p.amount for p in entry.postings],
                capture_hold,
                entry.reverses_id,
            )
        except ForeignKeyViolationError as exc:
            raise LedgerError("an entry posts to an account that does not exist") from exc
        except InvalidParameterValueError as exc:
            raise LedgerError(str(exc)) from exc
        status, account_id, available, posted_at = row
        if status != "ok":
            return Refusal(status, account_id, available)
        return Posted(entry_id, cast(datetime, posted_at), account_id, available)

    async def post_counted(
        self,
        session: AsyncSession,
        entry: Entry,
        entry_id: uuid.UUID,
        user_id: uuid.UUID,
        buckets: Sequence[str],
        usage: int,
    ) -> tuple[Posted | Refusal, dict[str, int]]:
        conn = await asyncpg_connection(session)
        try:
            row = await conn.fetchrow(
                WALLET_PAY,
                user_id,
                list(buckets),
                usage,
                entry_id,
                entry.kind,
                entry.reference,
                entry.description,
                msgspec.json.encode(entry.metadata).decode() if entry.metadata else "{}",
                [p.account_id for p in entry.postings],
                [p.amount for p in entry.postings],
            )
        except ForeignKeyViolationError as exc:
            raise LedgerError("an entry posts to an account that does not exist") from exc
        except InvalidParameterValueError as exc:
            raise LedgerError(str(exc)) from exc
        status, account_id, available, posted_at, totals = row
        counted = dict(zip(buckets, (int(t) for t in totals), strict=True))
        if status != "ok":
            return Refusal(status, account_id, available), counted
        return Posted(entry_id, cast(datetime, posted_at), account_id, available), counted

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
        conn = await asyncpg_connection(session)
        try:
            status, balance, held = await conn.fetchrow(
                _HOLD, hold_id, account_id, amount, kind, reference, expires_at
            )
        except InvalidParameterValueError as exc:
            raise LedgerError(str(exc)) from exc
        if status != "ok":
            return Refusal(status, account_id, balance - held)
        return Balance(account_id, balance=balance, held=held)

    async def release(self, session: AsyncSession, hold_id: uuid.UUID) -> Balance | Refusal:
        conn = await asyncpg_connection(session)
        status, account_id, balance, held = await conn.fetchrow(_RELEASE, hold_id)
        if status != "ok":
            return Refusal(status, account_id, None)
        return Balance(account_id, balance=balance, held=held)

    async def fold_deltas(self, session: AsyncSession, limit: int) -> int:
        conn = await asyncpg_connection(session)
        return int(await conn.fetchval(_FOLD, limit))
