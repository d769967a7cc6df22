"""Hash banks: bank (a named hash list), bank_import (one file read into it), bank_entry.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 64-bit keys on PostgreSQL; INTEGER on SQLite, where only that aliases the rowid.
big_pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bank",
        sa.Column("id", big_pk, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_name", sa.String(length=200), nullable=True),
        sa.Column("trust", sa.String(length=16), nullable=False),
        sa.Column("default_classification", sa.String(length=200), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("pdq_threshold", sa.Integer(), nullable=False),
        sa.Column("vpdq_frame_threshold", sa.Integer(), nullable=False),
        sa.Column("vpdq_compared_share", sa.Float(), nullable=False),
        sa.Column("vpdq_query_share", sa.Float(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('match', 'suppress')", name=op.f("ck_bank_kind")),
        sa.CheckConstraint(
            "source IN ('own', 'imported', 'exchange')", name=op.f("ck_bank_source")
        ),
        sa.CheckConstraint("trust IN ('verified', 'unverified')", name=op.f("ck_bank_trust")),
        sa.CheckConstraint("pdq_threshold BETWEEN 0 AND 64", name=op.f("ck_bank_pdq_threshold")),
        sa.CheckConstraint(
            "vpdq_frame_threshold BETWEEN 0 AND 64", name=op.f("ck_bank_vpdq_frame_threshold")
        ),
        sa.CheckConstraint(
            "vpdq_compared_share BETWEEN 0 AND 100", name=op.f("ck_bank_vpdq_compared_share")
        ),
        sa.CheckConstraint(
            "vpdq_query_share BETWEEN 0 AND 100", name=op.f("ck_bank_vpdq_query_share")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank")),
        sa.UniqueConstraint("name", name=op.f("uq_bank_name")),
    )

    op.create_table(
        "bank_import",
        sa.Column("id", big_pk, nullable=False),
        sa.Column("bank_id", sa.BigInteger(), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=True),
        sa.Column("file_bytes", sa.BigInteger(), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("rejected_sample", sa.JSON(), nullable=False),
        sa.Column("skipped_reasons", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("started", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'finished', 'failed')", name=op.f("ck_bank_import_status")
        ),
        sa.ForeignKeyConstraint(
            ["bank_id"],
            ["bank.id"],
            name=op.f("fk_bank_import_bank_id_bank"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_import")),
    )

    op.create_table(
        "bank_entry",
        sa.Column("id", big_pk, nullable=False),
        sa.Column("bank_id", sa.BigInteger(), nullable=False),
        sa.Column("signal_type", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("value_digest", sa.String(length=64), nullable=False),
        sa.Column("industry", sa.String(length=2), nullable=True),
        sa.Column("uk_category", sa.String(length=1), nullable=True),
        sa.Column("vics_category", sa.Integer(), nullable=True),
        sa.Column("vics_region", sa.String(length=16), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("list_name", sa.String(length=200), nullable=True),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("member", sa.String(length=200), nullable=True),
        sa.Column("import_id", sa.BigInteger(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("false_positive_count", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "industry IS NULL OR industry IN ('A1', 'A2', 'B1', 'B2')",
            name=op.f("ck_bank_entry_industry"),
        ),
        sa.CheckConstraint(
            "uk_category IS NULL OR uk_category IN ('A', 'B', 'C')",
            name=op.f("ck_bank_entry_uk_category"),
        ),
        sa.CheckConstraint(
            "false_positive_count >= 0", name=op.f("ck_bank_entry_false_positive_count")
        ),
        sa.ForeignKeyConstraint(
            ["bank_id"],
            ["bank.id"],
            name=op.f("fk_bank_entry_bank_id_bank"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["bank_import.id"],
            name=op.f("fk_bank_entry_import_id_bank_import"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_entry")),
        sa.UniqueConstraint(
            "bank_id",
            "signal_type",
            "value_digest",
            name=op.f("uq_bank_entry_bank_id_signal_type_value_digest"),
        ),
    )
    op.create_index(
        "ix_bank_entry_signal_type_value_digest",
        "bank_entry",
        ["signal_type", "value_digest"],
        unique=False,
    )
    op.create_index(
        "ix_bank_entry_bank_id_external_id", "bank_entry", ["bank_id", "external_id"], unique=False
    )
    op.create_index("ix_bank_entry_import_id", "bank_entry", ["import_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_bank_entry_import_id", table_name="bank_entry")
    op.drop_index("ix_bank_entry_bank_id_external_id", table_name="bank_entry")
    op.drop_index("ix_bank_entry_signal_type_value_digest", table_name="bank_entry")
    op.drop_table("bank_entry")
    op.drop_table("bank_import")
    op.drop_table("bank")
