"""Reports as people and the server act on them: list, approve, retract, send.

Approval is a person's (`legal`, `lead` or `admin`): a report leaves Vigil only after someone
accountable said so, unless the platform lets reports built solely from bank-policy
confirmations go by themselves (`VIGIL_REPORT_AUTO_APPROVE_VERIFIED`). Sending is claimed
with a lease, so several workers never send one report at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from vigil.background import PeriodicWorker
from vigil.reporting.client import AlreadyFinished, AlreadyRetracted, CyberTipError, UnknownReport
from vigil.reporting.submission import SubmissionResult, Submitter
from vigil.store import Database, Report, utcnow
from vigil.store.report_models import REPORT_STATUSES

logger = logging.getLogger(__name__)

APPROVER_ROLES = frozenset({"legal", "lead", "admin"})
SEND_LEASE = timedelta(minutes=10)


class ReportError(Exception):
    """A report action that cannot be done as asked; the message says why."""


class ReportNotFound(ReportError, LookupError):
    pass


@dataclass(frozen=True)
class Approver:
    user_id: int
    roles: frozenset[str]


def get_report(session: Session, report_id: int) -> Report:
    report = session.get(Report, report_id)
    if report is None:
        raise ReportNotFound(f"no report {report_id}")
    return report


def list_reports(session: Session, *, status: str | None = None, limit: int = 100) -> list[Report]:
    """Newest first, optionally of one status."""
    if status is not None and status not in REPORT_STATUSES:
        raise ReportError(f"unknown status {status!r}: use {', '.join(REPORT_STATUSES)}")
    query = select(Report).order_by(Report.id.desc()).limit(limit)
    if status is not None:
        query = query.where(Report.status == status)
    return list(session.scalars(query))


def approve(
    session: Session,
    report_id: int,
    approver: Approver,
    *,
    environment: str,
    now: datetime | None = None,
) -> Report:
    """Let a draft go to the clearinghouse's `environment` (`test` or `production`)."""
    if not approver.roles & APPROVER_ROLES:
        raise ReportError("only a legal, lead or admin user may approve a report")
    if environment not in ("test", "production"):
        raise ReportError(f"unknown environment {environment!r}")
    report = get_report(session, report_id)
    if report.status != "draft":
        raise ReportError(f"report {report_id} is {report.status}: only a draft is approved")
    if not report.files:
        raise ReportError(f"report {report_id} has no files")
    when = now or utcnow()
    report.status = "approved"
    report.approved_by = approver.user_id
    report.approved_at = when
    report.environment = environment
    report.updated = when
    session.flush()
    return report


def send_again(session: Session, report_id: int, *, now: datetime | None = None) -> Report:
    """After an operator fixed what stopped a report (credentials), make it due now."""
    report = get_report(session, report_id)
    if report.status not in ("approved", "submitted"):
        raise ReportError(f"report {report_id} is {report.status}: nothing to send")
    report.next_attempt_at = None
    report.error_code = None
    report.updated = now or utcnow()
    session.flush()
    return report


def due_reports(session: Session, now: datetime, limit: int = 20) -> list[int]:
    """Reports to send now: approved or half-sent, not waiting for a retry, not stopped for
    an operator, not held by another sender."""
    return list(
        session.scalars(
            select(Report.id)
            .where(
                Report.status.in_(("approved", "submitted")),
                or_(
                    Report.next_attempt_at <= now,
                    Report.next_attempt_at.is_(None) & Report.error_code.is_(None),
                ),
                or_(Report.lease_until.is_(None), Report.lease_until < now),
            )
            .order_by(Report.id)
            .limit(limit)
        )
    )


def claim_for_sending(database: Database, report_id: int, now: datetime) -> bool:
    with database.session(immediate=True) as session:
        taken = session.execute(
            update(Report)
            .where(
                Report.id == report_id,
                or_(Report.lease_until.is_(None), Report.lease_until < now),
            )
            .values(lease_until=now + SEND_LEASE)
            .execution_options(synchronize_session=False)
        )
        return bool(taken.rowcount)  # type: ignore[attr-defined]


def release_sending(database: Database, report_id: int) -> None:
    with database.session(immediate=True) as session:
        get_report(session, report_id).lease_until = None


def send(
    database: Database, submitter: Submitter, report_id: int, *, now: datetime | None = None
) -> SubmissionResult | None:
    """Send one report under a lease; None when another sender holds it."""
    when = now or utcnow()
    if not claim_for_sending(database, report_id, when):
        return None
    try:
        return submitter.run(report_id, now=now)
    finally:
        release_sending(database, report_id)


def retract(
    database: Database,
    submitter: Submitter,
    report_id: int,
    approver: Approver,
    *,
    now: datetime | None = None,
) -> Report:
    """Cancel a report that is not finished: at the clearinghouse too when it has one there
    (its files stay preserved)."""
    if not approver.roles & APPROVER_ROLES:
        raise ReportError("only a legal, lead or admin user may retract a report")
    when = now or utcnow()
    if not claim_for_sending(database, report_id, when):
        with database.session() as session:
            get_report(session, report_id)  # ReportNotFound: there is nothing to claim
        raise ReportError(f"report {report_id} is being sent right now; try again shortly")
    try:
        with database.session() as session:
            report = get_report(session, report_id)
            if report.status in ("finished", "retracted"):
                raise ReportError(f"report {report_id} is {report.status}: it cannot be retracted")
            remote, environment = report.remote_report_id, report.environment
        if remote is not None and environment is not None:
            with submitter.clients(environment, lambda step, fields: None) as client:
                try:
                    client.retract(remote)
                except (AlreadyRetracted, UnknownReport):
                    pass
                except AlreadyFinished:
                    raise ReportError(
                        f"report {report_id} was finished at the clearinghouse: too late"
                    ) from None
                except CyberTipError as error:
                    raise ReportError(f"the clearinghouse did not retract it: {error}") from None
        with database.session(immediate=True) as session:
            report = get_report(session, report_id)
            report.status = "retracted"
            report.retracted_at = when
            report.updated = when
            report.next_attempt_at = None
            return report
    finally:
        release_sending(database, report_id)


class ReportWorker(PeriodicWorker):
    """Sends due reports every `poll_seconds`, in a thread (`start`/`stop`). Logs report ids
    and outcomes, never report contents."""

    name = "vigil-reports"

    def __init__(
        self,
        database: Database,
        submitter_factory: Callable[[], Submitter],
        *,
        poll_seconds: float = 5.0,
    ) -> None:
        super().__init__(poll_seconds)
        self.database = database
        self.submitter_factory = submitter_factory

    def run_once(self, now: datetime | None = None) -> list[SubmissionResult]:
        when = now or utcnow()
        with self.database.session() as session:
            due = due_reports(session, when)
        results = []
        if due:
            submitter = self.submitter_factory()
            for report_id in due:
                result = send(self.database, submitter, report_id, now=now)
                if result is not None:
                    logger.info("report %d: %s (%s)", report_id, result.outcome, result.status)
                    results.append(result)
        return results
