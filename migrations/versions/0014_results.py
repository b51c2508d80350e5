"""Results of dossiers: signed results, revoked result keys, return channels, apologies, ratings, and the
submission channel of dossiers (issue 9).

Revision ID: 0014_results
Revises: 0011_dossiers
Create Date: 2026-11-23 06:15:36.505574
"""

from __future__ import annotations

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision: str = "0014_results"
down_revision: str | Sequence[str] | None = "0016_after_payment"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "result_key_revocations",
        sa.Column("agency_code", sa.String(length=40), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("revoked_by", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_result_key_revocations")),
        sa.UniqueConstraint("agency_code", "key_id", name="uq_result_key_revocations_key"),
    )
    op.create_table(
        "dossier_apologies",
        sa.Column("dossier_id", sa.Uuid(), nullable=False),
        sa.Column("agency_code", sa.String(length=40), nullable=False),
        sa.Column("officer_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "previous_due_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=True
        ),
        sa.Column("new_due_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dossier_id"],
            ["dossiers.id"],
            name=op.f("fk_dossier_apologies_dossier_id_dossiers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dossier_apologies")),
    )
    with op.batch_alter_table("dossier_apologies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dossier_apologies_dossier_id"), ["dossier_id"], unique=False)

    op.create_table(
        "dossier_deliveries",
        sa.Column("dossier_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("recipient_name", sa.String(length=200), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("postage_amount", sa.BigInteger(), nullable=True),
        sa.Column("postage_bill_id", sa.Uuid(), nullable=True),
        sa.Column(
            "postage_paid_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=True
        ),
        sa.Column("tracking_number", sa.String(length=64), nullable=True),
        sa.Column("postal_events", sa.JSON(), nullable=False),
        sa.Column("delivered_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("updated_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dossier_id"],
            ["dossiers.id"],
            name=op.f("fk_dossier_deliveries_dossier_id_dossiers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dossier_deliveries")),
        sa.UniqueConstraint("dossier_id", name=op.f("uq_dossier_deliveries_dossier_id")),
        sa.UniqueConstraint("tracking_number", name=op.f("uq_dossier_deliveries_tracking_number")),
    )
    with op.batch_alter_table("dossier_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dossier_deliveries_postage_bill_id"), ["postage_bill_id"], unique=False
        )
        batch_op.create_index("ix_dossier_deliveries_state", ["channel", "state"], unique=False)

    op.create_table(
        "dossier_ratings",
        sa.Column("dossier_id", sa.Uuid(), nullable=False),
        sa.Column("agency_code", sa.String(length=40), nullable=False),
        sa.Column("procedure_code", sa.String(length=40), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("rated_by", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dossier_id"],
            ["dossiers.id"],
            name=op.f("fk_dossier_ratings_dossier_id_dossiers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dossier_ratings")),
        sa.UniqueConstraint("dossier_id", name=op.f("uq_dossier_ratings_dossier_id")),
    )
    with op.batch_alter_table("dossier_ratings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dossier_ratings_agency_code"), ["agency_code"], unique=False)

    op.create_table(
        "signed_results",
        sa.Column("dossier_id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("agency_code", sa.String(length=40), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column("issued_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["stored_documents.id"],
            name=op.f("fk_signed_results_document_id_stored_documents"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["dossier_id"],
            ["dossiers.id"],
            name=op.f("fk_signed_results_dossier_id_dossiers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signed_results")),
        sa.UniqueConstraint("dossier_id", name=op.f("uq_signed_results_dossier_id")),
    )
    with op.batch_alter_table("dossiers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("submission_channel", sa.String(length=10), server_default="online", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("dossiers", schema=None) as batch_op:
        batch_op.drop_column("submission_channel")

    op.drop_table("signed_results")
    with op.batch_alter_table("dossier_ratings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dossier_ratings_agency_code"))

    op.drop_table("dossier_ratings")
    with op.batch_alter_table("dossier_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_dossier_deliveries_state")
        batch_op.drop_index(batch_op.f("ix_dossier_deliveries_postage_bill_id"))

    op.drop_table("dossier_deliveries")
    with op.batch_alter_table("dossier_apologies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dossier_apologies_dossier_id"))

    op.drop_table("dossier_apologies")
    op.drop_table("result_key_revocations")
