"""Ledger: accounts, journal entries, postings, balance deltas, holds; the system accounts; on PostgreSQL the
one-round-trip posting functions.

Revision ID: 0006_ledger
Revises: 0001_baseline
Create Date: 2026-11-23
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006_ledger"
down_revision: str | Sequence[str] | None = "0008_bills"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = DateTimeUTC(timezone=True)

SYSTEM_ACCOUNTS_CREATED = datetime(2026, 1, 1, tzinfo=UTC)
SYSTEM_ACCOUNTS = [
    # (fixed id, type, normal side)
    ("00000000-0000-7000-8000-000000000001", "guarantee_bank", "debit"),
    ("00000000-0000-7000-8000-000000000002", "gateway_clearing", "debit"),
    ("00000000-0000-7000-8000-000000000003", "gateway_fees", "debit"),
    ("00000000-0000-7000-8000-000000000004", "fee_revenue", "credit"),
    ("00000000-0000-7000-8000-000000000005", "suspense", "credit"),
]

# ---------------------------------------------------------------------------------------------------------
# PostgreSQL: each write of the ledger as one function, so a posting is one round trip.
# Lock order, everywhere: wallet rows (accounts that may not go negative) in id order, then the hold row.
# Accounts that may go negative are never locked: their change goes to ledger_balance_deltas.
# ---------------------------------------------------------------------------------------------------------
LEDGER_POST = r"""
CREATE FUNCTION ledger_post(
    p_entry_id uuid, p_kind text, p_reference text, p_description text, p_metadata text,
    p_accounts uuid[], p_amounts bigint[], p_hold_id uuid, p_reverses_id uuid,
    OUT status text, OUT account_id uuid, OUT available bigint, OUT posted_at timestamptz)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    n int := coalesce(cardinality(p_accounts), 0);
    v_now timestamptz := now();
    v_total bigint := 0;
    v_locked uuid[];
    v_bal bigint[];
    v_held bigint[];
    v_net bigint[];
    v_after bigint[] := '{}';
    v_delta_acc uuid[] := '{}';
    v_delta_amt bigint[] := '{}';
    v_hold_account uuid;
    v_hold_amount bigint;
    v_hold_status text;
    m int;
    i int;
    j int;
    k int;
BEGIN
    IF n < 2 OR n IS DISTINCT FROM cardinality(p_amounts) THEN
        RAISE EXCEPTION 'ledger_post: an entry needs two or more postings' USING ERRCODE = '22023';
    END IF;
    FOR i IN 1..n LOOP
        IF p_accounts[i] IS NULL OR p_amounts[i] IS NULL OR p_amounts[i] = 0 THEN
            RAISE EXCEPTION 'ledger_post: postings need an account and a non-zero amount' USING ERRCODE = '22023';
        END IF;
        v_total := v_total + p_amounts[i];
    END LOOP;
    IF v_total <> 0 THEN
        RAISE EXCEPTION 'ledger_post: postings must sum to zero' USING ERRCODE = '22023';
    END IF;

    IF p_hold_id IS NOT NULL THEN
        SELECT h.account_id INTO v_hold_account FROM ledger_holds h WHERE h.id = p_hold_id;
        IF NOT FOUND THEN
            status := 'hold_not_found';
            RETURN;
        END IF;
    END IF;

    SELECT array_agg(s.id ORDER BY s.id), array_agg(s.balance ORDER BY s.id), array_agg(s.held ORDER BY s.id)
      INTO v_locked, v_bal, v_held
      FROM (SELECT a.id, a.balance, a.held FROM ledger_accounts a
             WHERE a.id = ANY (p_accounts) AND NOT a.allow_negative
             ORDER BY a.id FOR UPDATE) s;
    m := coalesce(cardinality(v_locked), 0);
    IF m > 0 THEN
        v_net := array_fill(0::bigint, ARRAY[m]);
    END IF;

    FOR i IN 1..n LOOP
        j := array_position(v_locked, p_accounts[i]);
        IF j IS NULL THEN
            v_after := array_append(v_after, NULL::bigint);
            k := array_position(v_delta_acc, p_accounts[i]);
            IF k IS NULL THEN
                v_delta_acc := array_append(v_delta_acc, p_accounts[i]);
                v_delta_amt := array_append(v_delta_amt, p_amounts[i]);
            ELSE
                v_delta_amt[k] := v_delta_amt[k] + p_amounts[i];
            END IF;
        ELSE
            v_net[j] := v_net[j] + p_amounts[i];
            v_after := array_append(v_after, v_bal[j] + v_net[j]);
        END IF;
    END LOOP;

    IF p_hold_id IS NOT NULL THEN
        j := array_position(v_locked, v_hold_account);
        IF j IS NULL THEN
            RAISE EXCEPTION 'ledger_post: the captured hold''s account is not in the entry' USING ERRCODE = '22023';
        END IF;
        SELECT h.status, h.amount INTO v_hold_status, v_hold_amount
          FROM ledger_holds h WHERE h.id = p_hold_id FOR UPDATE;
        IF v_hold_status <> 'active' THEN
            status := 'hold_not_active';
            account_id := v_hold_account;
            RETURN;
        END IF;
        v_held[j] := v_held[j] - v_hold_amount;
    END IF;

    FOR j IN 1..m LOOP
        IF v_bal[j] + v_net[j] < v_held[j] THEN
            status := 'insufficient_funds';
            account_id := v_locked[j];
            available := v_bal[j] - v_held[j];
            RETURN;
        END IF;
    END LOOP;

    INSERT INTO ledger_entries (id, created_at, kind, reference, description, metadata, reverses_id)
    VALUES (p_entry_id, v_now, p_kind, p_reference, coalesce(p_description, ''),
            coalesce(p_metadata, '{}')::jsonb, p_reverses_id);

    FOR j IN 1..m LOOP
        IF v_net[j] <> 0 OR v_locked[j] = v_hold_account THEN
            UPDATE ledger_accounts a SET balance = v_bal[j] + v_net[j], held = v_held[j] WHERE a.id = v_locked[j];
        END IF;
    END LOOP;

    INSERT INTO ledger_postings (entry_id, account_id, amount, balance_after, created_at)
    SELECT p_entry_id, u.acc, u.amt, u.bal, v_now
      FROM unnest(p_accounts, p_amounts, v_after) WITH ORDINALITY AS u(acc, amt, bal, ord)
     ORDER BY u.ord;

    IF cardinality(v_delta_acc) > 0 THEN
        INSERT INTO ledger_balance_deltas (account_id, amount)
        SELECT u.acc, u.amt FROM unnest(v_delta_acc, v_delta_amt) AS u(acc, amt) WHERE u.amt <> 0;
    END IF;

    IF p_hold_id IS NOT NULL THEN
        UPDATE ledger_holds h SET status = 'captured', entry_id = p_entry_id, resolved_at = v_now
         WHERE h.id = p_hold_id;
    END IF;

    status := 'ok';
    posted_at := v_now;
    FOR j IN 1..m LOOP
        IF v_net[j] < 0 THEN
            account_id := v_locked[j];
            available := v_bal[j] + v_net[j] - v_held[j];
            EXIT;
        END IF;
    END LOOP;
END
$fn$;
"""

LEDGER_HOLD = r"""
CREATE FUNCTION ledger_hold(
    p_hold_id uuid, p_account uuid, p_amount bigint, p_kind text, p_reference text, p_expires_at timestamptz,
    OUT status text, OUT balance bigint, OUT held bigint)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    v_negative boolean;
BEGIN
    IF p_amount IS NULL OR p_amount <= 0 THEN
        RAISE EXCEPTION 'ledger_hold: a hold is a positive amount' USING ERRCODE = '22023';
    END IF;
    SELECT a.allow_negative, a.balance, a.held INTO v_negative, balance, held
      FROM ledger_accounts a WHERE a.id = p_account FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'ledger_hold: no such account' USING ERRCODE = '22023';
    END IF;
    IF v_negative THEN
        RAISE EXCEPTION 'ledger_hold: holds apply only to accounts that may not go negative'
            USING ERRCODE = '22023';
    END IF;
    IF balance - held < p_amount THEN
        status := 'insufficient_funds';
        RETURN;
    END IF;
    held := held + p_amount;
    UPDATE ledger_accounts a SET held = ledger_hold.held WHERE a.id = p_account;
    INSERT INTO ledger_holds (id, created_at, account_id, amount, status, kind, reference, expires_at)
    VALUES (p_hold_id, now(), p_account, p_amount, 'active', p_kind, p_reference, p_expires_at);
    status := 'ok';
END
$fn$;
"""

LEDGER_RELEASE = r"""
CREATE FUNCTION ledger_release(
    p_hold_id uuid, OUT status text, OUT account_id uuid, OUT balance bigint, OUT held bigint)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    v_status text;
    v_amount bigint;
BEGIN
    SELECT h.account_id INTO account_id FROM ledger_holds h WHERE h.id = p_hold_id;
    IF NOT FOUND THEN
        status := 'hold_not_found';
        RETURN;
    END IF;
    -- Same lock order as a posting: the wallet first, then the hold.
    SELECT a.balance, a.held INTO balance, held FROM ledger_accounts a WHERE a.id = account_id FOR UPDATE;
    SELECT h.status, h.amount INTO v_status, v_amount FROM ledger_holds h WHERE h.id = p_hold_id FOR UPDATE;
    IF v_status <> 'active' THEN
        status := 'hold_not_active';
        balance := NULL;
        held := NULL;
        RETURN;
    END IF;
    held := held - v_amount;
    UPDATE ledger_accounts a SET held = ledger_release.held WHERE a.id = account_id;
    UPDATE ledger_holds h SET status = 'released', resolved_at = now() WHERE h.id = p_hold_id;
    status := 'ok';
END
$fn$;
"""

FUNCTIONS = (
    "ledger_post(uuid, text, text, text, text, uuid[], bigint[], uuid, uuid)",
    "ledger_hold(uuid, uuid, bigint, text, text, timestamptz)",
    "ledger_release(uuid)",
)


def upgrade() -> None:
    accounts = op.create_table(
        "ledger_accounts",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("normal_side", sa.String(length=6), nullable=False),
        sa.Column("allow_negative", sa.Boolean(), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("held", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("allow_negative OR balance >= held", name=op.f("ck_ledger_accounts_covered")),
        sa.CheckConstraint("held >= 0", name=op.f("ck_ledger_accounts_held_not_negative")),
        sa.CheckConstraint("normal_side IN ('debit', 'credit')", name=op.f("ck_ledger_accounts_normal_side")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint("key", name=op.f("uq_ledger_accounts_key")),
    )
    op.create_index(op.f("ix_ledger_accounts_owner_id"), "ledger_accounts", ["owner_id"], unique=False)

    op.create_table(
        "ledger_entries",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("metadata", _Json, nullable=False),
        sa.Column("reverses_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["reverses_id"], ["ledger_entries.id"], name=op.f("fk_ledger_entries_reverses_id_ledger_entries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_ledger_entries_reverses_id")),
    )
    op.create_index(op.f("ix_ledger_entries_reference"), "ledger_entries", ["reference"], unique=False)

    op.create_table(
        "ledger_postings",
        sa.Column("id", _BigId, autoincrement=True, nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_ledger_postings_nonzero")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ledger_accounts.id"], name=op.f("fk_ledger_postings_account_id_ledger_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["ledger_entries.id"], name=op.f("fk_ledger_postings_entry_id_ledger_entries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_postings")),
    )
    op.create_index("ix_ledger_postings_account_id_id", "ledger_postings", ["account_id", "id"], unique=False)
    op.create_index(op.f("ix_ledger_postings_entry_id"), "ledger_postings", ["entry_id"], unique=False)

    op.create_table(
        "ledger_balance_deltas",
        sa.Column("id", _BigId, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_balance_deltas_account_id_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_balance_deltas")),
    )
    op.create_index(
        op.f("ix_ledger_balance_deltas_account_id"), "ledger_balance_deltas", ["account_id"], unique=False
    )

    op.create_table(
        "ledger_holds",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=True),
        sa.Column("expires_at", _TS, nullable=True),
        sa.Column("entry_id", sa.Uuid(), nullable=True),
        sa.Column("resolved_at", _TS, nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_ledger_holds_positive")),
        sa.CheckConstraint(
            "status IN ('active', 'captured', 'released')", name=op.f("ck_ledger_holds_status")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ledger_accounts.id"], name=op.f("fk_ledger_holds_account_id_ledger_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["ledger_entries.id"], name=op.f("fk_ledger_holds_entry_id_ledger_entries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_holds")),
    )
    op.create_index(op.f("ix_ledger_holds_account_id"), "ledger_holds", ["account_id"], unique=False)
    op.create_index(
        "ix_ledger_holds_status_expires_at", "ledger_holds", ["status", "expires_at"], unique=False
    )

    op.bulk_insert(
        accounts,
        [
            {
                "id": uuid.UUID(account_id),
                "created_at": SYSTEM_ACCOUNTS_CREATED,
                "key": kind,
                "type": kind,
                "owner_id": None,
                "currency": "VND",
                "normal_side": side,
                "allow_negative": True,
                "balance": 0,
                "held": 0,
            }
            for account_id, kind, side in SYSTEM_ACCOUNTS
        ],
    )

    if op.get_bind().dialect.name == "postgresql":
        # Room on each page for HOT updates of balances (no index covers balance or held).
        op.execute("ALTER TABLE ledger_accounts SET (fillfactor = 70)")
        for ddl in (LEDGER_POST, LEDGER_HOLD, LEDGER_RELEASE):
            op.execute(ddl)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for signature in FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    op.drop_index("ix_ledger_holds_status_expires_at", table_name="ledger_holds")
    op.drop_index(op.f("ix_ledger_holds_account_id"), table_name="ledger_holds")
    op.drop_table("ledger_holds")
    op.drop_index(op.f("ix_ledger_balance_deltas_account_id"), table_name="ledger_balance_deltas")
    op.drop_table("ledger_balance_deltas")
    op.drop_index(op.f("ix_ledger_postings_entry_id"), table_name="ledger_postings")
    op.drop_index("ix_ledger_postings_account_id_id", table_name="ledger_postings")
    op.drop_table("ledger_postings")
    op.drop_index(op.f("ix_ledger_entries_reference"), table_name="ledger_entries")
    op.drop_table("ledger_entries")
    op.drop_index(op.f("ix_ledger_accounts_owner_id"), table_name="ledger_accounts")
    op.drop_table("ledger_accounts")
