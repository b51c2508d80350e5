"""A wallet transfer's writes in ONE call on PostgreSQL: ``wallet_transfer`` claims the idempotency key,
counts the usage and posts the entry (``wallet_pay``), refuses over a limit or the balance, writes the
recipient's notification and the idempotency row with the response, all in the call's own transaction.

Why: with BEGIN, three statements and COMMIT sent one by one from Python, the receiver's wallet row stayed
locked across round trips and event-loop turns of a busy API process (the one-receiver bench fell to ~150
transfers/s at 64 clients); in one call the lock lasts as long as the SQL. The decisions stay in Python
(``app/wallet/transfer_pg.py``): it passes the caps that apply, and on a refusal reads the totals from the
error to name the limit exactly as the ORM path does. SQLite: nothing (it keeps the ORM path).

Revision ID: 0018_wallet_transfer
Revises: 0015_money_functions
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0018_wallet_transfer"
down_revision: str | Sequence[str] | None = "0015_money_functions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Refusals are raised (the whole call rolls back) with their own SQLSTATEs:
#   HU001 a limit: DETAIL = the buckets' totals after counting, comma-separated, in p_buckets order;
#   HU002 the balance: DETAIL = the wallet's available balance.
# The response body is stored and returned as Python encoded it, with the posting's time and the payer's
# available balance put in their two places (p_body = [head, middle, tail]), byte for byte what msgspec writes.
WALLET_TRANSFER = r"""
CREATE FUNCTION wallet_transfer(
    p_scope text, p_key text, p_lock bigint, p_fingerprint bytea,
    p_user_id uuid, p_buckets text[], p_caps bigint[], p_amount_cap bigint, p_usage bigint,
    p_entry_id uuid, p_reference text, p_description text, p_metadata text,
    p_accounts uuid[], p_amounts bigint[],
    p_notice_id uuid, p_recipient uuid, p_kind text, p_title_vi text, p_body_vi text, p_title_en text,
    p_body_en text, p_data text, p_body text[],
    OUT outcome text, OUT posted_at timestamptz, OUT available bigint, OUT status_code smallint,
    OUT fingerprint bytea, OUT body bytea)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    v_status text;
    v_totals bigint[];
    v_stamp text;
BEGIN
    IF NOT pg_try_advisory_xact_lock(p_lock) THEN
        outcome := 'in_progress';
        RETURN;
    END IF;
    SELECT k.status_code, k.fingerprint, k.body INTO status_code, fingerprint, body
      FROM idempotency_keys AS k WHERE k.scope = p_scope AND k.key = p_key;
    IF FOUND THEN
        outcome := 'replay';
        RETURN;
    END IF;
    SELECT w.status, w.available, w.posted_at, w.totals INTO v_status, available, posted_at, v_totals
      FROM wallet_pay(p_user_id, p_buckets, p_usage, p_entry_id, 'transfer', p_reference, p_description,
                      p_metadata, p_accounts, p_amounts) AS w;
    IF (p_amount_cap IS NOT NULL AND p_usage > p_amount_cap) OR EXISTS (
        SELECT 1 FROM unnest(v_totals, p_caps) AS t(total, cap) WHERE t.cap IS NOT NULL AND t.total > t.cap
    ) THEN
        RAISE EXCEPTION 'limit' USING ERRCODE = 'HU001', DETAIL = array_to_string(v_totals, ',');
    END IF;
    IF v_status <> 'ok' THEN
        RAISE EXCEPTION '%', v_status USING ERRCODE = 'HU002', DETAIL = coalesce(available::text, '');
    END IF;
    INSERT INTO inbox_notifications
           (id, created_at, user_id, kind, title_vi, body_vi, title_en, body_en, data)
    VALUES (p_notice_id, posted_at, p_recipient, p_kind, p_title_vi, p_body_vi, p_title_en, p_body_en,
            p_data::json);
    v_stamp := to_char(posted_at AT TIME ZONE 'UTC',
                       CASE WHEN extract(microseconds FROM posted_at)::bigint % 1000000 = 0
                            THEN 'YYYY-MM-DD"T"HH24:MI:SS"Z"' ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END);
    body := convert_to(p_body[1] || v_stamp || p_body[2] || available::text || p_body[3], 'UTF8');
    status_code := 201;
    fingerprint := p_fingerprint;
    INSERT INTO idempotency_keys (scope, key, fingerprint, status_code, body, created_at)
    VALUES (p_scope, p_key, p_fingerprint, 201, body, posted_at);
    outcome := 'ok';
END
$fn$;
"""

SIGNATURE = (
    "wallet_transfer(text, text, bigint, bytea, uuid, text[], bigint[], bigint, bigint, uuid, text, text, "
    "text, uuid[], bigint[], uuid, uuid, text, text, text, text, text, text, text[])"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(WALLET_TRANSFER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
