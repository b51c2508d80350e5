"""Bill payments: one-tap payments, their items, e-receipts, failure records, the receipt number sequence.

Revision ID: 0010_payments
Revises: 0009_wallet
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010_payments"
down_revision: str | Sequence[str] | None = "0009_wallet"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONData = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _base() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "bill_payments",
        *_base(),
        sa.Column("payer_id", sa.Uuid(), nullable=False),
        sa.Column("reference", sa.String(40), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("paid_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint("total > 0", name=op.f("ck_bill_payments_total_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bill_payments")),
        sa.UniqueConstraint("reference", name=op.f("uq_bill_payments_reference")),
    )
    op.create_index(op.f("ix_bill_payments_payer_id"), "bill_payments", ["payer_id"])
    op.create_table(
        "bill_payment_items",
        *_base(),
        sa.Column("payment_id", sa.Uuid(), nullable=False),
        sa.Column("bill_id", sa.Uuid(), nullable=False),
        sa.Column("biller_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("payable_account_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("biller_reference", sa.String(64), nullable=True),
        sa.Column("confirmed_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("refund_reason", sa.String(64), nullable=True),
        sa.Column("refund_entry_id", sa.Uuid(), nullable=True),
        sa.Column("refunded_at", DateTimeUTC(timezone=True), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_bill_payment_items_amount_positive")),
        sa.CheckConstraint(
            "status IN ('paid', 'confirmed', 'refunded')", name=op.f("ck_bill_payment_items_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["bill_payments.id"], name=op.f("fk_bill_payment_items_payment_id_bill_payments")
        ),
        sa.ForeignKeyConstraint(["bill_id"], ["bills.id"], name=op.f("fk_bill_payment_items_bill_id_bills")),
        sa.ForeignKeyConstraint(
            ["biller_id"], ["billers.id"], name=op.f("fk_bill_payment_items_biller_id_billers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bill_payment_items")),
        sa.UniqueConstraint("payment_id", "bill_id", name="uq_bill_payment_items_payment_bill"),
    )
    op.create_index(op.f("ix_bill_payment_items_payment_id"), "bill_payment_items", ["payment_id"])
    op.create_index(op.f("ix_bill_payment_items_bill_id"), "bill_payment_items", ["bill_id"])
    op.create_table(
        "bill_receipts",
        *_base(),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("payer_id", sa.Uuid(), nullable=False),
        sa.Column("series", sa.String(16), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("content", JSONData, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["bill_payment_items.id"], name=op.f("fk_bill_receipts_item_id_bill_payment_items")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bill_receipts")),
        sa.UniqueConstraint("item_id", name=op.f("uq_bill_receipts_item_id")),
        sa.UniqueConstraint("series", "number", name="uq_bill_receipts_series_number"),
    )
    op.create_index(op.f("ix_bill_receipts_payer_id"), "bill_receipts", ["payer_id"])
    op.create_table(
        "bill_payment_attempts",
        *_base(),
        sa.Column("payer_id", sa.Uuid(), nullable=False),
        sa.Column("bill_ids", JSONData, nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=False),
        sa.Column("bill_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bill_payment_attempts")),
    )
    op.create_index(op.f("ix_bill_payment_attempts_payer_id"), "bill_payment_attempts", ["payer_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE bill_receipt_number_seq AS bigint CACHE 1")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE IF EXISTS bill_receipt_number_seq")
    op.drop_index(op.f("ix_bill_payment_attempts_payer_id"), table_name="bill_payment_attempts")
    op.drop_table("bill_payment_attempts")
    op.drop_index(op.f("ix_bill_receipts_payer_id"), table_name="bill_receipts")
    op.drop_table("bill_receipts")
    op.drop_index(op.f("ix_bill_payment_items_bill_id"), table_name="bill_payment_items")
    op.drop_index(op.f("ix_bill_payment_items_payment_id"), table_name="bill_payment_items")
    op.drop_table("bill_payment_items")
    op.drop_index(op.f("ix_bill_payments_payer_id"), table_name="bill_payments")
    op.drop_table("bill_payments")
