"""Bank imports as background jobs: the API accepts the file, answers `202` with a job id at
once, and imports in a thread while the caller polls `GET /v1/jobs/{id}`.

A job's progress points at its `bank_import` record, which the import updates after every
committed batch. A server that stops mid-import leaves the job `running`; the next start
marks such jobs `failed` (the import record says how far it got, and `undo_import` reverses
it).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vigil.banks.formats.base import ImportLimits
from vigil.banks.importing import ImportReport, import_file
from vigil.store import BankImport, Database, Job, utcnow

log = logging.getLogger("vigil.jobs")
IMPORT = "bank_import"


def create_import_job(
    session: Session, *, bank: str, upload: Path, actor: str, options: dict[str, Any]
) -> Job:
    """Record a queued import of the uploaded file `upload` into `bank`."""
    job = Job(
        id=uuid.uuid4().hex,
        kind=IMPORT,
        status="queued",
        actor=actor[:200],
        params={"bank": bank, "upload": str(upload), **options},
        progress={},
    )
    session.add(job)
    session.flush()
    return job


def run_import_job(
    database: Database,
    job_id: str,
    limits: ImportLimits,
    on_done: Callable[[], None] | None = None,
) -> None:
    """Run a queued import job to the end (in the calling thread); the uploaded file is
    deleted afterwards whatever happens."""
    with database.session() as session:
        job = session.get(Job, job_id)
        if job is None or job.status != "queued":
            return
        job.status, job.started = "running", utcnow()
        params = dict(job.params)
    upload = Path(params.pop("upload"))
    bank = params.pop("bank")

    def started(import_id: int) -> None:
        with database.session() as progress_session:
            progress_session.execute(
                update(Job).where(Job.id == job_id).values(progress={"import_id": import_id})
            )

    try:
        with database.session() as session:
            report = import_file(
                session,
                bank,
                upload,
                actor=f"job:{job_id}",
                limits=limits,
                on_start=started,
                **params,
            )
        status, result, error = (
            ("finished", report.as_json(), None)
            if report.status == "finished"
            else ("failed", report.as_json(), report.error)
        )
    except Exception as exc:  # a bad option or a database failure: the job says why
        log.exception("import job %s failed", job_id)
        status, result, error = "failed", None, f"{type(exc).__name__}: {exc}"
    finally:
        upload.unlink(missing_ok=True)
    with database.session() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(status=status, result=result, error=error, finished=utcnow())
        )
    if on_done is not None:
        on_done()


def start_import_job(
    database: Database,
    job_id: str,
    limits: ImportLimits,
    on_done: Callable[[], None] | None = None,
) -> threading.Thread:
    """Run an import job in a background thread."""
    thread = threading.Thread(
        target=run_import_job,
        args=(database, job_id, limits, on_done),
        name=f"vigil-job-{job_id[:8]}",
        daemon=True,
    )
    thread.start()
    return thread


def job_view(session: Session, job: Job) -> dict[str, Any]:
    """A job as the API shows it, with live counts from its import record."""
    progress = dict(job.progress)
    import_id = progress.get("import_id")
    if import_id is not None and job.status == "running":
        record = session.get(BankImport, import_id)
        if record is not None:
            progress.update(ImportReport.from_record(record, job.params["bank"]).as_json())
    params = {k: v for k, v in job.params.items() if k != "upload"}
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "actor": job.actor,
        "params": params,
        "progress": progress,
        "result": job.result,
        "error": job.error,
        "created": job.created.isoformat(),
        "started": job.started.isoformat() if job.started else None,
        "finished": job.finished.isoformat() if job.finished else None,
    }


def fail_interrupted_jobs(session: Session) -> int:
    """Mark jobs left `queued` or `running` by a server that stopped as failed, and remove
    their uploaded files. Run by `vigil serve` before its workers start (never by a worker:
    another worker's job would look interrupted)."""
    jobs = list(session.scalars(select(Job).where(Job.status.in_(("queued", "running")))))
    for job in jobs:
        job.status, job.finished = "failed", utcnow()
        job.error = "the server stopped before the job finished; see the import record"
        upload = job.params.get("upload")
        if upload:
            Path(upload).unlink(missing_ok=True)
    return len(jobs)
