"""Web-console sign-in sessions: the secret in the `vigil_session` cookie, its CSRF token, its
lifetime and idle limit.

The cookie's value is `secrets.token_urlsafe(32)` (256 random bits), handed out once by
`sign_in`; only its SHA-256 is stored (`web_session.secret_hash`), like an API token's, so a
copy of the database signs nobody in. A session ends `lifetime` after sign-in however active
it is (`expires`, never pushed back), after `idle` without a request (`last_seen`), at sign-out,
or as soon as its user is disabled.

Functions take a SQLAlchemy `Session`; they flush but never commit.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from vigil.auth.tokens import hash_secret
from vigil.auth.users import verify_password
from vigil.store import AppUser, WebSession
from vigil.store.types import utcnow

MAX_COOKIE_CHARS = 128
"""A cookie value longer than this is not one of ours (ours are 43 characters)."""
LAST_SEEN_RESOLUTION = timedelta(seconds=30)
"""`last_seen` is written at most this often per session, not on every request."""


@dataclass(frozen=True)
class SignedIn:
    """The person behind a request, as the console's pages see them."""

    user_id: int
    username: str
    display_name: str | None
    roles: tuple[str, ...]
    csrf_token: str
    session_id: int

    @property
    def name(self) -> str:
        """What to call them on a page: the display name, else the username."""
        return self.display_name or self.username

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def has_any(self, *roles: str) -> bool:
        """Whether they hold one of `roles`; `admin` passes every check, and no roles at all
        means any signed-in user."""
        return not roles or self.is_admin or any(role in self.roles for role in roles)


def sign_in(
    session: Session,
    username: str,
    password: str,
    *,
    lifetime: timedelta,
    now: datetime | None = None,
) -> tuple[str, WebSession]:
    """Start a session for `username` when `password` is theirs and they are not disabled:
    (the cookie value, shown only this once; the stored row). `AuthenticationError`
    otherwise, with one message whatever the reason (see `verify_password`, which also sets
    `AppUser.last_login`). The user's sessions that have already expired are deleted."""
    if lifetime <= timedelta(0):
        raise ValueError("a session lifetime must be positive")
    now = now or utcnow()
    user = verify_password(session, username, password, now=now)
    session.execute(
        delete(WebSession).where(WebSession.user_id == user.id, WebSession.expires <= now)
    )
    secret = secrets.token_urlsafe(32)
    row = WebSession(
        secret_hash=hash_secret(secret),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created=now,
        last_seen=now,
        expires=now + lifetime,
    )
    session.add(row)
    session.flush()
    return secret, row


def _find(session: Session, cookie_value: str | None) -> WebSession | None:
    if not isinstance(cookie_value, str) or not 0 < len(cookie_value) <= MAX_COOKIE_CHARS:
        return None
    return session.scalars(
        select(WebSession).where(WebSession.secret_hash == hash_secret(cookie_value))
    ).one_or_none()


def resolve(
    session: Session, cookie_value: str | None, *, idle: timedelta, now: datetime | None = None
) -> SignedIn | None:
    """The signed-in user for a cookie value, or None when the session is unknown, expired,
    idle for longer than `idle`, or its user is disabled (an ended session's row is deleted).
    A live session's `last_seen` moves to `now` (to within `LAST_SEEN_RESOLUTION`)."""
    row = _find(session, cookie_value)
    if row is None:
        return None
    now = now or utcnow()
    user = session.get(AppUser, row.user_id)
    if (
        user is None
        or user.disabled is not None
        or now >= row.expires
        or now - row.last_seen > idle
    ):
        session.delete(row)
        session.flush()
        return None
    if now - row.last_seen >= LAST_SEEN_RESOLUTION:
        row.last_seen = now
        session.flush()
    return SignedIn(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        roles=tuple(user.roles),
        csrf_token=row.csrf_token,
        session_id=row.id,
    )


def sign_out(session: Session, cookie_value: str | None) -> bool:
    """End the session of a cookie value; whether there was one."""
    row = _find(session, cookie_value)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def sign_out_user(session: Session, user_id: int) -> int:
    """End every session of a user (when they are disabled, say, or change their password);
    how many there were."""
    ended = len(session.scalars(select(WebSession.id).where(WebSession.user_id == user_id)).all())
    session.execute(delete(WebSession).where(WebSession.user_id == user_id))
    session.flush()
    return ended


def purge_expired(session: Session, *, idle: timedelta, now: datetime | None = None) -> int:
    """Delete every session that has expired or been idle longer than `idle` (housekeeping;
    `resolve` refuses them anyway); how many were deleted."""
    now = now or utcnow()
    condition = (WebSession.expires <= now) | (WebSession.last_seen < now - idle)
    ended = len(session.scalars(select(WebSession.id).where(condition)).all())
    session.execute(delete(WebSession).where(condition))
    session.flush()
    return ended
