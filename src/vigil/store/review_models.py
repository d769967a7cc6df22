"""ORM models of the review room and the web console: review tasks and the files they hold,
every reveal of a file and every decision, wellbeing settings and exposure, and the console's
sign-in sessions.

A task is a group of items a reviewer decides at once (copies of one picture, found for one
or many uploads); an item is one file (`content`) as one upload (`upload_event`, when the
platform sent one) brought it. Business rules live in `vigil.review`; these classes only
describe the tables. Any change here needs a new migration under `migrations/versions/`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
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

TASK_SOURCES = ("match", "flag", "user_report", "escalation")
"""What opened a task: a bank match, an external classifier's flag, a user's report, or a
person escalating content by hand."""
TASK_STATUSES = ("open", "decided")
TASK_QUEUES = ("escalated", "second_opinion", "main")
"""Queues in the order they are worked: imminent danger, then tasks awaiting a second
reviewer, then everything else."""
VERDICTS = ("confirmed", "false_positive")
DECISION_KINDS = ("confirm", "false_positive", "escalate", "second_opinion", "auto_confirm")
REVEAL_SCOPES = ("thumbnail", "keyframes", "full")
"""`full` is the whole file (the full-size picture, or the video itself); only a full reveal
makes a file "viewed by the provider" (`fileViewedByEsp`)."""


class ReviewTask(Base):
    """A group of related items decided together, with what orders it in the queue and who
    holds it (a lease that expires, so an abandoned task returns to the queue)."""

    __tablename__ = "review_task"
    __table_args__ = (
        CheckConstraint(_in("source", TASK_SOURCES), name="source"),
        CheckConstraint(_in("status", TASK_STATUSES), name="status"),
        CheckConstraint(_in("queue", TASK_QUEUES), name="queue"),
        CheckConstraint(_in("verdict", VERDICTS, nullable=True), name="verdict"),
        CheckConstraint("severity BETWEEN 0 AND 4", name="severity"),
        Index("ix_review_task_status_queue", "status", "queue"),
        Index("ix_review_task_account_id", "account_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")
    queue: Mapped[str] = mapped_column(String(16), default="main")
    account_id: Mapped[str | None] = mapped_column(String(200))
    """The uploader of the first item, when the platform named one (related-task lookups)."""
    imminent_danger: Mapped[bool] = mapped_column(Boolean, default=False)
    escalation_reason: Mapped[str | None] = mapped_column(Text)
    severity: Mapped[int] = mapped_column(Integer, default=0)
    """`vigil.banks.severity_rank` of the most severe matched entry: A1 4, A2 3, B1 2, B2 1,
    0 when none is classified."""
    exact_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    """Every match is exact (MD5/SHA-256) to a verified bank: such tasks come after the rest."""
    flag_details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """For flags and user reports: who sent it, the classifier's label and score, the reason."""
    created: Mapped[datetime] = mapped_column(default=utcnow)
    updated: Mapped[datetime] = mapped_column(default=utcnow)
    lease_user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("app_user.id", ondelete="SET NULL")
    )
    lease_expires: Mapped[datetime | None] = mapped_column()
    assigned_user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("app_user.id", ondelete="SET NULL")
    )
    """Second opinion asked of one person; None with queue `second_opinion` means any lead."""
    excluded_user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("app_user.id", ondelete="SET NULL")
    )
    """Who asked for the second opinion: they may not give it."""
    disagreement: Mapped[bool] = mapped_column(Boolean, default=False)
    verdict: Mapped[str | None] = mapped_column(String(16))
    decided: Mapped[datetime | None] = mapped_column()
    decided_by: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("app_user.id", ondelete="SET NULL")
    )
    """None for a decision taken by a bank policy."""

    items: Mapped[list[ReviewItem]] = relationship(
        back_populates="task", order_by="ReviewItem.id", cascade="all, delete-orphan"
    )


class ReviewItem(Base):
    """One file in a task, as one upload brought it; after a confirmation, whether a person
    at the provider viewed the whole file, who and when (from recorded reveals only)."""

    __tablename__ = "review_item"
    __table_args__ = (
        UniqueConstraint("task_id", "content_id", "upload_event_id"),
        Index("ix_review_item_content_id", "content_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    task_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("review_task.id", ondelete="CASCADE")
    )
    content_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("content.id", ondelete="CASCADE")
    )
    upload_event_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("upload_event.id", ondelete="SET NULL")
    )
    created: Mapped[datetime] = mapped_column(default=utcnow)
    viewed: Mapped[bool] = mapped_column(Boolean, default=False)
    viewed_by: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("app_user.id", ondelete="SET NULL")
    )
    viewed_at: Mapped[datetime | None] = mapped_column()

    task: Mapped[ReviewTask] = relationship(back_populates="items")


class ReviewReveal(Base):
    """One time a reviewer saw a file unblurred: what was shown, when, and for how long."""

    __tablename__ = "review_reveal"
    __table_args__ = (
        CheckConstraint(_in("scope", REVEAL_SCOPES), name="scope"),
        Index("ix_review_reveal_item_id", "item_id"),
        Index("ix_review_reveal_user_id_started", "user_id", "started"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    item_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("review_item.id", ondelete="CASCADE")
    )
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("app_user.id"))
    scope: Mapped[str] = mapped_column(String(16))
    started: Mapped[datetime] = mapped_column(default=utcnow)
    ended: Mapped[datetime | None] = mapped_column()


class ReviewDecision(Base):
    """Every decision on a task, in order, including second opinions and policy decisions."""

    __tablename__ = "review_decision"
    __table_args__ = (
        CheckConstraint(_in("kind", DECISION_KINDS), name="kind"),
        Index("ix_review_decision_task_id", "task_id"),
        Index("ix_review_decision_user_id_created", "user_id", "created"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    task_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("review_task.id", ondelete="CASCADE")
    )
    user_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("app_user.id"))
    """None when a bank policy decided."""
    kind: Mapped[str] = mapped_column(String(16))
    industry: Mapped[str | None] = mapped_column(String(2))
    annotations: Mapped[list[str]] = mapped_column(JSON, default=list)
    publicly_available: Mapped[bool | None] = mapped_column(Boolean)
    viewed_items: Mapped[list[int]] = mapped_column(JSON, default=list)
    """Items the decider declared viewed in full (each backed by a recorded full reveal)."""
    notes: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    """The escalation's reason, or why a second opinion was asked."""
    proposed_verdict: Mapped[str | None] = mapped_column(String(16))
    """For a second-opinion request: what the asker would have decided, if anything."""
    created: Mapped[datetime] = mapped_column(default=utcnow)


class WellbeingSettings(Base):
    """How media is shown. The row with no user is the organisation's default; a user's row
    overrides the fields it sets (None inherits)."""

    __tablename__ = "wellbeing_settings"
    __table_args__ = (
        UniqueConstraint("user_id"),
        CheckConstraint("blur_radius IS NULL OR blur_radius BETWEEN 0 AND 64", name="blur"),
        CheckConstraint("break_minutes IS NULL OR break_minutes BETWEEN 1 AND 480", name="brk"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("app_user.id", ondelete="CASCADE")
    )
    blur_radius: Mapped[float | None] = mapped_column(Float)
    greyscale: Mapped[bool | None] = mapped_column(Boolean)
    thumbnails_first: Mapped[bool | None] = mapped_column(Boolean)
    break_minutes: Mapped[int | None] = mapped_column(Integer)
    updated: Mapped[datetime] = mapped_column(default=utcnow)


class ReviewExposure(Base):
    """A reviewer's own daily exposure: time on review screens, time with media revealed."""

    __tablename__ = "review_exposure"
    __table_args__ = (UniqueConstraint("user_id", "day"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("app_user.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    """The UTC day."""
    screen_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    reveal_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    reveals: Mapped[int] = mapped_column(Integer, default=0)
    decisions: Mapped[int] = mapped_column(Integer, default=0)


class WebSession(Base):
    """A signed-in console session. Only the SHA-256 of the cookie's secret is kept; the CSRF
    token is bound to the session."""

    __tablename__ = "web_session"
    __table_args__ = (Index("ix_web_session_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("app_user.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    expires: Mapped[datetime] = mapped_column()
