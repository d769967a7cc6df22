"""The vault in the console (legal and admin only: clocks, holds, reads with a reason) and the
server's vault worker (a submitted report's preservation request taken in; sweeps). Both
databases."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from report_helpers import build_world, report_settings, serve_sandbox
from vigil.api.app import create_app
from vigil.auth.users import create_user
from vigil.config import Settings
from vigil.reporting import service
from vigil.store import AuditEvent, Database, PreservationRequest, VaultItem, utcnow
from vigil.vault import Clock, open_vault, preserve
from vigil.vault.worker import VaultWorker

PASSWORD = "correct horse battery staple"


@pytest.fixture
def settings(db: Database, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", database_url=db.engine.url.render_as_string(False))


@pytest.fixture
def console(db: Database, settings: Settings) -> Iterator[TestClient]:
    with db.session() as session:
        create_user(session, "lou", PASSWORD, ["legal"])
        create_user(session, "rita", PASSWORD, ["reviewer"])
    with TestClient(create_app(settings, database=db, background=False)) as client:
        yield client


def sign_in(client: TestClient, username: str) -> str:
    """Sign in; returns the session's CSRF token."""
    client.cookies.clear()
    form = client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    client.post(
        "/console/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
    )
    page = client.get("/console/settings")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def keep(db: Database, settings: Settings, data: bytes, account: str, days: int) -> int:
    vault = open_vault(settings)
    with db.session() as session:
        kept = preserve(
            session,
            vault,
            kind="document",
            data=data,
            clock=Clock.voluntary(utcnow() + timedelta(days=days), "kept for the test"),
            now=utcnow(),
            account_key=account,
            label=f"a note about {account}",
        )
        return kept.item.id


def test_the_vault_page_is_for_legal_and_shows_clocks(
    console: TestClient, db: Database, settings: Settings
) -> None:
    soon = keep(db, settings, b"synthetic note one", "acct-1", 10)
    later = keep(db, settings, b"synthetic note two", "acct-2", 200)
    sign_in(console, "rita")
    assert console.get("/console/vault").status_code == 403
    sign_in(console, "lou")
    page = console.get("/console/vault")
    assert page.status_code == 200
    assert f'data-item="{soon}"' in page.text and f'data-item="{later}"' in page.text
    assert re.search(r'data-metric="soon".*?<strong>1</strong>', page.text, re.S)
    assert page.headers["cache-control"] == "no-store"


def test_reading_an_item_needs_a_reason_and_is_audited(
    console: TestClient, db: Database, settings: Settings
) -> None:
    item_id = keep(db, settings, b"synthetic evidence bytes", "acct-1", 30)
    token = sign_in(console, "lou")
    refused = console.post(
        f"/console/vault/items/{item_id}/read", data={"csrf_token": token, "reason": "  "}
    )
    assert refused.status_code == 409
    read = console.post(
        f"/console/vault/items/{item_id}/read",
        data={"csrf_token": token, "reason": "subpoena 2026-17, item 3"},
    )
    assert read.status_code == 200
    assert read.content == b"synthetic evidence bytes"
    assert read.headers["content-disposition"].startswith("attachment")
    with db.session() as session:
        event = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "vault.read", AuditEvent.object_id == str(item_id)
            )
        ).one()
        assert event.actor == "user:lou"
        assert event.details["reason"] == "subpoena 2026-17, item 3"
        assert "synthetic evidence bytes" not in str(event.details)


def test_a_hold_is_placed_on_an_account_and_released(
    console: TestClient, db: Database, settings: Settings
) -> None:
    item_id = keep(db, settings, b"synthetic note three", "acct-9", 1)
    token = sign_in(console, "lou")
    placed = console.post(
        "/console/vault/holds",
        data={"csrf_token": token, "name": "case 7", "account": "acct-9", "reason": "litigation"},
    )
    assert placed.status_code == 200 and "placed on 1 item" in placed.text
    with db.session() as session:
        clocks = session.get(VaultItem, item_id).clocks  # type: ignore[union-attr]
        [hold_clock] = [c for c in clocks if c.reason == "legal_hold"]
        hold_id = hold_clock.hold_id
    released = console.post(f"/console/vault/holds/{hold_id}/release", data={"csrf_token": token})
    assert released.status_code == 200 and f"Hold {hold_id} released" in released.text


def test_the_worker_takes_a_submitted_report_in_and_sweeps(db: Database, tmp_path: Path) -> None:
    with serve_sandbox(tmp_path / "sandbox") as sandbox:
        settings = report_settings(db, tmp_path / "home", sandbox.url)
        world = build_world(db, settings, tmp_path / "pictures")
        with db.session() as session:
            service.approve(session, world.report_id, world.legal, environment="test")
        assert world.submitter().run(world.report_id).outcome == "finished"
    worker = VaultWorker(db, settings)
    worker.run_once()
    with db.session() as session:
        [request] = session.scalars(select(PreservationRequest)).all()
        assert request.honoured_at is not None
        kinds = dict(
            session.execute(select(VaultItem.kind, func.count()).group_by(VaultItem.kind)).all()
        )
        assert kinds["content"] == 2 and kinds["upload"] == 2 and kinds["account"] == 1
    # A year and a day later, nothing keeps them: the next sweep destroys them.
    worker.run_once(now=utcnow() + timedelta(days=366))
    with db.session() as session:
        left = session.scalar(
            select(func.count()).select_from(VaultItem).where(VaultItem.wrapped_key.is_not(None))
        )
        assert left == 0
