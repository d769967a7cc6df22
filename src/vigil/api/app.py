"""The FastAPI application: one router per room, a thin layer over the services.

`create_app()` builds everything a worker holds (database, match index, token cache) at
once; the lifespan starts and stops its background threads (index refresh, webhook
delivery, report sending, audit checkpoints). `vigil serve` runs `serve_app` under uvicorn,
one copy per worker process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vigil import __version__
from vigil.actions import ActionWorker
from vigil.api import errors
from vigil.api.observability import ServiceMiddleware, configure_logging
from vigil.api.routers import actions as actions_router
from vigil.api.routers import banks, flags, hashing, health, hma, jobs, lookup, notice
from vigil.api.routers import legal as legal_router
from vigil.api.state import IndexKeeper, ServiceState
from vigil.audit import CheckpointWorker
from vigil.auth import TokenCache
from vigil.config import Settings, get_settings
from vigil.legal.intake import MAX_DOCUMENT_BYTES
from vigil.legal.reminders import LegalWorker
from vigil.pipeline.matching import BankMatcher
from vigil.reporting.builder import make_submitter
from vigil.reporting.service import ReportWorker
from vigil.store import Database, open_database
from vigil.vault.media import media_store
from vigil.vault.worker import VaultWorker
from vigil.web import install_console

_MULTIPART_SLACK = 1024 * 1024
LEGAL_PATHS = ("/v1/legal/", "/console/legal/", "/portal/")
"""Routes that take at most a legal document: their bodies are capped near its size."""


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    background: bool = True,
) -> FastAPI:
    """The API over `database` (default: the settings' database, migrated). With
    `background`, the lifespan runs the index refresher, the webhook worker and the report
    sender; tests turn it off to drive them by hand."""
    settings = settings or get_settings()
    database = database or open_database(settings)
    matcher = BankMatcher.from_database(database, cache_dir=settings.index_cache_dir)
    state = ServiceState(
        settings=settings,
        database=database,
        index=IndexKeeper(matcher, settings.index_refresh_seconds),
        tokens=TokenCache(database, settings.api_token_cache_seconds),
        media=media_store(settings),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        workers: list[
            ActionWorker | ReportWorker | CheckpointWorker | VaultWorker | LegalWorker
        ] = []
        if background:
            state.index.start()
            workers.append(ActionWorker(database, settings))
            workers.append(
                ReportWorker(database, lambda: make_submitter(settings, database, state.media))
            )
            workers.append(CheckpointWorker(database, settings))  # audit_checkpoint_hours
            workers.append(VaultWorker(database, settings))
            workers.append(LegalWorker(database, settings))  # reminders, mail
            for worker in workers:
                worker.start()
        try:
            yield
        finally:
            state.index.stop()
            for worker in workers:
                worker.stop()

    app = FastAPI(
        title="Vigil",
        version=__version__,
        summary="Hash, match and act on uploads; curate hash banks.",
        description="Every route but `/healthz` and `/readyz` needs `Authorization: Bearer"
        " <token>` (see `vigil tokens create`). Integration guide: docs/api.md.",
        lifespan=lifespan,
    )
    app.state.vigil = state
    errors.install(app)
    for module in (
        health,
        hashing,
        flags,
        lookup,
        banks,
        jobs,
        actions_router,
        notice,
        legal_router,
        hma,
    ):
        app.include_router(module.router)
    import_limit = settings.bank_import_max_bytes + _MULTIPART_SLACK
    upload_limit = settings.max_file_bytes + _MULTIPART_SLACK
    # A legal document's 25 MiB, base64-encoded in JSON (4/3) with room for the fields.
    legal_limit = MAX_DOCUMENT_BYTES * 3 // 2 + _MULTIPART_SLACK

    def body_limit(path: str) -> int:
        if path.endswith("/imports"):
            return import_limit
        if path.startswith(LEGAL_PATHS):
            return legal_limit
        return upload_limit

    app.add_middleware(ServiceMiddleware, body_limit=body_limit)
    install_console(app)  # after ServiceMiddleware: its headers cover every /console answer
    return app


def serve_app() -> FastAPI:
    """The factory `vigil serve` hands uvicorn: settings from the environment, JSON logs."""
    settings = get_settings()
    configure_logging(settings.log_format)
    return create_app(settings)
