"""The legal desk and the law-enforcement portal in a real browser: Playwright driving
Debian's chromium, headless, against the app under uvicorn on a free local port (one server
for the module, over the small world of `legal_helpers` on SQLite).

(a) an officer registers, confirms by the mailed link, waits for vetting, is allowed by a
legal user and signs in; (b) a subpoena filed in the portal with its PDF is verified and
produced in the desk and downloaded once in the portal, and the package opens with the
password the desk showed; (c) an emergency cannot be produced before a second legal user
verifies it; (d) a production beyond a subpoena's reach is refused. Skipped, loudly, where
chromium or Playwright is missing (CI installs both). Set `VIGIL_SCREENSHOTS=docs/img` to
save the pages' screenshots for the docs.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from legal_helpers import (
    ACCOUNT,
    IDENTITY,
    PASSWORD,
    PDF,
    LegalWorld,
    confirm_secret,
    make_world,
)
from vigil.api.app import create_app
from vigil.background import serving
from vigil.config import Settings
from vigil.legal.package import open_package
from vigil.store import LegalRequest, Officer, Production, open_database

CHROMIUM = "/usr/bin/chromium"

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
if not Path(CHROMIUM).exists():
    pytest.skip(
        f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium;"
        " .ci/run installs it)",
        allow_module_level=True,
    )

Page = sync_api.Page
expect = sync_api.expect


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@dataclass
class Site:
    url: str
    world: LegalWorld


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("legal-browser")
    database = open_database(
        Settings(home=folder / "db-home", database_url=f"sqlite:///{folder / 'vigil.db'}")
    )
    try:
        world = make_world(database, folder)
        # Many sign-ins from one address within a minute: more than the default bursts.
        settings = world.settings.model_copy(
            update={
                "console_login_attempts_per_minute": 600,
                "console_login_ip_attempts_per_minute": 600,
            }
        )
        app = create_app(settings, database=database, background=False)
        with serving(app, name="legal-console") as url:
            yield Site(url, world)
    finally:
        database.dispose()


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    yield context.new_page()
    context.close()


def new_page(browser: Any) -> Page:
    """Another person's browser (its own cookies)."""
    other: Page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    return other


def desk_sign_in(page: Page, site: Site, username: str) -> None:
    page.goto(f"{site.url}/console/login?next=/console/legal")
    page.wait_for_load_state()
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{site.url}/console/legal")
    expect(page.locator("h1")).to_have_text("Legal-process desk")


def portal_sign_in(page: Page, site: Site, email: str) -> None:
    page.goto(f"{site.url}/portal/login")
    page.wait_for_load_state()
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("form[action='/portal/login'] button[type=submit]")
    page.wait_for_url(f"{site.url}/portal")
    expect(page.locator("h1")).to_have_text("My requests")


def open_request(page: Page, site: Site, request_id: int) -> None:
    page.goto(f"{site.url}/console/legal/requests/{request_id}")
    page.wait_for_load_state()


def tick(page: Page, item: str, categories: tuple[str, ...] = ()) -> None:
    """Tick one checklist item in its form, with what it asks for."""
    form = page.locator(f'li[data-item="{item}"] form')
    if item == "identity":
        form.locator("select[name=direction]").select_option(IDENTITY["direction"])
        for name in ("number", "number_source", "spoke_with", "when"):
            form.locator(f"input[name={name}]").fill(IDENTITY[name])
    elif item == "danger":
        form.locator("textarea[name=basis]").fill("A credible threat to a child tonight.")
    for category in categories:
        form.locator(f'input[name=categories][value="{category}"]').check()
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()


def tick_all(page: Page, *, but: tuple[str, ...] = ()) -> None:
    """Tick every item not ticked yet (except those in `but`)."""
    pending = page.locator('li[data-done="no"]')
    for key in [pending.nth(i).get_attribute("data-item") for i in range(pending.count())]:
        if key and key not in but:
            tick(page, key)
            expect(page.locator(f'li[data-item="{key}"]')).to_have_attribute("data-done", "yes")


def produce(page: Page, *categories: str) -> None:
    form = page.locator("#produce-form")
    for box in ("subscriber", "records", "content"):
        checkbox = form.locator(f'input[name=categories][value="{box}"]')
        if box in categories:
            checkbox.check()
        else:
            checkbox.uncheck()
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()


def file_in_db(site: Site, kind: str) -> int:
    with site.world.db.session() as session:
        return site.world.file(session, kind)


def screenshot(page: Page, name: str, folder: Path) -> None:
    target = folder / name
    page.screenshot(path=str(target), full_page=True)
    wanted = os.environ.get("VIGIL_SCREENSHOTS")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        shutil.copy(target, Path(wanted) / name)


# --- Tests --------------------------------------------------------------------------------


def test_an_officer_registers_is_vetted_and_signs_in(
    browser: Any, page: Page, site: Site, tmp_path: Path
) -> None:
    email = "sergeant@county.example.gov"
    page.goto(f"{site.url}/portal/login")
    page.click("a[href='/portal/register']")
    page.wait_for_load_state()
    page.fill("#email", email)
    page.fill("#name", "Sergeant Sam Example")
    page.fill("#agency", "Example County Sheriff")
    page.fill("#title", "Sergeant")
    page.fill("#phone", "+1-555-0123")
    page.fill("#password", PASSWORD)
    page.click("form[action='/portal/register'] button[type=submit]")
    expect(page.locator("#registered")).to_contain_text("a message with a link")

    with site.world.db.session() as session:
        token = confirm_secret(session, email)
    page.goto(f"{site.url}/portal/confirm?token={token}")
    page.wait_for_load_state()
    page.click("#confirm-button")
    expect(page.locator("h1")).to_contain_text("waiting for vetting")

    desk = new_page(browser)
    desk_sign_in(desk, site, "alice")
    desk.click("#officers-link")
    desk.wait_for_load_state()
    row = desk.locator('tr[data-domain="county.example.gov"]')
    expect(row).to_have_attribute("data-status", "pending")
    expect(desk.locator("#officers")).to_contain_text(email)
    screenshot(desk, "legal-officers.png", tmp_path)
    row.locator("button[value=allow]").click()
    desk.wait_for_load_state()
    expect(desk.locator(".notice")).to_contain_text("county.example.gov allowed")
    expect(desk.locator('tr[data-domain="county.example.gov"]')).to_have_attribute(
        "data-status", "allowed"
    )
    desk.context.close()

    portal_sign_in(page, site, email)
    expect(page.locator(".account")).to_contain_text("Sergeant Sam Example")
    with site.world.db.session() as session:
        status = session.scalar(select(Officer.status).where(Officer.email == email))
    assert status == "active"


def test_a_subpoena_from_intake_to_download(
    browser: Any, page: Page, site: Site, tmp_path: Path
) -> None:
    officer = site.world.officer
    portal_sign_in(page, site, officer.email)
    page.click("#file-request")
    page.wait_for_load_state()
    page.select_option("#kind", "subpoena")
    page.fill("#case_number", "BROWSER-1")
    page.fill("#document_reference", "GJ-2026-0042")
    page.fill("#records_from", "2026-01-01")
    page.fill("#records_to", "2026-11-20")
    page.fill("#targets", f"account:{ACCOUNT}")
    page.set_input_files(
        "#document", files=[{"name": "subpoena.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    page.click("#new-request-form button[type=submit]")
    page.wait_for_url(re.compile(r"/portal\?message="))
    expect(page.locator("#portal-message")).to_contain_text("received")
    with site.world.db.session() as session:
        request_id = session.scalars(
            select(LegalRequest.id).where(LegalRequest.case_number == "BROWSER-1")
        ).one()
    expect(page.locator(f'tr[data-request="{request_id}"]')).to_contain_text("received")
    screenshot(page, "portal-requests.png", tmp_path)

    desk = new_page(browser)
    desk_sign_in(desk, site, "alice")
    expect(desk.locator(f'#requests-recent tr[data-request="{request_id}"]')).to_be_visible()
    open_request(desk, site, request_id)
    expect(desk.locator("#clock")).to_contain_text("left")
    tick_all(desk)
    expect(desk.locator("#action-message")).to_contain_text("verified")
    screenshot(desk, "legal-request.png", tmp_path)
    produce(desk, "subscriber")
    password = desk.locator("#one-time-password").inner_text().strip()
    link = desk.locator("#download-link").inner_text().strip()
    secret = link.rsplit("/portal/download/", 1)[1]
    desk.context.close()

    page.goto(f"{site.url}/portal/download/{secret}")
    page.wait_for_load_state()
    expect(page.locator("main")).not_to_contain_text(password)
    with page.expect_download() as started:
        page.click("#download-button")
    download = started.value
    assert download.suggested_filename == f"LR-{request_id:06d}-production.zip"
    files = open_package(Path(download.path()).read_bytes(), password)
    assert "data/subscriber.csv" in files and ACCOUNT.encode() in files["data/subscriber.csv"]

    page.goto(f"{site.url}/portal/download/{secret}")
    page.wait_for_load_state()
    page.click("#download-button")
    expect(page.locator("#portal-error")).to_contain_text("already used")
    page.goto(f"{site.url}/portal")
    expect(
        page.locator(f'tr[data-request="{request_id}"] [data-status="downloaded"]')
    ).to_be_visible()


def test_an_emergency_waits_for_a_second_legal_user(browser: Any, page: Page, site: Site) -> None:
    request_id = file_in_db(site, "emergency")
    desk_sign_in(page, site, "alice")
    open_request(page, site, request_id)
    expect(page.locator("#clock")).to_contain_text("overdue by")  # an hour, filed days ago
    tick_all(page, but=("second_verification",))
    expect(page.locator("#produce-closed")).to_be_visible()
    expect(page.locator("#produce-form")).to_have_count(0)
    refused = page.request.post(
        f"{site.url}/console/legal/requests/{request_id}/produce",
        form={
            "csrf_token": page.locator("input[name=csrf_token]").first.input_value(),
            "categories": "subscriber",
        },
        max_redirects=0,
    )
    assert refused.status == 409 and "before the checklist is complete" in refused.text()
    tick(page, "second_verification", ("subscriber",))
    expect(page.locator("#action-error")).to_contain_text("another legal user")

    other = new_page(browser)
    desk_sign_in(other, site, "bob")
    open_request(other, site, request_id)
    tick(other, "second_verification", ("subscriber",))
    expect(other.locator("#action-message")).to_contain_text("verified")
    produce(other, "subscriber")
    expect(other.locator("#one-time-password")).to_have_text(re.compile(r"[a-z2-9-]{12,}"))
    other.context.close()


def test_an_out_of_scope_production_is_refused(page: Page, site: Site) -> None:
    request_id = file_in_db(site, "subpoena")
    desk_sign_in(page, site, "alice")
    open_request(page, site, request_id)
    tick_all(page)
    produce(page, "content")
    error = page.locator("#action-error")
    expect(error).to_contain_text("content is outside a subpoena's scope")
    expect(error).to_contain_text("search warrant")
    expect(page.locator("#one-time-password")).to_have_count(0)
    with site.world.db.session() as session:
        made = session.scalar(
            select(func.count()).select_from(Production).where(Production.request_id == request_id)
        )
    assert made == 0
