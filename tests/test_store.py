"""The storage room: migrations, models and `record_hashes`, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import delete, func, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.config import Settings
from vigil.store import (
    Base,
    Content,
    ContentSignal,
    Database,
    current_revision,
    downgrade,
    find_signals,
    get_content,
    head_revision,
    make_engine,
    migrate,
    normalise_url,
    open_database,
    record_hashes,
    value_digest,
)

SHA_A = "a" * 64
SHA_B = "b" * 64
MD5_A = "0" * 32
PDQ = "f" * 63 + "0"
TABLES = {"content", "signal", "bank", "bank_entry", "bank_import"}


def _count(session: Session, model: type[Base]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def _record(session: Session, **overrides: object) -> Content:
    arguments: dict[str, object] = {
        "sha256": SHA_A,
        "md5": MD5_A,
        "size": 1234,
        "media_type": "image",
        "signals": [("md5", MD5_A, None), ("pdq", PDQ, 90)],
    }
    arguments.update(overrides)
    return record_hashes(session, **arguments)  # type: ignore[arg-type]


def _vpdq_text(frames: int) -> str:
    """A long vPDQ-like value: one line per frame (longer than a B-tree entry may be)."""
    return "\n".join(f"{i},{90},{(i * 2654435761) % 16**64:064x},{i:.3f}" for i in range(frames))


# --- Migrations -------------------------------------------------------------------------


def test_migrates_an_empty_database_to_head(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) is None
        assert not TABLES & set(inspect(engine).get_table_names())

        migrate(engine)
        assert current_revision(engine) == head_revision()
        assert set(inspect(engine).get_table_names()) >= TABLES

        migrate(engine)  # already at head: nothing to do, nothing fails
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_models_and_migrations_agree(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "target_metadata": Base.metadata}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_downgrade_to_base_and_up_again(db: Database) -> None:
    with db.session() as session:
        _record(session)

    downgrade(db.engine, "base")
    assert current_revision(db.engine) is None
    assert not TABLES & set(inspect(db.engine).get_table_names())

    db.migrate()
    assert db.current_revision() == head_revision()
    with db.session() as session:
        assert _count(session, Content) == 0
        _record(session)
        assert _count(session, ContentSignal) == 2


def test_open_database_defaults_to_sqlite_under_home(tmp_path: Path) -> None:
    home = tmp_path / "nested" / "home"
    with open_database(Settings(home=home, database_url=None)) as database:
        assert database.dialect == "sqlite"
        assert database.current_revision() == head_revision()
        with database.session() as session:
            _record(session)
    assert (home / "vigil.db").is_file()


def test_sqlite_engine_settings(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a' / 'b' / 'x.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        assert (tmp_path / "a" / "b" / "x.db").is_file()
    finally:
        engine.dispose()


def test_bare_postgresql_url_means_psycopg3() -> None:
    assert normalise_url("postgresql://u@h/d").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u@h/d").drivername == "postgresql+psycopg"
    assert normalise_url("sqlite:///x.db").drivername == "sqlite"


# --- record_hashes ----------------------------------------------------------------------


def test_record_hashes_is_idempotent(db: Database) -> None:
    for _ in range(2):
        with db.session() as session:
            _record(session)
    with db.session() as session:
        assert _count(session, Content) == 1
        assert _count(session, ContentSignal) == 2
        content = get_content(session, SHA_A)
        assert content is not None
        assert [(s.signal_type, s.value, s.quality) for s in content.signals] == [
            ("md5", MD5_A, None),
            ("pdq", PDQ, 90),
        ]


def test_record_hashes_twice_in_one_session(session: Session) -> None:
    first = _record(session)
    second = _record(session, signals=[("pdq", PDQ, 90), ("pdq", PDQ, 90), ("md5", MD5_A, None)])
    session.commit()
    assert first is second
    assert _count(session, Content) == 1
    assert _count(session, ContentSignal) == 2


def test_record_hashes_adds_only_new_signals(session: Session) -> None:
    _record(session, signals=[("pdq", PDQ, 90)])
    content = _record(session, signals=[("pdq", PDQ, 90), ("md5", MD5_A, None)])
    session.commit()
    assert sorted(s.signal_type for s in content.signals) == ["md5", "pdq"]
    assert all(s.value_digest == value_digest(s.value) for s in content.signals)


def test_first_seen_kept_last_seen_moves_forward_only(db: Database) -> None:
    t0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    with db.session() as session:
        _record(session, now=t0)
    with db.session() as session:
        _record(session, now=t0 + timedelta(hours=5))
    with db.session() as session:
        _record(session, now=t0 + timedelta(hours=1))  # late, out-of-order writer
    with db.session() as session:
        content = get_content(session, SHA_A)
        assert content is not None
        assert content.first_seen == t0
        assert content.last_seen == t0 + timedelta(hours=5)


def test_record_hashes_fills_in_missing_md5_and_media_type(session: Session) -> None:
    _record(session, md5=None, media_type=None, signals=[])
    content = _record(session, md5=MD5_A.upper(), media_type="image", signals=[])
    session.commit()
    assert content.md5 == MD5_A
    assert content.media_type == "image"


def test_record_hashes_accepts_signal_objects(session: Session) -> None:
    @dataclass(frozen=True)
    class FakeSignal:
        signal_type: str
        value: str
        quality: int | None = None

    content = _record(session, signals=[FakeSignal("pdq", PDQ, 77)])
    session.commit()
    assert [(s.signal_type, s.quality) for s in content.signals] == [("pdq", 77)]


@pytest.mark.parametrize(
    ("field", "bad"),
    [("sha256", "xyz"), ("md5", "0" * 31), ("size", -1), ("media_type", "audio")],
)
def test_record_hashes_rejects_bad_input(field: str, bad: object) -> None:
    with pytest.raises(ValueError, match=field):
        _record(Session(), **{field: bad})


def test_long_vpdq_values_are_stored_and_found(session: Session) -> None:
    long_value = _vpdq_text(3600)  # an hour of video at one hash a second, ~290 kB
    assert len(long_value) > 100_000
    _record(session, media_type="video", signals=[("vpdq", long_value, 90)])
    _record(session, media_type="video", signals=[("vpdq", long_value, 90)])
    session.commit()
    found = find_signals(session, "vpdq", long_value)
    assert len(found) == 1
    assert found[0].value == long_value
    assert found[0].content.sha256 == SHA_A


def test_concurrent_writers_record_one_row(db: Database) -> None:
    writers = 4
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            barrier.wait(timeout=30)
            with db.session(immediate=True) as session:
                _record(session)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with db.session() as session:
        assert _count(session, Content) == 1
        assert _count(session, ContentSignal) == 2


# --- Types and constraints --------------------------------------------------------------


def test_datetimes_round_trip_timezone_aware_utc(db: Database) -> None:
    local = datetime(2024, 6, 1, 14, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    with db.session() as session:
        _record(session, now=local)
    with db.session() as session:
        content = get_content(session, SHA_A)
        assert content is not None
        for value in (content.first_seen, content.last_seen, content.signals[0].created):
            assert value.tzinfo is not None
            assert value.utcoffset() == timedelta(0)
            assert value == local
            assert value.hour == 12
        # Comparisons in SQL see the same instant whatever zone the bound value is in.
        assert session.scalar(select(func.count()).where(Content.first_seen == local)) == 1
        later = local.astimezone(UTC) + timedelta(microseconds=1)
        assert session.scalar(select(func.count()).where(Content.first_seen < later)) == 1


def test_naive_datetimes_are_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _record(session, now=datetime(2024, 1, 1))
    session.rollback()
    session.add(
        Content(
            sha256=SHA_B, size=1, first_seen=datetime(2024, 1, 1), last_seen=datetime(2024, 1, 1)
        )
    )
    with pytest.raises(Exception, match="naive datetime"):
        session.flush()


def test_deleting_content_cascades_to_signals(db: Database) -> None:
    with db.session() as session:
        _record(session)
        _record(session, sha256=SHA_B)
    with db.session() as session:
        # A bulk DELETE bypasses the ORM: the database's ON DELETE CASCADE does the work.
        session.execute(delete(Content).where(Content.sha256 == SHA_A))
    with db.session() as session:
        assert _count(session, Content) == 1
        assert _count(session, ContentSignal) == 2
        assert {s.content.sha256 for s in session.scalars(select(ContentSignal))} == {SHA_B}
        content = get_content(session, SHA_B)
        assert content is not None
        session.delete(content)
    with db.session() as session:
        assert _count(session, ContentSignal) == 0


def test_sha256_is_unique(session: Session) -> None:
    now = datetime.now(UTC)
    session.add(Content(sha256=SHA_A, size=1, first_seen=now, last_seen=now))
    session.commit()
    session.add(Content(sha256=SHA_A, size=2, first_seen=now, last_seen=now))
    with pytest.raises(IntegrityError):
        session.commit()


def test_signal_needs_existing_content(session: Session) -> None:
    session.add(ContentSignal(content_id=12345, signal_type="pdq", value=PDQ))
    with pytest.raises(IntegrityError):
        session.commit()


def test_media_type_is_checked(session: Session) -> None:
    now = datetime.now(UTC)
    session.add(Content(sha256=SHA_A, size=1, media_type="audio", first_seen=now, last_seen=now))
    with pytest.raises(IntegrityError):
        session.commit()


def test_session_commits_on_success_and_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError), db.session() as session:
        _record(session)
        raise RuntimeError("boom")
    with db.session() as session:
        assert _count(session, Content) == 0
        _record(session)
    with db.session() as session:
        assert _count(session, Content) == 1


def test_each_test_gets_an_empty_database(session: Session) -> None:
    assert _count(session, Content) == 0
    assert session.execute(text("SELECT 1")).scalar() == 1
