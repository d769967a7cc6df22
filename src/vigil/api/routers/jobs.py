"""`GET /v1/jobs/{id}`: a background job's status and progress."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from vigil.api.security import Curator, State
from vigil.banks.jobs import job_view
from vigil.store import Job

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("/{job_id}")
def get_job(job_id: str, state: State, principal: Curator) -> dict[str, Any]:
    """A job started by this token (any job, for an `admin` token)."""
    with state.database.session() as session:
        job = session.get(Job, job_id)
        if job is None or not (principal.allows("admin") or job.actor == principal.actor):
            raise HTTPException(404, f"no job {job_id}")
        return job_view(session, job)
