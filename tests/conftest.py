"""Shared pytest fixtures.

Sections are independent; add new ones below their own banner. pytest hooks
(`pytest_configure`, `pytest_collection_modifyitems`, `pytest_terminal_summary`) may exist
only once per file: extend the ones in the database section rather than defining another.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_postgresql import factories as pg_factories
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from api_helpers import Api, make_api
from vigil.config import Settings
from vigil.store import Database, normalise_url, open_database

# =========================================================================================
# Database fixtures (vigil.store)
#
#   database_url  function scope, parametrized [sqlite] / [postgresql]: the URL of an EMPTY
#                 database of its own (SQLite file in tmp_path; PostgreSQL: a fresh
#                 `public` schema in this run's database).
#   db            a `vigil.store.Database` on `database_url`, migrated to head.
#   session       a Session of `db`; nothing is committed unless the test commits.
#   postgres_test_database_url
#                 session scope: the URL of this run's PostgreSQL database (created at
#                 start, dropped at the end), or a loud skip when no server is available.
#
# Every test that uses `database_url` (directly or through `db`/`session`) runs on both
# databases and is marked `db`; its PostgreSQL half is also marked `postgres`, so
# `pytest -m "not db"` runs only unit tests and `-m "not postgres"` leaves PostgreSQL out.
# Tests that do not ask for these fixtures never touch a database.
#
# Where PostgreSQL comes from, in order:
#   1. VIGIL_TEST_POSTGRES_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test): a
#      server we may CREATE DATABASE on; failing to reach it is an error, not a skip.
#   2. PostgreSQL server binaries (pg_ctl on PATH or /usr/lib/postgresql/*/bin) and not root:
#      a private server started by pytest-postgresql for this run.
#   3. Otherwise the PostgreSQL half is skipped, loudly (and in CI, CI=true, it fails).
# =========================================================================================

POSTGRES_URL_ENV = "VIGIL_TEST_POSTGRES_URL"
_PG_SKIP_PREFIX = "PostgreSQL not available"


def _find_pg_ctl() -> str | None:
    found = shutil.which("pg_ctl")
    if found:
        return found
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda path: [int(p) if p.isdigit() else 0 for p in Path(path).parts[-3].split(".")],
    )
    return candidates[-1] if candidates else None


_PG_CTL = _find_pg_ctl()

# A private server for this run, only started when a test needs it (case 2 above).
vigil_postgresql_proc = pg_factories.postgresql_proc(executable=_PG_CTL, port=None)


def _pg_unavailable_reason() -> str | None:
    """Why no private PostgreSQL server can be started here, or None when one can."""
    if _PG_CTL is None:
        return "no PostgreSQL server binaries (pg_ctl) found"
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return f"running as root, and initdb refuses to run as root (found {_PG_CTL})"
    return None


def _skip_or_fail_without_postgres(reason: str) -> None:
    message = (
        f"{_PG_SKIP_PREFIX} ({reason}): set {POSTGRES_URL_ENV}="
        "postgresql+psycopg://USER@HOST:PORT/DB (USER may CREATE DATABASE there), "
        "or install the PostgreSQL server and test as a non-root user"
    )
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message}. CI is set, and CI must test PostgreSQL.", pytrace=False)
    pytest.skip(message)


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_test_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A PostgreSQL database of this test run's own: created now, dropped at the end."""
    configured = os.environ.get(POSTGRES_URL_ENV)
    if configured:
        server_url = normalise_url(configured)
    else:
        reason = _pg_unavailable_reason()
        if reason is not None:
            _skip_or_fail_without_postgres(reason)
        proc = request.getfixturevalue("vigil_postgresql_proc")
        server_url = URL.create(
            "postgresql+psycopg",
            username=proc.user,
            password=proc.password or None,
            host=proc.host,
            port=proc.port,
            database="postgres",
        )

    name = f"vigil_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield _render(server_url.set(database=name))
        finally:
            version = admin.dialect.server_version_info or (0,)
            force = " WITH (FORCE)" if version >= (13,) else ""
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"{force}')
    finally:
        admin.dispose()


def _reset_postgres_schema(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            # Fail rather than hang if an earlier test leaked a connection holding locks.
            connection.execute(text("SET lock_timeout = '10s'"))
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database of this test's own, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'vigil-test.db'}"
    url: str = request.getfixturevalue("postgres_test_database_url")
    _reset_postgres_schema(url)
    return url


@pytest.fixture
def db(database_url: str, tmp_path: Path) -> Iterator[Database]:
    """A migrated `Database` on `database_url`, opened the way the application opens it."""
    database = open_database(Settings(home=tmp_path / "vigil-home", database_url=database_url))
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    """A session of `db`; whatever the test did not commit is rolled back at the end."""
    with db.sessionmaker() as session:
        yield session


@pytest.fixture
def api(db: Database, tmp_path: Path) -> Iterator[Api]:
    """The HTTP API over `db` (SQLite and PostgreSQL), a token per scope, no background
    threads (tests drive index refreshes and deliveries themselves)."""
    yield from make_api(db, tmp_path / "api-home")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "db: uses a database; runs on SQLite and PostgreSQL (set automatically)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "database_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    reasons: list[str] = []
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else ""
        if _PG_SKIP_PREFIX in str(reason):
            reasons.append(str(reason).removeprefix("Skipped: "))
    if reasons:
        terminalreporter.write_sep(
            "!",
            f"WARNING: {len(reasons)} PostgreSQL tests SKIPPED, only SQLite was tested",
            red=True,
            bold=True,
        )
        terminalreporter.write_line(reasons[0], red=True, bold=True)


# ======================================== end of database fixtures ======================


@pytest.fixture
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at its cheapest for console users and portal officers: tests that sign many
    people in need not pay the production cost (verification follows each hash's own
    parameters, so nothing else changes)."""
    from argon2 import PasswordHasher

    from vigil.auth import users
    from vigil.legal import portal

    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(users, "_hasher", cheap)
    monkeypatch.setattr(portal, "_hasher", cheap)
