"""The review console in a real browser: Playwright driving Debian's chromium, headless,
against `vigil serve`'s app under uvicorn on a free local port.

Each test gets its own Vigil home: synthetic pictures banked with classifications, uploads
of copies (from named accounts) matched and recorded, their files kept for review, and
console users. Skipped, loudly, where chromium or Playwright is missing (CI installs both).
Set `VIGIL_SCREENSHOTS=docs/img` to refresh the screenshots in the docs.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from vigil import review
from vigil.api.app import create_app
from vigil.auth.users import create_user
from vigil.background import serving
from vigil.banks import NewEntry, add_entries, create_bank
from vigil.config import Settings
from vigil.demo import synthetic_image
from vigil.pipeline.matching import BankMatcher
from vigil.pipeline.online import Uploader, hash_upload, online_options, record_upload
from vigil.store import (
    Bank,
    BankEntry,
    Content,
    Database,
    ReviewExposure,
    ReviewItem,
    ReviewReveal,
    ReviewTask,
    open_database,
)
from vigil.vault.media import media_store

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery staple"

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
class World:
    url: str
    settings: Settings
    database: Database
    tasks: dict[str, int]
    """Task id by the classification its bank entry carries (`A1`, `B2`, `none`)."""

    def db_scalar(self, query: Any) -> Any:
        with self.database.session() as session:
            return session.scalar(query)


def _build(home: Path) -> tuple[Settings, dict[str, int]]:
    """Bank three synthetic pictures (A1, B2, unclassified) and upload a copy of each, and a
    second copy of the A1 one from another account (a task of two files)."""
    settings = Settings(home=home, log_format="text")
    database = open_database(settings)
    pictures = home / "pictures"
    pictures.mkdir()
    limits = settings.media_limits
    options = online_options(limits, settings.vpdq_seconds_per_hash)
    records = {}
    for seed, label in ((11, "B2"), (12, "A1"), (13, "none")):
        path = pictures / f"{label}.png"
        synthetic_image(480, 360, seed).save(path)
        records[label] = (path, hash_upload(path, path.name, limits, options))
    copy = pictures / "A1-copy.jpg"
    synthetic_image(480, 360, 12).convert("RGB").save(copy, quality=80)
    with database.session() as session:
        create_bank(session, "known", trust="unverified")
        add_entries(
            session,
            "known",
            [
                NewEntry(
                    "pdq",
                    record.signals["pdq"].value,
                    classification=None if label == "none" else label,
                )
                for label, (_, record) in records.items()
            ],
        )
        for name, roles in (
            ("rita", ["reviewer"]),
            ("rob", ["reviewer"]),
            ("ada", ["admin"]),
        ):
            create_user(session, name, PASSWORD, roles)
    matcher = BankMatcher.from_database(database, cache_dir=settings.index_cache_dir)
    store = media_store(settings)
    uploads = [
        (records["B2"][0], "acct-b"),
        (records["A1"][0], "acct-a"),
        (records["none"][0], "acct-n"),
        (copy, "acct-c"),
    ]
    for path, account in uploads:
        record = hash_upload(path, path.name, limits, options)
        (outcome,) = matcher.match([record])
        assert outcome.matches, f"{path.name} should match its banked picture"
        record_upload(
            database,
            record,
            outcome,
            uploader=Uploader(account_id=account, screen_name=f"{account}-name"),
            media=(store, path),
        )
    with database.session() as session:
        tasks = {}
        for task in session.scalars(select(ReviewTask)):
            tasks[{4: "A1", 1: "B2", 0: "none"}[task.severity]] = task.id
    database.dispose()
    return settings, tasks


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    settings, tasks = _build(tmp_path / "home")
    database = open_database(settings)
    try:
        with serving(create_app(settings, background=False), name="console") as url:
            yield World(url, settings, database, tasks)
    finally:
        database.dispose()


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def sign_in(page: Page, world: World, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{world.url}/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.keyboard.press("Enter")
    if password == PASSWORD:
        page.wait_for_url(f"{world.url}/console/queue")


def screenshot(page: Page, name: str, tmp_path: Path) -> Path:
    """Save a screenshot under the test's folder and, when asked, under the docs."""
    target = tmp_path / name
    page.screenshot(path=str(target), full_page=True)
    folder = os.environ.get("VIGIL_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(target, Path(folder) / name)
    return target


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)


def sharpness(rgb: np.ndarray) -> float:
    """Variance of a Laplacian: how much fine detail a picture shows."""
    grey = rgb.mean(axis=2)
    laplacian = (
        -4 * grey[1:-1, 1:-1] + grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:]
    )
    return float(laplacian.var())


# --- Tests --------------------------------------------------------------------------------


def test_sign_in_refuses_a_wrong_password_then_opens_the_queue(page: Page, world: World) -> None:
    sign_in(page, world, "rita", "not the password at all")
    expect(page.locator(".notice--error")).to_contain_text("not right")
    sign_in(page, world, "rita")
    expect(page).to_have_url(f"{world.url}/console/queue")
    expect(page.locator("h1")).to_have_text("Review queue")


def test_queue_is_ordered_by_severity_with_counts(page: Page, world: World) -> None:
    page.clock.install()
    sign_in(page, world, "rita")
    rows = page.locator("tbody tr[data-task]")
    expect(rows).to_have_count(3)
    order = [int(rows.nth(i).get_attribute("data-task") or 0) for i in range(3)]
    assert order == [world.tasks["A1"], world.tasks["B2"], world.tasks["none"]]
    main = page.locator('.queue-count[data-queue="main"]')
    expect(main).to_contain_text("3 open")
    expect(main).to_contain_text("oldest")
    # The counts refresh in place (htmx, every 30 s): an escalation arriving now shows up.
    with world.database.session() as session:
        content = session.get(Content, _any_content(world))
        assert content is not None
        review.open_flag(
            session, content, review.Flag("escalation", imminent_danger=True, reason="now")
        )
    escalated = page.locator('.queue-count[data-queue="escalated"]')
    expect(escalated).to_contain_text("0 open")
    page.clock.run_for(31_000)
    expect(escalated).to_contain_text("1 open")


def test_media_is_blurred_and_greyscale_until_held_and_a_hold_records_a_reveal(
    page: Page, world: World, tmp_path: Path
) -> None:
    sign_in(page, world, "rita")
    page.click("#start-reviewing")
    expect(page).to_have_url(f"{world.url}/console/tasks/{world.tasks['A1']}")
    image = page.locator(".item").first.locator("img.item__image")
    expect(image).to_have_attribute("src", _ends_with("/preview"))
    item_id = int(page.locator(".item").first.get_attribute("data-item") or 0)
    viewed = page.locator(f'input[data-viewed="{item_id}"]')
    expect(viewed).to_be_disabled()
    expect(viewed).not_to_be_checked()
    screenshot(page, "review-screen.png", tmp_path)
    assert world.db_scalar(select(func.count()).select_from(ReviewReveal)) == 0

    button = page.locator(f'.item[data-item="{item_id}"] [data-reveal="full"]')
    button.hover()
    page.mouse.down()
    expect(image).to_have_class(_contains("revealed"))
    assert (image.get_attribute("src") or "").startswith("blob:")
    screenshot(page, "review-screen-revealed.png", tmp_path)
    page.mouse.up()
    expect(image).to_have_attribute("src", _ends_with("/preview"))
    expect(viewed).to_be_enabled()
    expect(viewed).to_be_checked()
    _eventually(
        lambda: (
            world.db_scalar(
                select(func.count())
                .select_from(ReviewReveal)
                .where(ReviewReveal.item_id == item_id, ReviewReveal.scope == "full")
                .where(ReviewReveal.ended.is_not(None))
            )
            == 1
        )
    )

    # What the page showed blurred really is blurred and grey; the reveal is neither.
    preview = pixels(page.request.get(f"{world.url}/console/media/{item_id}/preview").body())
    clear = pixels(
        page.request.get(f"{world.url}/console/media/{item_id}/reveal?scope=full").body()
    )
    assert np.abs(preview[..., 0] - preview[..., 1]).max() <= 2  # greyscale
    assert np.abs(clear[..., 0] - clear[..., 1]).max() <= 2  # greyscale is the default
    assert sharpness(preview) < sharpness(clear) / 4


def test_viewed_flag_follows_real_reveals_and_confirm_records_it(page: Page, world: World) -> None:
    sign_in(page, world, "rita")
    page.goto(f"{world.url}/console/queue")
    page.click("#start-reviewing")
    items = page.locator(".item")
    expect(items).to_have_count(2)  # the A1 picture and its copy, one task
    first, second = (int(items.nth(i).get_attribute("data-item") or 0) for i in range(2))
    items.nth(0).locator('[data-reveal="full"]').hover()
    page.mouse.down()
    expect(items.nth(0).locator("img.item__image")).to_have_class(_contains("revealed"))
    page.mouse.up()
    expect(page.locator(f'input[data-viewed="{second}"]')).to_be_disabled()
    # A forged claim that the unrevealed file was viewed is refused by the server.
    forged = page.request.post(
        f"{world.url}/console/tasks/{world.tasks['A1']}/decide",
        form={
            "csrf_token": _csrf(page),
            "action": "confirm",
            "industry": "A1",
            "viewed": str(second),
        },
        max_redirects=0,
    )
    assert forged.status == 409
    assert "never shown in full" in forged.text()
    page.check('input[name="industry"][value="A2"]')
    page.check('input[name="annotations"][value="viral"]')
    page.click('button[value="confirm"]')
    expect(page.locator(".notice")).to_contain_text(f"Task {world.tasks['A1']} decided")
    with world.database.session() as session:
        task = session.get(ReviewTask, world.tasks["A1"])
        assert task is not None and task.verdict == "confirmed"
        viewed = {item.id: item.viewed for item in task.items}
        assert viewed == {first: True, second: False}
        confirmed = session.scalar(select(Bank).where(Bank.name == "platform-confirmed"))
        assert confirmed is not None
        assert session.scalar(
            select(func.count()).select_from(BankEntry).where(BankEntry.bank_id == confirmed.id)
        )


def test_false_positive_feeds_the_suppression_bank(page: Page, world: World) -> None:
    sign_in(page, world, "rita")
    page.goto(f"{world.url}/console/tasks/{world.tasks['none']}")
    page.click("form[action$='/claim'] button")
    page.click('button[value="false_positive"]')
    expect(page.locator(".notice")).to_contain_text("decided")
    with world.database.session() as session:
        task = session.get(ReviewTask, world.tasks["none"])
        assert task is not None and task.verdict == "false_positive"
        suppression = session.scalar(select(Bank).where(Bank.name == "platform-false-positives"))
        assert suppression is not None and suppression.kind == "suppress"
        assert (
            session.scalar(
                select(func.max(BankEntry.false_positive_count)).where(
                    BankEntry.bank_id != suppression.id
                )
            )
            == 1
        )


def test_a_second_reviewer_cannot_claim_a_leased_task(
    browser: Any, page: Page, world: World
) -> None:
    sign_in(page, world, "rita")
    page.click("#start-reviewing")
    held = world.tasks["A1"]
    expect(page).to_have_url(f"{world.url}/console/tasks/{held}")

    other = browser.new_context().new_page()
    sign_in(other, world, "rob")
    listed = [
        other.locator("tbody tr[data-task]").nth(i).get_attribute("data-task")
        for i in range(other.locator("tbody tr[data-task]").count())
    ]
    assert str(held) not in listed
    other.goto(f"{world.url}/console/tasks/{held}")
    expect(other.locator("main")).to_contain_text("You do not hold this task")
    other.click("form[action$='/claim'] button")
    expect(other.locator("main")).to_contain_text("held by another reviewer")
    assert other.locator("img.item__image").count() == 0
    media = other.request.get(f"{world.url}/console/media/{_any_item(world, held)}/preview")
    assert media.status == 403
    other.context.close()


def test_a_decision_by_keyboard_alone(page: Page, world: World) -> None:
    sign_in(page, world, "rita")
    page.keyboard.press("n")
    expect(page).to_have_url(f"{world.url}/console/tasks/{world.tasks['A1']}")
    page.wait_for_load_state()  # the page's script listens for keys once loaded
    image = page.locator(".item--selected img.item__image")
    page.keyboard.down(" ")
    expect(image).to_have_class(_contains("revealed"))
    page.keyboard.up(" ")
    expect(image).not_to_have_class(_contains("revealed"))
    page.keyboard.press("j")  # the second file: reveal it too
    page.keyboard.down(" ")
    expect(page.locator(".item--selected img.item__image")).to_have_class(_contains("revealed"))
    page.keyboard.up(" ")
    page.keyboard.press("3")  # B1
    page.keyboard.press("c")
    expect(page).to_have_url(_contains("/console/queue?done="))
    with world.database.session() as session:
        task = session.get(ReviewTask, world.tasks["A1"])
        assert task is not None and task.verdict == "confirmed"
        assert all(item.viewed for item in task.items)
        assert (
            session.scalar(
                select(func.count())
                .select_from(ReviewReveal)
                .join(ReviewItem, ReviewItem.id == ReviewReveal.item_id)
                .where(ReviewItem.task_id == task.id, ReviewReveal.scope == "full")
            )
            == 2
        )


def test_escalation_needs_a_reason_and_moves_the_task_up(page: Page, world: World) -> None:
    sign_in(page, world, "rita")
    page.goto(f"{world.url}/console/tasks/{world.tasks['B2']}")
    page.click("form[action$='/claim'] button")
    expect(page.locator('.review[data-holding="yes"]')).to_be_attached()
    page.wait_for_load_state()
    page.keyboard.press("e")
    expect(page.locator("#reason")).to_be_focused()
    page.keyboard.type("The uploader says the child is with them tonight.")
    page.keyboard.press("Escape")
    page.keyboard.press("e")
    expect(page.locator(".notice--danger")).to_contain_text("with them tonight")
    page.goto(f"{world.url}/console/queue")
    first = page.locator("tbody tr[data-task]").first
    expect(first).to_have_attribute("data-task", str(world.tasks["B2"]))
    expect(page.locator('.queue-count[data-queue="escalated"]')).to_contain_text("1 open")


def test_second_opinion_goes_to_a_lead_and_the_disagreement_shows(
    browser: Any, page: Page, world: World
) -> None:
    sign_in(page, world, "rita")
    page.goto(f"{world.url}/console/tasks/{world.tasks['B2']}")
    page.click("form[action$='/claim'] button")
    page.check('input[name="industry"][value="B2"]')
    page.select_option("#proposal", "confirmed")
    page.fill("#reason", "Is this B2 or worse?")
    page.click('button[value="second_opinion"]')
    expect(page.locator(".notice")).to_contain_text("decided")  # it left rita's hands
    page.goto(f"{world.url}/console/queue")
    expect(page.locator(f'tr[data-task="{world.tasks["B2"]}"]')).to_have_count(0)  # not hers

    lead = browser.new_context().new_page()
    sign_in(lead, world, "ada")
    expect(lead.locator('.queue-count[data-queue="second_opinion"]')).to_contain_text("1 open")
    expect(lead.locator("tbody tr[data-task]").first).to_have_attribute(
        "data-task", str(world.tasks["B2"])
    )
    lead.click("#start-reviewing")
    expect(lead.locator("main")).to_contain_text("Second opinion asked by rita")
    lead.check('input[name="industry"][value="A2"]')
    lead.click('button[value="confirm"]')
    lead.goto(f"{world.url}/console/history")
    row = lead.locator(f'tr[data-task="{world.tasks["B2"]}"]').first
    expect(row).to_contain_text("disagreement")
    lead.context.close()


def test_break_prompt_and_exposure_timer(page: Page, world: World) -> None:
    sign_in(page, world, "ada")
    page.goto(f"{world.url}/console/admin")
    page.fill("#break_minutes", "1")
    page.click("form[action$='/wellbeing'] button")
    page.clock.install()
    page.goto(f"{world.url}/console/queue")
    page.click("#start-reviewing")
    page.wait_for_url(_contains("/console/tasks/"))
    page.wait_for_load_state()
    expect(page.locator("#break-dialog")).not_to_be_visible()
    page.clock.run_for(65_000)
    expect(page.locator("#break-dialog")).to_be_visible()
    expect(page.locator("#exposure-time")).to_have_text("1 min")
    page.click('[data-break="later"]')
    expect(page.locator("#break-dialog")).not_to_be_visible()
    # Heartbeats every 30 s of screen time reach the reviewer's own exposure record.
    _eventually(
        lambda: (world.db_scalar(select(func.sum(ReviewExposure.screen_seconds))) or 0) >= 60
    )
    page.goto(f"{world.url}/console/settings")
    expect(page.locator("#exposure-table")).to_contain_text("1 min")


def test_admin_sets_a_bank_policy_only_for_verified_banks(
    page: Page, world: World, tmp_path: Path
) -> None:
    sign_in(page, world, "ada")
    page.goto(f"{world.url}/console/admin")
    option = page.locator('tr[data-bank="known"] option[value="auto_confirm_exact"]')
    expect(option).to_be_disabled()  # "known" is unverified
    screenshot(page, "admin-settings.png", tmp_path)
    page.goto(f"{world.url}/console/queue")
    screenshot(page, "queue.png", tmp_path)


# --- Helpers ------------------------------------------------------------------------------


def _csrf(page: Page) -> str:
    return page.locator("input[name=csrf_token]").first.input_value()


def _any_content(world: World) -> int:
    return int(world.db_scalar(select(func.min(ReviewItem.content_id))))


def _any_item(world: World, task_id: int) -> int:
    return int(
        world.db_scalar(select(func.min(ReviewItem.id)).where(ReviewItem.task_id == task_id))
    )


def _eventually(check: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _ends_with(suffix: str) -> Any:
    import re

    return re.compile(re.escape(suffix) + "$")


def _contains(text: str) -> Any:
    import re

    return re.compile(re.escape(text))
