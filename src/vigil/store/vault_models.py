"""ORM models of the evidence vault and the audit log.

Vault: `vault_item` (one sealed piece of evidence: its data key wrapped by the key-encryption
key is kept here, apart from the bytes, so deleting it shreds the item wherever copies of
the bytes went), `vault_clock` (the reasons an item is kept, each with its own end),
`legal_hold`, `vault_destruction` (the record of what was destroyed, when and why) and
`vault_export` (a bulk export waiting for a second person's approval).

Audit: `audit_event`, an append-only hash chain, and `audit_head`, its single-row head,
locked by every writer so concurrent writers never fork the chain.

Business rules live in `vigil.vault` and `vigil.audit`. Any change here needs a new
migration under `migrations/versions/`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vigil.store.bank_models import _in
from vigil.store.models import Base, BigIntPK
from vigil.store.types import utcnow

VAULT_ITEM_KINDS = ("content", "upload", "account", "document", "production")
"""`content`: a file's bytes; `upload`: what the platform sent with an upload; `account`:
the reported account's data from the connector; `document`: a legal document (PDF);
`production`: an encrypted production package made for legal process."""
CLOCK_REASONS = ("report", "preservation_request", "legal_hold", "voluntary")
EXPORT_STATUSES = ("pending", "approved", "refused", "done")


class VaultItem(Base):
    """One sealed piece of evidence. `wrapped_key` is None once the item is shredded."""

    __tablename__ = "vault_item"
    __table_args__ = (
        CheckConstraint(_in("kind", VAULT_ITEM_KINDS), name="kind"),
        Index("ix_vault_item_content_id", "content_id"),
        Index("ix_vault_item_account_key", "account_key"),
        Index("ix_vault_item_sha256", "sha256"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the plaintext, checked on every read."""
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str | None] = mapped_column(String(100))
    content_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("content.id", ondelete="SET NULL")
    )
    account_key: Mapped[str | None] = mapped_column(String(200))
    label: Mapped[str | None] = mapped_column(String(255))
    """A short description (`upload 17 of acct-42`, `subpoena 2026-1234.pdf`)."""
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Authenticated metadata (bound into the ciphertext's associated data with the id)."""
    storage: Mapped[str] = mapped_column(String(16))
    """Which backend holds the bytes: `file` or `s3`."""
    blob_key: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str] = mapped_column(String(64))
    """Which key-encryption key wrapped the data key."""
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    shredded_at: Mapped[datetime | None] = mapped_column()

    clocks: Mapped[list[VaultClock]] = relationship(
        back_populates="item", order_by="VaultClock.id", cascade="all, delete-orphan"
    )


class LegalHold(Base):
    """Keep everything it names until released (a litigation hold, an investigation)."""

    __tablename__ = "legal_hold"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created: Mapped[datetime] = mapped_column(default=utcnow)
    released_by: Mapped[str | None] = mapped_column(String(200))
    released_at: Mapped[datetime | None] = mapped_column()


class VaultClock(Base):
    """One reason to keep an item, until `expires_at` (None: until released)."""

    __tablename__ = "vault_clock"
    __table_args__ = (
        CheckConstraint(_in("reason", CLOCK_REASONS), name="reason"),
        Index("ix_vault_clock_item_id", "item_id"),
        Index("ix_vault_clock_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    item_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("vault_item.id", ondelete="CASCADE")
    )
    reason: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(200))
    """The report id, preservation request, hold id or note the clock comes from."""
    hold_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("legal_hold.id", ondelete="SET NULL")
    )
    starts_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    renewals: Mapped[int] = mapped_column(Integer, default=0)
    released_at: Mapped[datetime | None] = mapped_column()

    item: Mapped[VaultItem] = relationship(back_populates="clocks")


class VaultDestruction(Base):
    """What was destroyed, when, why and by whom (kept after the item is gone)."""

    __tablename__ = "vault_destruction"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    item_id: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(32))
    """`expired` or `destroy_request` (law enforcement's request to destroy)."""
    reference: Mapped[str | None] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class VaultExport(Base):
    """An export of items: more than the set number needs a second authorised person."""

    __tablename__ = "vault_export"
    __table_args__ = (CheckConstraint(_in("status", EXPORT_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    item_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    reason: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column()


class AuditEvent(Base):
    """One link of the audit chain: `hash` is SHA-256 over the canonical encoding of the
    row's fields and `prev_hash`. Never updated, never deleted."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_object", "object_type", "object_id"),
        Index("ix_audit_event_at", "at"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(200))
    """`user:<name>`, `token:<name>`, `cli:<os user>` or `system`."""
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """The chain's head (one row, id 1): every writer locks it, so links are added one at a
    time and each points at the one before."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))
