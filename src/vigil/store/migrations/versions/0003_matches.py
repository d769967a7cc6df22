"""Matches found by the scan pipeline.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

big_pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "match",
        sa.Column("id", big_pk, nullable=False),
        sa.Column("content_id", sa.BigInteger(), nullable=False),
        sa.Column("bank_id", sa.BigInteger(), nullable=True),
        sa.Column("entry_id", sa.BigInteger(), nullable=True),
        sa.Column("bank_name", sa.String(length=64), nullable=False),
        sa.Column("bank_kind", sa.String(length=16), nullable=False),
        sa.Column("signal_type", sa.String(length=64), nullable=False),
        sa.Column("distance", sa.Integer(), nullable=False),
        sa.Column("dihedral", sa.Integer(), nullable=True),
        sa.Column("query_variant", sa.String(length=64), nullable=True),
        sa.Column("classification", sa.String(length=200), nullable=True),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["content_id"], ["content.id"], name="fk_match_content_id_content", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["bank_id"], ["bank.id"], name="fk_match_bank_id_bank", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["bank_entry.id"],
            name="fk_match_entry_id_bank_entry",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_match"),
        sa.UniqueConstraint(
            "content_id", "entry_id", "signal_type", name="uq_match_content_id_entry_id_signal_type"
        ),
    )
    op.create_index("ix_match_bank_id", "match", ["bank_id"])
    op.create_index("ix_match_content_id", "match", ["content_id"])
    op.create_index("ix_match_created", "match", ["created"])


def downgrade() -> None:
    op.drop_table("match")
