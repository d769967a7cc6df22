"""ORM models of the storage room.

`content` holds one row per distinct file (by SHA-256); `signal` holds the hashes computed
for it. Signal values can be long (a vPDQ value is one line per sampled frame), longer than
a PostgreSQL B-tree index entry may be, so uniqueness and look-ups go through
`value_digest`, the SHA-256 of the value, which is filled in automatically.

Any change here needs a new migration under `migrations/versions/`; the test suite checks
that the models and the migrations agree.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine.interfaces import ExecutionContext
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from vigil.store.types import UTCDateTime, utcnow

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names are deterministic so later migrations can refer to them on both dialects."""

BigIntPK = BigInteger().with_variant(Integer(), "sqlite")
"""64-bit keys on PostgreSQL; INTEGER on SQLite, where only INTEGER aliases the rowid."""

MEDIA_TYPES = ("image", "video")


class Base(DeclarativeBase):
    """Declarative base of every Vigil table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


def value_digest(value: str) -> str:
    """SHA-256 (hex) of a signal value's text: the indexed stand-in for the value itself."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _value_digest_default(context: ExecutionContext) -> str:
    params: dict[str, Any] = context.get_current_parameters()  # type: ignore[attr-defined]
    return value_digest(params["value"])


class Content(Base):
    """One distinct file, identified by its SHA-256."""

    __tablename__ = "content"
    __table_args__ = (
        CheckConstraint(
            "media_type IS NULL OR media_type IN ('image', 'video')", name="media_type"
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    md5: Mapped[str | None] = mapped_column(String(32), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    """File size in bytes."""
    media_type: Mapped[str | None] = mapped_column(String(8))
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)

    signals: Mapped[list[ContentSignal]] = relationship(
        back_populates="content",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ContentSignal.id",
    )

    def __repr__(self) -> str:
        return f"Content(id={self.id!r}, sha256={self.sha256!r}, media_type={self.media_type!r})"


class ContentSignal(Base):
    """One hash value (of one signal type) computed for a content row."""

    __tablename__ = "signal"
    __table_args__ = (
        UniqueConstraint("content_id", "signal_type", "value_digest"),
        Index("ix_signal_signal_type_value_digest", "signal_type", "value_digest"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    content_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("content.id", ondelete="CASCADE")
    )
    signal_type: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)
    """Canonical text of the value: PDQ hex, vPDQ's multi-line text, an MD5 hex, ..."""
    value_digest: Mapped[str] = mapped_column(String(64), default=_value_digest_default)
    """SHA-256 (hex) of `value`, kept in step automatically."""
    quality: Mapped[int | None] = mapped_column(Integer)
    created: Mapped[datetime] = mapped_column(default=utcnow)

    content: Mapped[Content] = relationship(back_populates="signals")

    @validates("value")
    def _keep_digest(self, _key: str, value: str) -> str:
        self.value_digest = value_digest(value)
        return value

    def __repr__(self) -> str:
        return (
            f"ContentSignal(id={self.id!r}, content_id={self.content_id!r},"
            f" signal_type={self.signal_type!r}, quality={self.quality!r})"
        )
