"""The legal desk in the console (`/console/legal`) and the law-enforcement portal
(`/portal`) over HTTP: who may see the desk, manual entry with a PDF, the checklist, scoped
productions (out-of-scope refused, the password shown once), the acting kinds, and an
officer's whole path from registration to a single download; cookies that do not cross
between console and portal, CSRF, rate limits and security headers. Both databases.

Nothing here is real: the PDF is a few benign bytes, the accounts and uploads are made up
(`legal_helpers`)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from legal_helpers import (
    ACCOUNT,
    AGENCY,
    AGENCY_DOMAIN,
    IDENTITY,
    NOW,
    PASSWORD,
    PDF,
    LegalWorld,
    confirm_secret,
    make_world,
)
from vigil.api.app import create_app
from vigil.auth.users import create_user
from vigil.legal import get_request
from vigil.legal.intake import MAX_DOCUMENT_BYTES
from vigil.legal.package import open_package
from vigil.store import (
    AuditEvent,
    Database,
    LegalRequest,
    MailMessage,
    Officer,
    PortalSession,
    PreservationRequest,
    Production,
    VaultClock,
    utcnow,
)

pytestmark = pytest.mark.usefixtures("cheap_passwords")

NEW_OFFICER = "deputy@sheriff.example.org"


@pytest.fixture
def world(db: Database, tmp_path: Path) -> LegalWorld:
    built = make_world(db, tmp_path)
    with db.session() as session:
        create_user(session, "rita", PASSWORD, ["reviewer"])
    return built


@pytest.fixture
def app(world: LegalWorld) -> Iterator[FastAPI]:
    # Several sign-ins of one person a test: more than the default burst of two.
    settings = world.settings.model_copy(update={"console_login_attempts_per_minute": 120})
    application = create_app(settings, database=world.db, background=False)
    with TestClient(application):  # runs the lifespan
        yield application


def csrf(page: httpx.Response) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None, page.text
    return token[1]


@dataclass
class Desk:
    client: TestClient
    token: str

    def post(self, path: str, **data: object) -> httpx.Response:
        return self.client.post(
            path, data={"csrf_token": self.token, **data}, follow_redirects=False
        )

    def tick(self, request_id: int, item: str, **details: object) -> httpx.Response:
        return self.post(f"/console/legal/requests/{request_id}/check", item=item, **details)

    def verify(self, request_id: int) -> None:
        """Tick what is left of the checklist (not an emergency's second verification)."""
        page = self.client.get(f"/console/legal/requests/{request_id}")
        for item in re.findall(r'data-item="(\w+)" data-done="no"', page.text):
            details = {
                "identity": IDENTITY,
                "danger": {"basis": "a threat to a child"},
                "counsel": {"advice": "proceed"},
            }.get(item, {})
            done = self.tick(request_id, item, **details)
            assert done.status_code == 303, done.text


def console(app: FastAPI, username: str) -> Desk:
    client = TestClient(app)
    form = client.get("/console/login")
    signed = client.post(
        "/console/login",
        data={"username": username, "password": PASSWORD, "csrf_token": csrf(form)},
        follow_redirects=False,
    )
    assert signed.status_code == 303, signed.text
    return Desk(client, csrf(client.get("/console/settings")))


def portal(app: FastAPI, email: str, password: str = PASSWORD) -> tuple[TestClient, str]:
    """A browser signed in to the portal; its CSRF token."""
    client = TestClient(app)
    form = client.get("/portal/login")
    signed = client.post(
        "/portal/login",
        data={"email": email, "password": password, "csrf_token": csrf(form)},
        follow_redirects=False,
    )
    assert signed.status_code == 303, signed.text
    home = client.get("/portal")
    assert home.status_code == 200
    return client, csrf(home)


def error_box(page: httpx.Response) -> str:
    found = re.search(r'id="action-error">([^<]*)<', page.text)
    assert found is not None, page.text
    return html.unescape(found[1])


def number(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    assert found is not None, text
    return int(found[1])


def one_time(page: httpx.Response) -> tuple[str, str | None]:
    """The password and (when there is an officer) the download secret of the page shown
    after producing."""
    password = re.search(r'id="one-time-password">([^<]+)<', page.text)
    assert password is not None, page.text
    link = re.search(r'id="download-link">[^<]*/portal/download/([A-Za-z0-9_-]+)<', page.text)
    return password[1], None if link is None else link[1]


# --- The desk --------------------------------------------------------------------------------


def test_the_desk_is_for_legal_users(app: FastAPI, world: LegalWorld) -> None:
    anonymous = TestClient(app)
    sent = anonymous.get("/console/legal/requests/1", follow_redirects=False)
    assert sent.status_code == 303
    assert sent.headers["location"] == "/console/login?next=%2Fconsole%2Flegal%2Frequests%2F1"
    rita = console(app, "rita")
    for path in ("/console/legal", "/console/legal/new", "/console/legal/officers"):
        assert rita.client.get(path).status_code == 403
    assert (
        rita.post("/console/legal/domains", domain="x.example.gov", decision="allow").status_code
        == 403
    )
    assert 'href="/console/legal"' not in rita.client.get("/console/settings").text
    for name in ("alice", "root"):
        desk = console(app, name)
        page = desk.client.get("/console/legal")
        assert page.status_code == 200 and 'href="/console/legal"' in page.text
        assert "emergency answered within 1 hour" in page.text


def test_manual_entry_with_a_pdf_and_the_checklist(app: FastAPI, world: LegalWorld) -> None:
    desk = console(app, "alice")
    fields = {
        "csrf_token": desk.token,
        "kind": "subpoena",
        "requester_name": "Det. Example",
        "requester_email": "det@sheriff.example.org",
        "requester_phone": "+1-555-0199",
        "agency": "Example Sheriff",
        "case_number": "S-77",
        "records_from": "2026-01-01",
        "records_to": "2026-11-20",
        "targets": f"account:{ACCOUNT}\nscreen_name:nobody_known",
    }
    bad = desk.client.post(
        "/console/legal/new",
        data={**fields, "targets": "acct-1"},
        files={"document": ("s.pdf", PDF, "application/pdf")},
    )
    assert bad.status_code == 400 and "kind:value" in bad.text
    assert 'value="S-77"' in bad.text  # the form keeps what was typed
    not_pdf = desk.client.post(
        "/console/legal/new",
        data=fields,
        files={"document": ("s.pdf", b"GIF89a", "application/pdf")},
    )
    assert not_pdf.status_code == 400 and "must be a PDF" in not_pdf.text
    filed = desk.client.post(
        "/console/legal/new",
        data=fields,
        files={"document": ("subpoena.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert filed.status_code == 303
    request_id = number(r"/requests/(\d+)", filed.headers["location"])
    page = desk.client.get(filed.headers["location"])
    assert 'class="signals"' in page.text
    assert 'data-signal="unlisted_domain"' in page.text and 'data-signal="unresolved"' in page.text
    assert "nobody_known" in page.text and "nothing held" in page.text
    with world.db.session() as session:
        request = get_request(session, request_id)
        assert (request.channel, request.created_by) == ("manual", "user:alice")
        assert request.document_item_id is not None

    document = desk.post(f"/console/legal/requests/{request_id}/document")
    assert document.status_code == 200 and document.content == PDF
    assert document.headers["content-type"] == "application/pdf"
    assert document.headers["content-disposition"].startswith("attachment")
    with world.db.session() as session:
        read = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "vault.read")
            .order_by(AuditEvent.seq.desc())
        ).first()
        assert read is not None and read.actor == "user:alice"
        assert read.details["reason"] == f"legal document of LR-{request_id:06d}"

    missing = desk.tick(request_id, "identity", **{**IDENTITY, "number_source": ""})
    assert missing.status_code == 409 and "number source is required" in error_box(missing)
    early = desk.post(f"/console/legal/requests/{request_id}/produce", categories="subscriber")
    assert early.status_code == 409
    assert "nothing is produced before the checklist is complete" in error_box(early)
    desk.verify(request_id)
    page = desk.client.get(f"/console/legal/requests/{request_id}")
    assert 'id="produce-form"' in page.text
    assert page.text.count('data-done="yes"') == 4
    assert "by <strong>alice</strong>" in page.text and "agency website, contact page" in page.text
    with world.db.session() as session:
        assert get_request(session, request_id).status == "verified"

    # No officer: the legal user downloads the package and hands it over.
    produced = desk.post(f"/console/legal/requests/{request_id}/produce", categories="subscriber")
    assert produced.status_code == 200
    password, secret = one_time(produced)
    assert secret is None and "Download package" in produced.text
    production_id = number(r'data-production="(\d+)"', produced.text)
    package = desk.post(f"/console/legal/productions/{production_id}/package")
    assert package.status_code == 200 and package.headers["content-type"] == "application/zip"
    assert "data/subscriber.csv" in open_package(package.content, password)


def test_out_of_scope_is_refused_and_the_password_is_shown_once(
    app: FastAPI, world: LegalWorld
) -> None:
    with world.db.session() as session:
        request_id = world.file(session)  # a portal subpoena from the world's officer
    desk = console(app, "alice")
    desk.verify(request_id)
    for category, statute in (("content", "search warrant"), ("records", "2703(d)")):
        refused = desk.post(
            f"/console/legal/requests/{request_id}/produce", categories=["subscriber", category]
        )
        assert refused.status_code == 409
        assert f"{category} is outside a subpoena's scope" in error_box(refused)
        assert statute in error_box(refused)
    with world.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Production)) == 0

    produced = desk.post(f"/console/legal/requests/{request_id}/produce", categories="subscriber")
    assert produced.status_code == 200
    password, secret = one_time(produced)
    assert secret is not None and f"officer@{AGENCY_DOMAIN}" in produced.text
    page = desk.client.get(f"/console/legal/requests/{request_id}")
    assert password not in page.text and secret not in page.text
    assert 'data-status="ready"' in page.text
    with world.db.session() as session:
        [mail] = session.scalars(select(MailMessage).where(MailMessage.purpose == "production"))
        assert mail.to_address == f"officer@{AGENCY_DOMAIN}"
        assert f"/portal/download/{secret}" in mail.body and password not in mail.body
        assert get_request(session, request_id).status == "produced"

    # A new link replaces the old one; revoking ends it.
    production_id = number(r'data-production="(\d+)"', produced.text)
    again = desk.post(f"/console/legal/productions/{production_id}/reissue")
    assert again.status_code == 200 and 'id="one-time-password"' not in again.text
    assert desk.post(f"/console/legal/productions/{production_id}/revoke").status_code == 303
    with world.db.session() as session:
        production = session.get(Production, production_id)
        assert production is not None and production.status == "revoked"


def test_an_emergency_needs_a_second_legal_user(app: FastAPI, world: LegalWorld) -> None:
    with world.db.session() as session:
        request_id = world.file(session, "emergency")
    alice = console(app, "alice")
    page = alice.client.get(f"/console/legal/requests/{request_id}")
    assert 'id="produce-closed"' in page.text and 'id="produce-form"' not in page.text
    for item, details in (("identity", IDENTITY), ("danger", {"basis": "threat"}), ("dates", {})):
        assert alice.tick(request_id, item, **details).status_code == 303
    same = alice.tick(request_id, "second_verification", categories="subscriber")
    assert same.status_code == 409 and "another legal user" in error_box(same)
    refused = alice.post(f"/console/legal/requests/{request_id}/produce", categories="subscriber")
    assert refused.status_code == 409 and "second" in error_box(refused).lower()
    bob = console(app, "bob")
    assert bob.tick(request_id, "second_verification", categories="subscriber").status_code == 303
    too_much = bob.post(f"/console/legal/requests/{request_id}/produce", categories="records")
    assert too_much.status_code == 409
    assert "the verified emergency needs only subscriber" in error_box(too_much)
    assert (
        bob.post(
            f"/console/legal/requests/{request_id}/produce", categories="subscriber"
        ).status_code
        == 200
    )


def test_the_dashboard_preservation_and_the_acting_kinds(app: FastAPI, world: LegalWorld) -> None:
    with world.db.session() as session:
        emergency = world.file(session, "emergency")  # filed two days ago: overdue
        preservation = world.file(session, "preservation")
    desk = console(app, "alice")
    board = desk.client.get("/console/legal")
    overdue = re.search(r'id="requests-overdue">(.*?)</table>', board.text, re.S)
    assert overdue is not None and f'data-request="{emergency}"' in overdue[1]
    assert "overdue by" in overdue[1]
    assert 'data-kind="subpoena"' in board.text

    desk.verify(preservation)
    preserved = desk.post(f"/console/legal/requests/{preservation}/preserve")
    assert preserved.status_code == 303
    with world.db.session() as session:
        [taken] = session.scalars(select(PreservationRequest)).all()
        assert taken.honoured_at is not None  # taken into the vault at once
        clock_id = session.scalars(
            select(VaultClock.id).where(
                VaultClock.reference == f"LR-{preservation:06d}",
                VaultClock.reason == "preservation_request",
            )
        ).first()
        ending = session.get(VaultClock, clock_id)
        assert ending is not None
        ending.expires_at = utcnow() + timedelta(days=10)  # as if 80 days had gone by
    board = desk.client.get("/console/legal")
    row = re.search(rf'<tr data-clock="{clock_id}">(.*?)</tr>', board.text, re.S)
    assert row is not None and f"LR-{preservation:06d}" in row[1] and "Renew 90 days" in row[1]
    renewed = desk.post(f"/console/legal/preservations/{clock_id}/renew")
    assert renewed.status_code == 303, renewed.text
    again = desk.post(f"/console/legal/preservations/{clock_id}/renew")
    assert again.status_code == 409 and "already renewed" in again.text

    assign = desk.post(
        f"/console/legal/requests/{emergency}/assign", assignee=str(world.bob.user_id)
    )
    assert assign.status_code == 303
    assert "bob" in desk.client.get(f"/console/legal/requests/{emergency}").text
    refused = desk.post(f"/console/legal/requests/{emergency}/refuse", reason="")
    assert refused.status_code == 409 and "say why" in error_box(refused)
    assert (
        desk.post(
            f"/console/legal/requests/{emergency}/refuse", reason="the agency denies sending it"
        ).status_code
        == 303
    )
    with world.db.session() as session:
        assert get_request(session, emergency).status == "refused"

    with world.db.session() as session:
        parent = world.file(session)
        order = world.file(session, "nondisclosure", targets=(), parent_id=parent)
    desk.verify(order)
    assert desk.post(f"/console/legal/requests/{order}/record").status_code == 303
    lifted = desk.post(f"/console/legal/requests/{order}/lift", reason="Order of 2026-12-01")
    assert lifted.status_code == 303
    with world.db.session() as session:
        assert get_request(session, order).nondisclosure_lifted_at is not None
    closed = desk.post(f"/console/legal/requests/{parent}/close", outcome="withdrawn")
    assert closed.status_code == 303


def test_destroy_needs_its_confirmation(app: FastAPI, world: LegalWorld) -> None:
    with world.db.session() as session:
        request_id = world.file(session, "destroy")
    desk = console(app, "alice")
    desk.verify(request_id)
    unconfirmed = desk.post(f"/console/legal/requests/{request_id}/destroy")
    assert unconfirmed.status_code == 409 and "cannot be undone" in error_box(unconfirmed)
    done = desk.post(f"/console/legal/requests/{request_id}/destroy", confirm="yes")
    assert done.status_code == 303 and "2%20vault%20item" in done.headers["location"]


# --- The portal ------------------------------------------------------------------------------


def test_an_officer_from_registration_to_a_single_download(app: FastAPI, world: LegalWorld) -> None:
    browser = TestClient(app)
    form = browser.get("/portal/register")
    details = {
        "email": NEW_OFFICER,
        "name": "Deputy Dana Example",
        "agency": "Example Sheriff",
        "title": "Deputy",
        "phone": "+1-555-0142",
        "password": PASSWORD,
        "csrf_token": csrf(form),
    }
    registered = browser.post("/portal/register", data=details)
    assert registered.status_code == 200 and "Check your mail" in registered.text
    again = browser.post("/portal/register", data=details)
    assert again.text == registered.text  # the same answer for a known address
    free = browser.post("/portal/register", data={**details, "email": "cop@gmail.com"})
    assert free.status_code == 400 and "free-mail" in free.text
    with world.db.session() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(MailMessage)
                .where(MailMessage.to_address == NEW_OFFICER)
            )
            == 1
        )
        token = confirm_secret(session, NEW_OFFICER)
    opened = browser.get(f"/portal/confirm?token={token}")  # a mail scanner may do this
    assert opened.status_code == 200 and "Confirm my address" in opened.text
    confirmation = {"token": token, "csrf_token": csrf(opened)}
    confirmed = browser.post("/portal/confirm", data=confirmation)
    assert confirmed.status_code == 200 and 'data-status="pending_vetting"' in confirmed.text
    assert browser.post("/portal/confirm", data=confirmation).status_code == 400  # once
    assert browser.post("/portal/confirm", data={"token": token}).status_code == 403
    login = browser.get("/portal/login")
    waiting = browser.post(
        "/portal/login",
        data={"email": NEW_OFFICER, "password": PASSWORD, "csrf_token": csrf(login)},
    )
    assert waiting.status_code == 401

    desk = console(app, "alice")
    domains = desk.client.get("/console/legal/officers")
    assert 'data-domain="sheriff.example.org" data-status="pending"' in domains.text
    allowed = desk.post(
        "/console/legal/domains",
        domain="sheriff.example.org",
        decision="allow",
        agency="Example Sheriff",
    )
    assert allowed.status_code == 303
    assert 'data-status="active"' in desk.client.get("/console/legal/officers").text

    officer, token = portal(app, NEW_OFFICER)
    form = officer.get("/portal/requests/new")
    assert 'value="Example Sheriff"' in form.text  # the agency is filled in
    fields = {
        "csrf_token": token,
        "kind": "subpoena",
        "agency": "Example Sheriff",
        "case_number": "S-2026-9",
        "records_from": "2026-01-01",
        "records_to": "2026-11-20",
        "targets": f"account:{ACCOUNT}",
    }
    no_pdf = officer.post("/portal/requests/new", data=fields)
    assert no_pdf.status_code == 400 and "attach the legal document" in no_pdf.text
    filed = officer.post(
        "/portal/requests/new",
        data=fields,
        files={"document": ("subpoena.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert filed.status_code == 303
    with world.db.session() as session:
        request = session.scalars(
            select(LegalRequest).where(LegalRequest.case_number == "S-2026-9")
        ).one()
        request_id = request.id
        assert (request.channel, request.requester_email) == ("portal", NEW_OFFICER)
        assert request.created_by == f"officer:{NEW_OFFICER}"
    home = officer.get("/portal")
    assert f"LR-{request_id:06d}" in home.text and f'data-request="{request_id}"' in home.text

    desk.verify(request_id)
    password, secret = one_time(
        desk.post(f"/console/legal/requests/{request_id}/produce", categories="subscriber")
    )
    assert secret is not None

    # Another officer cannot use it; the right one confirms, then downloads once.
    olivia, olivia_token = portal(app, world.officer.email)
    assert (
        olivia.post(f"/portal/download/{secret}", data={"csrf_token": olivia_token}).status_code
        == 410
    )
    confirm_page = officer.get(f"/portal/download/{secret}")
    assert confirm_page.status_code == 200 and password not in confirm_page.text
    assert officer.post(f"/portal/download/{secret}").status_code == 403  # no CSRF token
    taken = officer.post(f"/portal/download/{secret}", data={"csrf_token": token})
    assert taken.status_code == 200
    assert taken.headers["content-type"] == "application/zip"
    assert (
        taken.headers["content-disposition"]
        == f'attachment; filename="LR-{request_id:06d}-production.zip"'
    )
    files = open_package(taken.content, password)
    assert "data/subscriber.csv" in files and not any(n.startswith("content/") for n in files)
    second = officer.post(f"/portal/download/{secret}", data={"csrf_token": token})
    assert second.status_code == 410 and "contact the legal team" in second.text
    assert 'data-status="downloaded"' in officer.get("/portal").text
    with world.db.session() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "legal.download"))
        assert event.actor == f"officer:{NEW_OFFICER}"


def test_a_download_link_needs_a_portal_sign_in(app: FastAPI, world: LegalWorld) -> None:
    anonymous = TestClient(app)
    sent = anonymous.get("/portal/download/abcdef", follow_redirects=False)
    assert sent.status_code == 303
    assert sent.headers["location"] == "/portal/login?next=%2Fportal%2Fdownload%2Fabcdef"
    form = anonymous.get(sent.headers["location"])
    assert 'name="next" value="/portal/download/abcdef"' in form.text
    signed = anonymous.post(
        "/portal/login",
        data={
            "email": world.officer.email,
            "password": PASSWORD,
            "csrf_token": csrf(form),
            "next": "/portal/download/abcdef",
        },
        follow_redirects=False,
    )
    assert signed.headers["location"] == "/portal/download/abcdef"
    other = TestClient(app)
    evil = other.post(
        "/portal/login",
        data={
            "email": world.officer.email,
            "password": PASSWORD,
            "csrf_token": csrf(other.get("/portal/login")),
            "next": "//evil.example/portal",
        },
        follow_redirects=False,
    )
    assert evil.headers["location"] == "/portal"


def test_console_and_portal_sessions_do_not_cross(app: FastAPI, world: LegalWorld) -> None:
    desk = console(app, "alice")
    console_cookie = desk.client.cookies["vigil_session"]
    officer, _token = portal(app, world.officer.email)
    portal_cookie = officer.cookies["vigil_portal"]

    for name, value in (("vigil_session", console_cookie), ("vigil_portal", console_cookie)):
        stranger = TestClient(app)
        answer = stranger.get(
            "/portal", headers={"cookie": f"{name}={value}"}, follow_redirects=False
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/portal/login"
    for name, value in (("vigil_portal", portal_cookie), ("vigil_session", portal_cookie)):
        stranger = TestClient(app)
        answer = stranger.get(
            "/console/legal", headers={"cookie": f"{name}={value}"}, follow_redirects=False
        )
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/console/login")

    fresh = TestClient(app)
    form = fresh.get("/portal/login")
    form_cookie = form.headers["set-cookie"].lower()
    assert "vigil_portal_csrf=" in form_cookie and "path=/portal" in form_cookie
    signed = fresh.post(
        "/portal/login",
        data={"email": world.officer.email, "password": PASSWORD, "csrf_token": csrf(form)},
        follow_redirects=False,
    )
    [cookie] = [
        c.lower() for c in signed.headers.get_list("set-cookie") if c.startswith("vigil_portal=")
    ]
    assert "path=/portal" in cookie
    assert "httponly" in cookie and "samesite=strict" in cookie

    # Disabling the officer ends their sessions.
    with world.db.session() as session:
        officer_id = session.scalars(
            select(Officer.id).where(Officer.email == world.officer.email)
        ).one()
    assert (
        desk.post(f"/console/legal/officers/{officer_id}/status", status="disabled").status_code
        == 303
    )
    assert officer.get("/portal", follow_redirects=False).status_code == 303
    with world.db.session() as session:
        assert session.scalar(select(func.count()).select_from(PortalSession)) == 0
    assert (
        desk.post(f"/console/legal/officers/{officer_id}/status", status="active").status_code
        == 303
    )
    portal(app, world.officer.email)


def test_csrf_cross_site_and_rate_limits(app: FastAPI, world: LegalWorld) -> None:
    desk = console(app, "alice")
    assert (
        desk.client.post("/console/legal/requests/1/check", data={"item": "dates"}).status_code
        == 403
    )
    officer, token = portal(app, world.officer.email)
    assert officer.post("/portal/requests/new", data={"kind": "subpoena"}).status_code == 403
    assert officer.post("/portal/logout", follow_redirects=False).status_code == 403
    cross = officer.post(
        "/portal/requests/new",
        data={"csrf_token": token, "kind": "subpoena"},
        headers={"sec-fetch-site": "cross-site"},
    )
    assert cross.status_code == 403 and cross.text == "Cross-site request refused."
    no_cookie = TestClient(app).post(
        "/portal/login",
        data={"email": world.officer.email, "password": PASSWORD, "csrf_token": "x" * 43},
    )
    assert no_cookie.status_code == 403
    out = officer.post("/portal/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/portal/login"

    guesser = TestClient(app)
    form = guesser.get("/portal/login")
    statuses = []
    for _ in range(40):
        answer = guesser.post(
            "/portal/login",
            data={
                "email": world.officer.email,
                "password": "not the password",
                "csrf_token": csrf(form),
            },
        )
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            assert int(answer.headers["retry-after"]) >= 1
            break
    assert statuses[0] == 401 and statuses[-1] == 429


def test_portal_pages_carry_the_security_headers(app: FastAPI) -> None:
    client = TestClient(app)
    for path in ("/portal/login", "/portal/register", "/portal", "/portal/confirm?token=x"):
        answer = client.get(path, follow_redirects=False)
        assert "script-src 'self'" in answer.headers["content-security-policy"], path
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert "<script" not in answer.text and "style=" not in answer.text


def test_desk_pages_have_no_inline_script_or_style(app: FastAPI, world: LegalWorld) -> None:
    with world.db.session() as session:
        request_id = world.file(session, "emergency")
        world.file(session, "nondisclosure", targets=(), parent_id=request_id, now=NOW)
    desk = console(app, "alice")
    for path in (
        "/console/legal",
        "/console/legal/new",
        "/console/legal/officers",
        f"/console/legal/requests/{request_id}",
    ):
        page = desk.client.get(path)
        assert page.status_code == 200, path
        assert "style=" not in page.text and "<script>" not in page.text
        assert not re.search(r"\son[a-z]+=", page.text), path
    assert AGENCY in desk.client.get(f"/console/legal/requests/{request_id}").text


def test_legal_routes_refuse_bodies_far_beyond_a_document(app: FastAPI) -> None:
    client = TestClient(app)
    oversized = b"x" * (MAX_DOCUMENT_BYTES * 3 // 2 + 2 * 1024 * 1024)
    for path in ("/portal/requests/new", "/console/legal/new", "/v1/legal/requests"):
        answer = client.post(path, content=oversized, headers={"content-type": "text/plain"})
        assert answer.status_code == 413, path
