"""ORM model of the scan pipeline's findings: `match`, one row per (content, bank entry).

A match keeps a snapshot of what it matched (bank name, classification) so it still says
what happened after the bank or entry is deleted; the foreign keys then become NULL.
Any change here needs a new migration under `migrations/versions/`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vigil.store.models import Base, BigIntPK
from vigil.store.types import utcnow


class Match(Base):
    """Content found in a bank: by which signal, how closely, through which query variant."""

    __tablename__ = "match"
    __table_args__ = (
        UniqueConstraint("content_id", "entry_id", "signal_type"),
        Index(None, "bank_id"),
        Index(None, "entry_id"),
        Index(None, "created"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    content_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("content.id", ondelete="CASCADE"), index=True
    )
    bank_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("bank.id", ondelete="SET NULL")
    )
    entry_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("bank_entry.id", ondelete="SET NULL")
    )
    bank_name: Mapped[str] = mapped_column(String(64))
    bank_kind: Mapped[str] = mapped_column(String(16))
    signal_type: Mapped[str] = mapped_column(String(64))
    distance: Mapped[int] = mapped_column(Integer)
    dihedral: Mapped[int | None] = mapped_column(Integer)
    """PDQ: which of the 8 dihedral variants of the query matched (0 = as uploaded)."""
    query_variant: Mapped[str | None] = mapped_column(String(64))
    """PDQ: which query-side variant matched (`original`, `trimmed`, a crop...)."""
    classification: Mapped[str | None] = mapped_column(String(200))
    suppressed: Mapped[bool] = mapped_column(Boolean, default=False)
    """True when a suppression bank also matched the content: kept for the record, not acted on."""
    created: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
