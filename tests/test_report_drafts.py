"""Report drafts from confirmed review decisions (`vigil.reporting.drafts`): one draft per
reported account within the bundling window, never merging files of unknown uploaders,
viral copies across accounts, the reviewer's annotations, re-confirmation of what a bank
policy confirmed, false positives withdrawn, and reports approved by policy. On SQLite and
PostgreSQL.

Every hash is random hex (`review_helpers`); no picture is involved."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from review_helpers import (
    LEASE,
    T0,
    found,
    make_bank,
    make_entry,
    make_team,
    near,
    new_content,
    outcome,
    upload,
)
from vigil.config import get_settings
from vigil.pipeline.recording import record_matches
from vigil.reporting import service
from vigil.reporting.drafts import DraftRules, bundling_summary
from vigil.review import (
    Reviewer,
    auto_confirm,
    claim,
    confirm,
    false_positive,
    record_reveal,
)
from vigil.store import Bank, BankEntry, Content, Report, ReviewItem, ReviewTask, UploadEvent

HOUR = timedelta(hours=1)
RULES = DraftRules(bundle_window=timedelta(hours=24), viral_accounts=3, viral_window=7 * 24 * HOUR)


pytestmark = pytest.mark.usefixtures("cheap_passwords")


@pytest.fixture(autouse=True)
def process_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """The process's settings (what a bank policy's confirmation drafts under): defaults."""
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    for name in (
        "VIGIL_REPORT_AUTO_APPROVE_VERIFIED",
        "VIGIL_REPORT_BUNDLE_HOURS",
        "VIGIL_REPORT_VIRAL_ACCOUNTS",
        "VIGIL_REPORT_VIRAL_DAYS",
        "VIGIL_CYBERTIP_ENVIRONMENT",
    ):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def matched(
    session: Session,
    bank: Bank,
    entry: BankEntry,
    account: str | None,
    *,
    content: Content | None = None,
    distance: int = 3,
) -> ReviewItem:
    """An upload by `account` that matched `entry` (a copy `distance` bits away, unless it
    is `content` again): the review item it became."""
    if entry.signal_type != "pdq":
        distance = 0
    if content is None:
        if entry.signal_type == "pdq":
            content = new_content(session, pdq=near(entry.value, distance))
        else:
            content = new_content(session, md5=entry.value)
    event = upload(session, content, account)
    record_matches(session, content, outcome(found(entry, bank, distance=distance)), event)
    session.flush()
    item = session.scalars(select(ReviewItem).where(ReviewItem.upload_event_id == event.id)).one()
    return item


def task_of(session: Session, item: ReviewItem) -> ReviewTask:
    task = session.get(ReviewTask, item.task_id)
    assert task is not None
    return task


def decide(
    session: Session,
    item: ReviewItem,
    reviewer: Reviewer,
    now: datetime,
    *,
    industry: str = "A2",
    annotations: tuple[str, ...] = (),
    rules: DraftRules = RULES,
) -> ReviewTask:
    """Claim the item's task and confirm it at `now`."""
    task = task_of(session, item)
    claim(session, task.id, reviewer, lease=LEASE, now=now)
    return confirm(
        session,
        task.id,
        reviewer,
        industry=industry,
        annotations=annotations,
        rules=rules,
        now=now,
    )


def reports(session: Session) -> list[Report]:
    session.flush()
    return list(session.scalars(select(Report).order_by(Report.id)))


def items(report: Report) -> list[int]:
    return sorted(f.item_id or 0 for f in report.files)


def uploaders(session: Session, report: Report) -> set[str | None]:
    """The accounts that uploaded the report's files."""
    events = [f.upload_event_id for f in report.files]
    return set(
        session.scalars(select(UploadEvent.account_id).where(UploadEvent.id.in_(events))).all()
    )


# --- bundling -----------------------------------------------------------------------------


def test_one_account_one_draft_within_the_bundling_window(session: Session) -> None:
    team = make_team(session)
    bank = make_bank(session, "known")
    e1, e2, e3, e4 = (make_entry(session, bank, "A2", "pdq") for _ in range(4))
    first = matched(session, bank, e1, "acct-1")
    second = matched(session, bank, e2, "acct-1")
    assert first.task_id != second.task_id  # different bank entries: two tasks

    decide(session, first, team.a, T0)
    decide(session, second, team.b, T0 + HOUR, industry="A1")
    [report] = reports(session)
    assert (report.account_key, report.status, report.industry) == ("acct-1", "draft", "A1")
    assert items(report) == sorted([first.id, second.id])
    assert report.task_ids == [first.task_id, second.task_id]
    assert (report.bundled_drafts, report.auto_confirmed, report.viral) == (1, False, False)
    assert bundling_summary(session) == {
        "reports": 1, "reports_avoided_by_bundling": 1, "viral_reports": 0,
    }  # fmt: skip

    # Later than the window after the draft opened: a report of its own.
    third = matched(session, bank, e3, "acct-1")
    decide(session, third, team.a, T0 + RULES.bundle_window + HOUR)
    old, new = reports(session)
    assert old.id == report.id and items(old) == sorted([first.id, second.id])
    assert (new.account_key, items(new), new.task_ids) == ("acct-1", [third.id], [third.task_id])
    assert new.bundled_drafts == 0
    assert bundling_summary(session)["reports_avoided_by_bundling"] == 1

    # An approved report takes nothing more in: the next confirmation opens a draft.
    lead = service.Approver(team.lead.user_id, team.lead.roles)
    service.approve(session, new.id, lead, environment="test", now=T0 + 25 * HOUR)
    fourth = matched(session, bank, e4, "acct-1")
    decide(session, fourth, team.b, T0 + 26 * HOUR)
    *_, approved, newest = reports(session)
    assert (approved.id, approved.status, items(approved)) == (new.id, "approved", [third.id])
    assert (newest.status, items(newest), newest.bundled_drafts) == ("draft", [fourth.id], 0)


def test_files_of_unknown_uploaders_are_never_merged_across_tasks(session: Session) -> None:
    team = make_team(session)
    bank = make_bank(session, "known")
    e1, e2 = (make_entry(session, bank, "B1", "pdq") for _ in range(2))
    # One task with two anonymous uploads (a copy and the file scanned again by upload).
    a = matched(session, bank, e1, None)
    b = matched(session, bank, e1, None, distance=6)
    c = matched(session, bank, e2, None)
    assert a.task_id == b.task_id != c.task_id
    decide(session, a, team.a, T0)
    decide(session, c, team.b, T0 + HOUR)
    first, second = reports(session)
    assert (first.account_key, items(first), first.task_ids) == ("", [a.id, b.id], [a.task_id])
    assert (second.account_key, items(second), second.task_ids) == ("", [c.id], [c.task_id])
    assert first.bundled_drafts == second.bundled_drafts == 0
    assert bundling_summary(session)["reports_avoided_by_bundling"] == 0


def test_a_task_with_three_uploaders_drafts_three_reports(session: Session) -> None:
    team = make_team(session)
    bank = make_bank(session, "known")
    entry = make_entry(session, bank, "B2", "pdq")
    x = new_content(session, pdq=near(entry.value, 2))
    ones = [
        matched(session, bank, entry, "acct-1", content=x),
        matched(session, bank, entry, "acct-2", content=x),
        matched(session, bank, entry, "acct-3", content=x),
        matched(session, bank, entry, "acct-1", distance=7),  # a copy, by the first again
    ]
    assert len({i.task_id for i in ones}) == 1
    decide(session, ones[0], team.a, T0, industry="B2", rules=DraftRules(viral_accounts=10))
    drafts = reports(session)
    assert [r.account_key for r in drafts] == ["acct-1", "acct-2", "acct-3"]
    assert [items(r) for r in drafts] == [
        sorted([ones[0].id, ones[3].id]), [ones[1].id], [ones[2].id],
    ]  # fmt: skip
    for report in drafts:
        assert uploaders(session, report) == {report.account_key}
        assert report.task_ids == [ones[0].task_id]
        assert (report.bundled_drafts, report.industry, report.viral) == (0, "B2", False)
    assert bundling_summary(session) == {
        "reports": 3, "reports_avoided_by_bundling": 0, "viral_reports": 0,
    }  # fmt: skip


# --- viral copies and annotations ---------------------------------------------------------


def test_copies_reported_for_enough_accounts_are_viral(session: Session) -> None:
    team = make_team(session)
    lead = service.Approver(team.lead.user_id, team.lead.roles)
    bank = make_bank(session, "known")
    meme, other = make_entry(session, bank, "B1", "pdq"), make_entry(session, bank, "B1", "pdq")

    # acct-3 already has a draft, about something else.
    unrelated = matched(session, bank, other, "acct-3")
    decide(session, unrelated, team.a, T0)

    # Copies for two accounts: below the threshold of three, nothing is viral.
    x = matched(session, bank, meme, "acct-1")
    y = matched(session, bank, meme, "acct-2", distance=6)
    assert x.task_id == y.task_id
    decide(session, x, team.b, T0 + HOUR, industry="B1", annotations=("potentialMeme",))
    by_account = {r.account_key: r for r in reports(session)}
    assert set(by_account) == {"acct-1", "acct-2", "acct-3"}
    assert not any(r.viral for r in by_account.values())
    for account in ("acct-1", "acct-2"):  # the reviewer's choice is on the files
        assert [f.annotations for f in by_account[account].files] == [["potentialMeme"]]
    assert bundling_summary(session)["viral_reports"] == 0
    service.approve(session, by_account["acct-1"].id, lead, environment="test", now=T0 + HOUR)

    # A copy for a third account: every draft holding a copy turns viral, and the copies'
    # files say so; the approved report stays as it was approved.
    z = matched(session, bank, meme, "acct-3", distance=9)
    assert z.task_id != x.task_id  # the first task was decided
    decide(session, z, team.a, T0 + 2 * HOUR, industry="B1")
    after = {r.account_key: r for r in reports(session)}
    assert len(after) == 3  # acct-3's copy joined acct-3's draft
    approved, second, third = after["acct-1"], after["acct-2"], after["acct-3"]
    assert (approved.status, approved.viral) == ("approved", False)
    assert [f.annotations for f in approved.files] == [["potentialMeme"]]
    assert second.viral and [f.annotations for f in second.files] == [["potentialMeme", "viral"]]
    assert third.viral and third.bundled_drafts == 1
    annotations = {f.item_id: f.annotations for f in third.files}
    assert annotations == {unrelated.id: [], z.id: ["viral"]}  # only the copy is viral
    assert bundling_summary(session)["viral_reports"] == 2


def test_copies_outside_the_viral_window_do_not_count(session: Session) -> None:
    team = make_team(session)
    bank = make_bank(session, "known")
    meme = make_entry(session, bank, "B1", "pdq")
    first = matched(session, bank, meme, "acct-1")
    matched(session, bank, meme, "acct-2", distance=5)
    decide(session, first, team.a, T0)
    late = matched(session, bank, meme, "acct-3", distance=8)
    decide(session, late, team.b, T0 + RULES.viral_window + HOUR)
    assert [(r.account_key, r.viral) for r in reports(session)] == [
        ("acct-1", False), ("acct-2", False), ("acct-3", False),
    ]  # fmt: skip


def test_a_reviewer_may_mark_a_potential_meme(session: Session) -> None:
    team = make_team(session)
    bank = make_bank(session, "known")
    entry = make_entry(session, bank, "B2", "pdq")
    item = matched(session, bank, entry, "acct-1")
    decide(session, item, team.a, T0, industry="B2", annotations=("potentialMeme", "infant"))
    [report] = reports(session)
    [file] = report.files
    assert set(file.annotations) == {"potentialMeme", "infant"}
    assert (file.industry, file.viewed, report.viral) == ("B2", False, False)


# --- bank policies: re-confirmation, false positives, approval ----------------------------


def policy_bank(session: Session) -> Bank:
    return make_bank(session, "hotline", trust="verified", review_policy="auto_confirm_exact")


def test_a_person_confirming_what_a_policy_confirmed_updates_the_same_draft(
    session: Session,
) -> None:
    team = make_team(session)
    bank = policy_bank(session)
    item = matched(session, bank, make_entry(session, bank, "A2", "md5"), "acct-9")
    auto = task_of(session, item)
    assert (auto.status, auto.verdict, auto.decided_by) == ("decided", "confirmed", None)
    [draft] = reports(session)
    assert (draft.status, draft.auto_confirmed, draft.industry) == ("draft", True, "A2")
    assert [(f.viewed, f.annotations) for f in draft.files] == [(False, [])]

    claim(session, auto.id, team.a, lease=LEASE, now=T0)
    record_reveal(session, auto.id, item.id, team.a, "full", now=T0)
    confirm(
        session, auto.id, team.a, industry="A1", annotations=["potentialMeme"],
        viewed_items=[item.id], rules=RULES, now=T0 + LEASE / 2,
    )  # fmt: skip
    [same] = reports(session)
    assert same.id == draft.id
    assert (same.status, same.auto_confirmed, same.industry) == ("draft", False, "A1")
    assert (same.task_ids, same.bundled_drafts) == ([auto.id], 0)
    assert [(f.item_id, f.viewed, f.annotations) for f in same.files] == [
        (item.id, True, ["potentialMeme"])
    ]
    assert bundling_summary(session)["reports_avoided_by_bundling"] == 0


def test_a_false_positive_withdraws_the_files_from_their_drafts(session: Session) -> None:
    team = make_team(session)
    bank = policy_bank(session)
    # A report with only the overruled task's file: deleted.
    alone = matched(session, bank, make_entry(session, bank, "B2", "md5"), "acct-8")
    assert len(reports(session)) == 1
    claim(session, alone.task_id, team.a, lease=LEASE, now=T0)
    false_positive(session, alone.task_id, team.a, now=T0)
    assert reports(session) == []

    # A report bundling two policy tasks: keeps the other's file.
    kept = matched(session, bank, make_entry(session, bank, "A2", "md5"), "acct-7")
    wrong = matched(session, bank, make_entry(session, bank, "A1", "md5"), "acct-7")
    assert kept.task_id != wrong.task_id
    [report] = reports(session)
    assert (items(report), report.industry, report.bundled_drafts) == (
        sorted([kept.id, wrong.id]), "A1", 1,
    )  # fmt: skip
    claim(session, wrong.task_id, team.b, lease=LEASE, now=T0)
    false_positive(session, wrong.task_id, team.b, now=T0)
    [left] = reports(session)
    assert left.id == report.id
    assert (items(left), left.task_ids, left.industry) == ([kept.id], [kept.task_id], "A2")
    # Nothing was bundled in any more: no report avoided.
    assert left.bundled_drafts == 0
    assert bundling_summary(session)["reports_avoided_by_bundling"] == 0


def test_policy_only_reports_may_be_approved_by_policy(session: Session) -> None:
    team = make_team(session)
    rules = DraftRules(auto_approve_verified=True, environment="test")
    bank = make_bank(session, "known")  # reviewed by people: the tasks stay open
    policy = policy_bank(session)

    # Confirmed by a bank policy alone: approved at once, for the rules' service.
    item = matched(session, bank, make_entry(session, bank, "A2", "md5"), "acct-5")
    auto_confirm(session, task_of(session, item), ["A2"], rules=rules, now=T0)
    [report] = reports(session)
    assert (report.status, report.auto_approved, report.auto_confirmed) == (
        "approved", True, True,
    )  # fmt: skip
    assert (report.environment, report.approved_by, report.approved_at) == ("test", None, T0)

    # Confirmed by a person: it waits for a legal user, whatever the rules allow.
    human = matched(session, bank, make_entry(session, bank, "B1", "md5"), "acct-6")
    decide(session, human, team.a, T0, industry="B1", rules=rules)
    _, drafted = reports(session)
    assert (drafted.account_key, drafted.status, drafted.auto_approved) == (
        "acct-6",
        "draft",
        False,
    )
    assert (drafted.approved_by, drafted.environment, drafted.auto_confirmed) == (None, None, False)

    # A policy's file joining a person's draft does not make it the policy's either.
    joining = matched(session, bank, make_entry(session, bank, "A2", "md5"), "acct-6")
    auto_confirm(session, task_of(session, joining), ["A2"], rules=rules, now=T0 + HOUR)
    *_, bundled = reports(session)
    assert bundled.id == drafted.id and items(bundled) == sorted([human.id, joining.id])
    assert (bundled.status, bundled.auto_approved, bundled.auto_confirmed) == (
        "draft", False, False,
    )  # fmt: skip

    # The pipeline's own policy confirmations follow the settings.
    assert DraftRules.from_settings(get_settings()).auto_approve_verified is False
    pipeline = matched(session, policy, make_entry(session, policy, "A2", "md5"), "acct-10")
    assert task_of(session, pipeline).verdict == "confirmed"
    assert reports(session)[-1].status == "draft"


def test_the_pipeline_approves_by_policy_when_the_settings_allow(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIGIL_REPORT_AUTO_APPROVE_VERIFIED", "true")
    monkeypatch.setenv("VIGIL_REPORT_VIRAL_ACCOUNTS", "3")
    monkeypatch.setenv("VIGIL_CYBERTIP_ENVIRONMENT", "production")
    get_settings.cache_clear()
    bank = policy_bank(session)
    entry = make_entry(session, bank, "A1", "md5")
    x = new_content(session, md5=entry.value)
    for account in ("acct-11", "acct-12", "acct-13"):  # one known file, shared around
        item = matched(session, bank, entry, account, content=x)
        assert task_of(session, item).verdict == "confirmed"
    first, second, third = reports(session)
    for report in (first, second, third):
        assert (report.status, report.auto_approved, report.environment, report.approved_by) == (
            "approved", True, "production", None,
        )  # fmt: skip
    # Approved at once, the first two were not viral yet; the third report of the same
    # file is, and says so in its file when it goes.
    assert [(r.viral, r.files[0].annotations) for r in (first, second, third)] == [
        (False, []), (False, []), (True, ["viral"]),
    ]  # fmt: skip
