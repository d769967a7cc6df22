"""The console's reports pages (`vigil.web.reports`) over a confirmed report: the list with
states and the bundling metric, a report with its XML preview and files, approval, sending
to the clearinghouse's stand-in, and retraction; who may see and do what. Both databases.

Every picture is synthetic (`vigil.demo.synthetic_image`); other hashes are random hex."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from report_helpers import (
    ACCOUNT,
    PEOPLE_PASSWORD,
    Sandbox,
    World,
    build_world,
    report_settings,
    serve_sandbox,
)
from review_helpers import found, make_bank, make_entry, new_content, outcome, upload
from vigil.api.app import create_app
from vigil.auth.users import create_user
from vigil.config import Settings, get_settings
from vigil.pipeline.recording import record_matches
from vigil.reporting.drafts import DraftRules
from vigil.review import claim, confirm
from vigil.store import Database, Report, ReviewItem


@pytest.fixture(autouse=True)
def process_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "process-home"))
    monkeypatch.delenv("VIGIL_REPORT_AUTO_APPROVE_VERIFIED", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with serve_sandbox(tmp_path / "sandbox") as running:
        yield running


@pytest.fixture
def world(db: Database, tmp_path: Path, sandbox: Sandbox) -> World:
    """The confirmed draft (two files of `acct-42`, the first viewed), and an admin."""
    built = build_world(
        db, report_settings(db, tmp_path / "home", sandbox.url), tmp_path / "pictures"
    )
    with db.session() as session:
        create_user(session, "ada", PEOPLE_PASSWORD, ["admin"])
    return built


@dataclass
class Console:
    app: object
    settings: Settings

    def client(self, username: str) -> TestClient:
        """A browser signed in as `username`."""
        client = TestClient(self.app)  # type: ignore[arg-type]
        page = client.get("/console/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        signed = client.post(
            "/console/login",
            data={"username": username, "password": PEOPLE_PASSWORD, "csrf_token": token[1]},
            follow_redirects=False,
        )
        assert signed.status_code == 303, signed.text
        return client


def console(db: Database, settings: Settings) -> Iterator[Console]:
    app = create_app(settings, database=db, background=False)
    with TestClient(app):  # runs the lifespan
        yield Console(app, settings)


@pytest.fixture
def web(db: Database, world: World) -> Iterator[Console]:
    yield from console(db, world.settings)


def csrf(page: httpx.Response) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None, page.text
    return token[1]


def report_xml(page: httpx.Response) -> str:
    pre = re.search(r'<pre class="xml" id="report-xml">(.*?)</pre>', page.text, re.S)
    assert pre is not None
    return html.unescape(pre[1])


def file_rows(page: httpx.Response) -> dict[int, str]:
    return {
        int(file_id): row
        for file_id, row in re.findall(r'<tr data-file="(\d+)">(.*?)</tr>', page.text, re.S)
    }


def bundle_another_task(world: World) -> int:
    """A second task (another bank entry: random hashes) confirmed for the same account
    within the bundling window: it joins the world's draft. Returns its item's id."""
    with world.db.session() as session:
        bank = make_bank(session, "more")
        entry = make_entry(session, bank, "A2", "md5")
        content = new_content(session, md5=entry.value)
        event = upload(session, content, ACCOUNT)
        record_matches(session, content, outcome(found(entry, bank)), event)
        session.flush()
        item = session.scalars(
            select(ReviewItem).where(ReviewItem.upload_event_id == event.id)
        ).one()
        claim(session, item.task_id, world.reviewer, lease=timedelta(minutes=15))
        confirm(session, item.task_id, world.reviewer, industry="A2", rules=DraftRules())
        return item.id


# --- the list -----------------------------------------------------------------------------


def test_the_list_shows_states_and_the_bundling_metric_to_legal_users(
    world: World, web: Console
) -> None:
    bundled = bundle_another_task(world)
    report = world.report()
    assert (len(report.files), report.bundled_drafts, len(report.task_ids)) == (3, 1, 2)

    lou = web.client("lou")
    page = lou.get("/console/reports")
    assert page.status_code == 200
    row = re.search(rf'<tr data-report="{report.id}">(.*?)</tr>', page.text, re.S)
    assert row is not None
    assert "<td>draft</td>" in row[1] and ACCOUNT in row[1] and "<td>3</td>" in row[1]
    assert "<td>A2</td>" in row[1]  # the most severe of B1 and A2
    metric = re.search(r'data-metric="bundling">(.*?)</li>', page.text, re.S)
    assert metric is not None
    assert "reports avoided by bundling" in metric[1] and "<strong>1</strong>" in metric[1]
    draft_count = re.search(r'data-status="draft">(.*?)</li>', page.text, re.S)
    assert draft_count is not None and "<strong>1</strong>" in draft_count[1]
    assert 'href="/console/reports"' in page.text  # the nav names it
    assert lou.get("/console/reports?status=finished").text.count("data-report=") == 0
    assert lou.get("/console/reports?status=nonsense").status_code == 422

    # An admin passes every role check; a reviewer neither sees the page nor its nav link.
    assert web.client("ada").get("/console/reports").status_code == 200
    rita = web.client("rita")
    refused = rita.get("/console/reports")
    assert refused.status_code == 403
    assert rita.get(f"/console/reports/{report.id}").status_code == 403
    queue = rita.get("/console/queue")
    assert queue.status_code == 200 and 'href="/console/reports"' not in queue.text
    assert ">Reports</a>" not in queue.text
    assert ">Reports</a>" in lou.get("/console/queue").text

    # The bundled report's page names both tasks and the draft bundled in.
    page = lou.get(f"/console/reports/{report.id}")
    assert page.status_code == 200
    assert all(f'href="/console/tasks/{t}"' in page.text for t in report.task_ids)
    assert "(1 draft(s) bundled in)" in page.text
    [added] = [f for f in report.files if f.item_id == bundled]
    assert "<strong>no</strong>" in file_rows(page)[added.id]


# --- one report ---------------------------------------------------------------------------


def test_a_report_shows_its_xml_preview_and_files(world: World, web: Console) -> None:
    report = world.report()
    viewed, unviewed = report.files
    assert (viewed.viewed, unviewed.viewed) == (True, False)
    page = web.client("lou").get(f"/console/reports/{report.id}")
    assert page.status_code == 200
    xml = report_xml(page)
    assert "<report" in xml and "<incidentSummary>" in xml
    assert "</report>" in xml
    assert f"<espIdentifier>{ACCOUNT}</espIdentifier>" in xml
    assert "Not valid yet" not in page.text
    rows = file_rows(page)
    assert set(rows) == {viewed.id, unviewed.id}
    assert re.search(r"<td>yes</td>", rows[viewed.id])
    assert "<strong>no</strong>" in rows[unviewed.id] and "<td>yes</td>" not in rows[unviewed.id]
    assert "beach.png" in rows[viewed.id] and "beach-copy.jpg" in rows[unviewed.id]
    assert "possibleSelfProduction" in rows[viewed.id]
    assert "Approve for the test service" in page.text
    assert web.client("lou").get("/console/reports/999999").status_code == 404


def test_without_the_reporting_persons_email_the_preview_is_not_valid(
    db: Database, world: World
) -> None:
    unset = world.settings.model_copy(update={"report_person_email": None})
    for web in console(db, unset):
        page = web.client("lou").get(f"/console/reports/{world.report_id}")
        assert page.status_code == 200
        assert "Not valid yet" in page.text and "VIGIL_REPORT_PERSON_EMAIL" in page.text
        assert report_xml(page) == ""


# --- approve, send, retract ---------------------------------------------------------------


def test_approve_then_send_then_retract_is_refused(
    world: World, web: Console, sandbox: Sandbox
) -> None:
    lou = web.client("lou")
    page = lou.get(f"/console/reports/{world.report_id}")
    token = csrf(page)
    url = f"/console/reports/{world.report_id}"

    refused = lou.post(f"{url}/approve", follow_redirects=False)
    assert refused.status_code == 403
    assert lou.post(f"{url}/approve", data={"csrf_token": "forged"}).status_code == 403
    assert world.report().status == "draft"

    approved = lou.post(f"{url}/approve", data={"csrf_token": token}, follow_redirects=False)
    assert approved.status_code == 303
    assert approved.headers["location"].startswith(f"{url}?message=Approved")
    report = world.report()
    assert (report.status, report.approved_by, report.environment) == (
        "approved", world.legal.user_id, "test",
    )  # fmt: skip
    page = lou.get(approved.headers["location"])
    assert "Approved: it will be sent shortly." in page.text and "by lou" in page.text
    again = lou.post(f"{url}/approve", data={"csrf_token": token})
    assert again.status_code == 409 and "only a draft is approved" in again.text

    sent = lou.post(f"{url}/send", headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert sent.status_code == 303 and "finished" in sent.headers["location"]
    report = world.report()
    assert report.status == "finished" and report.remote_report_id is not None
    [remote] = sandbox.store.reports()
    assert (remote["id"], remote["status"], len(remote["files"])) == (
        report.remote_report_id, "finished", 2,
    )  # fmt: skip
    page = lou.get(url)
    assert report.remote_report_id in page.text
    assert "The report XML as submitted" in page.text and report_xml(page) == report.xml
    assert all(f.remote_file_id and f.remote_file_id in page.text for f in report.files)
    assert "/retract" not in page.text and "/send" not in page.text  # no such buttons now

    retract = lou.post(f"{url}/retract", data={"csrf_token": token})
    assert retract.status_code == 409
    assert "Not retracted" in retract.text
    assert f"report {world.report_id} is finished: it cannot be retracted" in retract.text
    assert world.report().status == "finished"
    assert sandbox.store.counts()["finished"] == 1


def test_a_draft_is_retracted_from_the_console(
    world: World, web: Console, sandbox: Sandbox
) -> None:
    rita = web.client("rita")
    queue = rita.get("/console/queue")
    url = f"/console/reports/{world.report_id}"
    assert rita.post(f"{url}/retract", data={"csrf_token": csrf(queue)}).status_code == 403
    assert world.report().status == "draft"

    ada = web.client("ada")
    token = csrf(ada.get(url))
    retracted = ada.post(f"{url}/retract", data={"csrf_token": token}, follow_redirects=False)
    assert retracted.status_code == 303 and "Retracted" in retracted.headers["location"]
    report = world.report()
    assert report.status == "retracted" and report.retracted_at is not None
    assert sandbox.store.counts()["reports"] == 0  # it never left
    page = ada.get(url)
    assert "retracted" in page.text and "/approve" not in page.text
    with world.db.session() as session:
        assert session.scalars(select(Report.status)).all() == ["retracted"]
