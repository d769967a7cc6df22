"""The console's reports pages: the list with states and errors, a report with its XML and
files, and approve / send / retract for `legal`, `lead` and `admin` users."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from sqlalchemy import func, select
from starlette.responses import RedirectResponse, Response

from vigil.reporting import service
from vigil.reporting.builder import Builders, make_submitter
from vigil.reporting.client import CyberTipNotConfigured
from vigil.reporting.drafts import bundling_summary
from vigil.reporting.submission import SubmissionError, file_name
from vigil.reporting.xml import ReportInvalid
from vigil.store import AppUser, Report, UploadEvent
from vigil.store.report_models import REPORT_STATUSES
from vigil.vault.accounts import connectors_from_settings
from vigil.web.security import ConsoleError, console_state, signed_in
from vigil.web.sessions import SignedIn
from vigil.web.templating import render as render_page

router = APIRouter(prefix="/console/reports", include_in_schema=False)

ReportsUser = Annotated[SignedIn, Depends(signed_in("legal", "lead"))]


def _approver(user: SignedIn) -> service.Approver:
    return service.Approver(user.user_id, frozenset(user.roles))


@router.get("")
def reports_page(request: Request, user: ReportsUser, status: str | None = None) -> Response:
    state = console_state(request)
    selected = status or None
    with state.database.session() as session:
        try:
            reports = service.list_reports(session, status=selected)
        except service.ReportError as error:
            raise ConsoleError(422, str(error)) from None
        counts = dict(
            session.execute(select(Report.status, func.count()).group_by(Report.status)).all()
        )
        return render_page(
            request,
            "reports/list.html",
            {
                "active": "reports",
                "reports": reports,
                "statuses": REPORT_STATUSES,
                "selected": selected,
                "counts": counts,
                "bundling": bundling_summary(session),
                "environment": state.settings.cybertip_environment,
            },
        )


@router.get("/{report_id}")
def report_page(
    request: Request,
    user: ReportsUser,
    report_id: Annotated[int, Path()],
    message: str | None = None,
) -> Response:
    state = console_state(request)
    builders = Builders(state.settings, connectors_from_settings(state.settings))
    with state.database.session() as session:
        try:
            report = service.get_report(session, report_id)
        except service.ReportNotFound:
            raise ConsoleError(404, f"No report {report_id}.") from None
        xml, xml_error = report.xml, None
        if xml is None:
            try:
                xml = builders.report(session, report).decode("utf-8")
            except ReportInvalid as error:
                xml, xml_error = "", str(error)
        originals = {
            e.id: e.file_name
            for e in session.scalars(
                select(UploadEvent).where(
                    UploadEvent.id.in_([f.upload_event_id for f in report.files])
                )
            )
        }
        files = [
            {
                "file": f,
                "name": file_name(session, report.id, f.id),
                "original": originals.get(f.upload_event_id or 0),
            }
            for f in report.files
        ]
        approver = session.get(AppUser, report.approved_by) if report.approved_by else None
        return render_page(
            request,
            "reports/detail.html",
            {
                "active": "reports",
                "report": report,
                "files": files,
                "xml": xml,
                "xml_error": xml_error,
                "approver": approver.username if approver else None,
                "can_approve": user.has_any(*service.APPROVER_ROLES),
                "environment": state.settings.cybertip_environment,
                "message": message,
            },
        )


def _back(report_id: int, message: str) -> RedirectResponse:
    from urllib.parse import quote

    return RedirectResponse(
        f"/console/reports/{report_id}?message={quote(message)}", status_code=303
    )


@router.post("/{report_id}/approve")
def approve_report(
    request: Request, user: ReportsUser, report_id: Annotated[int, Path()]
) -> Response:
    state = console_state(request)
    try:
        with state.database.session(immediate=True) as session:
            service.approve(
                session,
                report_id,
                _approver(user),
                environment=state.settings.cybertip_environment,
            )
    except service.ReportError as error:
        raise ConsoleError(409, str(error), title="Not approved") from None
    return _back(report_id, "Approved: it will be sent shortly.")


@router.post("/{report_id}/send")
def send_report(request: Request, user: ReportsUser, report_id: Annotated[int, Path()]) -> Response:
    """Send now (also after an operator fixed what stopped it)."""
    state = console_state(request)
    if not user.has_any(*service.APPROVER_ROLES):
        raise ConsoleError(403, "Only legal, lead or admin users send reports.")
    try:
        with state.database.session(immediate=True) as session:
            service.send_again(session, report_id)
        result = service.send(
            state.database, make_submitter(state.settings, state.database, state.media), report_id
        )
    except (service.ReportError, SubmissionError, CyberTipNotConfigured) as error:
        raise ConsoleError(409, str(error), title="Not sent") from None
    if result is None:
        return _back(report_id, "Another worker is sending it right now.")
    return _back(
        report_id, f"Sending: {result.outcome}" + (f" ({result.message})" if result.message else "")
    )


@router.post("/{report_id}/retract")
def retract_report(
    request: Request, user: ReportsUser, report_id: Annotated[int, Path()]
) -> Response:
    state = console_state(request)
    try:
        service.retract(
            state.database,
            make_submitter(state.settings, state.database, state.media),
            report_id,
            _approver(user),
        )
    except (service.ReportError, CyberTipNotConfigured) as error:
        raise ConsoleError(409, str(error), title="Not retracted") from None
    return _back(report_id, "Retracted.")
