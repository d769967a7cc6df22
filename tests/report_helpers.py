"""A confirmed report against a running CyberTipline sandbox, for the reporting tests (the
submission, the console's reports pages, `vigil reports`).

Every picture is synthetic (`vigil.demo.synthetic_image`); the bank holds only its hash.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from vigil.auth.users import create_user
from vigil.banks import NewEntry, add_entries, create_bank
from vigil.config import Settings
from vigil.demo import synthetic_image
from vigil.pipeline.matching import BankMatcher
from vigil.pipeline.online import Uploader, hash_upload, online_options, record_upload
from vigil.reporting import service
from vigil.reporting.builder import make_submitter
from vigil.reporting.sandbox import SandboxStore, running_sandbox
from vigil.reporting.submission import Submitter
from vigil.review import Reviewer, claim_next, confirm, record_reveal
from vigil.store import Database, Report, utcnow
from vigil.vault.media import media_store

USER, PASSWORD = "esp-test", "sandbox-secret"
"""The sandbox's credentials."""
ACCOUNT = "acct-42"
"""The reported account of the world's report."""
PEOPLE_PASSWORD = "correct horse battery"
"""The password of the world's people (`rita` the reviewer, `lou` the legal user)."""


@dataclass
class Sandbox:
    url: str
    store: SandboxStore
    app: Any

    def fail(self, endpoint: str, failure: str) -> None:
        self.app.state.failures.add(endpoint, failure)


@contextmanager
def serve_sandbox(store: Path) -> Iterator[Sandbox]:
    """The clearinghouse's stand-in, served on a free local port for the block."""
    with running_sandbox(store, PASSWORD, username=USER) as running:
        yield Sandbox(running.url, running.store, running.app)


@dataclass
class World:
    db: Database
    settings: Settings
    legal: service.Approver
    report_id: int
    picture: bytes
    reviewer: Reviewer

    def report(self) -> Report:
        with self.db.session() as session:
            report = session.get(Report, self.report_id)
            assert report is not None
            _ = list(report.files)
            return report

    def submitter(self, crash: Any = None, **settings: Any) -> Submitter:
        config = self.settings.model_copy(update=settings)
        submitter = make_submitter(config, self.db, media_store(config))
        submitter.retry_after = timedelta(0)
        if crash is not None:
            submitter.crash = crash
        return submitter


def report_settings(db: Database, home: Path, sandbox_url: str, **overrides: Any) -> Settings:
    """Settings for a platform that reports to the sandbox at `sandbox_url`."""
    values: dict[str, Any] = {
        "home": home,
        "database_url": db.engine.url.render_as_string(False),
        "cybertip_test_url": sandbox_url,
        "cybertip_test_username": USER,
        "cybertip_test_password": PASSWORD,
        "report_person_email": "safety@platform.example",
        "report_company_template": "Serve legal process at legal@platform.example; we keep"
        " data 1 year; 24-hour emergency line +1 555 0100.",
        "report_platform": "Example Platform",
        "cybertip_timeout_seconds": 2.0,
    }
    values.update(overrides)
    return Settings(**values)


def build_world(db: Database, settings: Settings, pictures: Path) -> World:
    """A synthetic picture banked; two copies uploaded by one account (a second file with
    other bytes), matched, reviewed (the first revealed in full), confirmed; a draft report.
    The people: `rita` (reviewer) and `lou` (legal)."""
    pictures.mkdir()
    first, second = pictures / "beach.png", pictures / "beach-copy.jpg"
    synthetic_image(320, 240, 77).save(first)
    synthetic_image(320, 240, 77).convert("RGB").save(second, quality=85)
    limits = settings.media_limits
    options = online_options(limits, settings.vpdq_seconds_per_hash)
    banked = hash_upload(first, first.name, limits, options)
    with db.session() as session:
        create_bank(session, "known", trust="verified")
        add_entries(session, "known", [NewEntry("pdq", banked.signals["pdq"].value, "B1")])
        reviewer = create_user(session, "rita", PEOPLE_PASSWORD, ["reviewer"])
        legal = create_user(session, "lou", PEOPLE_PASSWORD, ["legal"])
        rita = Reviewer(reviewer.id, frozenset(reviewer.roles))
        lou = service.Approver(legal.id, frozenset(legal.roles))
    matcher = BankMatcher.from_database(db, cache_dir=settings.index_cache_dir)
    store = media_store(settings)
    for path, ip in ((first, "198.51.100.7"), (second, "2001:db8::9")):
        record = hash_upload(path, path.name, limits, options)
        (outcome,) = matcher.match([record])
        assert outcome.matches
        record_upload(
            db,
            record,
            outcome,
            uploader=Uploader(ACCOUNT, "sunny", ip, utcnow() - timedelta(hours=2)),
            media=(store, path),
        )
    with db.session() as session:
        task = claim_next(session, rita, lease=timedelta(minutes=15))
        assert task is not None and len(task.items) == 2
        record_reveal(session, task.id, task.items[0].id, rita, "full")
        confirm(
            session,
            task.id,
            rita,
            industry="B1",
            annotations=["possibleSelfProduction"],
            viewed_items=[task.items[0].id],
        )
        [report] = session.scalars(select(Report)).all()
        report_id = report.id
    return World(db, settings, lou, report_id, first.read_bytes(), rita)
