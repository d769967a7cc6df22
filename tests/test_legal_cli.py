"""`vigil legal ...` end to end with typer's CliRunner, settings from the environment as an
operator gives them: manual entry to a production whose package opens with the password
printed once, the role and scope refusals, the emergency's two-person rule, the dashboard and
answer times, domains, officers, the outbox and the notice guard; and the demo's legal desk.
Both databases.

Every document is a benign stub; every account and officer is made up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from legal_helpers import PASSWORD, PDF, confirm_secret
from vigil.auth.users import create_user
from vigil.cli import app
from vigil.config import Settings, get_settings
from vigil.legal import DeskUser, NewRequest, NewTarget, file_request
from vigil.legal.package import open_package
from vigil.legal.portal import confirm, decide_domain, register, sign_in
from vigil.store import (
    AppUser,
    AuditEvent,
    Database,
    LegalRequest,
    MailMessage,
    Officer,
    open_database,
    utcnow,
)
from vigil.vault import open_vault

pytestmark = pytest.mark.usefixtures("cheap_passwords")

runner = CliRunner()
ACCOUNT = "acct-cli-1"
DOMAIN = "police.example.gov"
AGENCY = "Example County Police"
HASH = "ab" * 32


@pytest.fixture
def settings(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The environment of a platform's legal desk, and its people: two legal users (Lena
    also a lead), an admin, and a reviewer who may not work the desk."""
    environment = {
        "VIGIL_HOME": str(tmp_path / "home"),
        "VIGIL_DATABASE_URL": db.engine.url.render_as_string(False),
        "VIGIL_ACCOUNT_DATA_SYNTHETIC": "true",
        "VIGIL_LEGAL_CUSTODIAN_NAME": "Casey Custodian",
        "VIGIL_LEGAL_ORGANISATION": "Example Platform Inc.",
        "VIGIL_PORTAL_BASE_URL": "https://vigil.example.test/",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    with db.session() as session:
        for name, roles in (
            ("alice", ["legal"]),
            ("bob", ["legal"]),
            ("lena", ["legal", "lead"]),
            ("root", ["admin"]),
            ("rita", ["reviewer"]),
        ):
            create_user(session, name, PASSWORD, roles, email=f"{name}@platform.test")
    yield get_settings()
    get_settings.cache_clear()


def vigil(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["legal", *args])
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


def ok_json(*args: str) -> Any:
    code, out, err = vigil(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def lines(*args: str) -> list[dict[str, Any]]:
    code, out, err = vigil(*args, "--json")
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


def file(*args: str, kind: str = "subpoena", user: str = "alice") -> str:
    """File a manual request; its number."""
    row = ok_json(
        "file",
        "--kind",
        kind,
        "--agency",
        AGENCY,
        "--requester-name",
        "Sgt. Example",
        "--requester-email",
        f"sgt@{DOMAIN}",
        "--target",
        f"account:{ACCOUNT}",
        "--as",
        user,
        *args,
    )
    number: str = row["number"]
    return number


IDENTITY = (
    "--direction",
    "we_called",
    "--number",
    "+1-555-0100",
    "--number-source",
    "agency website, contact page",
    "--spoke-with",
    "Sgt. Example",
    "--when",
    "2026-11-23 09:30 UTC",
)


def verify(number: str, *items: str, user: str = "alice") -> dict[str, Any]:
    row: dict[str, Any] = {}
    for item in items:
        extra = IDENTITY if item == "identity" else ()
        row = ok_json("check", number, item, "--as", user, *extra)
    return row


def test_a_manual_subpoena_from_entry_to_production(settings: Settings, tmp_path: Path) -> None:
    document = tmp_path / "subpoena.pdf"
    document.write_bytes(PDF)
    code, _, err = vigil("allow-domain", DOMAIN, "--agency", AGENCY, "--as", "alice")
    assert code == 0 and f"{DOMAIN}: allowed" in err
    row = ok_json(
        "file", "--kind", "subpoena", "--agency", AGENCY, "--requester-name", "Sgt. Example",
        "--requester-email", f"sgt@{DOMAIN}", "--case-number", "CASE-9",
        "--records-from", "2026-01-01", "--records-to", "2026-12-31",
        "--target", f"account:{ACCOUNT}", "--target", f"hash:{HASH}",
        "--document", str(document), "--as", "alice",
    )  # fmt: skip
    number = row["number"]
    assert number.startswith("LR-") and row["status"] == "received"
    assert row["created_by"] == "user:alice" and row["document_item_id"] is not None
    assert row["records_to"].startswith("2026-12-31T23:59:59")
    assert [(t["kind"], t["account_id"]) for t in row["targets"]] == [
        ("account", ACCOUNT),
        ("hash", None),
    ]
    assert {"first_request", "unresolved"} <= set(row["signals"])
    assert row["missing"] == ["identity", "document", "jurisdiction", "dates"]

    code, out, _ = vigil("show", number)
    assert code == 0 and "Verification checklist" in out and "missing" in out

    code, _, err = vigil("produce", number, "--category", "subscriber", "--as", "alice")
    assert code == 2 and "before the checklist is complete" in err
    assert verify(number, "identity", "document", "jurisdiction")["missing"] == ["dates"]
    assert verify(number, "dates") == {"number": number, "status": "verified", "missing": []}

    package = tmp_path / "package.zip"
    produced = ok_json(
        "produce", number, "--category", "subscriber", "--as", "alice", "--out", str(package)
    )
    assert produced["categories"] == ["subscriber"]
    assert produced["mailed_to"] is None and produced["download_link"] is None  # no officer
    files = open_package(package.read_bytes(), produced["password"])
    assert {"data/subscriber.csv", "data/subscriber.json"} <= set(files)
    assert ACCOUNT.encode() in files["data/subscriber.json"]

    detail = ok_json("show", number)
    assert detail["status"] == "produced" and detail["answered_at"] is not None
    [made] = detail["productions"]
    assert (made["status"], made["built_by"]) == ("ready", "alice")
    assert "password" not in json.dumps(detail)
    [listed] = lines("requests", "--status", "produced")
    assert listed["number"] == number and listed["clock"] == "answered"
    assert lines("requests", "--account", ACCOUNT)[0]["number"] == number
    code, out, _ = vigil("requests")
    assert code == 0 and number in out and "answered" in out

    assert any("desk copy of production" in json.dumps(read) for read in _vault_reads(settings))


def _vault_reads(settings: Settings) -> list[object]:
    database = open_database(settings)
    try:
        with database.session() as session:
            return list(
                session.scalars(select(AuditEvent.details).where(AuditEvent.action == "vault.read"))
            )
    finally:
        database.dispose()


def _portal_request(settings: Settings) -> tuple[str, str]:
    """A subpoena filed by an active officer through the portal: its number and the
    officer's address."""
    database = open_database(settings)
    now = utcnow()
    try:
        with database.session() as session:
            alice = DeskUser.of(
                session.scalars(select(AppUser).where(AppUser.username == "alice")).one()
            )
            decide_domain(session, DOMAIN, allow=True, user=alice, now=now, agency=AGENCY)
            officer = register(
                session, email=f"officer@{DOMAIN}", name="Officer Olivia Example", agency=AGENCY,
                password=PASSWORD, settings=settings, now=now,
            )  # fmt: skip
            confirm(session, confirm_secret(session, officer.email), now=now)
            request = file_request(
                session,
                open_vault(settings),
                NewRequest(
                    kind="subpoena",
                    requester_name="-",
                    agency=AGENCY,
                    targets=[NewTarget("account", ACCOUNT)],
                    case_number="CASE-7",
                    records_from=now - timedelta(days=30),
                    records_to=now,
                ),
                channel="portal",
                created_by=f"officer:{officer.email}",
                settings=settings,
                now=now,
                officer=officer,
                document=PDF,
                document_name="subpoena.pdf",
            )
            return f"LR-{request.id:06d}", officer.email
    finally:
        database.dispose()


def test_a_portal_request_gets_its_link_mailed_and_the_password_said_once(
    settings: Settings,
) -> None:
    number, officer = _portal_request(settings)
    verify(number, "identity", "document", "jurisdiction", "dates", user="bob")
    code, out, err = vigil("produce", number, "--category", "subscriber", "--as", "bob")
    assert code == 0, err
    assert "Password (shown this once" in out and "by phone" in out
    assert "https://vigil.example.test/portal/download/" in out
    assert f"mailed to {officer}" in " ".join(out.split())
    [mail] = lines("mail", "--to", officer, "--status", "pending")[:1]
    assert mail["purpose"] == "production" and mail["reference"] == number
    assert "body" not in mail
    [shown] = [
        m for m in lines("mail", "--to", officer, "--show-body") if m["purpose"] == "production"
    ]
    assert "https://vigil.example.test/portal/download/" in shown["body"]
    assert "password" in shown["body"] and "by phone" in shown["body"]
    code, out, _ = vigil("mail")
    assert code == 0 and "Production ready" in out and "/portal/download/" not in out
    officers = lines("officers", "--status", "active")
    assert [o["email"] for o in officers] == [officer]
    assert lines("domains")[0]["status"] == "allowed"


def test_people_without_the_legal_role_are_refused(settings: Settings) -> None:
    args = ("file", "--kind", "subpoena", "--agency", AGENCY, "--requester-name", "X",
            "--target", f"account:{ACCOUNT}")  # fmt: skip
    code, _, err = vigil(*args, "--as", "rita")
    assert code == 2 and "'rita' may not enter legal requests: it needs the legal role" in err
    code, _, err = vigil(*args, "--as", "nobody")
    assert code == 2 and "no user 'nobody'" in err
    number = file()
    code, _, err = vigil("check", number, "identity", "--as", "rita", *IDENTITY)
    assert code == 2 and "needs the legal role" in err
    code, _, err = vigil("allow-domain", DOMAIN, "--as", "rita")
    assert code == 2 and "needs the legal role" in err
    code, _, err = vigil("assign", number, "rita", "--as", "alice")
    assert code == 2 and "'rita' may not be assigned" in err
    assert ok_json("assign", number, "lena", "--as", "root")["assignee"] == "lena"
    code, _, err = vigil("show", "LR-999999")
    assert code == 2 and "no legal request LR-999999" in err
    code, _, err = vigil("show", "twelve")
    assert code == 2 and "is not a request number" in err


def test_production_out_of_the_process_scope_is_refused(settings: Settings) -> None:
    number = file()
    verify(number, "identity", "document", "jurisdiction", "dates")
    code, _, err = vigil("produce", number, "--category", "records", "--as", "alice")
    assert code == 2
    assert "records is outside a subpoena's scope" in err
    assert "non-content records need a 2703(d) court order or a search warrant" in err
    code, _, err = vigil("produce", number, "--category", "subscriber,content", "--as", "alice")
    assert code == 2 and "content needs a search warrant (18 U.S.C. 2703(a), (b))" in err
    code, _, err = vigil("produce", number, "--category", "subscriber", "--as", "alice",
                         "--out", "/nonexistent-folder/package.zip")  # fmt: skip
    assert code == 2 and "exists already, or its folder does not" in err
    assert ok_json("show", number)["productions"] == []  # nothing was built


def test_an_emergency_needs_a_second_legal_user(settings: Settings) -> None:
    code, _, err = vigil(
        "file", "--kind", "emergency", "--agency", AGENCY, "--requester-name", "Sgt. Example",
        "--target", f"account:{ACCOUNT}", "--as", "alice",
    )  # fmt: skip
    assert code == 2 and "must describe the danger" in err
    number = file("--description", "A child is in danger.", kind="emergency")
    detail = ok_json("show", number)
    assert detail["missing"] == ["identity", "danger", "dates", "second_verification"]
    verify(number, "identity")
    ok_json("check", number, "danger", "--as", "alice", "--basis", "a threat in a message")
    verify(number, "dates")
    code, _, err = vigil("check", number, "second_verification", "--as", "alice",
                         "--categories", "subscriber")  # fmt: skip
    assert code == 2 and "another legal user than the one who ticked the rest" in err
    row = ok_json("check", number, "second_verification", "--as", "bob", "--categories",
                  "subscriber,records")  # fmt: skip
    assert row["status"] == "verified"
    assert ok_json("show", number)["emergency_categories"] == ["subscriber", "records"]
    code, _, err = vigil("produce", number, "--category", "content", "--as", "bob")
    assert code == 2 and "the verified emergency needs only records, subscriber" in err
    produced = ok_json(
        "produce", number, "--category", "subscriber", "--category", "records", "--as", "alice"
    )
    assert produced["categories"] == ["subscriber", "records"]


def test_dashboard_stats_and_reminders_show_numbers(settings: Settings) -> None:
    yesterday = (utcnow() - timedelta(days=1)).date().isoformat()
    overdue = file("--return-date", yesterday)  # due at receipt: overdue at once
    running = file()
    answered = file()
    verify(answered, "identity", "document", "jurisdiction", "dates")
    ok_json("produce", answered, "--category", "subscriber", "--as", "alice")
    board = ok_json("dashboard")
    assert board["counts"] == {
        "overdue": 1, "due_soon": 0, "running": 1, "expiring_preservations": 0,
    }  # fmt: skip
    assert (board["overdue"], board["running"]) == ([overdue], [running])
    code, out, _ = vigil("dashboard")
    assert code == 0 and "overdue 1" in out and "running 1" in out and overdue in out
    stats = ok_json("stats")
    assert "within 5 working days" in stats["goal"]
    subpoenas = {k["kind"]: k for k in stats["kinds"]}["subpoena"]
    assert (subpoenas["answered"], subpoenas["open"], subpoenas["within_goal"]) == (1, 2, 1)
    assert subpoenas["within_goal_share"] == 1.0 and subpoenas["median_seconds"] >= 0
    code, out, _ = vigil("stats")
    assert code == 0 and "goal: every emergency answered within 1 hour" in " ".join(out.split())
    assert "subpoena" in out and "(100%)" in out
    reminded = ok_json("remind")
    assert reminded["escalated"] == [overdue] and overdue in reminded["reminded"]
    assert ok_json("remind")["escalated"] == []  # once
    escalations = [m for m in lines("mail") if m["purpose"] == "escalation"]
    assert [m["to"] for m in escalations] == ["lena@platform.test"]


def test_orders_preservation_destruction_refusal_and_the_notice_guard(
    settings: Settings,
) -> None:
    notice = ok_json("notice", ACCOUNT)
    assert notice == {
        "account": ACCOUNT, "may_notify_user": False, "reasons": ["platform policy: no notice"],
    }  # fmt: skip
    parent = file()
    order = ok_json(
        "file", "--kind", "nondisclosure", "--agency", AGENCY, "--requester-name", "Sgt. Example",
        "--parent", parent, "--until", "2099-01-01", "--as", "alice",
    )  # fmt: skip
    assert order["parent"] == parent and order["targets"][0]["account_id"] == ACCOUNT
    order_number = order["number"]
    reasons = ok_json("notice", ACCOUNT)["reasons"]
    assert any(order_number in reason for reason in reasons)
    code, out, _ = vigil("notice", ACCOUNT)
    assert code == 0 and "must NOT be told" in out
    code, _, err = vigil("record", order_number, "--as", "alice")
    assert code == 2 and "before the checklist is complete" in err
    verify(order_number, "identity", "document", "jurisdiction", "dates")
    assert ok_json("record", order_number, "--as", "alice")["status"] == "produced"
    code, _, err = vigil("lift", parent, "--reason", "x", "--as", "alice")
    assert code == 2 and "only a non-disclosure order is lifted" in err
    ok_json("lift", order_number, "--reason", "Order of 2026-12-01 lifting it", "--as", "alice")
    assert not any(order_number in r for r in ok_json("notice", ACCOUNT)["reasons"])

    preservation = file(kind="preservation")
    verify(preservation, "identity", "document", "dates")
    row = ok_json("preserve", preservation, "--as", "alice")
    assert row == {"number": preservation, "status": "produced", "accounts": [ACCOUNT]}

    destroy = file(kind="destroy")
    verify(destroy, "identity", "document", "dates")
    row = ok_json("destroy", destroy, "--as", "lena")
    assert row == {"number": destroy, "status": "produced", "shredded": []}

    assert (
        ok_json("refuse", parent, "--reason", "not genuine", "--as", "bob")["status"] == "refused"
    )
    code, _, err = vigil("close", parent, "--outcome", "done", "--as", "bob")
    assert code == 2 and "already refused" in err
    assert (
        ok_json("close", preservation, "--outcome", "preserved", "--as", "bob")["status"]
        == "closed"
    )
    code, _, err = vigil("refuse-domain", "sheriff.example.org", "--as", "alice")
    assert code == 0 and "sheriff.example.org: refused" in err
    assert [d["status"] for d in lines("domains") if d["domain"] == "sheriff.example.org"] == [
        "refused"
    ]
    code, _, err = vigil("requests", "--kind", "parking_ticket")
    assert code == 2 and "unknown kind" in err


def test_the_demo_legal_desk_is_seeded_and_a_second_run_does_not_break(
    settings: Settings,
) -> None:
    from vigil.demo import (
        DEMO_ACCOUNT,
        DEMO_OFFICER,
        DEMO_REVIEWER,
        demo_reviewer,
        demo_settings,
        seed_legal_demo,
    )

    demo = demo_settings(settings, "http://127.0.0.1:9/", "sandbox-password")
    assert demo.account_data_synthetic
    first = seed_legal_demo(demo)
    demo_reviewer(demo)
    second = seed_legal_demo(demo)
    assert first.filed and not second.filed
    assert first.request_number == second.request_number
    assert first.officer_password != second.officer_password
    database = open_database(demo)
    try:
        with database.session() as session:
            request = session.scalars(select(LegalRequest)).one()
            assert (request.channel, request.kind, request.status) == (
                "portal",
                "subpoena",
                "received",
            )
            assert [t.account_id for t in request.targets] == [DEMO_ACCOUNT]
            assert request.document_item_id is not None
            users = {u.username: u.roles for u in session.scalars(select(AppUser))}
            assert {"legal", "lead"} <= set(users["demo-legal"])
            assert "legal" in users[DEMO_REVIEWER]
            officer = session.scalars(select(Officer).where(Officer.email == DEMO_OFFICER)).one()
            assert officer.status == "active"
            sign_in(session, DEMO_OFFICER, second.officer_password,
                    lifetime=timedelta(hours=1), now=utcnow())  # fmt: skip
            assert session.scalar(select(func.count()).select_from(MailMessage)) == 0
    finally:
        database.dispose()
    # The two demo users can show the emergency's two-person rule on the desk.
    number = file("--description", "A demo emergency.", kind="emergency", user="demo-legal")
    verify(number, "identity", user="demo-legal")
    ok_json("check", number, "danger", "--as", "demo-legal", "--basis", "demo")
    verify(number, "dates", user="demo-legal")
    row = ok_json("check", number, "second_verification", "--as", DEMO_REVIEWER,
                  "--categories", "subscriber")  # fmt: skip
    assert row["status"] == "verified"
