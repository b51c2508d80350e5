"""Wallet: the limit table (seeded) and per-customer usage counters.

Revision ID: 0009_wallet
Revises: 0004_identity
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_wallet"
down_revision: str | Sequence[str] | None = "0004_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MILLION = 1_000_000
LIMITS = [
    # (identity level, category, per transaction, per day, per month) in đồng; None = no limit.
    # Level 2 only: below it no money moves (DOMAIN.md).
    (2, "*", 50 * MILLION, 100 * MILLION, None),
    (2, "transfer", 50 * MILLION, 100 * MILLION, None),
    # Circular 40/2024 Art. 26: 100,000,000 đồng per customer per month, payments and transfers, exempt
    # categories not counted.
    (2, "_monthly_cap", None, None, 100 * MILLION),
    # The first 24 hours of a new device.
    (2, "_new_device", 5 * MILLION, 10 * MILLION, None),
]


def upgrade() -> None:
    limits = op.create_table(
        "wallet_limits",
        sa.Column("identity_level", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("per_transaction", sa.BigInteger(), nullable=True),
        sa.Column("per_day", sa.BigInteger(), nullable=True),
        sa.Column("per_month", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("identity_level", "category", name=op.f("pk_wallet_limits")),
    )
    op.create_table(
        "wallet_usage",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("bucket", sa.String(length=48), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "bucket", name=op.f("pk_wallet_usage")),
    )
    op.bulk_insert(
        limits,
        [
            {"identity_level": lv, "category": c, "per_transaction": t, "per_day": d, "per_month": m}
            for lv, c, t, d, m in LIMITS
        ],
    )


def downgrade() -> None:
    op.drop_table("wallet_usage")
    op.drop_table("wallet_limits")
