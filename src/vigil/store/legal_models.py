"""ORM models of the legal-process desk: law enforcement's requests, what they name, the
verification checklist, productions, the portal's officers, agency domains and sessions, and
the mail outbox.

A non-disclosure order is a `legal_request` of kind `nondisclosure` (standalone, or attached
to another request through `parent_id`) whose targets name the accounts it covers and whose
`nondisclosure_until` is its expiry (None: until a court lifts it). Business rules live in
`vigil.legal`; these classes only describe the tables. Any change here needs a new migration
under `migrations/versions/`.
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
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vigil.store.bank_models import _in
from vigil.store.models import Base, BigIntPK
from vigil.store.types import utcnow

REQUEST_KINDS = (
    "preservation",
    "subpoena",
    "order_2703d",
    "warrant",
    "emergency",
    "nondisclosure",
    "foreign",
    "destroy",
)
"""18 U.S.C. 2703(f) preservation letter, subpoena (2703(c)(2): basic subscriber information),
2703(d) court order, search warrant, emergency disclosure request (2702(b)(8), (c)(4)),
non-disclosure order (2705(b)), a foreign authority's request (flagged for counsel), and law
enforcement's request to destroy (2258B(c))."""
REQUEST_CHANNELS = ("portal", "api", "manual")
REQUEST_STATUSES = ("received", "verified", "produced", "closed", "refused")
"""`received`: waiting for its checklist; `verified`: the checklist is complete; `produced`:
a production (or the preservation, destruction, order) was carried out; `closed` and
`refused` (not genuine, out of jurisdiction, withdrawn) are terminal."""
TARGET_KINDS = ("account", "screen_name", "content_ref", "hash", "report")
PRODUCTION_STATUSES = ("ready", "downloaded", "expired", "revoked")
OFFICER_STATUSES = ("unconfirmed", "pending_vetting", "active", "refused", "disabled")
"""`unconfirmed`: the one-time link was not followed yet; `pending_vetting`: confirmed, but
the agency's domain is not on the allowlist; `active`: may file requests."""
DOMAIN_STATUSES = ("allowed", "pending", "refused")
MAIL_STATUSES = ("pending", "sent", "failed")


class AgencyDomain(Base):
    """An email domain of a law-enforcement agency: officers of an `allowed` domain become
    active once they confirm their address; a new domain waits (`pending`) for a legal user."""

    __tablename__ = "legal_agency_domain"
    __table_args__ = (CheckConstraint(_in("status", DOMAIN_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    domain: Mapped[str] = mapped_column(String(253), unique=True)
    agency: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    note: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column()
    created: Mapped[datetime] = mapped_column(default=utcnow)


class Officer(Base):
    """A law-enforcement officer registered on the portal (not a console user)."""

    __tablename__ = "legal_officer"
    __table_args__ = (CheckConstraint(_in("status", OFFICER_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    domain: Mapped[str] = mapped_column(String(253))
    name: Mapped[str] = mapped_column(String(200))
    agency: Mapped[str] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    password_hash: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="unconfirmed")
    confirm_hash: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of the one-time confirmation secret; None once used."""
    confirm_expires: Mapped[datetime | None] = mapped_column()
    confirmed_at: Mapped[datetime | None] = mapped_column()
    created: Mapped[datetime] = mapped_column(default=utcnow)
    last_login: Mapped[datetime | None] = mapped_column()


class PortalSession(Base):
    """An officer's portal sign-in: only the SHA-256 of the cookie's secret is kept."""

    __tablename__ = "legal_portal_session"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    officer_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("legal_officer.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    expires: Mapped[datetime] = mapped_column()


class LegalRequest(Base):
    """One piece of legal process, from receipt to production and closing."""

    __tablename__ = "legal_request"
    __table_args__ = (
        CheckConstraint(_in("kind", REQUEST_KINDS), name="kind"),
        CheckConstraint(_in("channel", REQUEST_CHANNELS), name="channel"),
        CheckConstraint(_in("status", REQUEST_STATUSES), name="status"),
        Index("ix_legal_request_status_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="received")
    officer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("legal_officer.id", ondelete="SET NULL"), index=True
    )
    requester_name: Mapped[str] = mapped_column(String(200))
    requester_email: Mapped[str | None] = mapped_column(String(254))
    requester_phone: Mapped[str | None] = mapped_column(String(40))
    agency: Mapped[str] = mapped_column(String(200))
    jurisdiction: Mapped[str | None] = mapped_column(String(200))
    """The court or authority that issued the process (and, for foreign requests, where)."""
    country: Mapped[str | None] = mapped_column(String(2))
    """ISO 3166 country of the requesting authority (None or US: domestic)."""
    case_number: Mapped[str | None] = mapped_column(String(100))
    document_reference: Mapped[str | None] = mapped_column(String(200))
    """The process's own number (subpoena no., docket no.)."""
    issued_on: Mapped[datetime | None] = mapped_column()
    return_date: Mapped[datetime | None] = mapped_column()
    """A subpoena's return date, a warrant's date by which it must be executed."""
    records_from: Mapped[datetime | None] = mapped_column()
    records_to: Mapped[datetime | None] = mapped_column()
    description: Mapped[str | None] = mapped_column(Text)
    """What is asked for, in the requester's words (for an emergency: the danger)."""
    emergency_categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    """What the verified emergency needs disclosed (set when it is verified)."""
    parent_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("legal_request.id", ondelete="SET NULL")
    )
    """A non-disclosure order's request, when the order came with one."""
    nondisclosure_until: Mapped[datetime | None] = mapped_column()
    nondisclosure_scope: Mapped[str | None] = mapped_column(Text)
    nondisclosure_lifted_at: Mapped[datetime | None] = mapped_column()
    document_item_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("vault_item.id", ondelete="SET NULL")
    )
    """The legal document (PDF), sealed in the vault."""
    signals: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    """Warnings found at intake (`code`, `message`): free-mail domain, first request ..."""
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime] = mapped_column()
    assignee_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("app_user.id", ondelete="SET NULL")
    )
    created_by: Mapped[str] = mapped_column(String(200))
    verified_at: Mapped[datetime | None] = mapped_column()
    answered_at: Mapped[datetime | None] = mapped_column()
    """When it was first answered (produced, preserved, destroyed, recorded): the end of the
    time-to-answer measured per kind."""
    closed_at: Mapped[datetime | None] = mapped_column()
    outcome: Mapped[str | None] = mapped_column(Text)
    reminded_at: Mapped[datetime | None] = mapped_column()
    escalated_at: Mapped[datetime | None] = mapped_column()

    targets: Mapped[list[LegalTarget]] = relationship(
        back_populates="request", order_by="LegalTarget.id", cascade="all, delete-orphan"
    )
    checks: Mapped[list[LegalCheck]] = relationship(
        back_populates="request", order_by="LegalCheck.id", cascade="all, delete-orphan"
    )


class LegalTarget(Base):
    """One thing a request names; `account_id` is the platform account it resolves to."""

    __tablename__ = "legal_target"
    __table_args__ = (
        CheckConstraint(_in("kind", TARGET_KINDS), name="kind"),
        Index("ix_legal_target_account_id", "account_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("legal_request.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(256))
    account_id: Mapped[str | None] = mapped_column(String(256))
    linked: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """What Vigil held about it at intake: uploads, reports, vault items."""

    request: Mapped[LegalRequest] = relationship(back_populates="targets")


class LegalCheck(Base):
    """One ticked item of a request's verification checklist: who, when, and the details
    (for the out-of-band call: who called whom, on which published number, when)."""

    __tablename__ = "legal_check"
    __table_args__ = (UniqueConstraint("request_id", "item"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("legal_request.id", ondelete="CASCADE")
    )
    item: Mapped[str] = mapped_column(String(32))
    done_by_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("app_user.id"))
    done_by: Mapped[str] = mapped_column(String(64))
    done_at: Mapped[datetime] = mapped_column(default=utcnow)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    request: Mapped[LegalRequest] = relationship(back_populates="checks")


class Production(Base):
    """A package produced for a request: sealed in the vault, downloaded once through the
    portal before `download_expires`."""

    __tablename__ = "legal_production"
    __table_args__ = (CheckConstraint(_in("status", PRODUCTION_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("legal_request.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="ready")
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    manifest: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """Item number, name, SHA-256, size and description of every data file."""
    package_item_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("vault_item.id", ondelete="SET NULL")
    )
    package_sha256: Mapped[str] = mapped_column(String(64))
    custodian: Mapped[str] = mapped_column(String(200))
    built_by: Mapped[str] = mapped_column(String(64))
    built_at: Mapped[datetime] = mapped_column(default=utcnow)
    download_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    """SHA-256 of the single-use download secret; None once used or revoked."""
    download_expires: Mapped[datetime] = mapped_column()
    downloaded_at: Mapped[datetime | None] = mapped_column()
    downloaded_by: Mapped[str | None] = mapped_column(String(254))
    download_address: Mapped[str | None] = mapped_column(String(45))


class MailMessage(Base):
    """The mail outbox: confirmation links, reminders and escalations. Sent by the mail
    worker when SMTP is configured; a sent message's body is blanked (it may hold a
    one-time link)."""

    __tablename__ = "mail_message"
    __table_args__ = (
        CheckConstraint(_in("status", MAIL_STATUSES), name="status"),
        Index("ix_mail_message_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String(32))
    """`confirm`, `reminder`, `escalation`, `production`."""
    reference: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
