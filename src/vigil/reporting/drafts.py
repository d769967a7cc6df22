"""Report drafts from confirmed review decisions, bundled the way the clearinghouse needs them.

All the files of one reported account go in one report: a confirmation adds each account's
files to that account's draft from the last `bundle_window` if there is one (a report the
clearinghouse does not have to deduplicate: counted in `bundled_drafts`), else opens a
draft. When copies of the same picture (files that matched the same bank entries) are
reported for `viral_accounts` different accounts within `viral_window`, their draft reports
and files are marked `viral`. Reports built only from bank-policy decisions may be approved
at once when the platform allows it (`auto_approve_verified`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.banks.classification import most_severe
from vigil.config import Settings
from vigil.store import Match, Report, ReportFile, ReviewItem, ReviewTask, UploadEvent, utcnow


@dataclass(frozen=True)
class DraftRules:
    bundle_window: timedelta = timedelta(hours=24)
    viral_accounts: int = 5
    viral_window: timedelta = timedelta(days=7)
    auto_approve_verified: bool = False
    environment: str = "test"
    """Where an auto-approved report goes."""

    @classmethod
    def from_settings(cls, settings: Settings) -> DraftRules:
        return cls(
            bundle_window=timedelta(hours=settings.report_bundle_hours),
            viral_accounts=settings.report_viral_accounts,
            viral_window=timedelta(days=settings.report_viral_days),
            auto_approve_verified=settings.report_auto_approve_verified,
            environment=settings.cybertip_environment,
        )


def _accounts(session: Session, items: list[ReviewItem]) -> dict[int, str]:
    """Each item's reported account (`""` when the platform named none)."""
    event_ids = [i.upload_event_id for i in items if i.upload_event_id is not None]
    accounts = dict(
        session.execute(
            select(UploadEvent.id, UploadEvent.account_id).where(UploadEvent.id.in_(event_ids))
        ).all()
    )
    return {
        item.id: (accounts.get(item.upload_event_id) or "") if item.upload_event_id else ""
        for item in items
    }


def _refresh_report(report: Report) -> None:
    best = most_severe(f.industry for f in report.files)
    report.industry = None if best is None else best.value


def draft_reports(
    session: Session,
    task: ReviewTask,
    *,
    industry: str | None,
    annotations: list[str],
    publicly_available: bool | None,
    auto_confirmed: bool,
    rules: DraftRules,
    now: datetime | None = None,
) -> list[Report]:
    """Put a confirmed task's files into report drafts, in the caller's transaction.

    A re-confirmation (a person confirming what a policy confirmed, say) updates the files
    still in drafts; files already approved or sent are left as they were."""
    now = now or utcnow()
    items = list(task.items)
    accounts = _accounts(session, items)
    existing = {
        file.item_id: file
        for file in session.scalars(
            select(ReportFile).where(ReportFile.item_id.in_([i.id for i in items]))
        )
    }
    touched: dict[int, Report] = {}  # by object identity: new reports have no id yet
    new_by_account: dict[str, list[ReviewItem]] = defaultdict(list)
    for item in items:
        file = existing.get(item.id)
        if file is None:
            new_by_account[accounts[item.id]].append(item)
        elif file.report.status == "draft":
            _describe(file, item, industry, annotations, publicly_available)
            touched[id(file.report)] = file.report
    for account, account_items in new_by_account.items():
        report = _open_draft(session, account, rules, now)
        for item in account_items:
            file = ReportFile(content_id=item.content_id, item_id=item.id, annotations=[])
            file.upload_event_id = item.upload_event_id
            _describe(file, item, industry, annotations, publicly_available)
            report.files.append(file)
        touched[id(report)] = report
    for report in touched.values():
        if task.id not in report.task_ids:
            if report.task_ids:
                report.bundled_drafts += 1
            report.task_ids = [*report.task_ids, task.id]
        report.auto_confirmed = report.auto_confirmed and auto_confirmed
        if task.escalation_reason and not report.escalation_reason:
            report.escalation_reason = task.escalation_reason
        report.updated = now
        _refresh_report(report)
    session.flush()
    _mark_viral(session, task, rules, now)  # before approving: these drafts may be copies
    for report in touched.values():
        if rules.auto_approve_verified and report.auto_confirmed and report.status == "draft":
            report.status = "approved"
            report.auto_approved = True
            report.approved_at = now
            report.environment = rules.environment
    session.flush()
    return list(touched.values())


def _describe(
    file: ReportFile,
    item: ReviewItem,
    industry: str | None,
    annotations: list[str],
    publicly_available: bool | None,
) -> None:
    file.viewed = item.viewed
    file.industry = industry
    file.annotations = [*annotations, *(["viral"] if "viral" in file.annotations else [])]
    file.annotations = list(dict.fromkeys(file.annotations))
    file.publicly_available = publicly_available


def _open_draft(session: Session, account: str, rules: DraftRules, now: datetime) -> Report:
    """The account's draft from the bundling window, or a new draft."""
    draft = session.scalars(
        select(Report)
        .where(
            Report.account_key == account,
            Report.status == "draft",
            Report.created >= now - rules.bundle_window,
        )
        .order_by(Report.id)
        .limit(1)
    ).first()
    if draft is not None and account:  # files of unknown uploaders are never merged
        return draft
    report = Report(
        account_key=account,
        status="draft",
        task_ids=[],
        bundled_drafts=0,
        auto_confirmed=True,  # until a person's decision joins it
        created=now,
        updated=now,
    )
    session.add(report)
    return report


def _mark_viral(session: Session, task: ReviewTask, rules: DraftRules, now: datetime) -> None:
    content_ids = {item.content_id for item in task.items}
    entries = set(
        session.scalars(
            select(Match.entry_id).where(
                Match.content_id.in_(content_ids), Match.entry_id.is_not(None)
            )
        )
    )
    if entries:
        content_ids |= set(
            session.scalars(select(Match.content_id).where(Match.entry_id.in_(entries)))
        )
    holding = select(ReportFile.report_id).where(ReportFile.content_id.in_(content_ids))
    reports = list(
        session.scalars(
            select(Report).where(
                Report.id.in_(holding),
                Report.created >= now - rules.viral_window,
                Report.status != "retracted",
            )
        )
    )
    if len({r.account_key for r in reports if r.account_key}) < rules.viral_accounts:
        return
    for report in reports:
        if report.status != "draft":
            continue
        report.viral = True
        for file in report.files:
            if file.content_id in content_ids and "viral" not in file.annotations:
                file.annotations = [*file.annotations, "viral"]


def withdraw_drafts(session: Session, task: ReviewTask) -> int:
    """Take a task's files out of the drafts that hold them (the task turned out a false
    positive); drafts left empty are deleted. Returns the files withdrawn."""
    files = list(
        session.scalars(
            select(ReportFile)
            .join(Report, Report.id == ReportFile.report_id)
            .where(
                ReportFile.item_id.in_([item.id for item in task.items]),
                Report.status == "draft",
            )
        )
    )
    reports = {file.report.id: file.report for file in files}
    for file in files:
        file.report.files.remove(file)
    for report in reports.values():
        if task.id in report.task_ids:
            report.task_ids = [t for t in report.task_ids if t != task.id]
            # The task no longer counts as a draft bundled in (no report was avoided).
            report.bundled_drafts = max(0, report.bundled_drafts - 1)
        if report.files:
            _refresh_report(report)
        else:
            session.delete(report)
    session.flush()
    return len(files)


def bundling_summary(session: Session) -> dict[str, int]:
    """Reports and the drafts bundling saved: what the reports page shows."""
    reports = list(session.scalars(select(Report)))
    return {
        "reports": len(reports),
        "reports_avoided_by_bundling": sum(r.bundled_drafts for r in reports),
        "viral_reports": sum(1 for r in reports if r.viral),
    }
