"""Sending an approved report: a persisted state machine that survives crashes and outages.

    approved -> submitted (report id) -> each file uploaded (file id, MD5 checked) and
    described (fileinfo) -> finished;            retracted and failed are terminal.

Each step the clearinghouse confirms is written twice: first to an append-only journal file
(fsynced, by the client's response hook, before the call even returns), then to the database.
A process that dies between the two resumes from the journal, so a confirmed step is never
repeated: no duplicate report, no duplicate file. Two cases are beyond any client, since the
API has no idempotency keys: a connection lost after the service stored a *report* but
before its answer arrived leaves an unfinished report there that Vigil cannot know of (it is
never finished, so the clearinghouse does not process it; Vigil submits again); and one lost
during a *file upload* leaves a file that may or may not be attached, so Vigil retracts that
report and submits the whole report again (`needs_restart`), and no finished report ever
holds a file twice.

Server and network errors are retried with exponential backoff; the service's refusals
(validation, authentication) stop the report with the message for the operator.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.reporting.client import (
    AlreadyFinished,
    AlreadyRetracted,
    AuthenticationFailed,
    CyberTipClient,
    CyberTipError,
    CyberTipNotConfigured,
    NotAuthorised,
    ReceiptMismatch,
    TransportError,
    UnknownReport,
)
from vigil.reporting.xml import ReportInvalid
from vigil.store import (
    Content,
    Database,
    PreservationRequest,
    Report,
    ReportFile,
    UploadEvent,
    utcnow,
)
from vigil.vault.media import MediaStore

PRESERVATION_PERIOD = timedelta(days=365)
"""18 U.S.C. 2258A(h) as amended by the REPORT Act: a report asks the provider to preserve
its contents for one year."""
MAX_BACKOFF = timedelta(hours=1)
NOT_CONFIGURED = -1
"""`error_code` of a report stopped because its service is not configured (no credentials)."""

ClientFactory = Callable[[str, Callable[[str, dict[str, str]], None]], CyberTipClient]
"""Makes a client for an environment (`test` or `production`) with a response hook."""


class SubmissionError(Exception):
    """A report cannot be sent as asked (wrong state, not configured); nothing was sent."""


class Journal:
    """The clearinghouse's confirmed answers for one report, one JSON line each, fsynced."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, dict[str, Any]] = {}
        self._expected: str | None = None
        self._extra: dict[str, Any] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a line torn by a crash mid-write: that answer was not kept
                self._entries[entry["key"]] = entry

    def get(self, key: str) -> dict[str, Any] | None:
        return self._entries.get(key)

    @contextmanager
    def expecting(self, key: str, **extra: Any) -> Iterator[None]:
        """The next answer the client confirms is recorded under `key` (with `extra`)."""
        self._expected = key
        self._extra = extra
        try:
            yield
        finally:
            self._expected = None

    def record(self, step: str, fields: dict[str, str]) -> None:
        """The client's response hook: runs before the call returns to Vigil."""
        if self._expected is None:
            return
        entry = {"key": self._expected, "step": step, "fields": fields, **self._extra}
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")
            out.flush()
            os.fsync(out.fileno())
        self._entries[self._expected] = entry

    def forget(self) -> None:
        """Start over (the report is being submitted again): keep the old file aside."""
        if self.path.exists():
            self.path.rename(self.path.with_suffix(f".{utcnow():%Y%m%dT%H%M%S%f}.jsonl"))
        self._entries.clear()


Outcome = Literal["finished", "retry", "stopped", "failed"]


@dataclass
class SubmissionResult:
    report_id: int
    outcome: Outcome
    status: str
    message: str | None = None


@dataclass
class Submitter:
    """Sends approved reports. `crash` is for tests: called at named points
    (`after_call:submit`, `after_commit:upload:<file id>`, ...) it may raise to simulate a
    process dying there."""

    database: Database
    media: MediaStore
    clients: ClientFactory
    journal_dir: Path
    build_report: Callable[[Session, Report], bytes]
    build_file_details: Callable[[Session, Report, ReportFile], bytes]
    retry_after: timedelta = timedelta(seconds=30)
    crash: Callable[[str], None] = field(default=lambda point: None)

    def run(self, report_id: int, *, now: datetime | None = None) -> SubmissionResult:
        """Take the report as far as it goes now."""
        with self.database.session(immediate=True) as session:
            report = _report(session, report_id)
            if report.status not in ("approved", "submitted"):
                raise SubmissionError(f"report {report_id} is {report.status}, not approved")
            if report.environment is None:
                raise SubmissionError(f"report {report_id} has no environment")
            environment = report.environment
            # Named by id and creation time: a journal left by another database's report of
            # the same id (a reset database, a copied home) is never taken for this one's.
            name = f"{report_id}-{report.created:%Y%m%dT%H%M%S%f}.jsonl"
        journal = Journal(self.journal_dir / name)
        try:
            client = self.clients(environment, journal.record)
        except CyberTipNotConfigured as error:
            return self._stop(report_id, "stopped", str(error), NOT_CONFIGURED)
        try:
            with client:
                self._restart_if_needed(report_id, client, journal)
                self._submit(report_id, client, journal, now)
                self._files(report_id, client, journal)
                return self._finish(report_id, client, journal, now)
        except ReportInvalid as error:
            return self._stop(report_id, "failed", f"the report is not valid: {error}", None)
        except ReceiptMismatch as error:
            # The file arrived damaged; it is attached to the remote report now, so start over.
            self._mark_restart(report_id)
            return self._retry(report_id, error, now)
        except (AuthenticationFailed, NotAuthorised) as error:
            return self._stop(report_id, "stopped", str(error), error.code)
        except UnknownReport as error:
            return self._stop(report_id, "failed", str(error), error.code)
        except CyberTipError as error:
            if error.retryable:
                if error.step == "upload" and isinstance(error, TransportError):
                    self._mark_restart(report_id)  # the file may or may not be there now
                return self._retry(report_id, error, now)
            return self._stop(report_id, "failed", str(error), error.code)

    # --- the steps ---------------------------------------------------------------------

    def _restart_if_needed(self, report_id: int, client: CyberTipClient, journal: Journal) -> None:
        with self.database.session(immediate=True) as session:
            report = _report(session, report_id)
            if not report.needs_restart:
                return
            remote = report.remote_report_id
        if remote is not None:
            with suppress(AlreadyRetracted, UnknownReport):
                client.retract(remote)
        self.crash("after_call:restart")
        journal.forget()
        with self.database.session(immediate=True) as session:
            report = _report(session, report_id)
            if remote is not None:
                report.abandoned_report_ids = [*report.abandoned_report_ids, remote]
            report.remote_report_id = None
            report.status = "approved"
            report.needs_restart = False
            for file in report.files:
                file.state, file.remote_file_id, file.remote_md5 = "pending", None, None

    def _submit(
        self, report_id: int, client: CyberTipClient, journal: Journal, now: datetime | None
    ) -> None:
        with self.database.session() as session:
            report = _report(session, report_id)
            if report.remote_report_id is not None:
                return
            xml = self.build_report(session, report)
        entry = journal.get("submit")
        if entry is None:
            with journal.expecting("submit", sent=xml.decode("utf-8")):
                client.submit(xml)
            entry = journal.get("submit")
            assert entry is not None
        self.crash("after_call:submit")
        with self.database.session(immediate=True) as session:
            report = _report(session, report_id)
            when = now or utcnow()
            report.remote_report_id = entry["fields"]["reportId"]
            report.xml = entry.get("sent", xml.decode("utf-8"))
            report.status = "submitted"
            report.submitted_at = when
            report.updated = when
            _preserve(session, report, when)
        self.crash("after_commit:submit")

    def _files(self, report_id: int, client: CyberTipClient, journal: Journal) -> None:
        with self.database.session() as session:
            report = _report(session, report_id)
            remote = report.remote_report_id
            todo = [(f.id, f.state, f.content_id) for f in report.files]
        assert remote is not None
        for file_id, state, content_id in todo:
            if state == "pending":
                self._upload(report_id, file_id, content_id, remote, client, journal)
                state = "uploaded"
            if state == "uploaded":
                self._describe(report_id, file_id, client, journal)

    def _upload(
        self,
        report_id: int,
        file_id: int,
        content_id: int,
        remote: str,
        client: CyberTipClient,
        journal: Journal,
    ) -> None:
        key = f"upload:{file_id}"
        with self.database.session() as session:
            content = session.get(Content, content_id)
            assert content is not None
            sha256 = content.sha256
            name = file_name(session, report_id, file_id)
        entry = journal.get(key)
        if entry is None:
            data = self.media.read(sha256)
            with journal.expecting(key):
                client.upload(remote, name, data)
            entry = journal.get(key)
            assert entry is not None
        self.crash(f"after_call:{key}")
        with self.database.session(immediate=True) as session:
            file = session.get(ReportFile, file_id)
            assert file is not None
            file.state = "uploaded"
            file.remote_file_id = entry["fields"]["fileId"]
            file.remote_md5 = entry["fields"].get("hash")
        self.crash(f"after_commit:{key}")

    def _describe(
        self, report_id: int, file_id: int, client: CyberTipClient, journal: Journal
    ) -> None:
        key = f"fileinfo:{file_id}"
        if journal.get(key) is None:
            with self.database.session() as session:
                report = _report(session, report_id)
                file = session.get(ReportFile, file_id)
                assert file is not None
                xml = self.build_file_details(session, report, file)
            with journal.expecting(key):
                client.file_info(xml)
        self.crash(f"after_call:{key}")
        with self.database.session(immediate=True) as session:
            file = session.get(ReportFile, file_id)
            assert file is not None
            file.state = "described"
        self.crash(f"after_commit:{key}")

    def _finish(
        self, report_id: int, client: CyberTipClient, journal: Journal, now: datetime | None
    ) -> SubmissionResult:
        with self.database.session() as session:
            remote = _report(session, report_id).remote_report_id
        assert remote is not None
        if journal.get("finish") is None:
            try:
                with journal.expecting("finish"):
                    client.finish(remote)
            except AlreadyFinished:
                pass  # finished by the call whose answer was lost
        self.crash("after_call:finish")
        with self.database.session(immediate=True) as session:
            report = _report(session, report_id)
            when = now or utcnow()
            report.status = "finished"
            report.finished_at = when
            report.updated = when
            report.last_error, report.error_code, report.next_attempt_at = None, None, None
        return SubmissionResult(report_id, "finished", "finished")

    # --- outcomes ----------------------------------------------------------------------

    def _mark_restart(self, report_id: int) -> None:
        with self.database.session(immediate=True) as session:
            _report(session, report_id).needs_restart = True

    def _retry(
        self, report_id: int, error: CyberTipError, now: datetime | None
    ) -> SubmissionResult:
        with self.database.session(immediate=True) as session:
            report = _report(session, report_id)
            when = now or utcnow()
            report.attempts += 1
            delay = min(self.retry_after * 2 ** (report.attempts - 1), MAX_BACKOFF)
            report.next_attempt_at = when + delay
            report.last_error = str(error)
            report.error_code = error.code
            report.updated = when
            return SubmissionResult(report_id, "retry", report.status, str(error))

    def _stop(
        self, report_id: int, outcome: Outcome, message: str, code: int | None
    ) -> SubmissionResult:
        """`failed`: terminal. `stopped`: kept as it is, not retried by itself, until an
        operator fixes the cause (credentials) and sends it again."""
        with self.database.session(immediate=True) as session:
            report = _report(session, report_id)
            if outcome == "failed":
                report.status = "failed"
            report.last_error = message
            report.error_code = code
            report.next_attempt_at = None
            report.updated = utcnow()
            return SubmissionResult(report_id, outcome, report.status, message)


def _report(session: Session, report_id: int) -> Report:
    report = session.get(Report, report_id)
    if report is None:
        raise SubmissionError(f"no report {report_id}")
    return report


def file_name(session: Session, report_id: int, file_id: int) -> str:
    """The name a file is sent under: Vigil's own, `vigil-<report>-<file>`, with the original
    name's extension when it has a plain one (the original name itself, which may say
    anything, goes in `originalFileName`)."""
    file = session.get(ReportFile, file_id)
    assert file is not None
    original = None
    if file.upload_event_id is not None:
        event = session.get(UploadEvent, file.upload_event_id)
        original = event.file_name if event else None
    suffix = Path(original or "").suffix.lower()
    extension = suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ""
    return f"vigil-{report_id}-{file_id}{extension}"


def _preserve(session: Session, report: Report, when: datetime) -> None:
    """The report's contents are to be kept for a year from submission: a request the
    evidence vault honours (it records when it took it in)."""
    exists = session.scalar(
        select(PreservationRequest.id).where(
            PreservationRequest.report_id == report.id, PreservationRequest.reason == "report"
        )
    )
    if exists is not None:
        return
    session.add(
        PreservationRequest(
            reason="report",
            report_id=report.id,
            account_key=report.account_key,
            content_ids=sorted({f.content_id for f in report.files}),
            upload_event_ids=sorted(
                {f.upload_event_id for f in report.files if f.upload_event_id is not None}
            ),
            requested_at=when,
            preserve_until=when + PRESERVATION_PERIOD,
        )
    )
