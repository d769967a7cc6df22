"""ORM models of the integration service: who may call it (`api_token`, `app_user`), what the
platform told us about an upload (`upload_event`), what it asked us to do on a match
(`action_rule`) and the durable outbox of those actions (`action_delivery`), and long
requests run in the background (`job`).

Business rules live in `vigil.auth`, `vigil.actions` and `vigil.api`; these classes only
describe the tables. Any change here needs a new migration under `migrations/versions/`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
from sqlalchemy.orm import Mapped, mapped_column

from vigil.store.bank_models import _in
from vigil.store.models import Base, BigIntPK
from vigil.store.types import utcnow

TOKEN_SCOPES = ("hash", "match", "curate", "legal", "admin")
"""`hash`: hash only. `match`: hash, match, look up. `curate`: banks and entries. `legal`: the
legal desk's requests (a legal team's own tools). `admin`: everything, including actions and
jobs of others."""
USER_ROLES = ("admin", "curator", "lead", "reviewer", "legal", "investigator", "auditor")
"""`lead`: a senior reviewer, who gives second opinions and works escalations."""
DELIVERY_STATUSES = ("pending", "delivered", "dead")
JOB_STATUSES = ("queued", "running", "finished", "failed")


class ApiToken(Base):
    """A bearer token for the HTTP API. Only the SHA-256 of the secret is kept; `prefix` (the
    token's first characters) lets an operator recognise a token without revealing it."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer)
    """Requests a minute this token may make; None uses the server's default."""
    created: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    expires: Mapped[datetime | None] = mapped_column()
    revoked: Mapped[datetime | None] = mapped_column()
    last_used: Mapped[datetime | None] = mapped_column()


class AppUser(Base):
    """A person who signs in to the web console; the password is kept as an argon2 hash."""

    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    disabled: Mapped[datetime | None] = mapped_column()
    last_login: Mapped[datetime | None] = mapped_column()


class UploadEvent(Base):
    """One upload the platform sent for matching: its own id for the content and who uploaded
    it, kept for reporting and legal process. Many events may share one content row."""

    __tablename__ = "upload_event"
    __table_args__ = (Index(None, "content_ref"), Index(None, "account_id"))

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    content_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("content.id", ondelete="CASCADE"), index=True
    )
    content_ref: Mapped[str | None] = mapped_column(String(256))
    file_name: Mapped[str | None] = mapped_column(String(255))
    """The uploaded file's own name (the report's `originalFileName`)."""
    account_id: Mapped[str | None] = mapped_column(String(256))
    screen_name: Mapped[str | None] = mapped_column(String(256))
    ip_address: Mapped[str | None] = mapped_column(String(45))
    event_time: Mapped[datetime | None] = mapped_column()
    """When the platform says the upload happened (its clock)."""
    received: Mapped[datetime] = mapped_column(default=utcnow)
    token_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("api_token.id", ondelete="SET NULL")
    )


class ActionRule(Base):
    """A webhook fired when content matches a bank (optionally only entries of one Industry
    Classification category). Rules are disabled rather than deleted while deliveries of
    theirs are pending, so no event is dropped."""

    __tablename__ = "action_rule"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    bank_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("bank.id", ondelete="CASCADE"), index=True
    )
    classification: Mapped[str | None] = mapped_column(String(8))
    """Only entries of this Industry Classification category (A1, A2, B1, B2); None: all."""
    action: Mapped[str] = mapped_column(String(64))
    """What the platform is asked to do: `remove_content`, `suspend_account`, `preserve`..."""
    url: Mapped[str] = mapped_column(String(2048))
    secret_env: Mapped[str | None] = mapped_column(String(128))
    """Environment variable holding this rule's signing secret; None uses the server's."""
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    created: Mapped[datetime] = mapped_column(default=utcnow)


class ActionDelivery(Base):
    """One webhook call owed to the platform: the outbox row, committed in the same
    transaction as the match that caused it and deleted never (delivered or dead instead)."""

    __tablename__ = "action_delivery"
    __table_args__ = (
        UniqueConstraint("rule_id", "event_key"),
        Index(None, "status", "next_attempt"),
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    rule_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("action_rule.id", ondelete="CASCADE")
    )
    content_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("content.id", ondelete="SET NULL")
    )
    upload_event_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("upload_event.id", ondelete="SET NULL")
    )
    event_key: Mapped[str] = mapped_column(String(64))
    """What fired it (`upload:<id>` or `content:<id>`): one delivery per rule and event."""
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[datetime] = mapped_column(default=utcnow)
    """When a worker may try next; a worker claiming the row moves it forward (a lease)."""
    last_error: Mapped[str | None] = mapped_column(Text)
    last_status: Mapped[int | None] = mapped_column(Integer)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    delivered: Mapped[datetime | None] = mapped_column()


class Job(Base):
    """A long request (a bank import) run in the background, polled at `GET /v1/jobs/{id}`."""

    __tablename__ = "job"
    __table_args__ = (CheckConstraint(_in("status", JOB_STATUSES), name="status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    actor: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    started: Mapped[datetime | None] = mapped_column()
    finished: Mapped[datetime | None] = mapped_column()
