"""API tokens: bearer secrets for the HTTP API, their scopes, and checking them per request.

A secret is `vgl_` followed by 43 URL-safe characters (256 random bits). It is shown once,
when the token is created; the database keeps only its SHA-256 and its first 12 characters
(`prefix`), enough for an operator to recognise a token in a log without being able to use
it. Functions take a SQLAlchemy `Session`; they flush but never commit.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from vigil.store.db import Database
from vigil.store.service_models import TOKEN_SCOPES, ApiToken
from vigil.store.types import utcnow

_log = logging.getLogger(__name__)

SECRET_PREFIX = "vgl_"
PREFIX_CHARS = 12
"""Characters of the secret kept in clear (`vgl_` and 8 random ones: 48 of its 256 bits)."""
_SECRET = re.compile(r"vgl_[A-Za-z0-9_-]{43}")
MAX_NAME_CHARS = 100
MAX_CREATED_BY_CHARS = 200
MAX_RATE_LIMIT = 2**31 - 1  # the column is a 32-bit integer
LAST_USED_RESOLUTION = timedelta(seconds=60)
"""`last_used` is written at most this often per token, not on every request."""
_IMPLIED = {"match": frozenset({"hash"})}
"""Scopes that a scope includes besides itself (`admin` includes all of them)."""
_GENERIC_FAILURE = "invalid, expired or revoked credentials"


class AuthError(Exception):
    """An auth operation that cannot be done (the message says why)."""


class AuthenticationError(AuthError):
    """Credentials refused. The message is the same whatever the reason (unknown, revoked or
    expired token, unknown or disabled user, wrong password), so callers cannot tell which."""

    def __init__(self, message: str = _GENERIC_FAILURE) -> None:
        super().__init__(message)


class TokenExists(AuthError):
    pass


class TokenNotFound(AuthError, LookupError):
    pass


def hash_secret(secret: str) -> str:
    """SHA-256 (hex) of a secret. A fast hash is right here, unlike for passwords: the secret
    is 256 random bits, so there is nothing to guess that a slow hash would protect, and a fast
    one keeps the per-request check cheap."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _check_name(name: str) -> str:
    if (
        not isinstance(name, str)
        or not 1 <= len(name) <= MAX_NAME_CHARS
        or not name.isprintable()
        or name != name.strip()
    ):
        raise ValueError(
            f"token name {str(name)[:110]!r} must be 1-{MAX_NAME_CHARS} printable characters,"
            " without leading or trailing spaces"
        )
    return name


def check_scopes(scopes: Iterable[str]) -> list[str]:
    """Scopes as stored: a non-empty subset of TOKEN_SCOPES, in TOKEN_SCOPES order."""
    given = [scopes] if isinstance(scopes, str) else list(scopes)
    for scope in given:
        if scope not in TOKEN_SCOPES:
            raise ValueError(f"unknown scope {scope!r}: use {', '.join(TOKEN_SCOPES)}")
    if not given:
        raise ValueError(f"a token needs at least one scope ({', '.join(TOKEN_SCOPES)})")
    return [scope for scope in TOKEN_SCOPES if scope in given]


def _check_expiry(expires: datetime | None, now: datetime) -> datetime | None:
    if expires is None:
        return None
    if expires.tzinfo is None or expires.utcoffset() is None:
        raise ValueError("expiry must be timezone-aware (for example 2027-01-01T00:00:00+00:00)")
    if expires <= now:
        raise ValueError(f"expiry {expires.isoformat()} is not in the future")
    return expires.astimezone(UTC)


def _check_rate_limit(rate_limit_per_minute: int | None) -> int | None:
    if rate_limit_per_minute is None:
        return None
    if (
        isinstance(rate_limit_per_minute, bool)
        or not isinstance(rate_limit_per_minute, int)
        or not 1 <= rate_limit_per_minute <= MAX_RATE_LIMIT
    ):
        raise ValueError(
            f"rate limit must be a whole number 1-{MAX_RATE_LIMIT} requests a minute,"
            f" got {rate_limit_per_minute!r}"
        )
    return rate_limit_per_minute


_DURATION = re.compile(r"([0-9]{1,7}) *([mhdw])")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
_UNITS["w"] = timedelta(weeks=1)
MAX_DURATION = timedelta(days=100 * 366)


def parse_expiry(text: str, *, now: datetime | None = None) -> datetime:
    """An expiry from the command line: a duration from now (`30m`, `12h`, `90d`, `2w`), a date
    (`2027-01-01`, midnight UTC) or an ISO 8601 time (UTC unless it names an offset).

    ValueError for anything else, or a duration of zero or over 100 years. Whether the result
    is in the future is `create_token`'s check.
    """
    now = now or utcnow()
    stripped = text.strip()
    duration = _DURATION.fullmatch(stripped.lower())
    if duration:
        delta = int(duration.group(1)) * _UNITS[duration.group(2)]
        if not timedelta(0) < delta <= MAX_DURATION:
            raise ValueError(f"expiry {text!r}: a duration must be more than 0 and at most 100y")
        return now + delta
    try:
        parsed = datetime.fromisoformat(stripped)
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(
            f"expiry {text[:40]!r} is not a duration (90d, 12h, 30m, 2w), a date (2027-01-01)"
            " or an ISO 8601 time"
        ) from None


# --- Managing tokens --------------------------------------------------------------------


def create_token(
    session: Session,
    name: str,
    scopes: Iterable[str],
    *,
    created_by: str,
    expires: datetime | None = None,
    rate_limit_per_minute: int | None = None,
    now: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; returns the row and its secret, which is not kept and cannot be shown
    again. ValueError for a bad name, scope, expiry or rate limit; TokenExists when the name
    is taken."""
    now = now or utcnow()
    if not isinstance(created_by, str) or not 1 <= len(created_by) <= MAX_CREATED_BY_CHARS:
        raise ValueError(f"created_by must be 1-{MAX_CREATED_BY_CHARS} characters")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=_check_name(name),
        prefix=secret[:PREFIX_CHARS],
        secret_hash=hash_secret(secret),
        scopes=check_scopes(scopes),
        rate_limit_per_minute=_check_rate_limit(rate_limit_per_minute),
        created=now,
        created_by=created_by,
        expires=_check_expiry(expires, now),
    )
    if session.scalar(select(ApiToken.id).where(ApiToken.name == token.name)) is not None:
        raise TokenExists(f"a token named {token.name!r} already exists")
    try:
        with session.begin_nested():
            session.add(token)
    except IntegrityError:  # created concurrently
        raise TokenExists(f"a token named {token.name!r} already exists") from None
    return token, secret


def list_tokens(session: Session) -> list[ApiToken]:
    """Every token, revoked and expired ones included, by name."""
    return list(session.scalars(select(ApiToken).order_by(ApiToken.name)))


def get_token(session: Session, name_or_id: str | int) -> ApiToken:
    """A token by name (str) or id (int); TokenNotFound when there is none."""
    found = (
        session.get(ApiToken, name_or_id)
        if isinstance(name_or_id, int)
        else session.scalars(select(ApiToken).where(ApiToken.name == name_or_id)).one_or_none()
    )
    if found is None:
        raise TokenNotFound(f"no token {name_or_id!r}")
    return found


def revoke_token(
    session: Session, name_or_id: str | int, *, now: datetime | None = None
) -> ApiToken:
    """Revoke a token for good (it stays listed). Revoking again keeps the first time."""
    token = get_token(session, name_or_id)
    if token.revoked is None:
        token.revoked = now or utcnow()
        session.flush()
    return token


# --- Checking tokens --------------------------------------------------------------------


@dataclass(frozen=True)
class TokenPrincipal:
    """Who a request comes from: a checked token, detached from any session (safe to cache
    and to share between threads)."""

    id: int
    name: str
    scopes: frozenset[str]
    rate_limit_per_minute: int | None
    expires: datetime | None

    @classmethod
    def from_token(cls, token: ApiToken) -> TokenPrincipal:
        return cls(
            id=token.id,
            name=token.name,
            scopes=frozenset(token.scopes),
            rate_limit_per_minute=token.rate_limit_per_minute,
            expires=token.expires,
        )

    def allows(self, scope: str) -> bool:
        """Whether the token may use `scope`: `admin` includes every scope, `match` includes
        `hash`. ValueError for a scope that does not exist (a typo must not pass silently
        for admin tokens only)."""
        if scope not in TOKEN_SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        return (
            "admin" in self.scopes
            or scope in self.scopes
            or any(scope in _IMPLIED.get(held, ()) for held in self.scopes)
        )

    @property
    def actor(self) -> str:
        """How this token is named in records (`job.actor`, audit)."""
        return f"token:{self.name}"


def is_well_formed(secret: object) -> bool:
    """Whether `secret` looks like a Vigil token secret (a cheap check before any lookup)."""
    return isinstance(secret, str) and _SECRET.fullmatch(secret) is not None


def _valid_token(session: Session, secret: str, now: datetime) -> ApiToken:
    if not is_well_formed(secret):
        raise AuthenticationError()
    digest = hash_secret(secret)
    token = session.scalars(select(ApiToken).where(ApiToken.secret_hash == digest)).one_or_none()
    if (
        token is None
        or not hmac.compare_digest(token.secret_hash, digest)
        or token.revoked is not None
        or (token.expires is not None and token.expires <= now)
    ):
        raise AuthenticationError()
    return token


def _last_used_stale(last_used: datetime | None, now: datetime) -> bool:
    return last_used is None or now - last_used >= LAST_USED_RESOLUTION


def authenticate_token(
    session: Session, secret: str, *, now: datetime | None = None
) -> TokenPrincipal:
    """The principal of a valid secret; AuthenticationError for a malformed, unknown, revoked
    or expired one, always with the same message.

    The row is found by the secret's SHA-256, never by comparing secrets, so the time taken
    says nothing about how close a guess was. `last_used` is written only when it is empty or
    more than a minute old, so a busy token does not cost a write per request.
    """
    now = now or utcnow()
    token = _valid_token(session, secret, now)
    if _last_used_stale(token.last_used, now):
        token.last_used = now
        session.flush()
    return TokenPrincipal.from_token(token)


@dataclass(frozen=True)
class _Cached:
    principal: TokenPrincipal
    fresh_until: float


class TokenCache:
    """Checks secrets for the HTTP API, asking the database at most once per `ttl_seconds`
    per token (0: every time). A revoked token therefore keeps working for up to
    `ttl_seconds` in a worker that has just checked it; expiry is checked on every hit.

    Only successes are cached; a refused secret is asked about again next time. Entries are
    keyed by the secret's SHA-256 (the secret itself is never held), at most `max_entries`
    of them, the oldest dropped first. Thread-safe; a hit costs one SHA-256 and a dict look-up.
    """

    def __init__(
        self,
        database: Database,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        wall_clock: Callable[[], datetime] = utcnow,
        max_entries: int = 10_000,
    ) -> None:
        if ttl_seconds < 0:
            raise ValueError("ttl_seconds must be 0 or more")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._database = database
        self._ttl = float(ttl_seconds)
        self._clock = clock
        self._wall_clock = wall_clock
        self._max_entries = max_entries
        self._entries: OrderedDict[str, _Cached] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, secret: str) -> TokenPrincipal:
        """The principal of `secret`, from the cache while fresh, else from the database;
        AuthenticationError when refused."""
        if not is_well_formed(secret):
            raise AuthenticationError()
        key = hash_secret(secret)
        if self._ttl > 0:
            with self._lock:
                cached = self._entries.get(key)
            if cached is not None and self._clock() < cached.fresh_until:
                expires = cached.principal.expires
                if expires is None or self._wall_clock() < expires:
                    return cached.principal
                self.forget(key)
                raise AuthenticationError()
        now = self._wall_clock()
        with self._database.session() as session:
            token = _valid_token(session, secret, now)
            principal = TokenPrincipal.from_token(token)
            stale = _last_used_stale(token.last_used, now)
        if stale:
            self._touch(principal.id, now)
        if self._ttl > 0:
            entry = _Cached(principal, self._clock() + self._ttl)
            with self._lock:
                self._entries[key] = entry
                self._entries.move_to_end(key)
                while len(self._entries) > self._max_entries:
                    self._entries.popitem(last=False)
        return principal

    def _touch(self, token_id: int, now: datetime) -> None:
        """Record `last_used` in a transaction of its own that starts with the write (on
        SQLite a read-then-write transaction fails at once when another worker wrote in
        between). Best effort: bookkeeping must not refuse a valid request."""
        try:
            with self._database.session() as session:
                session.execute(
                    update(ApiToken)
                    .where(
                        ApiToken.id == token_id,
                        or_(
                            ApiToken.last_used.is_(None),
                            ApiToken.last_used <= now - LAST_USED_RESOLUTION,
                        ),
                    )
                    .values(last_used=now)
                )
        except SQLAlchemyError as error:
            _log.warning("could not record the last use of token %d: %s", token_id, error)

    def forget(self, key: str) -> None:
        """Drop one entry, by the secret's SHA-256 (`hash_secret`)."""
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        """Drop every entry (the next check of each token asks the database)."""
        with self._lock:
            self._entries.clear()
