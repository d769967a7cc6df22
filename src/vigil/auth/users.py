"""People who sign in to the web console: usernames, argon2id passwords and roles.

Passwords are hashed with argon2id (`argon2.PasswordHasher`'s defaults, RFC 9106's
low-memory profile): slow and memory-hard on purpose, since people choose guessable
passwords. Functions take a SQLAlchemy `Session`; they flush but never commit.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from contextlib import suppress
from datetime import datetime
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.auth.tokens import AuthenticationError, AuthError
from vigil.store.service_models import USER_ROLES, AppUser
from vigil.store.types import utcnow

_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024
"""Longer passwords are refused: nobody types them, and hashing them costs the server."""
MAX_DISPLAY_NAME_CHARS = 200
MAX_EMAIL_CHARS = 254

_hasher = PasswordHasher()


class UserExists(AuthError):
    pass


class UserNotFound(AuthError, LookupError):
    pass


@cache
def _dummy_hash() -> str:
    """A hash of a random password, verified against when the user does not exist so that
    an unknown username takes as long to refuse as a wrong password."""
    return _hasher.hash(secrets.token_urlsafe(24))


def check_username(username: str) -> str:
    """A username: 1-64 lower-case letters, digits, `.`, `_`, `-`, starting alphanumeric."""
    if not isinstance(username, str) or not _USERNAME.fullmatch(username):
        raise ValueError(
            f"username {str(username)[:70]!r} must be 1-64 lower-case letters, digits, '.', '_'"
            " or '-', starting with a letter or digit"
        )
    return username


def check_password(password: str, username: str) -> str:
    """A new password: 12-1024 characters, not the username."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"the password must have at most {MAX_PASSWORD_CHARS} characters")
    if password.casefold() == username.casefold():
        raise ValueError("the password must not be the username")
    return password


def check_roles(roles: Iterable[str]) -> list[str]:
    """Roles as stored: a non-empty subset of USER_ROLES, in USER_ROLES order."""
    given = [roles] if isinstance(roles, str) else list(roles)
    for role in given:
        if role not in USER_ROLES:
            raise ValueError(f"unknown role {role!r}: use {', '.join(USER_ROLES)}")
    if not given:
        raise ValueError(f"a user needs at least one role ({', '.join(USER_ROLES)})")
    return [role for role in USER_ROLES if role in given]


def _optional_text(label: str, value: str | None, limit: int) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > limit or not value.isprintable():
        raise ValueError(f"{label} must be at most {limit} printable characters")
    return value


def _check_email(email: str | None) -> str | None:
    email = _optional_text("email", email, MAX_EMAIL_CHARS)
    if email is not None and (" " in email or not re.fullmatch(r"[^@]+@[^@]+", email)):
        raise ValueError(f"email {email[:70]!r} is not an address (name@example.org)")
    return email


def create_user(
    session: Session,
    username: str,
    password: str,
    roles: Iterable[str],
    *,
    display_name: str | None = None,
    email: str | None = None,
    now: datetime | None = None,
) -> AppUser:
    """Create a user; ValueError for a bad username, password, role, display name or email,
    UserExists when the username is taken."""
    username = check_username(username)
    user = AppUser(
        username=username,
        password_hash=_hasher.hash(check_password(password, username)),
        roles=check_roles(roles),
        display_name=_optional_text("display name", display_name, MAX_DISPLAY_NAME_CHARS),
        email=_check_email(email),
        created=now or utcnow(),
    )
    if session.scalar(select(AppUser.id).where(AppUser.username == username)) is not None:
        raise UserExists(f"a user named {username!r} already exists")
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:  # created concurrently
        raise UserExists(f"a user named {username!r} already exists") from None
    return user


def list_users(session: Session) -> list[AppUser]:
    """Every user, disabled ones included, by username."""
    return list(session.scalars(select(AppUser).order_by(AppUser.username)))


def _find(session: Session, username: str) -> AppUser | None:
    return session.scalars(select(AppUser).where(AppUser.username == username)).one_or_none()


def get_user(session: Session, username: str) -> AppUser:
    """A user by username; UserNotFound when there is none."""
    user = _find(session, username)
    if user is None:
        raise UserNotFound(f"no user {username!r}")
    return user


def disable_user(session: Session, username: str, *, now: datetime | None = None) -> AppUser:
    """Stop a user signing in (nothing is deleted: records keep naming them). Idempotent."""
    user = get_user(session, username)
    if user.disabled is None:
        user.disabled = now or utcnow()
        session.flush()
    return user


def enable_user(session: Session, username: str) -> AppUser:
    """Let a disabled user sign in again."""
    user = get_user(session, username)
    if user.disabled is not None:
        user.disabled = None
        session.flush()
    return user


def set_password(session: Session, username: str, password: str) -> AppUser:
    """Replace a user's password (same rules as at creation)."""
    user = get_user(session, username)
    user.password_hash = _hasher.hash(check_password(password, user.username))
    session.flush()
    return user


def verify_password(
    session: Session, username: str, password: str, *, now: datetime | None = None
) -> AppUser:
    """The user, when `password` is theirs and they are not disabled; AuthenticationError
    otherwise, with the same message and about the same time whatever the reason.

    The password is checked before the disabled flag, so only someone who knows it learns
    that the account is disabled. A hash made with older argon2 parameters is replaced, and
    `last_login` is set.
    """
    user = _find(session, username) if isinstance(username, str) else None
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_CHARS:
        password = ""
    if user is None:
        with suppress(VerificationError):
            _hasher.verify(_dummy_hash(), password)
        raise AuthenticationError()
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise AuthenticationError() from None
    if not password or user.disabled is not None:
        raise AuthenticationError()
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login = now or utcnow()
    session.flush()
    return user
