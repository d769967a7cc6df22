"""The vault when its process is killed (SIGKILL) in the middle of writing or sweeping: a
real process, killed at an arbitrary moment; whatever the moment, every item left opens
(its SHA-256 checks), and the next sweep leaves no stray bytes and destroys nothing twice.
Both databases. POSIX only."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from vigil.config import Settings
from vigil.store import Database, VaultDestruction, VaultItem, open_database, utcnow
from vigil.vault import Clock, open_vault, preserve
from vigil.vault.items import open_item
from vigil.vault.retention import sweep

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")


def _write_forever(home: str, url: str) -> None:
    """Child: keep storing 1 MiB items until killed."""
    settings = Settings(home=Path(home), database_url=url)
    database = open_database(settings)
    vault = open_vault(settings)
    count = 0
    while True:
        count += 1
        with database.session(immediate=True) as session:
            preserve(
                session,
                vault,
                kind="document",
                data=os.urandom(1024 * 1024) + count.to_bytes(8, "big"),
                clock=Clock.voluntary(utcnow() + timedelta(days=30), "kill test"),
                now=utcnow(),
                label=f"item {count}",
            )


def _sweep(home: str, url: str, when: str) -> None:
    """Child: sweep at `when` (ISO), destroying everything expired."""
    from datetime import datetime

    settings = Settings(home=Path(home), database_url=url)
    database = open_database(settings)
    with database.sessionmaker() as session:
        sweep(session, open_vault(settings), now=datetime.fromisoformat(when))


def _settings(db: Database, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", database_url=db.engine.url.render_as_string(False))


def _kill_when(process: multiprocessing.process.BaseProcess, ready: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not ready() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)
    assert process.pid is not None
    os.kill(process.pid, signal.SIGKILL)
    process.join(timeout=10)


def _consistent(db: Database, settings: Settings) -> list[VaultItem]:
    """Every live item opens; returns them."""
    vault = open_vault(settings)
    with db.session() as session:
        live = list(session.scalars(select(VaultItem).where(VaultItem.wrapped_key.is_not(None))))
        for item in live:
            open_item(vault, item)  # raises on a half-written or damaged item
        return live


def _stored_keys(settings: Settings) -> set[str]:
    return {key for key, _ in open_vault(settings).store.list_keys()}  # type: ignore[attr-defined]


def test_killed_while_writing(db: Database, tmp_path: Path) -> None:
    settings = _settings(db, tmp_path)
    open_vault(settings)  # the key file, before two processes race to create it
    url = db.engine.url.render_as_string(False)
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=_write_forever, args=(str(settings.home), url))
    child.start()

    def written() -> bool:
        with db.session() as session:
            return (session.scalar(select(func.count()).select_from(VaultItem)) or 0) >= 3

    _kill_when(child, written, 60)
    live = _consistent(db, settings)
    assert len(live) >= 3
    # The next sweep (no grace for orphans) leaves exactly the live items' bytes.
    with db.sessionmaker() as session:
        sweep(session, open_vault(settings), now=utcnow(), orphan_grace=timedelta(0))
    assert _stored_keys(settings) == {item.blob_key for item in live}
    assert len(_consistent(db, settings)) == len(live)


def test_killed_while_sweeping(db: Database, tmp_path: Path) -> None:
    settings = _settings(db, tmp_path)
    vault = open_vault(settings)
    now = utcnow()
    with db.session() as session:
        for number in range(40):
            preserve(
                session,
                vault,
                kind="document",
                data=os.urandom(256 * 1024),
                clock=Clock.voluntary(now + timedelta(days=1), "expires tomorrow"),
                now=now,
                label=f"item {number}",
            )
        kept = preserve(
            session,
            vault,
            kind="document",
            data=b"kept for a year",
            clock=Clock.voluntary(now + timedelta(days=365), "kept"),
            now=now,
        ).item.id
    later = now + timedelta(days=2)
    url = db.engine.url.render_as_string(False)
    child = multiprocessing.get_context("spawn").Process(
        target=_sweep, args=(str(settings.home), url, later.isoformat())
    )
    child.start()

    def some_shredded() -> bool:
        with db.session() as session:
            return (session.scalar(select(func.count()).select_from(VaultDestruction)) or 0) > 0

    _kill_when(child, some_shredded, 60)
    _consistent(db, settings)  # every item still keyed opens
    with db.sessionmaker() as session:
        sweep(session, open_vault(settings), now=later, orphan_grace=timedelta(0))
    live = _consistent(db, settings)
    assert [item.id for item in live] == [kept]
    assert _stored_keys(settings) == {live[0].blob_key}
    with db.session() as session:
        destroyed = list(session.scalars(select(VaultDestruction.item_id)))
    assert sorted(destroyed) == sorted(set(destroyed))  # nothing destroyed twice
    assert len(destroyed) == 40
