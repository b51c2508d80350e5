"""Idempotency keys: the table, and on PostgreSQL the one-round-trip claim function.

Revision ID: 0002_idempotency
Revises: 0001_baseline
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0002_idempotency"
down_revision: str | Sequence[str] | None = "0001_baseline"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Returns one row. A stored row is returned as is (claimed = true: a replay needs no lock). Otherwise the
# function tries the transaction-scoped advisory lock of the key; without it, claimed = false (another
# transaction is running under this key: 409). With it, it looks again: in READ COMMITTED each statement of
# a VOLATILE function takes a fresh snapshot, so a row committed by the previous holder of the lock is seen.
CLAIM_FUNCTION = """
CREATE OR REPLACE FUNCTION idempotency_claim(p_scope text, p_key text, p_lock bigint)
RETURNS TABLE (claimed boolean, fingerprint bytea, status_code smallint, body bytea)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN QUERY SELECT true, k.fingerprint, k.status_code, k.body
        FROM idempotency_keys AS k WHERE k.scope = p_scope AND k.key = p_key;
    IF FOUND THEN
        RETURN;
    END IF;
    IF NOT pg_try_advisory_xact_lock(p_lock) THEN
        RETURN QUERY SELECT false, NULL::bytea, NULL::smallint, NULL::bytea;
        RETURN;
    END IF;
    RETURN QUERY SELECT true, k.fingerprint, k.status_code, k.body
        FROM idempotency_keys AS k WHERE k.scope = p_scope AND k.key = p_key;
    IF NOT FOUND THEN
        RETURN QUERY SELECT true, NULL::bytea, NULL::smallint, NULL::bytea;
    END IF;
END
$$;
"""


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(length=32), nullable=False),
        sa.Column("status_code", sa.SmallInteger(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CLAIM_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS idempotency_claim(text, text, bigint)")
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
