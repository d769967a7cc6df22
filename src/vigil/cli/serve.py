"""`vigil serve`: the HTTP API under uvicorn (docs/api.md)."""

from __future__ import annotations

import os
import shutil
from typing import Annotated

import typer

from vigil.banks.jobs import fail_interrupted_jobs
from vigil.config import get_settings
from vigil.pipeline.matching import BankMatcher
from vigil.store import open_database


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the HTTP API: hashing, matching, lookups, banks, actions, metrics."""
    import uvicorn

    settings = get_settings()
    database = open_database(settings)  # migrate once, before any worker starts
    try:
        with database.session() as session:
            failed = fail_interrupted_jobs(session)
        if failed:
            typer.echo(
                f"{failed} background job(s) left unfinished by the last run: failed", err=True
            )
        # Build (or check) the index snapshot once, so every worker loads it instead of
        # rebuilding it from the database.
        BankMatcher.from_database(database, cache_dir=settings.index_cache_dir)
    finally:
        database.dispose()
    if workers > 1:
        metrics_dir = settings.home / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    uvicorn.run(
        "vigil.api.app:serve_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        server_header=False,
    )
