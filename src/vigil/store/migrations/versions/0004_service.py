"""The integration service: API tokens, users, upload events, webhook actions and their
outbox, background jobs; an index on `bank_entry.disabled_until`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

big_pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # API workers ask every few seconds which disabled entries became active again.
    op.create_index("ix_bank_entry_disabled_until", "bank_entry", ["disabled_until"], unique=False)
    op.create_table(
        "api_token",
        sa.Column("id", big_pk, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("rate_limit_per_minute", sa.Integer(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_token")),
        sa.UniqueConstraint("name", name=op.f("uq_api_token_name")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_api_token_secret_hash")),
    )
    op.create_table(
        "app_user",
        sa.Column("id", big_pk, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_login", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("username", name=op.f("uq_app_user_username")),
    )
    op.create_table(
        "job",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'finished', 'failed')", name=op.f("ck_job_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
    )
    op.create_table(
        "action_rule",
        sa.Column("id", big_pk, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("bank_id", sa.BigInteger(), nullable=False),
        sa.Column("classification", sa.String(length=8), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("secret_env", sa.String(length=128), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["bank_id"], ["bank.id"], name=op.f("fk_action_rule_bank_id_bank"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_rule")),
        sa.UniqueConstraint("name", name=op.f("uq_action_rule_name")),
    )
    op.create_index(op.f("ix_action_rule_bank_id"), "action_rule", ["bank_id"], unique=False)
    op.create_table(
        "upload_event",
        sa.Column("id", big_pk, nullable=False),
        sa.Column("content_id", sa.BigInteger(), nullable=False),
        sa.Column("content_ref", sa.String(length=256), nullable=True),
        sa.Column("account_id", sa.String(length=256), nullable=True),
        sa.Column("screen_name", sa.String(length=256), nullable=True),
        sa.Column("ip_address", sa.String(length=45), nullable=True),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received", sa.DateTime(timezone=True), nullable=False),
        sa.Column("token_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["content_id"],
            ["content.id"],
            name=op.f("fk_upload_event_content_id_content"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["api_token.id"],
            name=op.f("fk_upload_event_token_id_api_token"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upload_event")),
    )
    op.create_index(
        op.f("ix_upload_event_account_id"), "upload_event", ["account_id"], unique=False
    )
    op.create_index(
        op.f("ix_upload_event_content_id"), "upload_event", ["content_id"], unique=False
    )
    op.create_index(
        op.f("ix_upload_event_content_ref"), "upload_event", ["content_ref"], unique=False
    )
    op.create_table(
        "action_delivery",
        sa.Column("id", big_pk, nullable=False),
        sa.Column("rule_id", sa.BigInteger(), nullable=False),
        sa.Column("content_id", sa.BigInteger(), nullable=True),
        sa.Column("upload_event_id", sa.BigInteger(), nullable=True),
        sa.Column("event_key", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'dead')", name=op.f("ck_action_delivery_status")
        ),
        sa.ForeignKeyConstraint(
            ["content_id"],
            ["content.id"],
            name=op.f("fk_action_delivery_content_id_content"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["action_rule.id"],
            name=op.f("fk_action_delivery_rule_id_action_rule"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["upload_event_id"],
            ["upload_event.id"],
            name=op.f("fk_action_delivery_upload_event_id_upload_event"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_delivery")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_action_delivery_idempotency_key")),
        sa.UniqueConstraint(
            "rule_id", "event_key", name=op.f("uq_action_delivery_rule_id_event_key")
        ),
    )
    op.create_index(
        op.f("ix_action_delivery_status_next_attempt"),
        "action_delivery",
        ["status", "next_attempt"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_bank_entry_disabled_until", table_name="bank_entry")
    op.drop_index(op.f("ix_action_delivery_status_next_attempt"), table_name="action_delivery")
    op.drop_table("action_delivery")
    op.drop_index(op.f("ix_upload_event_content_ref"), table_name="upload_event")
    op.drop_index(op.f("ix_upload_event_content_id"), table_name="upload_event")
    op.drop_index(op.f("ix_upload_event_account_id"), table_name="upload_event")
    op.drop_table("upload_event")
    op.drop_index(op.f("ix_action_rule_bank_id"), table_name="action_rule")
    op.drop_table("action_rule")
    op.drop_table("job")
    op.drop_table("app_user")
    op.drop_table("api_token")
