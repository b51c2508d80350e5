"""Money in and out: funding sources, card top-ups, withdrawals, processed gateway webhook events.

Revision ID: 0012_funding
Revises: 0011_dossiers
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0012_funding"
down_revision: str | Sequence[str] | None = "0014_results"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wallet_funding_sources",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("fingerprint", sa.String(length=100), nullable=False),
        sa.Column("payment_method", sa.String(length=100), nullable=True),
        sa.Column("brand", sa.String(length=32), nullable=True),
        sa.Column("last4", sa.String(length=4), nullable=True),
        sa.Column("funding", sa.String(length=16), nullable=True),
        sa.Column("bank_bin", sa.String(length=6), nullable=True),
        sa.Column("account_number", sa.String(length=34), nullable=True),
        sa.Column("account_name", sa.String(length=100), nullable=True),
        sa.Column("holder_verified_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('card', 'bank_account')", name=op.f("ck_wallet_funding_sources_kind")),
        sa.CheckConstraint("status IN ('active', 'removed')", name=op.f("ck_wallet_funding_sources_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_funding_sources")),
        sa.UniqueConstraint("user_id", "fingerprint", name="uq_wallet_funding_sources_user_fingerprint"),
    )
    with op.batch_alter_table("wallet_funding_sources", schema=None) as batch_op:
        batch_op.create_index("ix_wallet_funding_sources_user_id_status", ["user_id", "status"], unique=False)

    op.create_table(
        "wallet_gateway_events",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("intent_id", sa.String(length=100), nullable=True),
        sa.Column("received_at", DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_gateway_events")),
    )
    op.create_table(
        "wallet_topups",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("intent_id", sa.String(length=100), nullable=True),
        sa.Column("next_action_url", sa.String(length=500), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("fee", sa.BigInteger(), nullable=True),
        sa.Column("net", sa.BigInteger(), nullable=True),
        sa.Column("balance_transaction_id", sa.String(length=100), nullable=True),
        sa.Column("charge_id", sa.String(length=100), nullable=True),
        sa.Column("entry_id", sa.Uuid(), nullable=True),
        sa.Column("credited_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("checked_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'requires_action', 'succeeded', 'failed')",
            name=op.f("ck_wallet_topups_status"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_wallet_topups_amount_positive")),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["ledger_entries.id"], name=op.f("fk_wallet_topups_entry_id_ledger_entries")
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["wallet_funding_sources.id"],
            name=op.f("fk_wallet_topups_source_id_wallet_funding_sources"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_topups")),
        sa.UniqueConstraint("entry_id", name=op.f("uq_wallet_topups_entry_id")),
        sa.UniqueConstraint("intent_id", name=op.f("uq_wallet_topups_intent_id")),
    )
    with op.batch_alter_table("wallet_topups", schema=None) as batch_op:
        batch_op.create_index("ix_wallet_topups_status_created_at", ["status", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_wallet_topups_user_id"), ["user_id"], unique=False)

    op.create_table(
        "wallet_withdrawals",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("hold_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("bank_reference", sa.String(length=64), nullable=True),
        sa.Column("failure_reason", sa.String(length=64), nullable=True),
        sa.Column("entry_id", sa.Uuid(), nullable=True),
        sa.Column("resolved_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('requested', 'unknown', 'pending', 'succeeded', 'failed')",
            name=op.f("ck_wallet_withdrawals_status"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_wallet_withdrawals_amount_positive")),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["ledger_entries.id"], name=op.f("fk_wallet_withdrawals_entry_id_ledger_entries")
        ),
        sa.ForeignKeyConstraint(
            ["hold_id"], ["ledger_holds.id"], name=op.f("fk_wallet_withdrawals_hold_id_ledger_holds")
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["wallet_funding_sources.id"],
            name=op.f("fk_wallet_withdrawals_source_id_wallet_funding_sources"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_withdrawals")),
        sa.UniqueConstraint("entry_id", name=op.f("uq_wallet_withdrawals_entry_id")),
        sa.UniqueConstraint("reference", name=op.f("uq_wallet_withdrawals_reference")),
    )
    with op.batch_alter_table("wallet_withdrawals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_wallet_withdrawals_status_created_at", ["status", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_wallet_withdrawals_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("wallet_withdrawals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wallet_withdrawals_user_id"))
        batch_op.drop_index("ix_wallet_withdrawals_status_created_at")

    op.drop_table("wallet_withdrawals")
    with op.batch_alter_table("wallet_topups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wallet_topups_user_id"))
        batch_op.drop_index("ix_wallet_topups_status_created_at")

    op.drop_table("wallet_topups")
    op.drop_table("wallet_gateway_events")
    with op.batch_alter_table("wallet_funding_sources", schema=None) as batch_op:
        batch_op.drop_index("ix_wallet_funding_sources_user_id_status")

    op.drop_table("wallet_funding_sources")
