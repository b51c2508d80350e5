"""Money paths in fewer round trips: on PostgreSQL, ``wallet_pay`` counts a payment against the payer's limits
(the ``wallet_usage`` upsert) and posts its journal entry (``ledger_post``) in ONE call. SQLite: nothing
(its sibling is one sqlite3 function run in the connection's thread, ``app/wallet/ledger/sqlite.py``).

Revision ID: 0015_money_functions
Revises: 0013_merchants (main's head when main was merged into perf; first written on 0011_dossiers)
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015_money_functions"
down_revision: str | Sequence[str] | None = "0017_reconciliation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The usage rows are upserted in bucket order (the payer's rows: the first lock a payment takes), then the
# entry is posted (wallet rows in id order): the same lock order as the two statements it replaces. The
# limits themselves are checked by the caller on the returned totals (in ``p_buckets`` order); a refusal
# raises there and rolls the whole transaction back, usage and entry together.
WALLET_PAY = r"""
CREATE FUNCTION wallet_pay(
    p_user_id uuid, p_buckets text[], p_usage bigint,
    p_entry_id uuid, p_kind text, p_reference text, p_description text, p_metadata text,
    p_accounts uuid[], p_amounts bigint[],
    OUT status text, OUT account_id uuid, OUT available bigint, OUT posted_at timestamptz,
    OUT totals bigint[])
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
BEGIN
    WITH up AS (
        INSERT INTO wallet_usage AS u (user_id, bucket, amount)
        SELECT p_user_id, b.bucket, p_usage FROM unnest(p_buckets) AS b(bucket) ORDER BY b.bucket
        ON CONFLICT (user_id, bucket) DO UPDATE SET amount = u.amount + EXCLUDED.amount
        RETURNING u.bucket, u.amount
    )
    SELECT array_agg(up.amount ORDER BY array_position(p_buckets, up.bucket)) INTO totals FROM up;
    SELECT l.status, l.account_id, l.available, l.posted_at
      INTO status, account_id, available, posted_at
      FROM ledger_post(p_entry_id, p_kind, p_reference, p_description, p_metadata, p_accounts, p_amounts,
                       NULL, NULL) AS l;
END
$fn$;
"""

FUNCTIONS = ("wallet_pay(uuid, text[], bigint, uuid, text, text, text, text, uuid[], bigint[])",)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(WALLET_PAY)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for signature in FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {signature}")
