"""A money request's writes in ONE call on PostgreSQL: ``wallet_transfer`` (a transfer between wallets) and
``merchant_pay`` (a payment by QR) each claim the idempotency key, count the usage and post the entry
(``wallet_pay``), refuse over a limit or the balance, and write the rest of the request (the notification,
or the payment, order, webhook event and outbox message) and the idempotency row with the response, all in
the call's own transaction.

Why: with BEGIN, three statements and COMMIT sent one by one from Python, a wallet row stayed locked across
round trips and event-loop turns of a busy API process (the one-receiver bench fell to ~150 transfers/s at
64 clients), and each round trip cost both processes CPU; in one call the lock lasts as long as the SQL. The
decisions stay in Python (``app/wallet/transfer_pg.py``, ``app/merchants/pay_pg.py``): it passes the caps
that apply, and on a refusal reads the totals from the error to name the limit exactly as the ORM path
does. SQLite: nothing (it keeps the ORM path).

Revision ID: 0018_money_calls
Revises: 0015_money_functions
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0018_money_calls"
down_revision: str | Sequence[str] | None = "0015_money_functions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The key's advisory lock (409 while another transaction holds it) and a second look for a stored answer
# (a request with the key may have committed since the caller's first read). outcome: new / in_progress /
# replay (with the stored answer).
MONEY_CLAIM = r"""
CREATE FUNCTION money_claim(p_scope text, p_key text, p_lock bigint,
    OUT outcome text, OUT status_code smallint, OUT fingerprint bytea, OUT body bytea)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
BEGIN
    IF NOT pg_try_advisory_xact_lock(p_lock) THEN
        outcome := 'in_progress';
        RETURN;
    END IF;
    SELECT k.status_code, k.fingerprint, k.body INTO status_code, fingerprint, body
      FROM idempotency_keys AS k WHERE k.scope = p_scope AND k.key = p_key;
    outcome := CASE WHEN FOUND THEN 'replay' ELSE 'new' END;
END
$fn$;
"""

# ``wallet_pay`` with the refusals raised (the whole call rolls back), under their own SQLSTATEs:
#   HU001 a limit: DETAIL = the buckets' totals after counting, comma-separated, in p_buckets order;
#   HU002 the balance: DETAIL = the wallet's available balance.
WALLET_PAY_CAPPED = r"""
CREATE FUNCTION wallet_pay_capped(
    p_user_id uuid, p_buckets text[], p_caps bigint[], p_amount_cap bigint, p_usage bigint,
    p_entry_id uuid, p_kind text, p_reference text, p_description text, p_metadata text,
    p_accounts uuid[], p_amounts bigint[],
    OUT posted_at timestamptz, OUT available bigint)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    v_status text;
    v_totals bigint[];
BEGIN
    SELECT w.status, w.available, w.posted_at, w.totals INTO v_status, available, posted_at, v_totals
      FROM wallet_pay(p_user_id, p_buckets, p_usage, p_entry_id, p_kind, p_reference, p_description,
                      p_metadata, p_accounts, p_amounts) AS w;
    IF (p_amount_cap IS NOT NULL AND p_usage > p_amount_cap) OR EXISTS (
        SELECT 1 FROM unnest(v_totals, p_caps) AS t(total, cap) WHERE t.cap IS NOT NULL AND t.total > t.cap
    ) THEN
        RAISE EXCEPTION 'limit' USING ERRCODE = 'HU001', DETAIL = array_to_string(v_totals, ',');
    END IF;
    IF v_status <> 'ok' THEN
        RAISE EXCEPTION '%', v_status USING ERRCODE = 'HU002', DETAIL = coalesce(available::text, '');
    END IF;
END
$fn$;
"""

# The posting's time as msgspec writes a UTC datetime (no fraction when it is zero), put where the caller's
# JSON holds the stand-in "0001-01-01T00:00:00.000001Z" (see app/wallet/payer_pg.py: POSTED_AT).
JSON_AT = r"""
CREATE FUNCTION json_at(p_json text, p_at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT replace(p_json, '"0001-01-01T00:00:00.000001Z"',
                   '"' || to_char(p_at AT TIME ZONE 'UTC',
                                  CASE WHEN extract(microseconds FROM p_at)::bigint % 1000000 = 0
                                       THEN 'YYYY-MM-DD"T"HH24:MI:SS"Z"'
                                       ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END) || '"')
$fn$;
"""

# The response body comes as Python encoded it, with the posting's time (json_at) and the payer's available
# balance put in place: p_body = [before the balance, after it].
WALLET_TRANSFER = r"""
CREATE FUNCTION wallet_transfer(
    p_scope text, p_key text, p_lock bigint, p_fingerprint bytea,
    p_user_id uuid, p_buckets text[], p_caps bigint[], p_amount_cap bigint, p_usage bigint,
    p_entry_id uuid, p_reference text, p_description text, p_metadata text,
    p_accounts uuid[], p_amounts bigint[],
    p_notice_id uuid, p_recipient uuid, p_kind text, p_title_vi text, p_body_vi text, p_title_en text,
    p_body_en text, p_data text, p_body text[],
    OUT outcome text, OUT posted_at timestamptz, OUT status_code smallint, OUT fingerprint bytea,
    OUT body bytea)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    v_available bigint;
BEGIN
    SELECT c.outcome, c.status_code, c.fingerprint, c.body INTO outcome, status_code, fingerprint, body
      FROM money_claim(p_scope, p_key, p_lock) AS c;
    IF outcome <> 'new' THEN
        RETURN;
    END IF;
    SELECT w.posted_at, w.available INTO posted_at, v_available
      FROM wallet_pay_capped(p_user_id, p_buckets, p_caps, p_amount_cap, p_usage, p_entry_id, 'transfer',
                             p_reference, p_description, p_metadata, p_accounts, p_amounts) AS w;
    INSERT INTO inbox_notifications
           (id, created_at, user_id, kind, title_vi, body_vi, title_en, body_en, data)
    VALUES (p_notice_id, posted_at, p_recipient, p_kind, p_title_vi, p_body_vi, p_title_en, p_body_en,
            p_data::json);
    body := convert_to(json_at(p_body[1] || v_available::text || p_body[2], posted_at), 'UTF8');
    status_code := 201;
    fingerprint := p_fingerprint;
    INSERT INTO idempotency_keys (scope, key, fingerprint, status_code, body, created_at)
    VALUES (p_scope, p_key, p_fingerprint, 201, body, posted_at);
    outcome := 'ok';
END
$fn$;
"""

# A dynamic QR's order is locked here and must still be open (HU003, DETAIL = its status): the caller read
# it before, unlocked, to check it the way the ORM path does. p_body and p_event carry the stand-in time.
MERCHANT_PAY = r"""
CREATE FUNCTION merchant_pay(
    p_scope text, p_key text, p_lock bigint, p_fingerprint bytea,
    p_user_id uuid, p_buckets text[], p_caps bigint[], p_amount_cap bigint, p_usage bigint,
    p_entry_id uuid, p_reference text, p_description text, p_metadata text,
    p_accounts uuid[], p_amounts bigint[],
    p_payment_id uuid, p_merchant_id uuid, p_store_id uuid, p_order_id uuid, p_amount bigint, p_fee bigint,
    p_event_id uuid, p_event_at timestamptz, p_event_type text, p_event text, p_event_status text,
    p_m_id uuid[], p_m_created_at timestamptz[], p_m_topic text[], p_m_key text[], p_m_payload text[],
    p_m_status text[], p_m_available_at timestamptz[], p_m_attempts int[], p_m_round_attempts int[],
    p_m_requeue_count int[],
    p_body text,
    OUT outcome text, OUT posted_at timestamptz, OUT status_code smallint, OUT fingerprint bytea,
    OUT body bytea, OUT event text)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    v_order_status text;
BEGIN
    SELECT c.outcome, c.status_code, c.fingerprint, c.body INTO outcome, status_code, fingerprint, body
      FROM money_claim(p_scope, p_key, p_lock) AS c;
    IF outcome <> 'new' THEN
        RETURN;
    END IF;
    IF p_order_id IS NOT NULL THEN
        SELECT o.status INTO v_order_status FROM merchant_orders AS o WHERE o.id = p_order_id FOR UPDATE;
        IF v_order_status IS DISTINCT FROM 'open' THEN
            RAISE EXCEPTION 'order_not_payable' USING ERRCODE = 'HU003', DETAIL = coalesce(v_order_status, '');
        END IF;
    END IF;
    SELECT w.posted_at INTO posted_at
      FROM wallet_pay_capped(p_user_id, p_buckets, p_caps, p_amount_cap, p_usage, p_entry_id,
                             'merchant_payment', p_reference, p_description, p_metadata, p_accounts,
                             p_amounts) AS w;
    INSERT INTO merchant_payments
           (id, created_at, merchant_id, store_id, order_id, payer_id, reference, amount, fee, refunded,
            status, entry_id, paid_at)
    VALUES (p_payment_id, posted_at, p_merchant_id, p_store_id, p_order_id, p_user_id, p_reference,
            p_amount, p_fee, 0, 'paid', p_entry_id, posted_at);
    IF p_order_id IS NOT NULL THEN
        UPDATE merchant_orders SET status = 'paid', payment_id = p_payment_id, paid_at = posted_at
         WHERE id = p_order_id;
    END IF;
    event := json_at(p_event, posted_at);
    INSERT INTO merchant_webhook_events (id, created_at, merchant_id, type, payload, status, attempts, resends)
    VALUES (p_event_id, p_event_at, p_merchant_id, p_event_type, event::jsonb, p_event_status, 0, 0);
    INSERT INTO outbox_messages
           (id, created_at, topic, key, payload, status, available_at, attempts, round_attempts,
            requeue_count)
    SELECT m.id, m.created_at, m.topic, m.key, m.payload::jsonb, m.status, m.available_at, m.attempts,
           m.round_attempts, m.requeue_count
      FROM unnest(p_m_id, p_m_created_at, p_m_topic, p_m_key, p_m_payload, p_m_status, p_m_available_at,
                  p_m_attempts, p_m_round_attempts, p_m_requeue_count)
           AS m(id, created_at, topic, key, payload, status, available_at, attempts, round_attempts,
                requeue_count)
    ON CONFLICT (topic, key) DO NOTHING;
    body := convert_to(json_at(p_body, posted_at), 'UTF8');
    status_code := 201;
    fingerprint := p_fingerprint;
    INSERT INTO idempotency_keys (scope, key, fingerprint, status_code, body, created_at)
    VALUES (p_scope, p_key, p_fingerprint, 201, body, posted_at);
    outcome := 'ok';
END
$fn$;
"""

FUNCTIONS = (
    (MONEY_CLAIM, "money_claim(text, text, bigint)"),
    (
        WALLET_PAY_CAPPED,
        "wallet_pay_capped(uuid, text[], bigint[], bigint, bigint, uuid, text, text, text, text, uuid[], "
        "bigint[])",
    ),
    (JSON_AT, "json_at(text, timestamptz)"),
    (
        WALLET_TRANSFER,
        "wallet_transfer(text, text, bigint, bytea, uuid, text[], bigint[], bigint, bigint, uuid, text, text, "
        "text, uuid[], bigint[], uuid, uuid, text, text, text, text, text, text, text[])",
    ),
    (
        MERCHANT_PAY,
        "merchant_pay(text, text, bigint, bytea, uuid, text[], bigint[], bigint, bigint, uuid, text, text, "
        "text, uuid[], bigint[], uuid, uuid, uuid, uuid, bigint, bigint, uuid, timestamptz, text, text, text, "
        "uuid[], timestamptz[], text[], text[], text[], text[], timestamptz[], int[], int[], int[], text)",
    ),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for definition, _signature in FUNCTIONS:
            op.execute(definition)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for _definition, signature in reversed(FUNCTIONS):
            op.execute(f"DROP FUNCTION IF EXISTS {signature}")
