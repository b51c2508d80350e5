"""Reconciliation: runs, staged report lines, exceptions with maker-checker corrections.

Revision ID: 0017_reconciliation
Revises: 0011_dossiers
Create Date: 2026-11-23 06:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017_reconciliation"
down_revision: str | Sequence[str] | None = "0013_merchants"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_Time = advanced_alchemy.types.datetime.DateTimeUTC(timezone=True)


def upgrade() -> None:
    # a day's journal is read by time (reconciliation, the daily seal, reports)
    op.create_index("ix_ledger_entries_created_at", "ledger_entries", ["created_at"], unique=False)
    op.create_table(
        "recon_runs",
        sa.Column("id", _BigId, autoincrement=True, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("started_by", sa.Uuid(), nullable=True),
        sa.Column("started_at", _Time, nullable=False),
        sa.Column("finished_at", _Time, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("counts", _Json, nullable=False),
        sa.Column("checks", _Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_runs")),
    )
    op.create_index(op.f("ix_recon_runs_day"), "recon_runs", ["day"], unique=False)
    op.create_table(
        "recon_exceptions",
        sa.Column("id", _BigId, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("reference", sa.String(length=160), nullable=True),
        sa.Column("party", sa.String(length=64), nullable=True),
        sa.Column("ledger_gross", sa.BigInteger(), nullable=True),
        sa.Column("ledger_fee", sa.BigInteger(), nullable=True),
        sa.Column("ledger_net", sa.BigInteger(), nullable=True),
        sa.Column("external_gross", sa.BigInteger(), nullable=True),
        sa.Column("external_fee", sa.BigInteger(), nullable=True),
        sa.Column("external_net", sa.BigInteger(), nullable=True),
        sa.Column("ledger_status", sa.String(length=32), nullable=True),
        sa.Column("external_status", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("proposal", _Json, nullable=True),
        sa.Column("proposed_by", sa.Uuid(), nullable=True),
        sa.Column("proposed_at", _Time, nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_at", _Time, nullable=True),
        sa.Column("entry_id", sa.Uuid(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", _Time, nullable=False),
        sa.Column("updated_at", _Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_exceptions")),
        sa.UniqueConstraint("day", "source", "kind", "key", name="uq_recon_exceptions_day_source_kind_key"),
    )
    op.create_index("ix_recon_exceptions_status_day", "recon_exceptions", ["status", "day"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_created_at", table_name="ledger_entries")
    op.drop_index("ix_recon_exceptions_status_day", table_name="recon_exceptions")
    op.drop_table("recon_exceptions")
    op.drop_index(op.f("ix_recon_runs_day"), table_name="recon_runs")
    op.drop_table("recon_runs")
