"""The law-enforcement portal's people: officers who register with an official address,
confirm it by a one-time link, and become active when their agency's domain is on the
allowlist `legal` users keep (a new domain waits for a legal user to vet it); and their
sign-in sessions.

Officers are not console users: they have their own table, cookie (`vigil_portal`, path
`/portal`) and sessions, and no console role. Secrets (the confirmation link's, the
session cookie's) are kept only as SHA-256 hashes. Functions flush, never commit.
"""

from __future__ import annotations

import secrets
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from vigil.auth.tokens import hash_secret
from vigil.auth.users import MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS
from vigil.config import Settings
from vigil.legal.desk import DeskUser, LegalError
from vigil.legal.intake import _text, check_email, email_domain, lookalike_of
from vigil.legal.mail import queue_mail
from vigil.store import AgencyDomain, Officer, PortalSession

CONFIRM_PATH = "/portal/confirm"
_hasher = PasswordHasher()


class PortalAuthError(LegalError):
    """Sign-in refused: one message whatever the reason."""

    def __init__(self) -> None:
        super().__init__("email or password not recognised, or the account is not active yet")


@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(24))


def _check_password(password: str, email: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD_CHARS <= len(password) <= 1024:
        raise LegalError(f"a password has {MIN_PASSWORD_CHARS} to 1024 characters")
    if password.lower() in email.lower():
        raise LegalError("the password must not be the email address")
    return password


def register(
    session: Session,
    *,
    email: str,
    name: str,
    agency: str,
    password: str,
    settings: Settings,
    now: datetime,
    title: str | None = None,
    phone: str | None = None,
) -> Officer:
    """Register an officer and mail the one-time confirmation link. Free-mail addresses are
    refused; a domain never seen before is added to the allowlist as `pending`. Registering
    an address already known sends nothing new and says nothing different (no probing)."""
    address = check_email(email, required=True)
    assert address is not None
    domain = email_domain(address) or ""
    if domain in {d.lower() for d in settings.legal_free_mail_domains}:
        raise LegalError(f"{domain} is a free-mail domain: register with your agency's address")
    officer_name = _text("name", name, 200, required=True) or ""
    agency_name = _text("agency", agency, 200, required=True) or ""
    _check_password(password, address)
    existing = session.scalars(select(Officer).where(Officer.email == address)).one_or_none()
    if existing is not None:
        return existing
    if session.scalars(select(AgencyDomain).where(AgencyDomain.domain == domain)).first() is None:
        session.add(AgencyDomain(domain=domain, agency=agency_name, status="pending", created=now))
    secret = secrets.token_urlsafe(32)
    officer = Officer(
        email=address,
        domain=domain,
        name=officer_name,
        agency=agency_name,
        title=_text("title", title, 200),
        phone=_text("phone", phone, 40),
        password_hash=_hasher.hash(password),
        status="unconfirmed",
        confirm_hash=hash_secret(secret),
        confirm_expires=now + timedelta(hours=settings.portal_confirm_hours),
        created=now,
    )
    session.add(officer)
    session.flush()
    link = f"{settings.portal_base_url.rstrip('/')}{CONFIRM_PATH}?token={secret}"
    queue_mail(
        session,
        to=address,
        subject="Confirm your address for the law-enforcement portal",
        body=(
            f"Hello {officer_name},\n\nSomeone (we hope you) registered this address on the"
            " law-enforcement portal. Confirm it by opening this link within"
            f" {settings.portal_confirm_hours:g} hours:\n\n{link}\n\nIf it was not you,"
            " ignore this message.\n"
        ),
        purpose="confirm",
        reference=f"officer:{officer.id}",
        now=now,
    )
    return officer


def _domain_status(session: Session, domain: str) -> str:
    row = session.scalars(select(AgencyDomain).where(AgencyDomain.domain == domain)).first()
    return "pending" if row is None else row.status


def confirm(session: Session, secret: str, *, now: datetime) -> Officer:
    """Follow a confirmation link (once, before it expires): the officer becomes active when
    the domain is allowed, waits for vetting when it is pending, is refused when refused."""
    if not isinstance(secret, str) or not 0 < len(secret) <= 128:
        raise LegalError("this confirmation link is not valid")
    officer = session.scalars(
        select(Officer).where(Officer.confirm_hash == hash_secret(secret))
    ).one_or_none()
    if officer is None or officer.confirm_expires is None or now >= officer.confirm_expires:
        raise LegalError("this confirmation link is not valid, was used, or has expired")
    officer.confirm_hash = None
    officer.confirm_expires = None
    officer.confirmed_at = now
    officer.status = {"allowed": "active", "refused": "refused"}.get(
        _domain_status(session, officer.domain), "pending_vetting"
    )
    session.flush()
    return officer


def decide_domain(
    session: Session,
    domain: str,
    *,
    allow: bool,
    user: DeskUser,
    now: datetime,
    agency: str | None = None,
    note: str | None = None,
) -> AgencyDomain:
    """Put a domain on the allowlist (or refuse it): its confirmed officers become active
    (or refused). A look-alike of an allowed domain cannot be allowed without a note."""
    user.require_desk("vet agency domains")
    name = (domain or "").strip().lower().rstrip(".")
    if not name or "." not in name or len(name) > 253 or "@" in name:
        raise LegalError(f"{domain!r} is not a domain")
    row = session.scalars(select(AgencyDomain).where(AgencyDomain.domain == name)).first()
    if row is None:
        row = AgencyDomain(domain=name, status="pending", created=now)
        session.add(row)
    if allow:
        others = session.scalars(
            select(AgencyDomain.domain).where(
                AgencyDomain.status == "allowed", AgencyDomain.domain != name
            )
        ).all()
        real = lookalike_of(name, others)
        if real is not None and not (note or "").strip():
            raise LegalError(f"{name} looks like {real}: say why it is genuine (a note)")
    row.status = "allowed" if allow else "refused"
    row.agency = _text("agency", agency, 200) or row.agency
    row.note = _text("note", note, 2000) or row.note
    row.decided_by = user.username
    row.decided_at = now
    session.flush()
    waiting = ("pending_vetting",) if allow else ("pending_vetting", "active", "unconfirmed")
    for officer in session.scalars(
        select(Officer).where(Officer.domain == name, Officer.status.in_(waiting))
    ):
        officer.status = "active" if allow else "refused"
    session.flush()
    return row


def list_domains(session: Session) -> list[AgencyDomain]:
    return list(
        session.scalars(select(AgencyDomain).order_by(AgencyDomain.status, AgencyDomain.domain))
    )


def list_officers(session: Session, *, status: str | None = None) -> list[Officer]:
    query = select(Officer).order_by(Officer.id)
    if status is not None:
        query = query.where(Officer.status == status)
    return list(session.scalars(query))


def set_officer_status(session: Session, officer_id: int, status: str, user: DeskUser) -> Officer:
    """Disable an officer (left the agency, compromised) or re-activate one."""
    user.require_desk("manage officers")
    if status not in ("active", "disabled", "refused"):
        raise LegalError("an officer is set active, disabled or refused")
    officer = session.get(Officer, officer_id)
    if officer is None:
        raise LegalError(f"no officer {officer_id}")
    if status == "active" and officer.confirmed_at is None:
        raise LegalError("the officer has not confirmed the address yet")
    officer.status = status
    if status != "active":
        session.execute(delete(PortalSession).where(PortalSession.officer_id == officer.id))
    session.flush()
    return officer


# --- Sessions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedInOfficer:
    officer_id: int
    email: str
    name: str
    agency: str
    csrf_token: str


def sign_in(
    session: Session, email: str, password: str, *, lifetime: timedelta, now: datetime
) -> str:
    """A new session's cookie secret for an active officer; `PortalAuthError` otherwise."""
    address = (email or "").strip().lower() if isinstance(email, str) else ""
    officer = session.scalars(select(Officer).where(Officer.email == address)).one_or_none()
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_CHARS:
        password = ""
    if officer is None:
        with suppress(VerificationError):
            _hasher.verify(_dummy_hash(), password)
        raise PortalAuthError()
    try:
        _hasher.verify(officer.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise PortalAuthError() from None
    if officer.status != "active":
        raise PortalAuthError()
    officer.last_login = now
    session.execute(
        delete(PortalSession).where(
            PortalSession.officer_id == officer.id, PortalSession.expires <= now
        )
    )
    secret = secrets.token_urlsafe(32)
    session.add(
        PortalSession(
            secret_hash=hash_secret(secret),
            officer_id=officer.id,
            csrf_token=secrets.token_urlsafe(32),
            created=now,
            last_seen=now,
            expires=now + lifetime,
        )
    )
    session.flush()
    return secret


def resolve(
    session: Session, secret: str | None, *, idle: timedelta, now: datetime
) -> SignedInOfficer | None:
    """The officer behind a cookie, or None (unknown, expired, idle, or no longer active)."""
    if not isinstance(secret, str) or not 0 < len(secret) <= 128:
        return None
    row = session.scalars(
        select(PortalSession).where(PortalSession.secret_hash == hash_secret(secret))
    ).one_or_none()
    if row is None:
        return None
    officer = session.get(Officer, row.officer_id)
    if (
        officer is None
        or officer.status != "active"
        or now >= row.expires
        or now - row.last_seen > idle
    ):
        session.delete(row)
        session.flush()
        return None
    if now - row.last_seen >= timedelta(seconds=30):
        row.last_seen = now
        session.flush()
    return SignedInOfficer(officer.id, officer.email, officer.name, officer.agency, row.csrf_token)


def sign_out(session: Session, secret: str | None) -> None:
    if isinstance(secret, str) and 0 < len(secret) <= 128:
        session.execute(
            delete(PortalSession).where(PortalSession.secret_hash == hash_secret(secret))
        )
        session.flush()
