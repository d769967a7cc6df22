"""ORM models of the reporting room: reports to the CyberTipline with their files, and the
preservation requests a submission leaves for the evidence vault.

A report moves draft -> approved -> submitted -> finished (or retracted / failed); its files
move pending -> uploaded -> described. Every step the clearinghouse confirmed is stored as it
is confirmed, so a submission interrupted anywhere resumes where it stopped. Business rules
live in `vigil.reporting`; these classes only describe the tables. Any change here needs a
new migration under `migrations/versions/`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vigil.store.bank_models import _in
from vigil.store.models import Base, BigIntPK
from vigil.store.types import utcnow

REPORT_STATUSES = ("draft", "approved", "submitted", "finished", "retracted", "failed")
"""`submitted`: the clearinghouse gave a report id; files are being uploaded and described.
`retracted` and `failed` are terminal, like `finished`."""
REPORT_ENVIRONMENTS = ("test", "production")
FILE_STATES = ("pending", "uploaded", "described")
FILE_RELEVANCE = ("Reported", "Supplemental Reported")
PRESERVATION_REASONS = ("report", "preservation_request", "legal_hold", "voluntary")


class Report(Base):
    """One report about one reported account (all of that account's files in the incident)."""

    __tablename__ = "report"
    __table_args__ = (
        CheckConstraint(_in("status", REPORT_STATUSES), name="status"),
        CheckConstraint(_in("environment", REPORT_ENVIRONMENTS, nullable=True), name="env"),
        Index("ix_report_status", "status"),
        Index("ix_report_account_key", "account_key"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    account_key: Mapped[str] = mapped_column(String(200))
    """The reported account's id as the platform gave it, or `""` when it named no uploader."""
    status: Mapped[str] = mapped_column(String(16), default="draft")
    industry: Mapped[str | None] = mapped_column(String(2))
    """The most severe Industry Classification among the files."""
    escalation_reason: Mapped[str | None] = mapped_column(Text)
    auto_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    """Built only from bank-policy decisions: no file was viewed."""
    viral: Mapped[bool] = mapped_column(Boolean, default=False)
    task_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    bundled_drafts: Mapped[int] = mapped_column(Integer, default=0)
    """Drafts merged into this one (reports the clearinghouse did not have to deduplicate)."""
    created: Mapped[datetime] = mapped_column(default=utcnow)
    updated: Mapped[datetime] = mapped_column(default=utcnow)
    approved_by: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("app_user.id", ondelete="SET NULL")
    )
    approved_at: Mapped[datetime | None] = mapped_column()
    auto_approved: Mapped[bool] = mapped_column(Boolean, default=False)
    environment: Mapped[str | None] = mapped_column(String(16))
    """Where it goes (set on approval): the clearinghouse's `test` or `production` service."""
    remote_report_id: Mapped[str | None] = mapped_column(String(64))
    submitted_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    retracted_at: Mapped[datetime | None] = mapped_column()
    xml: Mapped[str | None] = mapped_column(Text)
    """The report XML exactly as submitted."""
    needs_restart: Mapped[bool] = mapped_column(Boolean, default=False)
    """A file upload's outcome is unknown (the connection dropped): the remote report is
    retracted and the report submitted again, so no finished report can hold a file twice."""
    abandoned_report_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Remote reports given up on that way (retracted, never finished)."""
    lease_until: Mapped[datetime | None] = mapped_column()
    """Held by one sender until then (several workers never send the same report at once)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[int | None] = mapped_column(Integer)

    files: Mapped[list[ReportFile]] = relationship(
        back_populates="report", order_by="ReportFile.id", cascade="all, delete-orphan"
    )


class ReportFile(Base):
    """One file of a report, with what the reviewers decided about it and what the
    clearinghouse acknowledged."""

    __tablename__ = "report_file"
    __table_args__ = (
        CheckConstraint(_in("state", FILE_STATES), name="state"),
        CheckConstraint(_in("relevance", FILE_RELEVANCE), name="relevance"),
        UniqueConstraint("report_id", "item_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    report_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("report.id", ondelete="CASCADE"))
    item_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("review_item.id", ondelete="SET NULL")
    )
    content_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("content.id"))
    upload_event_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("upload_event.id", ondelete="SET NULL")
    )
    state: Mapped[str] = mapped_column(String(16), default="pending")
    viewed: Mapped[bool] = mapped_column(Boolean, default=False)
    """A person at the provider saw the whole file (from recorded reveals only)."""
    publicly_available: Mapped[bool | None] = mapped_column(Boolean)
    annotations: Mapped[list[str]] = mapped_column(JSON, default=list)
    industry: Mapped[str | None] = mapped_column(String(2))
    relevance: Mapped[str] = mapped_column(String(32), default="Reported")
    remote_file_id: Mapped[str | None] = mapped_column(String(64))
    remote_md5: Mapped[str | None] = mapped_column(String(32))

    report: Mapped[Report] = relationship(back_populates="files")


class PreservationRequest(Base):
    """What must be kept, why and until when: written when a report is submitted (one year,
    18 U.S.C. 2258A(h)); the evidence vault honours it."""

    __tablename__ = "preservation_request"
    __table_args__ = (CheckConstraint(_in("reason", PRESERVATION_REASONS), name="reason"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    reason: Mapped[str] = mapped_column(String(32))
    report_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("report.id", ondelete="SET NULL")
    )
    account_key: Mapped[str | None] = mapped_column(String(200))
    content_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    upload_event_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    preserve_until: Mapped[datetime] = mapped_column()
    honoured_at: Mapped[datetime | None] = mapped_column()
    """When the vault took it in (None until then)."""
    reference: Mapped[str | None] = mapped_column(String(200))
    """The legal request it answers (`LR-000012`), when it came from the legal desk."""
