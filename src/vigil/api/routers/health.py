"""`/healthz` (alive, no token), `/readyz` (database and index, no token), `/metrics`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import text

from vigil.actions import failed_attempts, outbox_depth
from vigil.api.observability import render_metrics
from vigil.api.security import State, require

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (for a liveness probe)."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(state: State) -> JSONResponse:
    """Ready to serve: the database answers and this worker's match index is current."""
    checks: dict[str, Any] = {}
    try:
        with state.database.session() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as error:
        checks["database"] = f"unreachable: {type(error).__name__}"
    index = state.index
    checks["index"] = (
        "ok" if index.is_current() else f"stale: {index.last_error or 'not refreshed'}"
    )
    checks["index_entries"] = len(state.matcher)
    ready = checks["database"] == "ok" and checks["index"] == "ok"
    return JSONResponse(
        {"status": "ready" if ready else "not ready", **checks}, 200 if ready else 503
    )


@router.get("/metrics", dependencies=[Depends(require("hash"))])
async def metrics(state: State) -> Response:
    """Prometheus metrics, for any token with the `hash` scope (or `match`, `admin`)."""

    def gauges() -> tuple[dict[str, int], dict[str, int], int]:
        with state.database.session() as session:
            return state.matcher.index.counts(), outbox_depth(session), failed_attempts(session)

    values = await run_in_threadpool(gauges)
    body, content_type = render_metrics(lambda: values)
    return Response(body, media_type=content_type)
