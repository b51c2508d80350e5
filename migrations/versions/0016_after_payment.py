"""After the payment: auto-pay mandates and runs, reminders, partial bill refunds, payout holds, complaints,
settlements.

Revision ID: 0016_after_payment
Revises: 0011_dossiers
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0016_after_payment"
down_revision: str | Sequence[str] | None = "0011_dossiers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _base(table: str) -> list[sa.Column[object] | sa.PrimaryKeyConstraint]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def _ts(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, DateTimeUTC(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("bill_payments") as batch:
        batch.add_column(sa.Column("mandate_id", sa.Uuid(), nullable=True))
    op.create_index(
        "ix_bill_payment_items_account_created", "bill_payment_items", ["payable_account_id", "created_at"]
    )
    op.create_table(
        "autopay_mandates",
        *_base("autopay_mandates"),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("saved_code_id", sa.Uuid(), nullable=False),
        sa.Column("biller_id", sa.Uuid(), nullable=False),
        sa.Column("customer_code", sa.String(32), nullable=False),
        sa.Column("days_before", sa.Integer(), nullable=False),
        sa.Column("max_amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("confirmed_at", False),
        _ts("cancelled_at"),
        sa.CheckConstraint("max_amount > 0", name=op.f("ck_autopay_mandates_max_amount_positive")),
        sa.CheckConstraint(
            "days_before >= 0 AND days_before <= 30", name=op.f("ck_autopay_mandates_days_before_range")
        ),
        sa.CheckConstraint(
            "status IN ('active', 'cancelled')", name=op.f("ck_autopay_mandates_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["saved_code_id"],
            ["saved_customer_codes.id"],
            name=op.f("fk_autopay_mandates_saved_code_id_saved_customer_codes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["biller_id"], ["billers.id"], name=op.f("fk_autopay_mandates_biller_id_billers")
        ),
        sa.UniqueConstraint("saved_code_id", name="uq_autopay_mandates_saved_code_id"),
    )
    op.create_index(op.f("ix_autopay_mandates_user_id"), "autopay_mandates", ["user_id"])
    op.create_table(
        "autopay_runs",
        *_base("autopay_runs"),
        sa.Column("mandate_id", sa.Uuid(), nullable=False),
        sa.Column("bill_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("payment_id", sa.Uuid(), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.CheckConstraint(
            "status IN ('paid', 'failed', 'skipped')", name=op.f("ck_autopay_runs_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["mandate_id"],
            ["autopay_mandates.id"],
            name=op.f("fk_autopay_runs_mandate_id_autopay_mandates"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["bill_id"], ["bills.id"], name=op.f("fk_autopay_runs_bill_id_bills")),
        sa.UniqueConstraint("mandate_id", "bill_id", name="uq_autopay_runs_mandate_bill"),
    )
    op.create_index(op.f("ix_autopay_runs_bill_id"), "autopay_runs", ["bill_id"])
    op.create_table(
        "bill_reminders",
        *_base("bill_reminders"),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("bill_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["bill_id"], ["bills.id"], name=op.f("fk_bill_reminders_bill_id_bills")),
        sa.UniqueConstraint("user_id", "bill_id", name="uq_bill_reminders_user_bill"),
    )
    op.create_index(op.f("ix_bill_reminders_bill_id"), "bill_reminders", ["bill_id"])
    op.create_table(
        "bill_item_refunds",
        *_base("bill_item_refunds"),
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("payable_account_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("reference", sa.String(80), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_bill_item_refunds_amount_positive")),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["bill_payment_items.id"],
            name=op.f("fk_bill_item_refunds_item_id_bill_payment_items"),
        ),
    )
    op.create_index(op.f("ix_bill_item_refunds_item_id"), "bill_item_refunds", ["item_id"])
    op.create_index(
        "ix_bill_item_refunds_account_created", "bill_item_refunds", ["payable_account_id", "created_at"]
    )
    op.create_table(
        "payout_holds",
        *_base("payout_holds"),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("reference", sa.String(80), nullable=False),
        _ts("released_at"),
        sa.Column("withheld_in", sa.Uuid(), nullable=True),
        sa.Column("returned_in", sa.Uuid(), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payout_holds_amount_positive")),
        sa.UniqueConstraint("reference", name=op.f("uq_payout_holds_reference")),
    )
    op.create_index("ix_payout_holds_account_id", "payout_holds", ["account_id"])
    op.create_table(
        "complaints",
        *_base("complaints"),
        sa.Column("code", sa.String(24), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payment_ref", sa.String(64), nullable=False),
        sa.Column("payee_name", sa.String(200), nullable=False),
        sa.Column("paid_amount", sa.BigInteger(), nullable=False),
        sa.Column("disputed_amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("description", sa.String(2000), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("due_at", False),
        _ts("escalated_at"),
        sa.Column("hold_id", sa.Uuid(), nullable=True),
        sa.Column("refund_amount", sa.BigInteger(), nullable=True),
        sa.Column("resolution_note", sa.String(2000), nullable=True),
        _ts("closed_at"),
        _ts("updated_at", False),
        sa.CheckConstraint(
            "status IN ('logged', 'in_review', 'resolved', 'rejected')",
            name=op.f("ck_complaints_status_known"),
        ),
        sa.CheckConstraint(
            "disputed_amount > 0 AND disputed_amount <= paid_amount",
            name=op.f("ck_complaints_disputed_in_range"),
        ),
        sa.UniqueConstraint("code", name=op.f("uq_complaints_code")),
        sa.UniqueConstraint("kind", "payment_ref", name="uq_complaints_kind_payment_ref"),
    )
    op.create_index(op.f("ix_complaints_user_id"), "complaints", ["user_id"])
    op.create_index("ix_complaints_status_due_at", "complaints", ["status", "due_at"])
    op.create_table(
        "complaint_events",
        *_base("complaint_events"),
        sa.Column("complaint_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("note", sa.String(2000), nullable=True),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            ["complaints.id"],
            name=op.f("fk_complaint_events_complaint_id_complaints"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(op.f("ix_complaint_events_complaint_id"), "complaint_events", ["complaint_id"])
    op.create_table(
        "settlements",
        *_base("settlements"),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payee_code", sa.String(40), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("business_day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("collected", sa.BigInteger(), nullable=False),
        sa.Column("held", sa.BigInteger(), nullable=False),
        sa.Column("carried", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(40), nullable=False),
        sa.Column("bank_bin", sa.String(6), nullable=False),
        sa.Column("account_number", sa.String(32), nullable=False),
        sa.Column("account_name", sa.String(200), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=True),
        sa.Column("reversal_entry_id", sa.Uuid(), nullable=True),
        sa.Column("bank_reference", sa.String(64), nullable=True),
        sa.Column("failure_reason", sa.String(200), nullable=True),
        sa.Column("carried_into", sa.Uuid(), nullable=True),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(120), nullable=False),
        sa.Column("file_csv", sa.Text(), nullable=False),
        _ts("sent_at"),
        _ts("finished_at"),
        sa.CheckConstraint(
            "status IN ('no_payout', 'sending', 'unknown', 'pending', 'succeeded', 'failed')",
            name=op.f("ck_settlements_status_known"),
        ),
        sa.UniqueConstraint("reference", name=op.f("uq_settlements_reference")),
        sa.UniqueConstraint("account_id", "business_day", name="uq_settlements_account_day"),
    )
    op.create_index(op.f("ix_settlements_payee_code"), "settlements", ["payee_code"])
    op.create_table(
        "settlement_items",
        *_base("settlement_items"),
        sa.Column("settlement_id", sa.Uuid(), nullable=False),
        sa.Column("source_kind", sa.String(16), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["settlement_id"],
            ["settlements.id"],
            name=op.f("fk_settlement_items_settlement_id_settlements"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("source_kind", "source_id", name="uq_settlement_items_source"),
    )
    op.create_index(op.f("ix_settlement_items_settlement_id"), "settlement_items", ["settlement_id"])


def downgrade() -> None:
    for table in (
        "settlement_items",
        "settlements",
        "complaint_events",
        "complaints",
        "payout_holds",
        "bill_item_refunds",
        "bill_reminders",
        "autopay_runs",
        "autopay_mandates",
    ):
        op.drop_table(table)
    op.drop_index("ix_bill_payment_items_account_created", table_name="bill_payment_items")
    with op.batch_alter_table("bill_payments") as batch:
        batch.drop_column("mandate_id")
