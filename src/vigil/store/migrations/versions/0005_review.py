"""The review room and the web console: review tasks, items, reveals, decisions, wellbeing
settings, exposure, console sessions; each bank's review policy; an index on
`match.entry_id` (the queue finds copies by the entries they matched).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_match_entry_id", "match", ["entry_id"], unique=False)
    op.create_table(
        "review_exposure",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("screen_seconds", sa.Float(), nullable=False),
        sa.Column("reveal_seconds", sa.Float(), nullable=False),
        sa.Column("reveals", sa.Integer(), nullable=False),
        sa.Column("decisions", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_review_exposure_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_exposure")),
        sa.UniqueConstraint("user_id", "day", name=op.f("uq_review_exposure_user_id_day")),
    )
    op.create_table(
        "review_task",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("queue", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=True),
        sa.Column("imminent_danger", sa.Boolean(), nullable=False),
        sa.Column("escalation_reason", sa.Text(), nullable=True),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("exact_verified", sa.Boolean(), nullable=False),
        sa.Column("flag_details", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_user_id", sa.BigInteger(), nullable=True),
        sa.Column("lease_expires", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assigned_user_id", sa.BigInteger(), nullable=True),
        sa.Column("excluded_user_id", sa.BigInteger(), nullable=True),
        sa.Column("disagreement", sa.Boolean(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=True),
        sa.Column("decided", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "queue IN ('escalated', 'second_opinion', 'main')", name=op.f("ck_review_task_queue")
        ),
        sa.CheckConstraint(
            "source IN ('match', 'flag', 'user_report', 'escalation')",
            name=op.f("ck_review_task_source"),
        ),
        sa.CheckConstraint("status IN ('open', 'decided')", name=op.f("ck_review_task_status")),
        sa.CheckConstraint(
            "verdict IS NULL OR verdict IN ('confirmed', 'false_positive')",
            name=op.f("ck_review_task_verdict"),
        ),
        sa.CheckConstraint("severity BETWEEN 0 AND 4", name=op.f("ck_review_task_severity")),
        sa.ForeignKeyConstraint(
            ["assigned_user_id"],
            ["app_user.id"],
            name=op.f("fk_review_task_assigned_user_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["app_user.id"],
            name=op.f("fk_review_task_decided_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["excluded_user_id"],
            ["app_user.id"],
            name=op.f("fk_review_task_excluded_user_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["lease_user_id"],
            ["app_user.id"],
            name=op.f("fk_review_task_lease_user_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_task")),
    )
    with op.batch_alter_table("review_task", schema=None) as batch_op:
        batch_op.create_index("ix_review_task_account_id", ["account_id"], unique=False)
        batch_op.create_index("ix_review_task_status_queue", ["status", "queue"], unique=False)

    op.create_table(
        "web_session",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_web_session_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_session")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_web_session_secret_hash")),
    )
    with op.batch_alter_table("web_session", schema=None) as batch_op:
        batch_op.create_index("ix_web_session_user_id", ["user_id"], unique=False)

    op.create_table(
        "wellbeing_settings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("blur_radius", sa.Float(), nullable=True),
        sa.Column("greyscale", sa.Boolean(), nullable=True),
        sa.Column("thumbnails_first", sa.Boolean(), nullable=True),
        sa.Column("break_minutes", sa.Integer(), nullable=True),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "blur_radius IS NULL OR blur_radius BETWEEN 0 AND 64",
            name=op.f("ck_wellbeing_settings_blur"),
        ),
        sa.CheckConstraint(
            "break_minutes IS NULL OR break_minutes BETWEEN 1 AND 480",
            name=op.f("ck_wellbeing_settings_brk"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_wellbeing_settings_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wellbeing_settings")),
        sa.UniqueConstraint("user_id", name=op.f("uq_wellbeing_settings_user_id")),
    )
    op.create_table(
        "review_decision",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("industry", sa.String(length=2), nullable=True),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.Column("publicly_available", sa.Boolean(), nullable=True),
        sa.Column("viewed_items", sa.JSON(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("proposed_verdict", sa.String(length=16), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('confirm', 'false_positive', 'escalate', 'second_opinion', 'auto_confirm')",
            name=op.f("ck_review_decision_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["review_task.id"],
            name=op.f("fk_review_decision_task_id_review_task"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_review_decision_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_decision")),
    )
    with op.batch_alter_table("review_decision", schema=None) as batch_op:
        batch_op.create_index("ix_review_decision_task_id", ["task_id"], unique=False)
        batch_op.create_index(
            "ix_review_decision_user_id_created", ["user_id", "created"], unique=False
        )

    op.create_table(
        "review_item",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("content_id", sa.BigInteger(), nullable=False),
        sa.Column("upload_event_id", sa.BigInteger(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("viewed", sa.Boolean(), nullable=False),
        sa.Column("viewed_by", sa.BigInteger(), nullable=True),
        sa.Column("viewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["content_id"],
            ["content.id"],
            name=op.f("fk_review_item_content_id_content"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["review_task.id"],
            name=op.f("fk_review_item_task_id_review_task"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["upload_event_id"],
            ["upload_event.id"],
            name=op.f("fk_review_item_upload_event_id_upload_event"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["viewed_by"],
            ["app_user.id"],
            name=op.f("fk_review_item_viewed_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_item")),
        sa.UniqueConstraint(
            "task_id",
            "content_id",
            "upload_event_id",
            name=op.f("uq_review_item_task_id_content_id_upload_event_id"),
        ),
    )
    with op.batch_alter_table("review_item", schema=None) as batch_op:
        batch_op.create_index("ix_review_item_content_id", ["content_id"], unique=False)

    op.create_table(
        "review_reveal",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("started", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "scope IN ('thumbnail', 'keyframes', 'full')", name=op.f("ck_review_reveal_scope")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["review_item.id"],
            name=op.f("fk_review_reveal_item_id_review_item"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_review_reveal_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_reveal")),
    )
    with op.batch_alter_table("review_reveal", schema=None) as batch_op:
        batch_op.create_index("ix_review_reveal_item_id", ["item_id"], unique=False)
        batch_op.create_index(
            "ix_review_reveal_user_id_started", ["user_id", "started"], unique=False
        )

    with op.batch_alter_table("bank", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "review_policy", sa.String(length=24), nullable=False, server_default="review"
            )
        )
    with op.batch_alter_table("bank", schema=None) as batch_op:
        batch_op.alter_column("review_policy", server_default=None)
        batch_op.create_check_constraint(
            "review_policy", "review_policy IN ('review', 'auto_confirm_exact')"
        )
        batch_op.create_check_constraint(
            "auto_confirm_verified", "review_policy = 'review' OR trust = 'verified'"
        )


def downgrade() -> None:
    op.drop_index("ix_match_entry_id", table_name="match")
    with op.batch_alter_table("bank", schema=None) as batch_op:
        batch_op.drop_constraint("auto_confirm_verified", type_="check")
        batch_op.drop_constraint("review_policy", type_="check")
        batch_op.drop_column("review_policy")

    with op.batch_alter_table("review_reveal", schema=None) as batch_op:
        batch_op.drop_index("ix_review_reveal_user_id_started")
        batch_op.drop_index("ix_review_reveal_item_id")

    op.drop_table("review_reveal")
    with op.batch_alter_table("review_item", schema=None) as batch_op:
        batch_op.drop_index("ix_review_item_content_id")

    op.drop_table("review_item")
    with op.batch_alter_table("review_decision", schema=None) as batch_op:
        batch_op.drop_index("ix_review_decision_user_id_created")
        batch_op.drop_index("ix_review_decision_task_id")

    op.drop_table("review_decision")
    op.drop_table("wellbeing_settings")
    with op.batch_alter_table("web_session", schema=None) as batch_op:
        batch_op.drop_index("ix_web_session_user_id")

    op.drop_table("web_session")
    with op.batch_alter_table("review_task", schema=None) as batch_op:
        batch_op.drop_index("ix_review_task_status_queue")
        batch_op.drop_index("ix_review_task_account_id")

    op.drop_table("review_task")
    op.drop_table("review_exposure")
