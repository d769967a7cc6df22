"""The legal-process desk: requests, their targets and checklists, productions, the
law-enforcement portal's officers, agency domains and sessions, and the mail outbox; vault
items may now be production packages.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


OLD_KINDS = "kind IN ('content', 'upload', 'account', 'document')"
NEW_KINDS = "kind IN ('content', 'upload', 'account', 'document', 'production')"


def _vault_item_kinds(check: str) -> None:
    with op.batch_alter_table("vault_item", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_vault_item_kind"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_vault_item_kind"), check)


def upgrade() -> None:
    _vault_item_kinds(NEW_KINDS)
    with op.batch_alter_table("preservation_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reference", sa.String(length=200), nullable=True))
    op.create_table(
        "legal_agency_domain",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("agency", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('allowed', 'pending', 'refused')",
            name=op.f("ck_legal_agency_domain_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_agency_domain")),
        sa.UniqueConstraint("domain", name=op.f("uq_legal_agency_domain_domain")),
    )
    op.create_table(
        "legal_officer",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("agency", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("confirm_hash", sa.String(length=64), nullable=True),
        sa.Column("confirm_expires", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('unconfirmed', 'pending_vetting', 'active', 'refused', 'disabled')",
            name=op.f("ck_legal_officer_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_officer")),
        sa.UniqueConstraint("email", name=op.f("uq_legal_officer_email")),
    )
    op.create_table(
        "mail_message",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("to_address", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed')", name=op.f("ck_mail_message_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_message")),
    )
    with op.batch_alter_table("mail_message", schema=None) as batch_op:
        batch_op.create_index("ix_mail_message_status", ["status"], unique=False)

    op.create_table(
        "legal_portal_session",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("officer_id", sa.BigInteger(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["officer_id"],
            ["legal_officer.id"],
            name=op.f("fk_legal_portal_session_officer_id_legal_officer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_portal_session")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_legal_portal_session_secret_hash")),
    )
    with op.batch_alter_table("legal_portal_session", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_legal_portal_session_officer_id"), ["officer_id"], unique=False
        )

    op.create_table(
        "legal_request",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("officer_id", sa.BigInteger(), nullable=True),
        sa.Column("requester_name", sa.String(length=200), nullable=False),
        sa.Column("requester_email", sa.String(length=254), nullable=True),
        sa.Column("requester_phone", sa.String(length=40), nullable=True),
        sa.Column("agency", sa.String(length=200), nullable=False),
        sa.Column("jurisdiction", sa.String(length=200), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("case_number", sa.String(length=100), nullable=True),
        sa.Column("document_reference", sa.String(length=200), nullable=True),
        sa.Column("issued_on", sa.DateTime(timezone=True), nullable=True),
        sa.Column("return_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("records_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("records_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("emergency_categories", sa.JSON(), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("nondisclosure_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("nondisclosure_scope", sa.Text(), nullable=True),
        sa.Column("nondisclosure_lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("document_item_id", sa.BigInteger(), nullable=True),
        sa.Column("signals", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assignee_id", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "channel IN ('portal', 'api', 'manual')", name=op.f("ck_legal_request_channel")
        ),
        sa.CheckConstraint(
            "kind IN ('preservation', 'subpoena', 'order_2703d', 'warrant', 'emergency',"
            " 'nondisclosure', 'foreign', 'destroy')",
            name=op.f("ck_legal_request_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('received', 'verified', 'produced', 'closed', 'refused')",
            name=op.f("ck_legal_request_status"),
        ),
        sa.ForeignKeyConstraint(
            ["assignee_id"],
            ["app_user.id"],
            name=op.f("fk_legal_request_assignee_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["document_item_id"],
            ["vault_item.id"],
            name=op.f("fk_legal_request_document_item_id_vault_item"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["officer_id"],
            ["legal_officer.id"],
            name=op.f("fk_legal_request_officer_id_legal_officer"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["legal_request.id"],
            name=op.f("fk_legal_request_parent_id_legal_request"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_request")),
    )
    with op.batch_alter_table("legal_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_legal_request_officer_id"), ["officer_id"], unique=False
        )
        batch_op.create_index("ix_legal_request_status_due", ["status", "due_at"], unique=False)

    op.create_table(
        "legal_check",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.Column("item", sa.String(length=32), nullable=False),
        sa.Column("done_by_id", sa.BigInteger(), nullable=False),
        sa.Column("done_by", sa.String(length=64), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["done_by_id"], ["app_user.id"], name=op.f("fk_legal_check_done_by_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["legal_request.id"],
            name=op.f("fk_legal_check_request_id_legal_request"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_check")),
        sa.UniqueConstraint("request_id", "item", name=op.f("uq_legal_check_request_id_item")),
    )
    op.create_table(
        "legal_production",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("package_item_id", sa.BigInteger(), nullable=True),
        sa.Column("package_sha256", sa.String(length=64), nullable=False),
        sa.Column("custodian", sa.String(length=200), nullable=False),
        sa.Column("built_by", sa.String(length=64), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("download_hash", sa.String(length=64), nullable=True),
        sa.Column("download_expires", sa.DateTime(timezone=True), nullable=False),
        sa.Column("downloaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("downloaded_by", sa.String(length=254), nullable=True),
        sa.Column("download_address", sa.String(length=45), nullable=True),
        sa.CheckConstraint(
            "status IN ('ready', 'downloaded', 'expired', 'revoked')",
            name=op.f("ck_legal_production_status"),
        ),
        sa.ForeignKeyConstraint(
            ["package_item_id"],
            ["vault_item.id"],
            name=op.f("fk_legal_production_package_item_id_vault_item"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["legal_request.id"],
            name=op.f("fk_legal_production_request_id_legal_request"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_production")),
        sa.UniqueConstraint("download_hash", name=op.f("uq_legal_production_download_hash")),
    )
    with op.batch_alter_table("legal_production", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_legal_production_request_id"), ["request_id"], unique=False
        )

    op.create_table(
        "legal_target",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.Column("account_id", sa.String(length=256), nullable=True),
        sa.Column("linked", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('account', 'screen_name', 'content_ref', 'hash', 'report')",
            name=op.f("ck_legal_target_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["legal_request.id"],
            name=op.f("fk_legal_target_request_id_legal_request"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_target")),
    )
    with op.batch_alter_table("legal_target", schema=None) as batch_op:
        batch_op.create_index("ix_legal_target_account_id", ["account_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_legal_target_request_id"), ["request_id"], unique=False
        )


def downgrade() -> None:
    op.execute("DELETE FROM vault_item WHERE kind = 'production'")
    _vault_item_kinds(OLD_KINDS)
    with op.batch_alter_table("preservation_request", schema=None) as batch_op:
        batch_op.drop_column("reference")
    with op.batch_alter_table("legal_target", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_legal_target_request_id"))
        batch_op.drop_index("ix_legal_target_account_id")

    op.drop_table("legal_target")
    with op.batch_alter_table("legal_production", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_legal_production_request_id"))

    op.drop_table("legal_production")
    op.drop_table("legal_check")
    with op.batch_alter_table("legal_request", schema=None) as batch_op:
        batch_op.drop_index("ix_legal_request_status_due")
        batch_op.drop_index(batch_op.f("ix_legal_request_officer_id"))

    op.drop_table("legal_request")
    with op.batch_alter_table("legal_portal_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_legal_portal_session_officer_id"))

    op.drop_table("legal_portal_session")
    with op.batch_alter_table("mail_message", schema=None) as batch_op:
        batch_op.drop_index("ix_mail_message_status")

    op.drop_table("mail_message")
    op.drop_table("legal_officer")
    op.drop_table("legal_agency_domain")
