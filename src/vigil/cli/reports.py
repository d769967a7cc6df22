"""`vigil reports ...`: reports to the CyberTipline: list, show, approve, submit, retract.
A thin layer over `vigil.reporting`.

Exit status: 0 done; 1 a report could not be sent (it will be retried, or it failed; the
message says which); 2 usage error (unknown report or user, wrong state, missing role).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from vigil.auth.users import UserNotFound, get_user
from vigil.cli.common import database_session, err_console, stdout_console, usage_error
from vigil.config import get_settings
from vigil.reporting import service
from vigil.reporting.builder import Builders, make_submitter
from vigil.reporting.client import CyberTipNotConfigured
from vigil.reporting.submission import SubmissionError
from vigil.reporting.xml import ReportInvalid
from vigil.store import Report, open_database, utcnow
from vigil.vault.accounts import connectors_from_settings
from vigil.vault.media import media_store

reports_app = typer.Typer(
    help="Reports to the CyberTipline: drafts from review decisions, approval, submission.",
    no_args_is_help=True,
)


def _approver(username: str) -> service.Approver:
    with database_session() as session:
        try:
            user = get_user(session, username)
        except UserNotFound:
            usage_error(f"no user {username!r}")
        if user.disabled is not None:
            usage_error(f"user {username!r} is disabled")
        return service.Approver(user.id, frozenset(user.roles))


def _summary(report: Report) -> dict[str, object]:
    return {
        "id": report.id,
        "status": report.status,
        "account": report.account_key,
        "files": len(report.files),
        "industry": report.industry,
        "escalated": report.escalation_reason is not None,
        "auto_confirmed": report.auto_confirmed,
        "viral": report.viral,
        "environment": report.environment,
        "remote_report_id": report.remote_report_id,
        "last_error": report.last_error,
    }


@reports_app.command("list")
def list_command(
    status: Annotated[str | None, typer.Option(help="Only reports in this state.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines.")] = False,
) -> None:
    """Reports, newest first."""
    with database_session() as session:
        try:
            reports = service.list_reports(session, status=status)
        except service.ReportError as error:
            usage_error(str(error))
        rows = [_summary(r) for r in reports]
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    table = Table()
    for column in ("id", "status", "account", "files", "class.", "clearinghouse id", "error"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]),
            str(row["status"]),
            str(row["account"] or "-"),
            str(row["files"]),
            str(row["industry"] or "-"),
            str(row["remote_report_id"] or "-"),
            str(row["last_error"] or ""),
        )
    stdout_console().print(table)


@reports_app.command("show")
def show_command(
    report_id: Annotated[int, typer.Argument(help="The report's id.")],
    xml: Annotated[bool, typer.Option("--xml", help="Print the report XML.")] = False,
) -> None:
    """One report: its state, files and (with --xml) the XML it is or will be sent as."""
    settings = get_settings()
    with database_session() as session:
        try:
            report = service.get_report(session, report_id)
        except service.ReportNotFound as error:
            usage_error(str(error))
        if xml:
            if report.xml is not None:
                typer.echo(report.xml)
                return
            try:
                built = Builders(settings, connectors_from_settings(settings)).report(
                    session, report
                )
            except ReportInvalid as error:
                usage_error(f"the report is not valid yet: {error}")
            typer.echo(built.decode("utf-8"))
            return
        summary = _summary(report)
        summary["files"] = [
            {
                "id": f.id,
                "state": f.state,
                "viewed": f.viewed,
                "industry": f.industry,
                "annotations": f.annotations,
                "remote_file_id": f.remote_file_id,
            }
            for f in report.files
        ]
    typer.echo(json.dumps(summary, indent=2, default=str))


@reports_app.command("approve")
def approve_command(
    report_id: Annotated[int, typer.Argument(help="The report's id.")],
    as_user: Annotated[str, typer.Option("--as", help="The approving user (legal, lead).")],
) -> None:
    """Approve a draft for the configured service (VIGIL_CYBERTIP_ENVIRONMENT)."""
    approver = _approver(as_user)
    with database_session() as session:
        try:
            service.approve(
                session, report_id, approver, environment=get_settings().cybertip_environment
            )
        except service.ReportError as error:
            usage_error(str(error))
    typer.echo(f"report {report_id} approved")


@reports_app.command("submit")
def submit_command(
    report_ids: Annotated[list[int] | None, typer.Argument(help="Reports to send.")] = None,
    due: Annotated[bool, typer.Option("--due", help="Send every report that is due.")] = False,
) -> None:
    """Send approved reports now (resuming any that stopped half-way)."""
    settings = get_settings()
    database = open_database(settings)
    failed = False
    try:
        submitter = make_submitter(settings, database, media_store(settings))
        ids = list(report_ids or [])
        if due:
            with database.session() as session:
                ids += service.due_reports(session, utcnow(), limit=1000)
        if not ids:
            usage_error("name reports to send, or --due")
        for report_id in ids:
            try:
                with database.session() as session:
                    service.send_again(session, report_id)
                result = service.send(database, submitter, report_id)
            except (service.ReportError, SubmissionError, CyberTipNotConfigured) as error:
                usage_error(str(error))
            if result is None:
                err_console.print(f"report {report_id}: being sent by another worker")
                continue
            line = f"report {report_id}: {result.outcome}"
            if result.message:
                line += f": {result.message}"
            typer.echo(line)
            failed = failed or result.outcome != "finished"
    finally:
        database.dispose()
    if failed:
        raise typer.Exit(1)


@reports_app.command("retract")
def retract_command(
    report_id: Annotated[int, typer.Argument(help="The report's id.")],
    as_user: Annotated[str, typer.Option("--as", help="The retracting user (legal, lead).")],
) -> None:
    """Cancel a report that is not finished (at the clearinghouse too, if it is there)."""
    approver = _approver(as_user)
    settings = get_settings()
    database = open_database(settings)
    try:
        service.retract(
            database, make_submitter(settings, database, media_store(settings)), report_id, approver
        )
    except (service.ReportError, CyberTipNotConfigured) as error:
        usage_error(str(error))
    finally:
        database.dispose()
    typer.echo(f"report {report_id} retracted")
