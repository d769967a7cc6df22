"""The auth room: API tokens, the token cache, users and passwords (on SQLite and PostgreSQL),
the rate limiter and the expiry parser (no database)."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from argon2 import PasswordHasher
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from vigil import auth
from vigil.auth import (
    AuthenticationError,
    AuthError,
    RateLimiter,
    TokenCache,
    TokenPrincipal,
)
from vigil.store import ApiToken, AppUser, Database

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SECRET_FORMAT = re.compile(r"vgl_[A-Za-z0-9_-]{43}")
PASSWORD = "correct horse battery"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextmanager
def count_queries(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


# --- Tokens -----------------------------------------------------------------------------


def test_create_token_keeps_only_the_hash(db: Database) -> None:
    with db.session() as session:
        token, secret = auth.create_token(
            session,
            "platform",
            ["match", "hash", "match"],
            created_by="alice",
            expires=T0 + timedelta(days=400),
            rate_limit_per_minute=600,
            now=T0,
        )
        token_id = token.id
    assert SECRET_FORMAT.fullmatch(secret) and len(secret) == 47
    with db.sessionmaker() as session:
        row = session.get(ApiToken, token_id)
        assert row is not None
        assert row.secret_hash == sha256(secret) != secret
        assert secret not in (row.secret_hash, row.name, row.prefix)
        assert row.prefix == secret[:12]
        assert row.scopes == ["hash", "match"]
        assert (row.created_by, row.rate_limit_per_minute) == ("alice", 600)
        assert (row.created, row.expires) == (T0, T0 + timedelta(days=400))
        assert row.revoked is None and row.last_used is None


def test_secrets_differ(session: Session) -> None:
    secrets = {auth.create_token(session, f"t{i}", ["hash"], created_by="x")[1] for i in range(5)}
    assert len(secrets) == 5


@pytest.mark.parametrize(
    ("name", "scopes", "expires", "rate_limit", "message"),
    [
        ("", ["hash"], None, None, "token name"),
        ("x" * 101, ["hash"], None, None, "token name"),
        ("tab\there", ["hash"], None, None, "token name"),
        (" padded", ["hash"], None, None, "token name"),
        ("ok", [], None, None, "at least one scope"),
        ("ok", ["hash", "read"], None, None, "'read'"),
        ("ok", ["hash"], T0 - timedelta(seconds=1), None, "not in the future"),
        ("ok", ["hash"], T0, None, "not in the future"),
        ("ok", ["hash"], datetime(2030, 1, 1), None, "timezone-aware"),
        ("ok", ["hash"], None, 0, "rate limit"),
        ("ok", ["hash"], None, 2**31, "rate limit"),
    ],
)
def test_create_token_refuses_bad_values(
    session: Session,
    name: str,
    scopes: list[str],
    expires: datetime | None,
    rate_limit: int | None,
    message: str,
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        auth.create_token(
            session,
            name,
            scopes,
            created_by="x",
            expires=expires,
            rate_limit_per_minute=rate_limit,
            now=T0,
        )
    assert auth.list_tokens(session) == []


def test_token_names_are_unique(session: Session) -> None:
    auth.create_token(session, "one", ["hash"], created_by="x")
    with pytest.raises(auth.TokenExists, match="already exists") as raised:
        auth.create_token(session, "one", ["admin"], created_by="y")
    assert isinstance(raised.value, AuthError)
    assert [t.name for t in auth.list_tokens(session)] == ["one"]
    auth.create_token(session, "One", ["hash"], created_by="x")  # the session still works


def test_list_get_revoke(session: Session) -> None:
    b, _ = auth.create_token(session, "b", ["curate"], created_by="x")
    a, _ = auth.create_token(session, "a", ["hash"], created_by="x")
    assert [t.name for t in auth.list_tokens(session)] == ["a", "b"]
    assert auth.get_token(session, "b") is b
    assert auth.get_token(session, a.id) is a
    with pytest.raises(auth.TokenNotFound):
        auth.get_token(session, "c")
    with pytest.raises(LookupError):
        auth.revoke_token(session, "c")

    assert auth.revoke_token(session, "a", now=T0).revoked == T0
    assert auth.revoke_token(session, a.id, now=T0 + timedelta(hours=1)).revoked == T0
    assert b.revoked is None
    assert [t.name for t in auth.list_tokens(session)] == ["a", "b"]  # revoked stay listed


def test_authenticate_token(session: Session) -> None:
    token, secret = auth.create_token(
        session, "client", ["match"], created_by="x", rate_limit_per_minute=120, now=T0
    )
    principal = auth.authenticate_token(session, secret, now=T0)
    assert principal == TokenPrincipal(
        id=token.id,
        name="client",
        scopes=frozenset({"match"}),
        rate_limit_per_minute=120,
        expires=None,
    )
    assert principal.actor == "token:client"
    assert token.last_used == T0

    # last_used is written at most once a minute.
    auth.authenticate_token(session, secret, now=T0 + timedelta(seconds=59))
    assert token.last_used == T0
    auth.authenticate_token(session, secret, now=T0 + timedelta(seconds=60))
    assert token.last_used == T0 + timedelta(seconds=60)
    session.expire_all()
    assert auth.get_token(session, "client").last_used == T0 + timedelta(seconds=60)


def test_refused_tokens_all_say_the_same(session: Session) -> None:
    _, good = auth.create_token(session, "good", ["hash"], created_by="x", now=T0)
    _, revoked = auth.create_token(session, "revoked", ["hash"], created_by="x", now=T0)
    _, expiring = auth.create_token(
        session, "expiring", ["hash"], created_by="x", expires=T0 + timedelta(hours=1), now=T0
    )
    auth.revoke_token(session, "revoked")
    assert auth.authenticate_token(session, expiring, now=T0 + timedelta(minutes=59)).name == (
        "expiring"
    )
    unknown = "vgl_" + "A" * 43
    refused = [
        (revoked, T0),
        (expiring, T0 + timedelta(hours=1)),
        (expiring, T0 + timedelta(days=1)),
        (unknown, T0),
        (good[:-1], T0),  # malformed: too short
        (good + "x", T0),
        ("Bearer " + good, T0),
        (good.replace("vgl_", "xyz_"), T0),
        ("", T0),
        (sha256(good), T0),  # the stored hash is not a credential
    ]
    messages = set()
    for secret, now in refused:
        with pytest.raises(AuthenticationError) as raised:
            auth.authenticate_token(session, secret, now=now)
        messages.add(str(raised.value))
    assert len(messages) == 1
    assert auth.authenticate_token(session, good, now=T0).name == "good"


@pytest.mark.parametrize(
    ("scopes", "allowed"),
    [
        ({"hash"}, {"hash"}),
        ({"match"}, {"hash", "match"}),
        ({"curate"}, {"curate"}),
        ({"hash", "curate"}, {"hash", "curate"}),
        ({"match", "curate"}, {"hash", "match", "curate"}),
        ({"legal"}, {"legal"}),
        ({"admin"}, {"hash", "match", "curate", "legal", "admin"}),
    ],
)
def test_scope_implications(scopes: set[str], allowed: set[str]) -> None:
    principal = TokenPrincipal(1, "t", frozenset(scopes), None, None)
    assert {scope for scope in auth.TOKEN_SCOPES if principal.allows(scope)} == allowed


def test_allows_refuses_unknown_scope() -> None:
    with pytest.raises(ValueError, match="unknown scope"):
        TokenPrincipal(1, "t", frozenset({"admin"}), None, None).allows("admni")


# --- The token cache --------------------------------------------------------------------


def _make_token(db: Database, name: str, **kwargs: Any) -> str:
    with db.session() as session:
        return auth.create_token(session, name, ["hash"], created_by="test", **kwargs)[1]


def test_cache_hit_does_not_touch_the_database(db: Database) -> None:
    secret = _make_token(db, "cached")
    clock = FakeClock()
    cache = TokenCache(db, ttl_seconds=5, clock=clock)
    with count_queries(db) as queries:
        first = cache.authenticate(secret)
    assert first.name == "cached" and queries
    with db.sessionmaker() as session:
        assert auth.get_token(session, "cached").last_used is not None  # recorded on a miss

    with count_queries(db) as queries:
        for _ in range(20):
            assert cache.authenticate(secret) == first
    assert queries == []

    with db.session() as session:
        auth.revoke_token(session, "cached")
    clock.advance(4.5)
    assert cache.authenticate(secret) == first  # revoked, but trusted until the TTL ends
    clock.advance(0.5)
    with count_queries(db) as queries, pytest.raises(AuthenticationError):
        cache.authenticate(secret)
    assert queries
    with pytest.raises(AuthenticationError):
        cache.authenticate(secret)


def test_cache_ttl_zero_asks_every_time(db: Database) -> None:
    secret = _make_token(db, "uncached")
    cache = TokenCache(db, ttl_seconds=0, clock=FakeClock())
    assert cache.authenticate(secret).name == "uncached"
    with count_queries(db) as queries:
        cache.authenticate(secret)
    assert queries
    with db.session() as session:
        auth.revoke_token(session, "uncached")
    with pytest.raises(AuthenticationError):
        cache.authenticate(secret)
    assert len(cache) == 0


def test_cache_checks_expiry_on_every_hit(db: Database) -> None:
    now = datetime.now(UTC)
    secret = _make_token(db, "short", expires=now + timedelta(hours=1))
    wall = [now]
    cache = TokenCache(db, ttl_seconds=300, clock=FakeClock(), wall_clock=lambda: wall[0])
    assert cache.authenticate(secret).expires == now + timedelta(hours=1)
    wall[0] = now + timedelta(hours=1)
    with count_queries(db) as queries, pytest.raises(AuthenticationError):
        cache.authenticate(secret)
    assert queries == []  # refused from the cached expiry alone
    assert len(cache) == 0


def test_cache_does_not_cache_failures(db: Database) -> None:
    secret = _make_token(db, "flaky")
    with db.session() as session:
        auth.revoke_token(session, "flaky")
    cache = TokenCache(db, ttl_seconds=60, clock=FakeClock())
    with pytest.raises(AuthenticationError):
        cache.authenticate(secret)
    with db.session() as session:  # (only possible by hand) un-revoked: accepted at once
        auth.get_token(session, "flaky").revoked = None
    assert cache.authenticate(secret).name == "flaky"
    with count_queries(db) as queries, pytest.raises(AuthenticationError):
        cache.authenticate("not a token")
    assert queries == []  # malformed secrets never reach the database


def test_cache_is_bounded_and_keeps_no_secret(db: Database) -> None:
    secrets = [_make_token(db, f"t{i}") for i in range(3)]
    cache = TokenCache(db, ttl_seconds=60, clock=FakeClock(), max_entries=2)
    for secret in secrets:
        cache.authenticate(secret)
    assert len(cache) == 2
    held = repr(cache._entries)
    assert not any(secret in held for secret in secrets)
    with count_queries(db) as queries:
        cache.authenticate(secrets[2])  # newest kept
    assert queries == []
    with count_queries(db) as queries:
        cache.authenticate(secrets[0])  # oldest dropped
    assert queries


def test_cache_is_thread_safe(db: Database) -> None:
    secrets = [_make_token(db, f"t{i}") for i in range(4)]
    cache = TokenCache(db, ttl_seconds=60, max_entries=3)
    results: list[str] = []
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(40):
                index = (i + offset) % len(secrets)
                results.append(f"{index}:{cache.authenticate(secrets[index]).name}")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 160
    assert all(name == f"t{i}" for i, name in (r.split(":", 1) for r in results))
    assert len(cache) <= 3


# --- Users ------------------------------------------------------------------------------


def test_create_user_hashes_with_argon2id(session: Session) -> None:
    user = auth.create_user(
        session,
        "alice",
        PASSWORD,
        ["reviewer", "admin", "reviewer"],
        display_name=" Alice A. ",
        email="alice@example.org",
        now=T0,
    )
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert user.roles == ["admin", "reviewer"]
    assert (user.display_name, user.email, user.created) == ("Alice A.", "alice@example.org", T0)
    assert user.disabled is None and user.last_login is None
    session.expire_all()
    assert [u.username for u in auth.list_users(session)] == ["alice"]
    assert auth.get_user(session, "alice").password_hash == user.password_hash


@pytest.mark.parametrize(
    ("username", "password", "roles", "message"),
    [
        ("Alice", PASSWORD, ["admin"], "username"),
        ("", PASSWORD, ["admin"], "username"),
        ("-alice", PASSWORD, ["admin"], "username"),
        ("a" * 65, PASSWORD, ["admin"], "username"),
        ("alice", "short pass!", ["admin"], "at least 12"),
        ("alice", "x" * 1025, ["admin"], "at most 1024"),
        ("alice.example", "Alice.Example", ["admin"], "not be the username"),
        ("alice", PASSWORD, [], "at least one role"),
        ("alice", PASSWORD, ["root"], "'root'"),
    ],
)
def test_create_user_refuses_bad_values(
    session: Session, username: str, password: str, roles: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        auth.create_user(session, username, password, roles)
    assert auth.list_users(session) == []


def test_create_user_refuses_bad_email_and_duplicates(session: Session) -> None:
    with pytest.raises(ValueError, match="email"):
        auth.create_user(session, "bob", PASSWORD, ["auditor"], email="not an address")
    auth.create_user(session, "bob", PASSWORD, ["auditor"])
    with pytest.raises(auth.UserExists, match="already exists"):
        auth.create_user(session, "bob", PASSWORD + "!", ["admin"])
    assert [(u.username, u.roles) for u in auth.list_users(session)] == [("bob", ["auditor"])]


def test_verify_password(session: Session) -> None:
    auth.create_user(session, "carol", PASSWORD, ["curator"])
    user = auth.verify_password(session, "carol", PASSWORD, now=T0)
    assert (user.username, user.last_login) == ("carol", T0)

    attempts = [
        ("carol", PASSWORD + " "),
        ("carol", PASSWORD.upper()),
        ("carol", ""),
        ("carol", PASSWORD * 100),
        ("nobody", PASSWORD),
        ("Carol", PASSWORD),
    ]
    messages = set()
    for username, password in attempts:
        with pytest.raises(AuthenticationError) as raised:
            auth.verify_password(session, username, password, now=T0 + timedelta(days=1))
        messages.add(str(raised.value))
    assert len(messages) == 1
    assert auth.get_user(session, "carol").last_login == T0

    auth.disable_user(session, "carol", now=T0)
    auth.disable_user(session, "carol", now=T0 + timedelta(days=1))
    assert auth.get_user(session, "carol").disabled == T0
    with pytest.raises(AuthenticationError) as raised:
        auth.verify_password(session, "carol", PASSWORD)
    assert str(raised.value) in messages
    assert auth.enable_user(session, "carol").disabled is None
    assert auth.verify_password(session, "carol", PASSWORD).username == "carol"

    for change in (auth.disable_user, auth.enable_user):
        with pytest.raises(auth.UserNotFound):
            change(session, "nobody")


def test_set_password(session: Session) -> None:
    auth.create_user(session, "dave", PASSWORD, ["legal"])
    before = auth.get_user(session, "dave").password_hash
    with pytest.raises(ValueError, match="at least 12"):
        auth.set_password(session, "dave", "too short")
    assert auth.get_user(session, "dave").password_hash == before
    auth.set_password(session, "dave", "another long passphrase")
    with pytest.raises(AuthenticationError):
        auth.verify_password(session, "dave", PASSWORD)
    assert auth.verify_password(session, "dave", "another long passphrase").username == "dave"


def test_weak_hash_is_upgraded_on_login(session: Session) -> None:
    user = auth.create_user(session, "erin", PASSWORD, ["investigator"])
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    user.password_hash = weak
    session.flush()
    auth.verify_password(session, "erin", PASSWORD)
    session.expire_all()
    stored = session.scalars(select(AppUser.password_hash).where(AppUser.username == "erin")).one()
    assert stored != weak and stored.startswith("$argon2id$")
    assert not PasswordHasher().check_needs_rehash(stored)
    assert auth.verify_password(session, "erin", PASSWORD).username == "erin"


# --- Rate limiter -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("per_minute", "burst"), [(1, 1), (6, 1), (7, 2), (60, 10), (61, 11), (60_000, 10_000)]
)
def test_burst(per_minute: int, burst: int) -> None:
    assert auth.burst_for(per_minute) == burst
    limiter = RateLimiter(clock=FakeClock())
    assert [limiter.check("k", per_minute) for _ in range(burst)] == [None] * burst
    retry = limiter.check("k", per_minute)
    assert retry is not None and retry == pytest.approx(60 / per_minute)


def test_rate_limiter_refills_at_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    assert all(limiter.check("a", 60) is None for _ in range(10))
    assert limiter.check("a", 60) == pytest.approx(1.0)
    assert limiter.check("b", 60) is None  # keys are independent
    clock.advance(0.25)
    assert limiter.check("a", 60) == pytest.approx(0.75)  # refusals use nothing up
    clock.advance(0.75)
    assert limiter.check("a", 60) is None
    assert limiter.check("a", 60) == pytest.approx(1.0)
    clock.advance(3600)  # a long rest refills only up to the burst
    assert [limiter.check("a", 60) for _ in range(11)].count(None) == 10


def test_rate_limiter_steady_rate() -> None:
    clock = FakeClock(0.0)
    limiter = RateLimiter(clock=clock)
    assert [limiter.check("k", 120) for _ in range(21)].count(None) == 20  # burst 20
    allowed = 0
    for step in range(1, 101):  # 10 s at 2 requests a second, asking every 0.1 s
        clock.now = step / 10
        allowed += limiter.check("k", 120) is None
    assert allowed == 20


def test_rate_limiter_forgets_idle_keys() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, max_keys=3)
    for key in "abcde":
        limiter.check(key, 60)
    assert len(limiter) == 3
    clock.advance(10)  # every bucket has refilled
    limiter.check("f", 60)
    assert len(limiter) == 1
    limiter.check("f", 60)
    limiter.reset("f")
    assert len(limiter) == 0


@pytest.mark.parametrize("per_minute", [0, -1, True, 1.5])
def test_rate_limiter_refuses_bad_rates(per_minute: Any) -> None:
    with pytest.raises(ValueError):
        RateLimiter().check("k", per_minute)


# --- Expiry parser ----------------------------------------------------------------------

UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
UNITS["w"] = timedelta(weeks=1)


@given(st.integers(1, 36_000), st.sampled_from(sorted(UNITS)))
def test_parse_expiry_durations(count: int, unit: str) -> None:
    delta = count * UNITS[unit]
    if delta > auth.tokens.MAX_DURATION:
        with pytest.raises(ValueError, match="100y"):
            auth.parse_expiry(f"{count}{unit}", now=T0)
    else:
        assert auth.parse_expiry(f"{count}{unit}", now=T0) == T0 + delta
        assert auth.parse_expiry(f" {count}{unit.upper()} ", now=T0) == T0 + delta


@given(st.dates())
def test_parse_expiry_dates_are_midnight_utc(day: Any) -> None:
    parsed = auth.parse_expiry(day.isoformat(), now=T0)
    assert parsed == datetime(day.year, day.month, day.day, tzinfo=UTC)


@given(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9000, 1, 1)),
    st.integers(-14 * 60, 14 * 60),
)
def test_parse_expiry_times_keep_the_instant(moment: datetime, offset_minutes: int) -> None:
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    parsed = auth.parse_expiry(aware.isoformat(), now=T0)
    assert parsed == aware and parsed.tzinfo is UTC
    assert auth.parse_expiry(moment.isoformat(), now=T0) == moment.replace(tzinfo=UTC)


@given(st.text(max_size=40))
def test_parse_expiry_anything_else_is_a_value_error(text: str) -> None:
    try:
        parsed = auth.parse_expiry(text, now=T0)
    except ValueError:
        return
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["0d", "0m", "soon", "", "90", "d90", "-5d", "1.5d", "5y"])
def test_parse_expiry_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="expiry"):
        auth.parse_expiry(text, now=T0)
