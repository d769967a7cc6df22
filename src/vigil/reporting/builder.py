"""A report as the clearinghouse receives it, built from what Vigil recorded: the reporter
block from settings, the reported account from the uploads and the platform's connectors,
and per file what the reviewers decided and what the reveals prove.

`fileViewedByEsp` comes from the report file's `viewed`, which only a recorded full reveal
can set (see `vigil.review.decisions`). EXIF is never shown to reviewers, so
`exifViewedByEsp` is always false.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.config import Settings
from vigil.reporting import model
from vigil.reporting.client import client_from_settings
from vigil.reporting.submission import Submitter, file_name
from vigil.reporting.xml import (
    ReportInvalid,
    check_file_details,
    check_report,
    file_details_xml,
    report_xml,
)
from vigil.store import Content, ContentSignal, Database, Report, ReportFile, UploadEvent
from vigil.vault.accounts import (
    AccountData,
    UploadsConnector,
    UserDataConnector,
    account_data,
    connectors_from_settings,
)
from vigil.vault.media import MediaStore

HASH_TYPES = {"md5": "MD5", "sha1": "SHA1", "pdq": "PDQ"}
"""Signals sent as `originalFileHash` (with the content's SHA-256)."""


def _invalid(error: ValidationError, where: str) -> ReportInvalid:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    return ReportInvalid(f"{where}: {field}: {first['msg']}", field=field)


def reporter(settings: Settings) -> model.Reporter:
    """The reporter block from `VIGIL_REPORT_*`; ReportInvalid naming what is missing."""
    if not settings.report_person_email:
        raise ReportInvalid(
            "the reporting person's email is required: set VIGIL_REPORT_PERSON_EMAIL",
            field="reporter.reportingPerson.email",
        )
    contact = None
    if any(
        (
            settings.report_contact_first_name,
            settings.report_contact_last_name,
            settings.report_contact_email,
            settings.report_contact_phone,
        )
    ):
        contact = model.Person(
            first_name=settings.report_contact_first_name,
            last_name=settings.report_contact_last_name,
            email=settings.report_contact_email,
            phone=settings.report_contact_phone,
        )
    try:
        return model.Reporter(
            reporting_person=model.Person(
                first_name=settings.report_person_first_name,
                last_name=settings.report_person_last_name,
                email=settings.report_person_email,
                phone=settings.report_person_phone,
            ),
            contact_person=contact,
            company_template=settings.report_company_template,
            terms_of_service=settings.report_terms_of_service,
            legal_url=settings.report_legal_url,
        )
    except ValidationError as error:
        raise _invalid(error, "reporter settings") from None


def _events(session: Session, report: Report) -> dict[int, UploadEvent]:
    ids = [f.upload_event_id for f in report.files if f.upload_event_id is not None]
    return {e.id: e for e in session.scalars(select(UploadEvent).where(UploadEvent.id.in_(ids)))}


def _when(event: UploadEvent | None) -> datetime | None:
    return None if event is None else (event.event_time or event.received)


def _prior_reports(session: Session, report: Report) -> tuple[int, ...]:
    """Earlier reports about the same account that reached the clearinghouse."""
    ids = session.scalars(
        select(Report.remote_report_id).where(
            Report.account_key == report.account_key,
            Report.id != report.id,
            Report.status == "finished",
            Report.remote_report_id.is_not(None),
        )
    )
    return tuple(sorted(int(i) for i in ids if i and i.isdigit()))


def _person(session: Session, report: Report, account: AccountData) -> model.PersonOrUserReported:
    return model.PersonOrUserReported(
        esp_identifier=account.account_id,
        screen_name=account.screen_name,
        display_name=account.display_name,
        profile_url=account.profile_url,
        ip_capture_events=tuple(
            model.IpCaptureEvent(
                ip_address=event.ip_address,
                event_name=model.IpEventName(event.event_name),
                date_time=event.at,
                possible_proxy=event.possible_proxy,
                port=event.port,
            )
            for event in account.ip_events
        ),
        device_ids=tuple(model.DeviceId(id_value=device) for device in account.device_ids),
        prior_ct_reports=_prior_reports(session, report),
        account_temporarily_disabled=account.temporarily_disabled,
        account_permanently_disabled=account.permanently_disabled,
    )


def build_report(
    session: Session,
    report: Report,
    settings: Settings,
    connectors: tuple[UserDataConnector, ...] = (UploadsConnector(),),
) -> model.Report:
    """The `<report>` for a Vigil report; ReportInvalid (naming the field) when it cannot be
    complete."""
    events = _events(session, report)
    times = [t for t in (_when(events.get(f.upload_event_id or 0)) for f in report.files) if t]
    notes = [f"Vigil report {report.id}; review task(s) {', '.join(map(str, report.task_ids))}."]
    if report.viral:
        notes.append("The reported files are copies of content reported for many accounts.")
    if report.auto_confirmed:
        notes.append(
            "Matched exactly to a verified hash list and confirmed by policy: no person at the"
            " provider viewed the files."
        )
    try:
        person = None
        if report.account_key:
            person = _person(session, report, account_data(session, report.account_key, connectors))
        return model.Report(
            incident_summary=model.IncidentSummary(
                incident_type=model.IncidentType(settings.report_incident_type),
                platform=settings.report_platform,
                escalate_to_high_priority=report.escalation_reason,
                incident_date_time=min(times) if times else report.created,
                incident_date_time_description=(
                    "When the earliest reported file was uploaded, as the platform recorded it."
                    if times
                    else "When the provider confirmed the content (no upload time recorded)."
                ),
            ),
            reporter=reporter(settings),
            person_or_user_reported=person,
            additional_info=" ".join(notes),
        )
    except ValidationError as error:
        raise _invalid(error, f"report {report.id}") from None
    except ValueError as error:  # an incident type or event name outside the enumerations
        raise ReportInvalid(f"report {report.id}: {error}") from None


def build_file_details(session: Session, report: Report, file: ReportFile) -> model.FileDetails:
    """The `<fileDetails>` of one uploaded file."""
    content = session.get(Content, file.content_id)
    assert content is not None
    event = session.get(UploadEvent, file.upload_event_id) if file.upload_event_id else None
    hashes = [model.FileHash(hash_type="SHA256", value=content.sha256)]
    for signal_type, value in session.execute(
        select(ContentSignal.signal_type, ContentSignal.value)
        .where(
            ContentSignal.content_id == content.id,
            ContentSignal.signal_type.in_(HASH_TYPES),
        )
        .order_by(ContentSignal.signal_type)
    ):
        hashes.append(model.FileHash(hash_type=HASH_TYPES[signal_type], value=value))
    upload_ip = None
    if event is not None and event.ip_address:
        upload_ip = model.IpCaptureEvent(
            ip_address=event.ip_address,
            event_name=model.IpEventName.UPLOAD,
            date_time=_when(event),
        )
    try:
        return model.FileDetails(
            report_id=int(report.remote_report_id or 0),
            file_id=file.remote_file_id or "",
            file_name=file_name(session, report.id, file.id),
            original_file_name=event.file_name if event else None,
            uploaded_to_esp_timestamp=_when(event),
            file_viewed_by_esp=file.viewed,
            exif_viewed_by_esp=False,
            publicly_available=file.publicly_available,
            file_relevance=file.relevance,
            file_annotations=tuple(model.FileAnnotation(a) for a in file.annotations),
            industry_classification=file.industry,
            original_file_hashes=tuple(hashes),
            ip_capture_event=upload_ip,
        )
    except ValidationError as error:
        raise _invalid(error, f"file {file.id} of report {report.id}") from None


@dataclass(frozen=True)
class Builders:
    """The XML a submitter sends, checked against the schema before anything goes."""

    settings: Settings
    connectors: tuple[UserDataConnector, ...]

    def report(self, session: Session, report: Report) -> bytes:
        built = build_report(session, report, self.settings, self.connectors)
        check_report(built)
        return report_xml(built)

    def file_details(self, session: Session, report: Report, file: ReportFile) -> bytes:
        built = build_file_details(session, report, file)
        check_file_details(built)
        return file_details_xml(built)


def make_submitter(settings: Settings, database: Database, media: MediaStore) -> Submitter:
    """A submitter for the configured clearinghouse service(s)."""
    builders = Builders(settings, connectors_from_settings(settings))
    return Submitter(
        database=database,
        media=media,
        clients=lambda environment, hook: client_from_settings(
            settings,
            environment,  # type: ignore[arg-type]
            timeout=settings.cybertip_timeout_seconds,
            on_response=hook,
        ),
        journal_dir=settings.home / "reporting" / "journal",
        retry_after=timedelta(seconds=settings.report_retry_seconds),
        build_report=builders.report,
        build_file_details=builders.file_details,
    )
