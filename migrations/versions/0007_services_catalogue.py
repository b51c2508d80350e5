"""Public services: the procedure catalogue (agencies, procedures, agency chains) and the holiday table.

Revision ID: 0007_services_catalogue
Revises: 0001_baseline
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0007_services_catalogue"
down_revision: str | Sequence[str] | None = "0001_baseline"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> DateTimeUTC:
    return DateTimeUTC(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agencies",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name_vi", sa.String(length=300), nullable=False),
        sa.Column("name_en", sa.String(length=300), nullable=True),
        sa.Column("level", sa.String(length=40), nullable=False),
        sa.Column("treasury_account", sa.String(length=80), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_agencies")),
    )
    op.create_index(op.f("ix_agencies_level"), "agencies", ["level"], unique=False)

    op.create_table(
        "procedures",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name_vi", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=True),
        sa.Column("field", sa.String(length=200), nullable=False),
        sa.Column("level", sa.String(length=40), nullable=False),
        sa.Column("online", sa.String(length=20), nullable=False),
        sa.Column("processing_days", sa.Integer(), nullable=True),
        sa.Column("processing_days_by_channel", sa.JSON(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("national_decision", sa.String(length=100), nullable=True),
        sa.Column("documents", sa.JSON(), nullable=False),
        sa.Column("return_channels", sa.JSON(), nullable=False),
        sa.Column("fee_schedule", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("edited_fields", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_procedures")),
    )
    op.create_index(op.f("ix_procedures_field"), "procedures", ["field"], unique=False)
    op.create_index(op.f("ix_procedures_level"), "procedures", ["level"], unique=False)

    op.create_table(
        "procedure_steps",
        sa.Column("procedure_code", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("agency_code", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_code"],
            ["agencies.code"],
            name=op.f("fk_procedure_steps_agency_code_agencies"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["procedure_code"],
            ["procedures.code"],
            name=op.f("fk_procedure_steps_procedure_code_procedures"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("procedure_code", "position", name=op.f("pk_procedure_steps")),
    )
    op.create_index(op.f("ix_procedure_steps_agency_code"), "procedure_steps", ["agency_code"], unique=False)

    op.create_table(
        "calendar_years",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("announced", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_calendar_years")),
    )
    op.create_table(
        "calendar_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("name_vi", sa.String(length=300), nullable=False),
        sa.Column("name_en", sa.String(length=300), nullable=True),
        sa.Column("status", sa.String(length=60), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["year"],
            ["calendar_years.year"],
            name=op.f("fk_calendar_days_year_calendar_years"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_calendar_days")),
    )
    op.create_index(op.f("ix_calendar_days_year"), "calendar_days", ["year"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_calendar_days_year"), table_name="calendar_days")
    op.drop_table("calendar_days")
    op.drop_table("calendar_years")
    op.drop_index(op.f("ix_procedure_steps_agency_code"), table_name="procedure_steps")
    op.drop_table("procedure_steps")
    op.drop_index(op.f("ix_procedures_level"), table_name="procedures")
    op.drop_index(op.f("ix_procedures_field"), table_name="procedures")
    op.drop_table("procedures")
    op.drop_index(op.f("ix_agencies_level"), table_name="agencies")
    op.drop_table("agencies")
