"""Audit trail (a MAC-chained, append-only table and its one-row head) and the citizen's inbox
(notifications, push devices, the development push sandbox).

Revision ID: 0005_audit_inbox
Revises: 0001_baseline
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0005_audit_inbox"
down_revision: str | Sequence[str] | None = "0003_outbox_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_MAC = "0" * 64

# Defence in depth: the application never updates or deletes audit rows, and the database refuses to.
# (Someone with DDL rights can drop these triggers: that is what the MAC chain and the anchors are for.)
PG_APPEND_ONLY = (
    """CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_events is append-only';
    END;
    $$""",
    "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
    "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()",
)
SQLITE_APPEND_ONLY = (
    "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
    "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
)


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("occurred_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_role", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=64), nullable=False),
        sa.Column("object_id", sa.String(length=128), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("kid", sa.String(length=32), nullable=False),
        sa.Column("prev_mac", sa.String(length=64), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('success', 'failure', 'denied')", name=op.f("ck_audit_events_outcome")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_action", "audit_events", ["action", "seq"])
    op.create_index("ix_audit_events_actor", "audit_events", ["actor_id", "seq"])
    op.create_index("ix_audit_events_object", "audit_events", ["object_type", "object_id", "seq"])
    op.create_index("ix_audit_events_occurred_at", "audit_events", ["occurred_at"])

    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "mac": GENESIS_MAC, "updated_at": datetime.now(UTC)}])

    statements = PG_APPEND_ONLY if op.get_bind().dialect.name == "postgresql" else SQLITE_APPEND_ONLY
    for statement in statements:
        op.execute(statement)

    op.create_table(
        "inbox_notifications",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("title_vi", sa.String(length=200), nullable=False),
        sa.Column("body_vi", sa.Text(), nullable=False),
        sa.Column("title_en", sa.String(length=200), nullable=True),
        sa.Column("body_en", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("read_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_notifications")),
    )
    op.create_index("ix_inbox_notifications_user_id_id", "inbox_notifications", ["user_id", "id"])
    op.create_index("ix_inbox_notifications_user_id_read_at", "inbox_notifications", ["user_id", "read_at"])

    op.create_table(
        "inbox_push_devices",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("platform", sa.String(length=8), nullable=False),
        sa.Column("token", sa.String(length=512), nullable=False),
        sa.Column("device_name", sa.String(length=100), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("last_registered_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint("language IN ('vi', 'en')", name=op.f("ck_inbox_push_devices_language")),
        sa.CheckConstraint("platform IN ('fcm', 'apns')", name=op.f("ck_inbox_push_devices_platform")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_push_devices")),
        sa.UniqueConstraint("token", name="uq_inbox_push_devices_token"),
    )
    op.create_index("ix_inbox_push_devices_user_id", "inbox_push_devices", ["user_id"])

    op.create_table(
        "inbox_push_sandbox",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("platform", sa.String(length=8), nullable=False),
        sa.Column("token_hint", sa.String(length=16), nullable=False),
        sa.Column("notification_id", sa.Uuid(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_push_sandbox")),
    )
    op.create_index("ix_inbox_push_sandbox_user_id_id", "inbox_push_sandbox", ["user_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_inbox_push_sandbox_user_id_id", table_name="inbox_push_sandbox")
    op.drop_table("inbox_push_sandbox")
    op.drop_index("ix_inbox_push_devices_user_id", table_name="inbox_push_devices")
    op.drop_table("inbox_push_devices")
    op.drop_index("ix_inbox_notifications_user_id_read_at", table_name="inbox_notifications")
    op.drop_index("ix_inbox_notifications_user_id_id", table_name="inbox_notifications")
    op.drop_table("inbox_notifications")
    op.drop_table("audit_head")
    for name in ("ix_audit_events_occurred_at", "ix_audit_events_object", "ix_audit_events_actor"):
        op.drop_index(name, table_name="audit_events")
    op.drop_index("ix_audit_events_action", table_name="audit_events")
    op.drop_table("audit_events")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
