"""Reports from a match to a finished CyberTipline report, against the local stand-in of
the reporting API (`vigil.reporting.sandbox`, served for real by uvicorn on a free port).

Every state transition; every injected failure (error codes, timeouts, dropped connections,
before and after the service acted); and a crash after every step of the submission, each
resumed without a duplicate report or file. Both databases.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from report_helpers import Sandbox, World, build_world, report_settings, serve_sandbox
from vigil.reporting import service
from vigil.reporting.submission import NOT_CONFIGURED
from vigil.reporting.xml import parse_file_details, parse_report
from vigil.store import Database, PreservationRequest, utcnow


class Crash(Exception):
    """Stands for the process dying at a point of the submission."""


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with serve_sandbox(tmp_path / "sandbox") as running:
        yield running


@pytest.fixture
def world(db: Database, tmp_path: Path, sandbox: Sandbox) -> World:
    """A synthetic picture banked; two copies uploaded by one account, matched, reviewed
    (the first revealed in full), confirmed; a draft report (`report_helpers.build_world`)."""
    settings = report_settings(db, tmp_path / "home", sandbox.url)
    return build_world(db, settings, tmp_path / "pictures")


def approve(world: World) -> None:
    with world.db.session() as session:
        service.approve(session, world.report_id, world.legal, environment="test")


# --- The happy path, end to end -----------------------------------------------------------


def test_a_confirmed_match_becomes_a_finished_report(world: World, sandbox: Sandbox) -> None:
    draft = world.report()
    assert (draft.status, draft.account_key, draft.industry) == ("draft", "acct-42", "B1")
    assert [f.viewed for f in draft.files] == [True, False]
    approve(world)
    result = world.submitter().run(world.report_id)
    assert (result.outcome, result.status) == ("finished", "finished")

    report = world.report()
    [remote] = sandbox.store.reports()
    assert (remote["status"], remote["id"]) == ("finished", report.remote_report_id)
    assert remote["xml"] == report.xml
    sent = parse_report(remote["xml"].encode())
    assert sent.reporter.reporting_person.email == "safety@platform.example"
    assert sent.incident_summary.platform == "Example Platform"
    person = sent.person_or_user_reported
    assert person is not None and (person.esp_identifier, person.screen_name) == (
        "acct-42",
        "sunny",
    )
    assert {e.ip_address for e in person.ip_capture_events} == {"198.51.100.7", "2001:db8::9"}
    # Each file arrived intact, once, with what the reviewers decided and proved.
    assert [f["md5"] for f in remote["files"]] == [f.remote_md5 for f in report.files]
    assert remote["files"][0]["md5"] == hashlib.md5(world.picture).hexdigest()
    details = [parse_file_details(f["details_xml"].encode()) for f in remote["files"]]
    assert [d.file_viewed_by_esp for d in details] == [True, False]
    assert {d.industry_classification for d in details} == {"B1"}
    assert details[0].original_file_name == "beach.png"
    assert details[0].file_annotations[0].value == "possibleSelfProduction"
    assert {h.hash_type for h in details[0].original_file_hashes} >= {"SHA256", "MD5", "PDQ"}
    assert all(f.state == "described" for f in report.files)
    # Submitting asked for a year's preservation of exactly these files.
    with world.db.session() as session:
        [request] = session.scalars(select(PreservationRequest)).all()
        assert request.reason == "report" and request.report_id == world.report_id
        assert request.content_ids == sorted({f.content_id for f in report.files})
        assert report.submitted_at is not None
        assert request.preserve_until - report.submitted_at == timedelta(days=365)


# --- A crash after every step -------------------------------------------------------------

POINTS = [
    "after_call:submit",
    "after_commit:submit",
    "after_call:upload:1",
    "after_commit:upload:1",
    "after_call:fileinfo:1",
    "after_commit:fileinfo:1",
    "after_call:upload:2",
    "after_commit:upload:2",
    "after_call:fileinfo:2",
    "after_commit:fileinfo:2",
    "after_call:finish",
]


@pytest.mark.parametrize("point", POINTS)
def test_a_crash_after_any_step_resumes_without_duplicates(
    world: World, sandbox: Sandbox, point: str
) -> None:
    approve(world)
    ids = [f.id for f in world.report().files]
    point = point.replace(":1", f":{ids[0]}").replace(":2", f":{ids[1]}")

    def crash(at: str) -> None:
        if at == point:
            raise Crash(at)

    with pytest.raises(Crash):
        world.submitter(crash).run(world.report_id)
    result = world.submitter().run(world.report_id)  # a new process, from the database
    assert result.outcome == "finished", result
    [remote] = sandbox.store.reports()
    assert remote["status"] == "finished"
    assert len(remote["files"]) == 2
    assert all(f["details_xml"] for f in remote["files"])
    assert sandbox.store.counts() == {
        "open": 0, "finished": 1, "retracted": 0, "reports": 1, "files": 2,
    }  # fmt: skip


# --- Injected failures --------------------------------------------------------------------


def test_server_errors_retry_with_backoff_then_succeed(world: World, sandbox: Sandbox) -> None:
    approve(world)
    sandbox.fail("submit", "code:1000")
    submitter = world.submitter()
    submitter.retry_after = timedelta(seconds=30)
    now = utcnow()
    first = submitter.run(world.report_id, now=now)
    assert (first.outcome, first.status) == ("retry", "approved")
    report = world.report()
    assert (report.attempts, report.error_code) == (1, 1000)
    assert report.next_attempt_at == now + timedelta(seconds=30)
    with world.db.session() as session:
        assert service.due_reports(session, now) == []
        assert service.due_reports(session, now + timedelta(seconds=31)) == [world.report_id]
    sandbox.fail("upload", "code:1001")
    second = submitter.run(world.report_id, now=now + timedelta(seconds=31))
    assert second.outcome == "retry"
    assert world.report().next_attempt_at == now + timedelta(seconds=91)  # doubled
    assert submitter.run(world.report_id).outcome == "finished"
    assert sandbox.store.counts()["reports"] == 1  # a refused upload restarts nothing


def test_a_timeout_or_dropped_upload_restarts_the_report_cleanly(
    world: World, sandbox: Sandbox
) -> None:
    approve(world)
    sandbox.fail("upload", "after:drop")  # stored there, but the answer never arrives
    submitter = world.submitter(cybertip_timeout_seconds=0.5)
    assert submitter.run(world.report_id).outcome == "retry"
    dropped = world.report()
    assert dropped.needs_restart and dropped.remote_report_id is not None
    assert submitter.run(world.report_id).outcome == "finished"
    report = world.report()
    assert report.abandoned_report_ids == [dropped.remote_report_id]
    first, second = sandbox.store.reports()
    assert (first["status"], len(first["files"])) == ("retracted", 1)
    assert (second["status"], len(second["files"])) == ("finished", 2)
    assert second["id"] == report.remote_report_id


def test_a_dropped_submit_leaves_only_an_unfinished_orphan(world: World, sandbox: Sandbox) -> None:
    approve(world)
    sandbox.fail("submit", "after:drop")
    submitter = world.submitter()
    assert submitter.run(world.report_id).outcome == "retry"
    assert world.report().remote_report_id is None
    assert submitter.run(world.report_id).outcome == "finished"
    orphan, sent = sandbox.store.reports()
    assert (orphan["status"], orphan["files"]) == ("open", [])  # never finished: not processed
    assert (sent["status"], len(sent["files"])) == ("finished", 2)


def test_a_lost_finish_answer_is_recognised_as_finished(world: World, sandbox: Sandbox) -> None:
    approve(world)
    sandbox.fail("finish", "after:drop")
    submitter = world.submitter()
    assert submitter.run(world.report_id).outcome == "retry"
    assert submitter.run(world.report_id).outcome == "finished"  # AlreadyFinished: done
    assert sandbox.store.counts()["finished"] == 1


def test_a_timeout_is_retried(world: World, sandbox: Sandbox) -> None:
    approve(world)
    sandbox.fail("submit", "timeout:1.5")  # the service gives up on a request nobody awaits
    submitter = world.submitter(cybertip_timeout_seconds=0.5)
    result = submitter.run(world.report_id)
    assert result.outcome == "retry" and "time" in (result.message or "").lower()
    assert world.report().last_error is not None
    assert submitter.run(world.report_id).outcome == "finished"
    time.sleep(1.2)  # the slow request ends, doing nothing
    assert sandbox.store.counts() == {
        "open": 0, "finished": 1, "retracted": 0, "reports": 1, "files": 2,
    }  # fmt: skip


def test_validation_errors_stop_with_the_message(world: World, sandbox: Sandbox) -> None:
    approve(world)
    sandbox.fail("submit", "code:4100")
    result = world.submitter().run(world.report_id)
    assert (result.outcome, result.status) == ("failed", "failed")
    report = world.report()
    assert report.error_code == 4100 and "4100" in (report.last_error or "")
    with world.db.session() as session:
        assert service.due_reports(session, utcnow() + timedelta(days=1)) == []


def test_a_report_vigil_finds_invalid_is_never_sent(world: World, sandbox: Sandbox) -> None:
    approve(world)
    result = world.submitter(report_person_email=None).run(world.report_id)
    assert result.outcome == "failed"
    assert "VIGIL_REPORT_PERSON_EMAIL" in (result.message or "")
    assert sandbox.store.counts()["reports"] == 0


def test_bad_credentials_stop_until_an_operator_sends_again(world: World, sandbox: Sandbox) -> None:
    approve(world)
    result = world.submitter(cybertip_test_password="wrong").run(world.report_id)
    assert (result.outcome, result.status) == ("stopped", "approved")
    assert world.report().error_code == 2000
    with world.db.session() as session:
        assert service.due_reports(session, utcnow() + timedelta(days=1)) == []
        service.send_again(session, world.report_id)
        assert service.due_reports(session, utcnow()) == [world.report_id]
    unconfigured = world.submitter(cybertip_test_username=None).run(world.report_id)
    assert unconfigured.outcome == "stopped"
    assert world.report().error_code == NOT_CONFIGURED
    assert sandbox.store.counts()["reports"] == 0


def test_a_tampered_receipt_restarts_the_report(world: World, sandbox: Sandbox) -> None:
    approve(world)
    sandbox.fail("upload", "corrupt_md5")
    submitter = world.submitter()
    assert submitter.run(world.report_id).outcome == "retry"
    assert world.report().needs_restart
    assert submitter.run(world.report_id).outcome == "finished"
    statuses = [r["status"] for r in sandbox.store.reports()]
    assert statuses == ["retracted", "finished"]


# --- State transitions --------------------------------------------------------------------


def test_approval_is_for_legal_and_leads_and_only_of_drafts(world: World) -> None:
    with world.db.session() as session:
        with pytest.raises(service.ReportError, match="legal, lead or admin"):
            service.approve(
                session, world.report_id, service.Approver(1, frozenset({"reviewer"})),
                environment="test",
            )  # fmt: skip
        with pytest.raises(service.ReportError, match="environment"):
            service.approve(session, world.report_id, world.legal, environment="staging")
        report = service.approve(session, world.report_id, world.legal, environment="test")
        assert (report.status, report.approved_by, report.environment) == (
            "approved", world.legal.user_id, "test",
        )  # fmt: skip
        with pytest.raises(service.ReportError, match="only a draft"):
            service.approve(session, world.report_id, world.legal, environment="test")


def test_retract_before_during_and_after_sending(world: World, sandbox: Sandbox) -> None:
    submitter = world.submitter()
    # Half-sent (submitted, an upload refused for now): retracted there too.
    approve(world)
    sandbox.fail("upload", "code:1000")
    assert submitter.run(world.report_id).outcome == "retry"
    assert world.report().status == "submitted"
    service.retract(world.db, submitter, world.report_id, world.legal)
    assert world.report().status == "retracted"
    assert [r["status"] for r in sandbox.store.reports()] == ["retracted"]
    with pytest.raises(service.ReportError, match="retracted"):
        service.retract(world.db, submitter, world.report_id, world.legal)
    with pytest.raises(Exception, match="retracted, not approved"):
        submitter.run(world.report_id)


def test_a_finished_report_cannot_be_retracted(world: World, sandbox: Sandbox) -> None:
    approve(world)
    submitter = world.submitter()
    assert submitter.run(world.report_id).outcome == "finished"
    with pytest.raises(service.ReportError, match="finished"):
        service.retract(world.db, submitter, world.report_id, world.legal)


def test_a_draft_is_retracted_locally(world: World, sandbox: Sandbox) -> None:
    service.retract(world.db, world.submitter(), world.report_id, world.legal)
    assert world.report().status == "retracted"
    assert sandbox.store.counts()["reports"] == 0


def test_the_worker_sends_due_reports_once_under_a_lease(world: World, sandbox: Sandbox) -> None:
    approve(world)
    with world.db.session() as session:
        assert service.due_reports(session, utcnow()) == [world.report_id]
    assert service.claim_for_sending(world.db, world.report_id, utcnow())
    worker = service.ReportWorker(world.db, world.submitter)
    assert worker.run_once() == []  # held by someone else
    service.release_sending(world.db, world.report_id)
    [result] = worker.run_once()
    assert result.outcome == "finished"
    assert worker.run_once() == []
    assert sandbox.store.counts()["finished"] == 1


@pytest.mark.parametrize(
    ("code", "outcome", "status"),
    [
        (1000, "retry", "approved"),
        (1500, "retry", "approved"),
        (2000, "stopped", "approved"),
        (3000, "stopped", "approved"),
        (4100, "failed", "failed"),
        (4110, "failed", "failed"),
        (5001, "failed", "failed"),
    ],
)
def test_every_documented_code_on_submit_ends_as_it_should(
    world: World, sandbox: Sandbox, code: int, outcome: str, status: str
) -> None:
    approve(world)
    sandbox.fail("submit", f"code:{code}")
    result = world.submitter().run(world.report_id)
    assert (result.outcome, result.status) == (outcome, status)
    assert world.report().error_code == code
    assert sandbox.store.counts()["reports"] == 0


@pytest.mark.parametrize("endpoint", ["upload", "fileinfo", "finish"])
def test_a_connection_dropped_before_the_service_acted_is_retried(
    world: World, sandbox: Sandbox, endpoint: str
) -> None:
    approve(world)
    sandbox.fail(endpoint, "drop")
    submitter = world.submitter()
    assert submitter.run(world.report_id).outcome == "retry"
    assert submitter.run(world.report_id).outcome == "finished"
    finished = [r for r in sandbox.store.reports() if r["status"] == "finished"]
    assert len(finished) == 1 and len(finished[0]["files"]) == 2
