"""ORM models of the banks room: `bank`, `bank_entry` and `bank_import`.

A bank is a named hash list; an entry is one value of one signal type in it, with its
classification and where it came from; an import is the record of one file read into a bank.
The business rules (validation, idempotent imports, what "active" means) live in
`vigil.banks`; these classes only describe the tables. They are registered on `Base.metadata`
whenever `vigil.store` is imported (its `__init__` imports this module).

Like `signal`, an entry's value can be long (vPDQ), so uniqueness within a bank goes through
`value_digest` (SHA-256 of the value), kept in step with `value` automatically.

Any change here needs a new migration under `migrations/versions/`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from vigil.store.models import Base, BigIntPK, _value_digest_default, value_digest
from vigil.store.types import utcnow

BANK_KINDS = ("match", "suppress")
"""`match`: a hit is a match. `suppress`: known false positives; a hit cancels matches."""
BANK_SOURCES = ("own", "imported", "exchange")
BANK_TRUST = ("verified", "unverified")
INDUSTRY_CODES = ("A1", "A2", "B1", "B2")
UK_CATEGORIES = ("A", "B", "C")
IMPORT_STATUSES = ("running", "finished", "failed")
REVIEW_POLICIES = ("review", "auto_confirm_exact")
"""`review`: every match waits for a person. `auto_confirm_exact`: exact matches to this
(verified) bank are confirmed without anyone viewing them (recorded as not viewed)."""

PDQ_DEFAULT_THRESHOLD = 31
VPDQ_DEFAULT_FRAME_THRESHOLD = 31
VPDQ_DEFAULT_COMPARED_SHARE = 80.0
VPDQ_DEFAULT_QUERY_SHARE = 0.0


def _in(column: str, values: tuple[str, ...], *, nullable: bool = False) -> str:
    listed = ", ".join(f"'{value}'" for value in values)
    check = f"{column} IN ({listed})"
    return f"{column} IS NULL OR {check}" if nullable else check


class Bank(Base):
    """A named hash list with its matching settings."""

    __tablename__ = "bank"
    __table_args__ = (
        CheckConstraint(_in("kind", BANK_KINDS), name="kind"),
        CheckConstraint(_in("source", BANK_SOURCES), name="source"),
        CheckConstraint(_in("trust", BANK_TRUST), name="trust"),
        CheckConstraint("pdq_threshold BETWEEN 0 AND 64", name="pdq_threshold"),
        CheckConstraint("vpdq_frame_threshold BETWEEN 0 AND 64", name="vpdq_frame_threshold"),
        CheckConstraint("vpdq_compared_share BETWEEN 0 AND 100", name="vpdq_compared_share"),
        CheckConstraint("vpdq_query_share BETWEEN 0 AND 100", name="vpdq_query_share"),
        CheckConstraint(_in("review_policy", REVIEW_POLICIES), name="review_policy"),
        CheckConstraint(
            "review_policy = 'review' OR trust = 'verified'", name="auto_confirm_verified"
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    """Slug: lower-case letters, digits, `.`, `_`, `-` (validated by `vigil.banks`)."""
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16), default="match")
    source: Mapped[str] = mapped_column(String(16), default="own")
    source_name: Mapped[str | None] = mapped_column(String(200))
    """The imported list's or the exchange's name, for `imported` and `exchange` banks."""
    trust: Mapped[str] = mapped_column(String(16), default="unverified")
    default_classification: Mapped[str | None] = mapped_column(String(200))
    """Classification text (`A1`, `uk:B`, labels...) for entries that carry none."""
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    pdq_threshold: Mapped[int] = mapped_column(Integer, default=PDQ_DEFAULT_THRESHOLD)
    vpdq_frame_threshold: Mapped[int] = mapped_column(Integer, default=VPDQ_DEFAULT_FRAME_THRESHOLD)
    vpdq_compared_share: Mapped[float] = mapped_column(Float, default=VPDQ_DEFAULT_COMPARED_SHARE)
    vpdq_query_share: Mapped[float] = mapped_column(Float, default=VPDQ_DEFAULT_QUERY_SHARE)
    review_policy: Mapped[str] = mapped_column(String(24), default="review")
    created: Mapped[datetime] = mapped_column(default=utcnow)
    updated: Mapped[datetime] = mapped_column(default=utcnow)
    """Last change to the bank's settings or entries."""

    # No collections of entries or imports: a bank can hold millions of entries, so they
    # are only ever read through queries (`vigil.banks.iter_entries`), never loaded whole.
    # Deleting a bank deletes its entries and imports in the database (ON DELETE CASCADE).

    def __repr__(self) -> str:
        return f"Bank(id={self.id!r}, name={self.name!r}, kind={self.kind!r})"


class BankImport(Base):
    """One file read into a bank: what it was, who ran it, and what it changed."""

    __tablename__ = "bank_import"
    __table_args__ = (CheckConstraint(_in("status", IMPORT_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    bank_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("bank.id", ondelete="CASCADE"))
    format: Mapped[str] = mapped_column(String(16))
    file_name: Mapped[str] = mapped_column(String(255))
    """The file's base name (not its full path)."""
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    file_bytes: Mapped[int | None] = mapped_column(BigInteger)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Import options in force (signal type, VICS region, list name...)."""
    status: Mapped[str] = mapped_column(String(16), default="running")
    error: Mapped[str | None] = mapped_column(Text)
    added: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    rejected_sample: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """The first rejected rows: `{"position": n, "reason": "..."}`."""
    skipped_reasons: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    """Skipped values counted by reason (unsupported fingerprint type, ...)."""
    actor: Mapped[str] = mapped_column(String(200))
    started: Mapped[datetime] = mapped_column(default=utcnow)
    finished: Mapped[datetime | None] = mapped_column()

    bank: Mapped[Bank] = relationship()

    def __repr__(self) -> str:
        return (
            f"BankImport(id={self.id!r}, bank_id={self.bank_id!r}, format={self.format!r},"
            f" status={self.status!r})"
        )


class BankEntry(Base):
    """One value of one signal type in a bank, with its classification and provenance."""

    __tablename__ = "bank_entry"
    __table_args__ = (
        UniqueConstraint("bank_id", "signal_type", "value_digest"),
        Index("ix_bank_entry_signal_type_value_digest", "signal_type", "value_digest"),
        Index("ix_bank_entry_bank_id_external_id", "bank_id", "external_id"),
        Index("ix_bank_entry_import_id", "import_id"),
        Index("ix_bank_entry_disabled_until", "disabled_until"),
        CheckConstraint(_in("industry", INDUSTRY_CODES, nullable=True), name="industry"),
        CheckConstraint(_in("uk_category", UK_CATEGORIES, nullable=True), name="uk_category"),
        CheckConstraint("false_positive_count >= 0", name="false_positive_count"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    bank_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("bank.id", ondelete="CASCADE"))
    signal_type: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)
    """Canonical text of the value (as `SignalType.parse` returns it)."""
    value_digest: Mapped[str] = mapped_column(String(64), default=_value_digest_default)
    industry: Mapped[str | None] = mapped_column(String(2))
    """Industry Classification System: A1, A2, B1, B2."""
    uk_category: Mapped[str | None] = mapped_column(String(1))
    """UK grading: A, B, C."""
    vics_category: Mapped[int | None] = mapped_column(Integer)
    """The VICS `Category` integer as given; its meaning depends on `vics_region`."""
    vics_region: Mapped[str | None] = mapped_column(String(16))
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    list_name: Mapped[str | None] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(200))
    """The entry's id in its source list (VICS MediaID, hash-sharing entry id, ...)."""
    member: Mapped[str | None] = mapped_column(String(200))
    """Who contributed it at the source (a hash-sharing member)."""
    import_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("bank_import.id", ondelete="SET NULL")
    )
    """The import that created the entry (None when added by hand)."""
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_until: Mapped[datetime | None] = mapped_column()
    """Not matched until then; active when None or in the past."""
    note: Mapped[str | None] = mapped_column(Text)
    false_positive_count: Mapped[int] = mapped_column(Integer, default=0)

    bank: Mapped[Bank] = relationship()

    @validates("value")
    def _keep_digest(self, _key: str, value: str) -> str:
        self.value_digest = value_digest(value)
        return value

    def __repr__(self) -> str:
        return (
            f"BankEntry(id={self.id!r}, bank_id={self.bank_id!r}, signal_type={self.signal_type!r})"
        )
