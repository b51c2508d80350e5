"""Bills: the biller registry, presented bills, saved customer codes.

Revision ID: 0008_bills
Revises: 0003_outbox_jobs
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008_bills"
down_revision: str | Sequence[str] | None = "0005_audit_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONData = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "billers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("presentment", sa.String(16), nullable=False),
        sa.Column("amount_rule", sa.String(16), nullable=False),
        sa.Column("customer_input", JSONData, nullable=False),
        sa.Column("limit_exempt", sa.Boolean(), nullable=False),
        sa.Column("settlement_bank_bin", sa.String(6), nullable=False),
        sa.Column("settlement_account_number", sa.String(32), nullable=False),
        sa.Column("settlement_account_name", sa.String(200), nullable=False),
        sa.Column("connector", JSONData, nullable=True),
        sa.Column("payable_account_ref", sa.String(64), nullable=False),
        sa.Column("agency_code", sa.String(32), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billers")),
        sa.UniqueConstraint("code", name=op.f("uq_billers_code")),
    )
    op.create_table(
        "bills",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("biller_id", sa.Uuid(), nullable=False),
        sa.Column("customer_code", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(64), nullable=False),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("customer_name", sa.String(200), nullable=True),
        sa.Column("description", sa.String(300), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("owner_user_id", sa.Uuid(), nullable=True),
        sa.Column("paid_at", DateTimeUTC(timezone=True), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_bills_amount_positive")),
        sa.CheckConstraint(
            "status IN ('unpaid', 'pending', 'paid', 'cancelled', 'refunded', 'expired')",
            name=op.f("ck_bills_status_known"),
        ),
        sa.ForeignKeyConstraint(["biller_id"], ["billers.id"], name=op.f("fk_bills_biller_id_billers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bills")),
        sa.UniqueConstraint("biller_id", "external_id", name="uq_bills_biller_external_id"),
    )
    op.create_index("ix_bills_biller_customer", "bills", ["biller_id", "customer_code"])
    op.create_index(
        "ix_bills_owner_user_id",
        "bills",
        ["owner_user_id"],
        postgresql_where=sa.text("owner_user_id IS NOT NULL"),
        sqlite_where=sa.text("owner_user_id IS NOT NULL"),
    )
    op.create_table(
        "saved_customer_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("biller_id", sa.Uuid(), nullable=False),
        sa.Column("customer_code", sa.String(32), nullable=False),
        sa.Column("nickname", sa.String(60), nullable=False),
        sa.ForeignKeyConstraint(
            ["biller_id"], ["billers.id"], name=op.f("fk_saved_customer_codes_biller_id_billers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_customer_codes")),
        sa.UniqueConstraint(
            "user_id", "biller_id", "customer_code", name="uq_saved_customer_codes_user_code"
        ),
    )


def downgrade() -> None:
    op.drop_table("saved_customer_codes")
    op.drop_index("ix_bills_owner_user_id", table_name="bills")
    op.drop_index("ix_bills_biller_customer", table_name="bills")
    op.drop_table("bills")
    op.drop_table("billers")
