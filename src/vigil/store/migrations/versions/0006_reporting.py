"""The reporting room: reports to the CyberTipline, their files, and the preservation
requests their submission leaves for the evidence vault; the original name of an uploaded
file (`upload_event.file_name`).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("upload_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("file_name", sa.String(length=255), nullable=True))
    op.create_table(
        "report",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_key", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("industry", sa.String(length=2), nullable=True),
        sa.Column("escalation_reason", sa.Text(), nullable=True),
        sa.Column("auto_confirmed", sa.Boolean(), nullable=False),
        sa.Column("viral", sa.Boolean(), nullable=False),
        sa.Column("task_ids", sa.JSON(), nullable=False),
        sa.Column("bundled_drafts", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.BigInteger(), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("auto_approved", sa.Boolean(), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=True),
        sa.Column("remote_report_id", sa.String(length=64), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retracted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("xml", sa.Text(), nullable=True),
        sa.Column("needs_restart", sa.Boolean(), nullable=False),
        sa.Column("abandoned_report_ids", sa.JSON(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "environment IS NULL OR environment IN ('test', 'production')",
            name=op.f("ck_report_env"),
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'approved', 'submitted', 'finished', 'retracted', 'failed')",
            name=op.f("ck_report_status"),
        ),
        sa.ForeignKeyConstraint(
            ["approved_by"],
            ["app_user.id"],
            name=op.f("fk_report_approved_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report")),
    )
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.create_index("ix_report_account_key", ["account_key"], unique=False)
        batch_op.create_index("ix_report_status", ["status"], unique=False)

    op.create_table(
        "preservation_request",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("report_id", sa.BigInteger(), nullable=True),
        sa.Column("account_key", sa.String(length=200), nullable=True),
        sa.Column("content_ids", sa.JSON(), nullable=False),
        sa.Column("upload_event_ids", sa.JSON(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("preserve_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("honoured_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "reason IN ('report', 'preservation_request', 'legal_hold', 'voluntary')",
            name=op.f("ck_preservation_request_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["report.id"],
            name=op.f("fk_preservation_request_report_id_report"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_preservation_request")),
    )
    op.create_table(
        "report_file",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("report_id", sa.BigInteger(), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=True),
        sa.Column("content_id", sa.BigInteger(), nullable=False),
        sa.Column("upload_event_id", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("viewed", sa.Boolean(), nullable=False),
        sa.Column("publicly_available", sa.Boolean(), nullable=True),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.Column("industry", sa.String(length=2), nullable=True),
        sa.Column("relevance", sa.String(length=32), nullable=False),
        sa.Column("remote_file_id", sa.String(length=64), nullable=True),
        sa.Column("remote_md5", sa.String(length=32), nullable=True),
        sa.CheckConstraint(
            "relevance IN ('Reported', 'Supplemental Reported')",
            name=op.f("ck_report_file_relevance"),
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'uploaded', 'described')", name=op.f("ck_report_file_state")
        ),
        sa.ForeignKeyConstraint(
            ["content_id"], ["content.id"], name=op.f("fk_report_file_content_id_content")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["review_item.id"],
            name=op.f("fk_report_file_item_id_review_item"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["report.id"],
            name=op.f("fk_report_file_report_id_report"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["upload_event_id"],
            ["upload_event.id"],
            name=op.f("fk_report_file_upload_event_id_upload_event"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_file")),
        sa.UniqueConstraint("report_id", "item_id", name=op.f("uq_report_file_report_id_item_id")),
    )


def downgrade() -> None:
    with op.batch_alter_table("upload_event", schema=None) as batch_op:
        batch_op.drop_column("file_name")
    op.drop_table("report_file")
    op.drop_table("preservation_request")
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.drop_index("ix_report_status")
        batch_op.drop_index("ix_report_account_key")

    op.drop_table("report")
