"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL.

The usual entry point is `open_database(settings)`, which migrates the schema to the newest
revision and hands out sessions::

    db = open_database(get_settings())
    with db.session() as session:   # commits on success, rolls back on error
        record_hashes(session, ...)

The schema is only ever created by Alembic migrations (`vigil/store/migrations`), never by
`create_all`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.orm import Session, sessionmaker

from vigil.config import Settings, get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
"""The Alembic environment, shipped inside the package."""

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite connection waits for another writer's lock before giving up."""

_BEGIN_IMMEDIATE = "vigil_sqlite_begin_immediate"
"""Execution option: on SQLite, start the transaction with BEGIN IMMEDIATE (take the write
lock up front, so a read-then-write transaction cannot fail on a stale snapshot)."""

_MIGRATION_LOCK_KEY = 0x5649_4749_4C00  # "VIGIL": one migrator at a time on PostgreSQL


def normalise_url(url: str | URL) -> URL:
    """Parse a database URL; a bare `postgresql://` (or `postgres://`) means psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine configured for Vigil.

    SQLite: the database file's directory is created, the journal is WAL, foreign keys are
    enforced, writers wait `SQLITE_BUSY_TIMEOUT_MS` for each other, and SQLAlchemy (not the
    sqlite3 module) emits BEGIN, so transactional DDL and SAVEPOINTs behave as on PostgreSQL.
    PostgreSQL: connections are checked before use (`pool_pre_ping`).
    Extra keyword arguments go to `sqlalchemy.create_engine`.
    """
    parsed = normalise_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        _configure_sqlite(engine)
        return engine
    if backend == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (see _on_begin): the sqlite3 module's own
        # transaction handling breaks SAVEPOINT and transactional DDL.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS:d}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_BEGIN_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def begin_immediate(session: Session) -> None:
    """Start `session`'s next transaction holding SQLite's write lock (BEGIN IMMEDIATE).

    For writers that read before they write and commit several times (a batched import):
    call it right after each commit, before the next transaction touches the database
    (SQLAlchemy ignores it, with a warning, on a transaction that already has a connection).
    It changes nothing on PostgreSQL.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.connection(execution_options={_BEGIN_IMMEDIATE: True})


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to `engine`; objects stay readable after commit (no expire on commit).
    Their changes to audited tables are written to the audit log (`vigil.audit.hooks`)."""
    from vigil.audit.hooks import install  # here: vigil.audit imports this package

    factory = sessionmaker(bind=engine, expire_on_commit=False)
    install(factory)
    return factory


# --- Migrations -------------------------------------------------------------------------


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for Vigil's migrations, built in code (no alembic.ini).

    With `connection`, the migration environment runs on that connection (inside its
    transaction); without, it opens its own from `sqlalchemy.url` or Vigil's settings.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration revision shipped with this version of Vigil."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError("no Alembic migrations found")
    return head


def current_revision(engine_or_url: Engine | str | URL) -> str | None:
    """The revision the database is at (None for an empty, never-migrated database)."""
    with _engine(engine_or_url) as engine, engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(engine_or_url: Engine | str | URL, revision: str = "head") -> None:
    """Upgrade the schema to `revision` (default: the newest), in one transaction."""
    _run_alembic(engine_or_url, lambda config: command.upgrade(config, revision))


def downgrade(engine_or_url: Engine | str | URL, revision: str) -> None:
    """Downgrade the schema to `revision` (`"base"` removes every table). Loses data."""
    _run_alembic(engine_or_url, lambda config: command.downgrade(config, revision))


@contextmanager
def _engine(engine_or_url: Engine | str | URL) -> Iterator[Engine]:
    if isinstance(engine_or_url, Engine):
        yield engine_or_url
        return
    engine = make_engine(engine_or_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _run_alembic(engine_or_url: Engine | str | URL, action: Callable[[Config], None]) -> None:
    with _engine(engine_or_url) as engine, engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        raw = connection.connection.driver_connection
        assert raw is not None
        if sqlite:
            # SQLite's documented procedure for schema changes: foreign keys off (a table
            # rebuild would otherwise cascade deletes), checked before commit. The PRAGMA is
            # a no-op inside a transaction, so it goes straight to the driver, before BEGIN.
            raw.execute("PRAGMA foreign_keys = OFF")
        try:
            connection.execution_options(**{_BEGIN_IMMEDIATE: True})
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                    )
                action(alembic_config(connection))
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration left broken foreign keys: {broken[:10]}")
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys = ON")


# --- Database ---------------------------------------------------------------------------


class Database:
    """An engine plus its session factory: what the CLI, the API and the workers hold."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessionmaker = session_factory(engine)

    @classmethod
    def from_url(cls, url: str | URL, **engine_kwargs: Any) -> Database:
        """A database for `url` (not migrated: call `migrate()` or use `open_database`)."""
        return cls(make_engine(url, **engine_kwargs))

    @property
    def url(self) -> str:
        """The database URL, password hidden (safe to log)."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        """`"sqlite"` or `"postgresql"`."""
        return self.engine.dialect.name

    def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema to `revision` (default: the newest)."""
        migrate(self.engine, revision)

    def current_revision(self) -> str | None:
        """The schema revision the database is at."""
        return current_revision(self.engine)

    @contextmanager
    def session(self, *, immediate: bool = False) -> Iterator[Session]:
        """A session in a transaction: committed when the block ends, rolled back on error.

        `immediate=True` takes SQLite's write lock at the start (BEGIN IMMEDIATE), which
        writers that read first (such as `record_hashes`) should use when several processes
        write to one SQLite file; it changes nothing on PostgreSQL.
        """
        with self.sessionmaker() as session:
            if immediate and self.dialect == "sqlite":
                session.connection(execution_options={_BEGIN_IMMEDIATE: True})
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url!r})"


def open_database(settings: Settings | None = None, *, migrate: bool = True) -> Database:
    """The database of `settings` (the process settings by default), migrated to the newest
    revision unless `migrate=False`. SQLite's file and directory are created when missing."""
    settings = settings or get_settings()
    database = Database.from_url(settings.effective_database_url)
    if migrate:
        database.migrate()
    return database
