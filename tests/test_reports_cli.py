"""`vigil reports ...` end to end with typer's CliRunner over a confirmed report, sending to
the clearinghouse's stand-in (`vigil.reporting.sandbox`); settings from the environment as
an operator gives them. Both databases.

Every picture is synthetic (`vigil.demo.synthetic_image`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from report_helpers import (
    ACCOUNT,
    PASSWORD,
    USER,
    Sandbox,
    World,
    build_world,
    report_settings,
    serve_sandbox,
)
from vigil.cli import app
from vigil.config import get_settings
from vigil.store import Database

runner = CliRunner()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with serve_sandbox(tmp_path / "sandbox") as running:
        yield running


@pytest.fixture
def world(
    db: Database, tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    """The confirmed draft, and the environment of a platform reporting to the sandbox."""
    settings = report_settings(db, tmp_path / "home", sandbox.url)
    environment = {
        "VIGIL_HOME": str(settings.home),
        "VIGIL_DATABASE_URL": db.engine.url.render_as_string(False),
        "VIGIL_CYBERTIP_ENVIRONMENT": "test",
        "VIGIL_CYBERTIP_TEST_URL": sandbox.url,
        "VIGIL_CYBERTIP_TEST_USERNAME": USER,
        "VIGIL_CYBERTIP_TEST_PASSWORD": PASSWORD,
        "VIGIL_CYBERTIP_TIMEOUT_SECONDS": "2",
        "VIGIL_REPORT_PERSON_EMAIL": "safety@platform.example",
        "VIGIL_REPORT_COMPANY_TEMPLATE": settings.report_company_template or "",
        "VIGIL_REPORT_PLATFORM": "Example Platform",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("VIGIL_REPORT_AUTO_APPROVE_VERIFIED", raising=False)
    get_settings.cache_clear()
    assert get_settings().home == settings.home  # the CLI reads the world's media
    yield build_world(db, settings, tmp_path / "pictures")
    get_settings.cache_clear()


def vigil(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["reports", *args])
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


def test_list_show_approve_submit(world: World, sandbox: Sandbox) -> None:
    rid = str(world.report_id)
    code, out, err = vigil("list", "--json")
    assert code == 0, err
    [row] = [json.loads(line) for line in out.splitlines()]
    assert row["id"] == world.report_id
    assert (row["status"], row["account"], row["files"], row["industry"]) == (
        "draft", ACCOUNT, 2, "B1",
    )  # fmt: skip
    assert (row["auto_confirmed"], row["viral"], row["remote_report_id"]) == (False, False, None)
    code, table, _ = vigil("list")
    assert code == 0 and ACCOUNT in table and "draft" in table
    assert vigil("list", "--status", "finished", "--json")[:2] == (0, "")
    code, _, err = vigil("list", "--status", "sent")
    assert code == 2 and "unknown status" in err

    code, out, err = vigil("show", rid)
    assert code == 0, err
    shown = json.loads(out)
    assert [f["viewed"] for f in shown["files"]] == [True, False]
    assert {f["state"] for f in shown["files"]} == {"pending"}
    assert shown["files"][0]["annotations"] == ["possibleSelfProduction"]
    code, xml, err = vigil("show", rid, "--xml")
    assert code == 0, err
    assert "<report" in xml and "<incidentSummary>" in xml and "</report>" in xml
    assert f"<espIdentifier>{ACCOUNT}</espIdentifier>" in xml
    assert "<email>safety@platform.example</email>" in xml

    # Approval: a legal, lead or admin user's; a reviewer's is refused.
    code, out, err = vigil("approve", rid, "--as", "rita")
    assert code == 2 and out == ""
    assert "legal" in err and "lead" in err
    assert vigil("approve", rid, "--as", "nobody")[0] == 2
    assert world.report().status == "draft"
    code, out, err = vigil("approve", rid, "--as", "lou")
    assert (code, out) == (0, f"report {rid} approved\n"), err
    report = world.report()
    assert (report.status, report.approved_by, report.environment) == (
        "approved", world.legal.user_id, "test",
    )  # fmt: skip
    code, _, err = vigil("approve", rid, "--as", "lou")
    assert code == 2 and "only a draft" in err

    code, out, err = vigil("submit", rid)
    assert code == 0, err
    assert out.strip() == f"report {rid}: finished"
    report = world.report()
    assert report.status == "finished" and report.remote_report_id is not None
    [remote] = sandbox.store.reports()
    assert (remote["id"], remote["status"]) == (report.remote_report_id, "finished")
    code, out, _ = vigil("list", "--json")
    assert json.loads(out)["remote_report_id"] == report.remote_report_id
    code, xml, _ = vigil("show", rid, "--xml")
    assert code == 0 and xml == f"{report.xml}\n"  # as it was sent

    # Finished: neither retracted nor sent again.
    code, out, err = vigil("retract", rid, "--as", "lou")
    assert code == 2 and out == "" and "finished" in err and "cannot be retracted" in err
    code, _, err = vigil("submit", rid)
    assert code == 2 and "nothing to send" in err
    assert world.report().status == "finished"
    assert sandbox.store.counts()["reports"] == 1


def test_unknown_reports_and_usage_errors(world: World) -> None:
    for args in (
        ("show", "999999"),
        ("show", "999999", "--xml"),
        ("approve", "999999", "--as", "lou"),
        ("submit", "999999"),
        ("retract", "999999", "--as", "lou"),
    ):
        code, out, err = vigil(*args)
        assert (code, out) == (2, ""), args
        assert "no report 999999" in err, args
    code, _, err = vigil("submit")
    assert code == 2 and "--due" in err


def test_a_draft_is_retracted_and_an_invalid_report_is_shown_why(
    world: World, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = str(world.report_id)
    monkeypatch.delenv("VIGIL_REPORT_PERSON_EMAIL")
    get_settings.cache_clear()
    code, out, err = vigil("show", rid, "--xml")
    assert (code, out) == (2, "")
    assert "not valid yet" in err and "VIGIL_REPORT_PERSON_EMAIL" in err

    code, _, err = vigil("retract", rid, "--as", "rita")
    assert code == 2 and "legal" in err
    code, out, err = vigil("retract", rid, "--as", "lou")
    assert (code, out) == (0, f"report {rid} retracted\n"), err
    assert world.report().status == "retracted"
    assert sandbox.store.counts()["reports"] == 0
    code, _, err = vigil("retract", rid, "--as", "lou")
    assert code == 2 and "retracted" in err


def test_a_refused_report_exits_1_with_the_clearinghouses_message(
    world: World, sandbox: Sandbox
) -> None:
    rid = str(world.report_id)
    assert vigil("approve", rid, "--as", "lou")[0] == 0
    sandbox.fail("submit", "code:4100")
    code, out, err = vigil("submit", rid)
    assert code == 1, err
    assert out.startswith(f"report {rid}: failed") and "4100" in out
    assert world.report().status == "failed"
