"""The review room's service layer (`vigil.review`): tasks opened from matches and flags and
how copies group, the order work is done in, leases (also two threads claiming at once),
reveals and the "viewed by the provider" flag, decisions and what they feed (the platform's
banks, report drafts, the matcher's suppression), bank policies, escalations, second
opinions and wellbeing. On SQLite and PostgreSQL.

Every hash is random hex and every picture is synthetic (`vigil.demo`)."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from review_helpers import (
    LEASE,
    T0,
    all_tasks,
    drafts_of,
    found,
    items_of,
    make_bank,
    make_entry,
    make_team,
    near,
    new_content,
    outcome,
    person,
    rand_hex,
    upload,
)
from vigil.banks import BankNotFound, create_bank, find_entry, get_bank, get_entry, update_bank
from vigil.config import MediaLimits, Settings
from vigil.demo import synthetic_image
from vigil.pipeline.hashing import HashRecord
from vigil.pipeline.matching import BankMatcher, MatchOutcome
from vigil.pipeline.online import Uploader, hash_upload, online_options, record_upload
from vigil.pipeline.recording import record_content, record_matches
from vigil.review import (
    FeedbackBanks,
    Flag,
    LeaseLost,
    QueueCount,
    Reviewer,
    ReviewError,
    TaskNotFound,
    Wellbeing,
    claim,
    claim_next,
    confirm,
    count_screen_time,
    effective_settings,
    end_reveal,
    escalate,
    exposure_summary,
    false_positive,
    full_reveals,
    get_task,
    list_queue,
    open_flag,
    organisation_defaults,
    queue_counts,
    queue_matches,
    record_reveal,
    related_tasks,
    request_second_opinion,
    require_lease,
    task_history,
    update_settings,
    user_overrides,
)
from vigil.signals import Signal
from vigil.store import (
    Database,
    Match,
    Report,
    ReviewDecision,
    ReviewTask,
    UploadEvent,
)
from vigil.vault.media import media_store

pytestmark = pytest.mark.usefixtures("cheap_passwords")


def ids(tasks: list[ReviewTask]) -> list[int]:
    return [task.id for task in tasks]


def kinds(session: Session, task: ReviewTask) -> list[tuple[str, int | None]]:
    return [(d.kind, d.user_id) for d in task_history(session, task.id)]


# --- opening tasks ------------------------------------------------------------------------


def test_matches_open_tasks_and_copies_join_them(session: Session) -> None:
    team = make_team(session)
    bank = make_bank(session, "known")
    fp_bank = make_bank(session, "fps", kind="suppress")
    photo = make_entry(session, bank, "A2", "pdq")
    exact = make_entry(session, bank, "B2", "md5")

    # An upload that matches opens a task with one item.
    x = new_content(session, pdq=near(photo.value, 3))
    u1 = upload(session, x, "acct-1")
    record_matches(session, x, outcome(found(photo, bank, distance=3)), u1)
    [task] = all_tasks(session)
    assert (task.source, task.status, task.queue) == ("match", "open", "main")
    assert (task.account_id, task.severity, task.exact_verified) == ("acct-1", 3, False)
    assert (task.imminent_danger, task.verdict, task.lease_user_id) == (False, None, None)
    assert [(i.content_id, i.upload_event_id, i.viewed) for i in items_of(session, task)] == [
        (x.id, u1.id, False)
    ]

    # Another upload of the same file, and another file matching the same entry: copies.
    u2 = upload(session, x, "acct-2")
    record_matches(session, x, outcome(found(photo, bank, distance=3)), u2)
    y = new_content(session, pdq=near(photo.value, 6))
    u3 = upload(session, y, "acct-3")
    record_matches(session, y, outcome(found(photo, bank, distance=6)), u3)
    assert ids(all_tasks(session)) == [task.id]
    assert [(i.content_id, i.upload_event_id) for i in items_of(session, task)] == [
        (x.id, u1.id), (x.id, u2.id), (y.id, u3.id),
    ]  # fmt: skip
    assert task.account_id == "acct-1"  # the first uploader's

    # A re-scan (no upload event) of content already queued adds nothing; nor does the
    # same upload event recorded twice.
    record_matches(session, x, outcome(found(photo, bank, distance=3)))
    record_matches(session, x, outcome(found(photo, bank, distance=3)), u1)
    assert len(items_of(session, task)) == 3 and ids(all_tasks(session)) == [task.id]

    # A scan of content not yet queued opens a task; its re-scan does not; a later upload
    # of it is another incident and joins that task.
    w = new_content(session, md5=exact.value)
    record_matches(session, w, outcome(found(exact, bank)))
    scanned = all_tasks(session)[-1]
    assert scanned.id != task.id
    assert (scanned.severity, scanned.exact_verified, scanned.account_id) == (1, True, None)
    record_matches(session, w, outcome(found(exact, bank)))
    u4 = upload(session, w, "acct-4")
    record_matches(session, w, outcome(found(exact, bank)), u4)
    assert [(i.content_id, i.upload_event_id) for i in items_of(session, scanned)] == [
        (w.id, None), (w.id, u4.id),
    ]  # fmt: skip

    # Suppressed matches are recorded but open nothing.
    s = new_content(session, md5=exact.value)
    fp_entry = make_entry(session, fp_bank, None, "sha256", s.sha256)
    suppressed_only = MatchOutcome(
        matches=[], suppressed=[found(exact, bank)], suppressing=[found(fp_entry, fp_bank)]
    )
    record_matches(session, s, suppressed_only, upload(session, s, "acct-5"))
    assert ids(all_tasks(session)) == [task.id, scanned.id]
    rows = session.scalars(select(Match).where(Match.content_id == s.id)).all()
    assert sorted((m.bank_name, m.suppressed) for m in rows) == [("fps", False), ("known", True)]

    # A task someone holds is not joined: a new upload opens a task of its own...
    claim(session, task.id, team.a, lease=LEASE, now=T0)
    u5 = upload(session, x, "acct-6")
    record_matches(session, x, outcome(found(photo, bank, distance=3)), u5)
    newer = all_tasks(session)[-1]
    assert newer.id not in (task.id, scanned.id)
    assert [(i.content_id, i.upload_event_id) for i in items_of(session, newer)] == [(x.id, u5.id)]
    assert len(items_of(session, task)) == 3
    # ...and once its lease ran out, the oldest open task of the cluster is joined again.
    u6 = upload(session, y, "acct-7")
    expired = T0 + LEASE + timedelta(seconds=1)
    joined = queue_matches(
        session, y, [found(photo, bank, distance=6)], upload_event=u6, now=expired
    )
    assert joined is not None and joined.id == task.id
    assert [i.upload_event_id for i in items_of(session, task)][-1] == u6.id
    assert len(items_of(session, newer)) == 1

    # Related tasks: other open tasks of the same uploader.
    other = new_content(session, md5=rand_hex("md5"))
    lone = make_entry(session, bank, "B1", "md5", other.md5)
    record_matches(session, other, outcome(found(lone, bank)), upload(session, other, "acct-1"))
    assert ids(related_tasks(session, task)) == [all_tasks(session)[-1].id]
    assert related_tasks(session, scanned) == []


def test_a_copy_matching_any_entry_of_a_task_joins_it(session: Session) -> None:
    make_team(session)
    bank = make_bank(session, "known")
    first = make_entry(session, bank, "B1", "pdq")
    second = make_entry(session, bank, "B1", "pdq")
    other = make_entry(session, bank, "B1", "pdq")
    # X matched two entries (two near-identical banked pictures); Y matches only the second.
    x = new_content(session, pdq=near(first.value, 2))
    record_matches(
        session, x, outcome(found(first, bank, distance=2), found(second, bank, distance=9)),
        upload(session, x, "acct-1"),
    )  # fmt: skip
    y = new_content(session, pdq=near(second.value, 4))
    record_matches(session, y, outcome(found(second, bank, distance=4)), upload(session, y, "a2"))
    [task] = all_tasks(session)
    assert sorted(i.content_id for i in items_of(session, task)) == sorted([x.id, y.id])
    # A file matching an unrelated entry is a task of its own.
    z = new_content(session, pdq=near(other.value, 1))
    record_matches(session, z, outcome(found(other, bank, distance=1)), upload(session, z, "a3"))
    assert len(all_tasks(session)) == 2


def test_queue_order_and_counts(session: Session) -> None:
    team = make_team(session)
    verified = make_bank(session, "verified")
    loose = make_bank(session, "loose", trust="unverified")
    hour = timedelta(hours=1)

    def task(industry: str | None, signal_type: str, bank_hours: int, *, bank: str = "v") -> int:
        chosen = verified if bank == "v" else loose
        entry = make_entry(session, chosen, industry, signal_type)
        content = new_content(session)
        made = queue_matches(session, content, [found(entry, chosen)], now=T0 + bank_hours * hour)
        assert made is not None
        return made.id

    unclassified = task(None, "md5", -1)
    a2 = task("A2", "md5", 0)
    a1_exact = task("A1", "md5", 1)
    a1_exact_later = task("A1", "md5", 2)
    b1_photo = task("B1", "pdq", 3)
    b2 = task("B2", "md5", 4)
    a1_photo = task("A1", "pdq", 5)
    a1_unverified = task("A1", "md5", 6, bank="l")
    escalated = open_flag(
        session,
        new_content(session),
        Flag(source="escalation", reporter="moderator-9", imminent_danger=True, reason="live"),
        now=T0 + 10 * hour,
    )
    assert (escalated.queue, escalated.imminent_danger, escalated.escalation_reason) == (
        "escalated", True, "live",
    )  # fmt: skip
    assert escalated.flag_details == {"reporter": "moderator-9", "reason": "live"}

    now = T0 + 12 * hour
    main = [
        a1_photo, a1_unverified, a1_exact, a1_exact_later, a2, b1_photo, b2, unclassified,
    ]  # fmt: skip
    assert ids(list_queue(session, team.a, now=now)) == [escalated.id, *main]
    assert ids(list_queue(session, team.a, queue="main", now=now)) == main
    assert ids(list_queue(session, team.a, queue="escalated", now=now)) == [escalated.id]
    assert ids(list_queue(session, team.a, limit=3, now=now)) == [escalated.id, *main[:2]]

    assert queue_counts(session) == [
        QueueCount("escalated", 1, T0 + 10 * hour),
        QueueCount("second_opinion", 0, None),
        QueueCount("main", 8, T0 - hour),
    ]
    assert queue_counts(session)[2].age(now) == 13 * hour

    # A held task leaves everyone else's list (not its holder's); a decided one leaves all.
    claim(session, a1_photo, team.b, lease=LEASE, now=now)
    assert a1_photo not in ids(list_queue(session, team.a, now=now))
    assert a1_photo in ids(list_queue(session, team.b, now=now))
    claim(session, a2, team.a, lease=LEASE, now=now)
    confirm(session, a2, team.a, industry="A2", now=now)
    assert a2 not in ids(list_queue(session, team.a, now=now))
    assert queue_counts(session)[2].open == 7


def test_open_flag_refuses_unknown_sources_and_unexplained_escalations(session: Session) -> None:
    content = new_content(session)
    with pytest.raises(ReviewError, match="unknown flag source"):
        open_flag(session, content, Flag(source="rumour"))
    with pytest.raises(ReviewError, match="reason"):
        open_flag(session, content, Flag(source="escalation", imminent_danger=True))
    with pytest.raises(ReviewError, match="at most 3000"):
        open_flag(
            session,
            content,
            Flag(source="escalation", imminent_danger=True, reason="x" * 3001),
        )
    assert all_tasks(session) == []


# --- leases -------------------------------------------------------------------------------


def test_leases_are_exclusive_renewable_and_expire(session: Session) -> None:
    team = make_team(session)
    bank = make_bank(session, "known")
    first = queue_matches(
        session, new_content(session), [found(make_entry(session, bank, "A1"), bank)], now=T0
    )
    second = queue_matches(
        session, new_content(session), [found(make_entry(session, bank, "B2"), bank)], now=T0
    )
    assert first is not None and second is not None

    held = claim(session, first.id, team.a, lease=LEASE, now=T0)
    assert (held.lease_user_id, held.lease_expires) == (team.a.user_id, T0 + LEASE)
    with pytest.raises(LeaseLost):
        claim(session, first.id, team.b, lease=LEASE, now=T0 + timedelta(minutes=1))
    assert require_lease(session, first.id, team.a, T0 + LEASE).id == first.id
    with pytest.raises(LeaseLost):
        require_lease(session, first.id, team.b, T0)
    with pytest.raises(TaskNotFound):
        claim(session, 10_000, team.a, lease=LEASE, now=T0)
    with pytest.raises(TaskNotFound):
        get_task(session, 10_000)

    # The holder renews; the lease then runs from the renewal.
    renewed = claim(session, first.id, team.a, lease=LEASE, now=T0 + timedelta(minutes=10))
    assert renewed.lease_expires == T0 + timedelta(minutes=25)
    with pytest.raises(LeaseLost):
        claim(session, first.id, team.b, lease=LEASE, now=T0 + timedelta(minutes=20))

    # claim_next: the holder gets their task back; others skip it for the next.
    assert claim_next(session, team.a, lease=LEASE, now=T0 + timedelta(minutes=11)) == first
    taken = claim_next(session, team.b, lease=LEASE, now=T0 + timedelta(minutes=12))
    assert taken is not None and taken.id == second.id
    assert taken.lease_user_id == team.b.user_id
    assert claim_next(session, team.c, lease=LEASE, now=T0 + timedelta(minutes=13)) is None
    assert claim_next(session, team.c, queue="escalated", lease=LEASE, now=T0) is None

    # Abandoned: after the lease ends anyone may take it, and the old holder has lost it.
    expired = T0 + timedelta(minutes=26, seconds=1)
    stolen = claim(session, first.id, team.b, lease=LEASE, now=expired)
    assert (stolen.lease_user_id, stolen.lease_expires) == (team.b.user_id, expired + LEASE)
    with pytest.raises(LeaseLost):
        require_lease(session, first.id, team.a, expired)
    with pytest.raises(LeaseLost):
        record_reveal(
            session, first.id, items_of(session, first)[0].id, team.a, "full", now=expired
        )
    nxt = claim_next(session, team.c, lease=LEASE, now=T0 + timedelta(minutes=28))
    assert nxt is not None and nxt.id == second.id  # B's lease on it ended at 12+15 minutes


ROUNDS = 20


@pytest.mark.parametrize("immediate", [True, False], ids=["immediate", "deferred"])
def test_two_reviewers_claiming_at_once_exactly_one_wins(db: Database, immediate: bool) -> None:
    with db.session() as session:
        team = make_team(session)
        task_ids = [
            open_flag(
                session, new_content(session), Flag(source="user_report", reporter=f"u{n}"), now=T0
            ).id
            for n in range(ROUNDS)
        ]
    barrier = threading.Barrier(2)
    won: dict[int, list[int]] = {team.a.user_id: [], team.b.user_id: []}
    errors: list[BaseException] = []

    def work(reviewer: Reviewer) -> None:
        try:
            for task_id in task_ids:
                barrier.wait(timeout=30)
                try:
                    with db.session(immediate=immediate) as session:
                        claim(session, task_id, reviewer, lease=LEASE, now=T0)
                except LeaseLost:
                    continue
                won[reviewer.user_id].append(task_id)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(who,)) for who in (team.a, team.b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    a, b = won[team.a.user_id], won[team.b.user_id]
    assert sorted(a + b) == task_ids  # every task won exactly once
    assert not set(a) & set(b)
    with db.session() as session:
        holders = dict(
            session.execute(
                select(ReviewTask.id, ReviewTask.lease_user_id).where(ReviewTask.id.in_(task_ids))
            ).all()
        )
    assert holders == {
        **{task_id: team.a.user_id for task_id in a},
        **{task_id: team.b.user_id for task_id in b},
    }


# --- reveals and the viewed flag ----------------------------------------------------------


def test_only_a_full_reveal_lets_a_file_be_marked_viewed(session: Session) -> None:
    team = make_team(session)
    bank = make_bank(session, "known")
    entry = make_entry(session, bank, "A1", "pdq")
    x = new_content(session, pdq=entry.value)
    y = new_content(session, pdq=near(entry.value))
    record_matches(session, x, outcome(found(entry, bank)), upload(session, x))
    record_matches(session, y, outcome(found(entry, bank, distance=5)), upload(session, y))
    [task] = all_tasks(session)
    first, second = items_of(session, task)
    claim(session, task.id, team.a, lease=LEASE, now=T0)

    with pytest.raises(LeaseLost):
        record_reveal(session, task.id, first.id, team.b, "full", now=T0)
    with pytest.raises(ReviewError, match="unknown reveal scope"):
        record_reveal(session, task.id, first.id, team.a, "peek", now=T0)
    other = queue_matches(
        session, new_content(session), [found(make_entry(session, bank, "B1"), bank)], now=T0
    )
    assert other is not None
    with pytest.raises(ReviewError, match="not in task"):
        record_reveal(session, task.id, items_of(session, other)[0].id, team.a, "full", now=T0)

    # A thumbnail is not the file: it does not make the file viewed.
    thumb = record_reveal(session, task.id, first.id, team.a, "thumbnail", now=T0)
    record_reveal(session, task.id, second.id, team.a, "keyframes", now=T0)
    assert full_reveals(session, [first.id, second.id]) == {}
    with pytest.raises(ReviewError, match="never shown in full"):
        confirm(session, task.id, team.a, industry="A1", viewed_items=[first.id], now=T0)
    with pytest.raises(ReviewError, match="belong to the task"):
        confirm(session, task.id, team.a, industry="A1", viewed_items=[10_000], now=T0)
    assert (task.status, task.verdict, task.lease_user_id) == ("open", None, team.a.user_id)
    assert task_history(session, task.id) == []
    assert drafts_of(session, task) == []
    assert [(i.viewed, i.viewed_by) for i in (first, second)] == [(False, None)] * 2
    with pytest.raises(BankNotFound):
        get_bank(session, "platform-confirmed")

    # The full reveal is what counts; its time goes into the reviewer's own exposure.
    shown = T0 + timedelta(minutes=1)
    full = record_reveal(session, task.id, first.id, team.a, "full", now=shown)
    assert full_reveals(session, [first.id, second.id]) == {first.id: full}
    with pytest.raises(ReviewError, match="no reveal"):
        end_reveal(session, full.id, team.b, now=shown)
    end_reveal(session, full.id, team.a, now=shown + timedelta(seconds=42))
    end_reveal(session, full.id, team.a, now=shown + timedelta(seconds=99))  # ended already
    end_reveal(session, thumb.id, team.a, now=T0 + timedelta(hours=2))  # capped at 600 s
    [today] = exposure_summary(session, team.a.user_id, now=shown)
    assert (today.reveals, today.reveal_seconds, today.decisions) == (3, 642.0, 0)
    assert exposure_summary(session, team.b.user_id, now=shown) == []

    decided = T0 + timedelta(minutes=2)
    confirm(session, task.id, team.a, industry="A1", viewed_items=[first.id], now=decided)
    assert (first.viewed, first.viewed_by, first.viewed_at) == (True, team.a.user_id, shown)
    assert (second.viewed, second.viewed_by, second.viewed_at) == (False, None, None)
    [decision] = task_history(session, task.id)
    assert (decision.kind, decision.viewed_items) == ("confirm", [first.id])
    [today] = exposure_summary(session, team.a.user_id, now=decided)
    assert today.decisions == 1


# --- decisions ----------------------------------------------------------------------------


def test_confirm_feeds_the_platform_bank_and_one_draft_per_account(session: Session) -> None:
    team = make_team(session)
    bank = make_bank(session, "known", trust="unverified")
    entry = make_entry(session, bank, "B2", "pdq")
    x = new_content(session, pdq=near(entry.value, 2))
    y = new_content(session, pdq=near(entry.value, 7))
    for content, account in ((x, "acct-1"), (x, "acct-2"), (y, None), (x, "acct-1")):
        record_matches(
            session, content, outcome(found(entry, bank)), upload(session, content, account)
        )
    record_matches(session, y, outcome(found(entry, bank)))  # scanned: y is queued already
    [task] = all_tasks(session)
    items = items_of(session, task)
    assert len(items) == 4

    claim(session, task.id, team.a, lease=LEASE, now=T0)
    escalate(session, task.id, team.a, reason="  the uploader says it is happening now ", now=T0)
    for item in items[:2]:
        record_reveal(session, task.id, item.id, team.a, "full", now=T0)
    with pytest.raises(ReviewError, match="Industry Classification"):
        confirm(session, task.id, team.a, industry="C9", now=T0)
    with pytest.raises(ReviewError, match="unknown annotation"):
        confirm(
            session,
            task.id,
            team.a,
            industry="B1",
            annotations=["viral", "nonsense"],
            viewed_items=[items[0].id],
            now=T0,
        )
    assert task.status == "open"
    assert [i.viewed for i in items] == [False] * 4  # a refused confirmation changes nothing

    decided = T0 + timedelta(minutes=3)
    confirm(
        session,
        task.id,
        team.a,
        industry="B1",
        annotations=["infant", "viral", "potentialMeme", "viral"],
        publicly_available=True,
        viewed_items=[items[0].id],
        notes="  seen twice on the platform  ",
        now=decided,
    )
    assert (task.status, task.verdict, task.decided, task.decided_by) == (
        "decided", "confirmed", decided, team.a.user_id,
    )  # fmt: skip
    assert (task.lease_user_id, task.lease_expires, task.disagreement) == (None, None, False)
    assert kinds(session, task) == [("escalate", team.a.user_id), ("confirm", team.a.user_id)]
    decision = task_history(session, task.id)[-1]
    assert (decision.industry, decision.annotations, decision.publicly_available) == (
        "B1", ["potentialMeme", "viral", "infant"], True,
    )  # fmt: skip
    assert (decision.notes, decision.viewed_items) == ("seen twice on the platform", [items[0].id])
    assert [i.viewed for i in items] == [True, False, False, False]  # revealed, not declared

    # The files' hashes are now the platform's own, verified, with the reviewer's category.
    confirmed = get_bank(session, "platform-confirmed")
    assert (confirmed.kind, confirmed.trust, confirmed.review_policy) == (
        "match", "verified", "review",
    )  # fmt: skip
    for content in (x, y):
        pdq_value = next(s.value for s in content.signals if s.signal_type == "pdq")
        for signal_type, value in (
            ("sha256", content.sha256),
            ("md5", content.md5),
            ("pdq", pdq_value),
        ):
            assert value is not None
            banked = find_entry(session, confirmed, signal_type, value)
            assert banked is not None and banked.industry == "B1", signal_type
    assert get_entry(session, entry.id).false_positive_count == 0

    # One draft per uploader (the scan-only and anonymous items under ""), escalation kept.
    drafts = drafts_of(session, task)
    assert [(d.account_key, d.item_ids) for d in drafts] == [
        ("", [items[2].id]),
        ("acct-1", [items[0].id, items[3].id]),
        ("acct-2", [items[1].id]),
    ]
    assert {(d.status, d.industry, d.auto_confirmed, d.escalation_reason) for d in drafts} == {
        ("draft", "B1", False, "the uploader says it is happening now")
    }

    # Decided: nobody can claim it any more, and a second confirmation is refused.
    with pytest.raises(LeaseLost):
        claim(session, task.id, team.b, lease=LEASE, now=decided)
    with pytest.raises(LeaseLost):
        confirm(session, task.id, team.a, industry="B1", now=decided)


def test_confirm_uses_the_configured_feedback_banks(session: Session, tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path, review_confirmed_bank="ours", review_suppression_bank="ours-fp"
    )
    banks = FeedbackBanks.from_settings(settings)
    assert banks == FeedbackBanks("ours", "ours-fp")
    team = make_team(session)
    bank = make_bank(session, "known")
    content = new_content(session)
    entry = make_entry(session, bank, "A2", "md5", content.md5)
    task = queue_matches(session, content, [found(entry, bank)], now=T0)
    assert task is not None
    claim(session, task.id, team.a, lease=LEASE, now=T0)
    confirm(session, task.id, team.a, industry="A2", banks=banks, now=T0)
    assert find_entry(session, "ours", "sha256", content.sha256) is not None
    with pytest.raises(BankNotFound):
        get_bank(session, "platform-confirmed")
    [draft] = drafts_of(session, task)
    assert (draft.account_key, draft.escalation_reason) == ("", None)


def _record(db: Database, record: HashRecord, matcher: BankMatcher, account: str) -> None:
    """Record an upload as the API does: content, upload event, matches, review task."""
    [result] = matcher.match([record])
    with db.session(immediate=True) as session:
        content = record_content(session, record)
        event = UploadEvent(content_id=content.id, account_id=account)
        session.add(event)
        session.flush()
        record_matches(session, content, result, upload_event=event)


def test_false_positive_suppresses_the_same_match_for_good(db: Database) -> None:
    photo_value, md5 = rand_hex("pdq"), rand_hex("md5")
    with db.session() as session:
        team = make_team(session)
        bank = make_bank(session, "known", trust="unverified")
        by_photo = make_entry(session, bank, "A2", "pdq", photo_value).id
        by_md5 = make_entry(session, bank, "A2", "md5", md5).id
    upload_pdq = near(photo_value, 9)
    record = HashRecord(
        path="upload.jpg",
        signals={
            "sha256": Signal("sha256", rand_hex("sha256")),
            "md5": Signal("md5", md5),
            "pdq": Signal("pdq", upload_pdq, quality=100),
        },
    )
    matcher = BankMatcher.from_database(db)
    [before] = matcher.match([record])
    assert sorted(m.entry_id for m in before.matches) == sorted([by_photo, by_md5])
    assert before.suppressed == []
    [by_value] = matcher.lookup("pdq", [upload_pdq])
    assert [m.entry_id for m in by_value.matches] == [by_photo]

    _record(db, record, matcher, "acct-1")
    _record(db, record, matcher, "acct-2")  # a second upload: the same task, two items
    with db.session() as session:
        [task] = all_tasks(session)
        assert len(items_of(session, task)) == 2
        claim(session, task.id, team.a, lease=LEASE, now=T0)
        false_positive(session, task.id, team.a, notes="a sunset, not abuse", now=T0)
        assert (task.status, task.verdict, task.decided_by) == (
            "decided", "false_positive", team.a.user_id,
        )  # fmt: skip
        [decision] = task_history(session, task.id)
        assert (decision.kind, decision.notes) == ("false_positive", "a sunset, not abuse")
        assert drafts_of(session, task) == []
        # One count on every entry the task matched, however many copies it held.
        assert get_entry(session, by_photo).false_positive_count == 1
        assert get_entry(session, by_md5).false_positive_count == 1
        suppression = get_bank(session, "platform-false-positives")
        assert (suppression.kind, suppression.trust) == ("suppress", "verified")
        for signal_type in ("sha256", "md5", "pdq"):
            value = record.value(signal_type)
            assert value is not None
            assert find_entry(session, suppression, signal_type, value) is not None
        with pytest.raises(BankNotFound):
            get_bank(session, "platform-confirmed")

    # The same queries now come back suppressed, and recording them opens nothing.
    assert matcher.refresh()
    [after] = matcher.match([record])
    assert after.matches == []
    assert sorted(m.entry_id for m in after.suppressed) == sorted([by_photo, by_md5])
    assert {m.bank for m in after.suppressing} == {"platform-false-positives"}
    for signal_type, value in (("pdq", upload_pdq), ("md5", md5)):
        [again] = matcher.lookup(signal_type, [value])
        assert again.matches == [] and again.suppressing, signal_type
    _record(db, record, matcher, "acct-3")
    with db.session() as session:
        assert len(all_tasks(session)) == 1
        assert all(
            m.suppressed for m in session.scalars(select(Match).where(Match.bank_kind == "match"))
        )
        assert get_entry(session, by_photo).false_positive_count == 1


def test_exact_matches_to_a_policy_bank_are_confirmed_without_viewing(session: Session) -> None:
    team = make_team(session)
    with pytest.raises(ValueError, match="only a verified bank"):
        create_bank(session, "careless", trust="unverified", review_policy="auto_confirm_exact")
    unverified = make_bank(session, "loose", trust="unverified")
    with pytest.raises(ValueError, match="only a verified bank"):
        update_bank(session, unverified, review_policy="auto_confirm_exact")
    bank = make_bank(session, "hotline")
    update_bank(session, bank, review_policy="auto_confirm_exact")
    assert bank.review_policy == "auto_confirm_exact"
    with pytest.raises(ValueError, match="only a verified bank"):
        update_bank(session, bank, trust="unverified")
    exact = make_entry(session, bank, "A2", "md5")
    photo = make_entry(session, bank, "A1", "pdq")

    x = new_content(session, md5=exact.value)
    record_matches(session, x, outcome(found(exact, bank)), upload(session, x, "acct-9"))
    [auto] = all_tasks(session)
    assert (auto.status, auto.verdict, auto.decided_by, auto.exact_verified) == (
        "decided", "confirmed", None, True,
    )  # fmt: skip
    [decision] = task_history(session, auto.id)
    assert (decision.kind, decision.user_id, decision.industry) == ("auto_confirm", None, "A2")
    [item] = items_of(session, auto)
    assert (item.viewed, item.viewed_by, item.viewed_at) == (False, None, None)
    [draft] = drafts_of(session, auto)
    assert (draft.account_key, draft.industry, draft.auto_confirmed, draft.item_ids) == (
        "acct-9", "A2", True, [item.id],
    )  # fmt: skip
    assert list_queue(session, team.a, now=T0) == []
    assert queue_counts(session)[2].open == 0

    # Perceptual matches always need a person, even to the same bank; so do exact matches
    # that also hit a bank without the policy.
    y = new_content(session, pdq=near(photo.value, 4))
    record_matches(session, y, outcome(found(photo, bank, distance=4)), upload(session, y, "a"))
    other = make_bank(session, "other")
    z = new_content(session, md5=rand_hex("md5"))
    z_here = make_entry(session, bank, "B1", "md5", z.md5)
    z_there = make_entry(session, other, "B1", "md5", z.md5)
    record_matches(
        session, z, outcome(found(z_here, bank), found(z_there, other)), upload(session, z, "b")
    )
    _, by_photo, mixed = all_tasks(session)
    assert (by_photo.status, by_photo.exact_verified, by_photo.severity) == ("open", False, 4)
    assert (mixed.status, mixed.exact_verified) == ("open", True)
    assert ids(list_queue(session, team.a, now=T0)) == [by_photo.id, mixed.id]

    # A person may still look at what the policy confirmed, and then it counts as viewed.
    claim(session, auto.id, team.a, lease=LEASE, now=T0)
    shown = T0 + timedelta(seconds=30)
    record_reveal(session, auto.id, item.id, team.a, "full", now=shown)
    confirm(session, auto.id, team.a, industry="A1", viewed_items=[item.id], now=T0 + LEASE)
    assert (item.viewed, item.viewed_by, item.viewed_at) == (True, team.a.user_id, shown)
    assert (auto.decided_by, auto.verdict) == (team.a.user_id, "confirmed")
    [draft] = drafts_of(session, auto)
    assert (draft.auto_confirmed, draft.industry) == (False, "A1")
    assert kinds(session, auto) == [("auto_confirm", None), ("confirm", team.a.user_id)]
    with pytest.raises(LeaseLost):  # decided by a person now: closed
        claim(session, auto.id, team.b, lease=LEASE, now=T0 + 2 * LEASE)

    # A person who finds the policy wrong overrules it: no report is left drafted.
    w = new_content(session, md5=rand_hex("md5"))
    w_entry = make_entry(session, bank, "B2", "md5", w.md5)
    record_matches(session, w, outcome(found(w_entry, bank)), upload(session, w, "acct-8"))
    overruled = all_tasks(session)[-1]
    assert overruled.verdict == "confirmed" and len(drafts_of(session, overruled)) == 1
    claim(session, overruled.id, team.b, lease=LEASE, now=T0)
    false_positive(session, overruled.id, team.b, now=T0)
    assert (overruled.verdict, overruled.decided_by) == ("false_positive", team.b.user_id)
    assert drafts_of(session, overruled) == []
    assert get_entry(session, w_entry.id).false_positive_count == 1
    assert kinds(session, overruled) == [("auto_confirm", None), ("false_positive", team.b.user_id)]


# --- escalation and second opinions -------------------------------------------------------


def _open_task(session: Session, bank_name: str, now_offset: int = 0) -> ReviewTask:
    try:
        bank = get_bank(session, bank_name)
    except BankNotFound:
        bank = make_bank(session, bank_name)
    content = new_content(session)
    entry = make_entry(session, bank, "B2", "md5", content.md5)
    task = queue_matches(
        session, content, [found(entry, bank)], now=T0 + timedelta(minutes=now_offset)
    )
    assert task is not None
    return task


def test_escalation_needs_a_reason_and_keeps_the_task_open(session: Session) -> None:
    team = make_team(session)
    older = _open_task(session, "known", -30)
    task = _open_task(session, "known")
    with pytest.raises(LeaseLost):
        escalate(session, task.id, team.a, reason="now", now=T0)
    claim(session, task.id, team.a, lease=LEASE, now=T0)
    for reason in ("", "   ", "x" * 3001):
        with pytest.raises(ReviewError):
            escalate(session, task.id, team.a, reason=reason, now=T0)
    assert (task.queue, task.imminent_danger, task.escalation_reason) == ("main", False, None)
    assert task_history(session, task.id) == []

    escalate(session, task.id, team.a, reason=" a child is in danger now ", now=T0)
    assert (task.queue, task.imminent_danger, task.escalation_reason) == (
        "escalated", True, "a child is in danger now",
    )  # fmt: skip
    assert (task.status, task.lease_user_id) == ("open", team.a.user_id)
    [decision] = task_history(session, task.id)
    assert (decision.kind, decision.reason) == ("escalate", "a child is in danger now")
    # First in everyone's queue (the holder's own list shows it; others see it once free).
    later = T0 + LEASE + timedelta(seconds=1)
    assert ids(list_queue(session, team.b, now=later)) == [task.id, older.id]
    assert [(q.queue, q.open) for q in queue_counts(session)] == [
        ("escalated", 1), ("second_opinion", 0), ("main", 1),
    ]  # fmt: skip


def test_second_opinion_from_any_lead_records_the_disagreement(session: Session) -> None:
    team = make_team(session)
    task = _open_task(session, "known")
    claim(session, task.id, team.a, lease=LEASE, now=T0)
    with pytest.raises(ReviewError, match="reason"):
        request_second_opinion(session, task.id, team.a, reason=" ", now=T0)
    with pytest.raises(ReviewError, match="someone else"):
        request_second_opinion(
            session, task.id, team.a, reason="unsure", assignee_id=team.a.user_id, now=T0
        )
    with pytest.raises(ReviewError, match="unknown verdict"):
        request_second_opinion(
            session, task.id, team.a, reason="unsure", proposed_verdict="maybe", now=T0
        )
    with pytest.raises(ReviewError, match="Industry Classification"):
        request_second_opinion(
            session, task.id, team.a, reason="unsure", proposed_industry="Z9", now=T0
        )
    asked = T0 + timedelta(minutes=1)
    request_second_opinion(
        session,
        task.id,
        team.a,
        reason="age unclear",
        proposed_verdict="confirmed",
        proposed_industry="B2",
        now=asked,
    )
    assert (task.queue, task.status, task.lease_user_id) == ("second_opinion", "open", None)
    assert (task.excluded_user_id, task.assigned_user_id) == (team.a.user_id, None)

    # Not the asker, not a plain reviewer: any lead.
    for reviewer in (team.a, team.c):
        with pytest.raises(LeaseLost):
            claim(session, task.id, reviewer, lease=LEASE, now=asked)
        assert list_queue(session, reviewer, now=asked) == []
        assert claim_next(session, reviewer, lease=LEASE, now=asked) is None
    assert ids(list_queue(session, team.lead, queue="second_opinion", now=asked)) == [task.id]
    claim(session, task.id, team.lead, lease=LEASE, now=asked)
    decided = asked + timedelta(minutes=1)
    confirm(session, task.id, team.lead, industry="A1", now=decided)
    assert (task.status, task.verdict, task.decided_by, task.disagreement) == (
        "decided", "confirmed", team.lead.user_id, True,
    )  # fmt: skip
    history = task_history(session, task.id)
    assert [(d.kind, d.user_id, d.created) for d in history] == [
        ("second_opinion", team.a.user_id, asked),
        ("confirm", team.lead.user_id, decided),
    ]
    assert (history[0].proposed_verdict, history[0].industry, history[0].reason) == (
        "confirmed", "B2", "age unclear",
    )  # fmt: skip
    assert history[1].industry == "A1"

    # Agreeing with the proposal is no disagreement.
    agreed = _open_task(session, "known")
    claim(session, agreed.id, team.b, lease=LEASE, now=T0)
    request_second_opinion(
        session, agreed.id, team.b, reason="check", proposed_verdict="false_positive", now=T0
    )
    claim(session, agreed.id, team.lead, lease=LEASE, now=T0)
    false_positive(session, agreed.id, team.lead, now=T0)
    assert (agreed.verdict, agreed.disagreement) == ("false_positive", False)

    # An escalated task keeps its queue when a second opinion is asked: still leads only.
    urgent = _open_task(session, "known")
    claim(session, urgent.id, team.b, lease=LEASE, now=T0)
    escalate(session, urgent.id, team.b, reason="a child is in danger", now=T0)
    request_second_opinion(session, urgent.id, team.b, reason="sure?", now=T0)
    assert (urgent.queue, urgent.imminent_danger) == ("escalated", True)
    for reviewer in (team.b, team.c):
        with pytest.raises(LeaseLost):
            claim(session, urgent.id, reviewer, lease=LEASE, now=T0)
        assert list_queue(session, reviewer, now=T0) == []
    assert ids(list_queue(session, team.lead, now=T0)) == [urgent.id]
    claim(session, urgent.id, team.lead, lease=LEASE, now=T0)


def test_second_opinion_asked_of_one_person_goes_to_them_only(session: Session) -> None:
    team = make_team(session)
    task = _open_task(session, "known")
    claim(session, task.id, team.a, lease=LEASE, now=T0)
    lawyer = person(session, "lou", "legal")
    for wrong, message in ((lawyer.user_id, "does not review"), (10**9, "active user")):
        with pytest.raises(ReviewError, match=message):
            request_second_opinion(
                session, task.id, team.a, reason="please look", assignee_id=wrong, now=T0
            )
    request_second_opinion(
        session, task.id, team.a, reason="please look", assignee_id=team.c.user_id, now=T0
    )
    for reviewer in (team.a, team.b, team.lead):
        with pytest.raises(LeaseLost):
            claim(session, task.id, reviewer, lease=LEASE, now=T0)
        assert task.id not in ids(list_queue(session, reviewer, now=T0))
    assert ids(list_queue(session, team.c, now=T0)) == [task.id]
    assert claim_next(session, team.c, lease=LEASE, now=T0) == task
    false_positive(session, task.id, team.c, now=T0)
    assert (task.verdict, task.decided_by, task.assigned_user_id) == (
        "false_positive", team.c.user_id, None,
    )  # fmt: skip
    assert task.disagreement is False  # the request proposed no verdict
    assert kinds(session, task) == [
        ("second_opinion", team.a.user_id), ("false_positive", team.c.user_id),
    ]  # fmt: skip


# --- wellbeing ----------------------------------------------------------------------------


def test_wellbeing_defaults_overrides_and_screen_time(session: Session) -> None:
    team = make_team(session)
    a, b = team.a.user_id, team.b.user_id
    assert effective_settings(session, a) == Wellbeing() == organisation_defaults(session)
    assert Wellbeing().as_json() == {
        "blur_radius": 18.0, "greyscale": True, "thumbnails_first": True, "break_minutes": 45,
    }  # fmt: skip

    org = update_settings(session, None, blur_radius=8, break_minutes=30, now=T0)
    assert org == Wellbeing(blur_radius=8.0, break_minutes=30)
    assert effective_settings(session, a) == org
    mine = update_settings(session, a, blur_radius=0, greyscale=False, now=T0)
    assert mine == Wellbeing(blur_radius=0.0, greyscale=False, break_minutes=30)
    assert effective_settings(session, b) == org
    assert user_overrides(session, a) == {
        "blur_radius": 0.0, "greyscale": False, "thumbnails_first": None, "break_minutes": None,
    }  # fmt: skip
    assert user_overrides(session, b) == dict.fromkeys(
        ("blur_radius", "greyscale", "thumbnails_first", "break_minutes")
    )
    # The organisation's later change reaches what the reviewer did not choose.
    update_settings(session, None, break_minutes=60, now=T0)
    assert effective_settings(session, a).break_minutes == 60
    # None returns a setting to the organisation's.
    assert update_settings(session, a, blur_radius=None, now=T0).blur_radius == 8.0
    assert effective_settings(session, a).greyscale is False

    for bad in ({"blur_radius": 100}, {"blur_radius": -1}, {"break_minutes": 0},
                {"break_minutes": 481}, {"colour": "sepia"}):  # fmt: skip
        with pytest.raises(ValueError):
            update_settings(session, a, now=T0, **bad)
    with pytest.raises(ValueError, match="needs a value"):
        update_settings(session, None, greyscale=None, now=T0)
    assert effective_settings(session, a) == Wellbeing(
        blur_radius=8.0, greyscale=False, break_minutes=60
    )

    # Screen time: each heartbeat adds at most 120 s, never less than nothing.
    count_screen_time(session, a, 30, now=T0)
    count_screen_time(session, a, 500, now=T0 + timedelta(minutes=5))
    count_screen_time(session, a, -40, now=T0 + timedelta(minutes=6))
    tomorrow = T0 + timedelta(days=1)
    count_screen_time(session, a, 10, now=tomorrow)
    summary = exposure_summary(session, a, now=tomorrow)
    assert [(row.day, row.screen_seconds) for row in summary] == [
        (tomorrow.date(), 10.0), (T0.date(), 150.0),
    ]  # fmt: skip
    assert exposure_summary(session, a, days=1, now=tomorrow)[0].day == tomorrow.date()
    assert len(exposure_summary(session, a, days=1, now=tomorrow)) == 1
    assert exposure_summary(session, b, now=tomorrow) == []


# --- flags from the upload path -----------------------------------------------------------


def test_a_flagged_upload_opens_a_task_and_keeps_the_file(db: Database, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    store = media_store(settings)
    limits = MediaLimits()
    options = online_options(limits, settings.vpdq_seconds_per_hash)
    matcher = BankMatcher.from_database(db)

    flagged, plain = tmp_path / "flagged.png", tmp_path / "plain.png"
    synthetic_image(320, 240, 5).save(flagged)
    synthetic_image(320, 240, 6).save(plain)
    record = hash_upload(flagged, "flagged.png", limits, options)
    sha256 = hashlib.sha256(flagged.read_bytes()).hexdigest()
    assert record.value("sha256") == sha256
    [result] = matcher.match([record])
    assert result.matches == []

    flag = Flag(source="flag", reporter="classifier-x", label="csam-likely", score=0.93)
    answer = record_upload(
        db,
        record,
        result,
        uploader=Uploader(account_id="acct-42"),
        media=(store, flagged),
        flag=flag,
    )
    assert answer.task_id is not None
    assert answer.as_json()["task_id"] == answer.task_id
    assert store.exists(sha256)
    assert store.read(sha256) == flagged.read_bytes()
    with db.session() as session:
        [task] = all_tasks(session)
        assert task.id == answer.task_id
        assert (task.source, task.queue, task.status, task.account_id) == (
            "flag", "main", "open", "acct-42",
        )  # fmt: skip
        assert task.flag_details == {
            "reporter": "classifier-x", "label": "csam-likely", "score": 0.93,
        }  # fmt: skip
        assert (task.severity, task.exact_verified, task.imminent_danger) == (0, False, False)
        [item] = items_of(session, task)
        assert (item.content_id, item.upload_event_id) == (answer.content_id, answer.upload_id)

    # Without a flag or a match: nothing is kept and no task opens.
    other = hash_upload(plain, "plain.png", limits, options)
    [nothing] = matcher.match([other])
    quiet = record_upload(db, other, nothing, media=(store, plain))
    assert quiet.task_id is None and "task_id" not in quiet.as_json()
    other_sha = other.value("sha256")
    assert other_sha is not None and not store.exists(other_sha)
    with db.session() as session:
        assert ids(all_tasks(session)) == [answer.task_id]
        assert session.scalars(select(Report)).all() == []
        assert session.scalars(select(ReviewDecision)).all() == []
