"""Initial schema: content (one row per distinct file) and signal (its hashes).

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 64-bit keys on PostgreSQL; INTEGER on SQLite, where only that aliases the rowid.
big_pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "content",
        sa.Column("id", big_pk, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.String(length=8), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "media_type IS NULL OR media_type IN ('image', 'video')",
            name=op.f("ck_content_media_type"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content")),
        sa.UniqueConstraint("sha256", name=op.f("uq_content_sha256")),
    )
    op.create_index(op.f("ix_content_md5"), "content", ["md5"], unique=False)

    op.create_table(
        "signal",
        sa.Column("id", big_pk, nullable=False),
        sa.Column("content_id", sa.BigInteger(), nullable=False),
        sa.Column("signal_type", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("value_digest", sa.String(length=64), nullable=False),
        sa.Column("quality", sa.Integer(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["content_id"],
            ["content.id"],
            name=op.f("fk_signal_content_id_content"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signal")),
        sa.UniqueConstraint(
            "content_id",
            "signal_type",
            "value_digest",
            name=op.f("uq_signal_content_id_signal_type_value_digest"),
        ),
    )
    op.create_index(
        "ix_signal_signal_type_value_digest",
        "signal",
        ["signal_type", "value_digest"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_signal_signal_type_value_digest", table_name="signal")
    op.drop_table("signal")
    op.drop_index(op.f("ix_content_md5"), table_name="content")
    op.drop_table("content")
