"""Reveals and decisions: what a reviewer saw, and what they decided.

A file counts as viewed by the provider (`fileViewedByEsp`) only when Vigil served it
unblurred at full size to a person (a `full` reveal): the console pre-fills the "viewed"
boxes from those records and the server refuses a claim of a view that has none. Decisions
feed everything downstream in the same transaction: a confirmation adds the files' hashes to
the platform's own bank and puts the files in report drafts (`vigil.reporting.drafts`); a
false positive counts against the matched entries and adds the hashes to the platform's
suppression bank, so the same false match does not come back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.banks import BankNotFound, NewEntry, add_entries, create_bank, get_bank, most_severe
from vigil.banks.service import record_false_positive
from vigil.config import Settings, get_settings
from vigil.reporting.drafts import DraftRules, draft_reports, withdraw_drafts
from vigil.review.queue import (
    REVIEW_ROLES,
    Reviewer,
    ReviewError,
    check_reason,
    get_task,
    release,
    require_lease,
)
from vigil.review.wellbeing import count_decision, count_reveal
from vigil.store import (
    AppUser,
    Bank,
    Content,
    ContentSignal,
    Match,
    ReviewDecision,
    ReviewItem,
    ReviewReveal,
    ReviewTask,
    utcnow,
)
from vigil.store.bank_models import INDUSTRY_CODES
from vigil.store.review_models import REVEAL_SCOPES

FILE_ANNOTATIONS = (
    "animeDrawingVirtualHentai",
    "potentialMeme",
    "viral",
    "possibleSelfProduction",
    "physicalHarm",
    "violenceGore",
    "bestiality",
    "liveStreaming",
    "infant",
    "generativeAi",
)
"""The CyberTipline's per-file annotations, in its documented order."""
MAX_NOTES_CHARS = 10_000
BANKED_SIGNALS = ("md5", "sha1", "pdq", "vpdq")
"""Signals a decision adds to the platform's banks (plus the content's SHA-256)."""


@dataclass(frozen=True)
class FeedbackBanks:
    """Where decisions send hashes: the platform's own bank of confirmed content and its
    suppression bank of known false positives (created on first use)."""

    confirmed: str = "platform-confirmed"
    suppression: str = "platform-false-positives"

    @classmethod
    def from_settings(cls, settings: Settings) -> FeedbackBanks:
        return cls(settings.review_confirmed_bank, settings.review_suppression_bank)


# --- Reveals ------------------------------------------------------------------------------


def _item(session: Session, task: ReviewTask, item_id: int) -> ReviewItem:
    item = session.get(ReviewItem, item_id)
    if item is None or item.task_id != task.id:
        raise ReviewError(f"item {item_id} is not in task {task.id}")
    return item


def record_reveal(
    session: Session,
    task_id: int,
    item_id: int,
    reviewer: Reviewer,
    scope: str,
    *,
    now: datetime | None = None,
) -> ReviewReveal:
    """Record that this reviewer is being shown an item unblurred (the console calls this as
    it serves the unblurred bytes, so the record cannot run ahead of or behind the view)."""
    if scope not in REVEAL_SCOPES:
        raise ReviewError(f"unknown reveal scope {scope!r}")
    now = now or utcnow()
    task = require_lease(session, task_id, reviewer, now)
    _item(session, task, item_id)
    reveal = ReviewReveal(item_id=item_id, user_id=reviewer.user_id, scope=scope, started=now)
    session.add(reveal)
    count_reveal(session, reviewer.user_id, now)
    session.flush()
    return reveal


MAX_REVEAL_SECONDS = 600.0
"""A reveal never ended by its page (closed, crashed) counts at most this long."""


def end_reveal(
    session: Session, reveal_id: int, reviewer: Reviewer, *, now: datetime | None = None
) -> ReviewReveal:
    """Close a reveal (the reviewer let go): its time goes into their own exposure."""
    now = now or utcnow()
    reveal = session.get(ReviewReveal, reveal_id)
    if reveal is None or reveal.user_id != reviewer.user_id:
        raise ReviewError(f"no reveal {reveal_id} of yours")
    if reveal.ended is None:
        reveal.ended = max(now, reveal.started)
        seconds = min((reveal.ended - reveal.started).total_seconds(), MAX_REVEAL_SECONDS)
        count_reveal(session, reviewer.user_id, now, seconds=seconds, new=False)
    return reveal


def full_reveals(session: Session, item_ids: Iterable[int]) -> dict[int, ReviewReveal]:
    """The first full reveal of each item that had one: who saw the whole file, and when."""
    first: dict[int, ReviewReveal] = {}
    for reveal in session.scalars(
        select(ReviewReveal)
        .where(ReviewReveal.item_id.in_(list(item_ids)), ReviewReveal.scope == "full")
        .order_by(ReviewReveal.started, ReviewReveal.id)
    ):
        first.setdefault(reveal.item_id, reveal)
    return first


# --- Decisions ----------------------------------------------------------------------------


def _annotations(values: Iterable[str]) -> list[str]:
    given = set(values)
    unknown = given - set(FILE_ANNOTATIONS)
    if unknown:
        raise ReviewError(f"unknown annotation(s): {', '.join(sorted(unknown))}")
    return [name for name in FILE_ANNOTATIONS if name in given]


def _notes(notes: str | None) -> str | None:
    text = (notes or "").strip()
    if len(text) > MAX_NOTES_CHARS:
        raise ReviewError(f"notes are {len(text)} characters; at most {MAX_NOTES_CHARS}")
    return text or None


def _bank(session: Session, name: str, kind: str, now: datetime) -> Bank:
    try:
        return get_bank(session, name)
    except BankNotFound:
        description = (
            "Content the platform's reviewers confirmed."
            if kind == "match"
            else "Content the platform's reviewers found to be false matches."
        )
        return create_bank(
            session, name, kind=kind, trust="verified", description=description, now=now
        )


def _bank_hashes(
    session: Session, bank: Bank, items: Sequence[ReviewItem], industry: str | None, now: datetime
) -> None:
    """Add every item's hashes (SHA-256 and the banked signals) to a bank."""
    content_ids = {item.content_id for item in items}
    entries: list[NewEntry] = []
    for signal_type, value in session.execute(
        select(ContentSignal.signal_type, ContentSignal.value).where(
            ContentSignal.content_id.in_(content_ids),
            ContentSignal.signal_type.in_(BANKED_SIGNALS),
        )
    ):
        entries.append(NewEntry(signal_type, value, classification=industry))
    for sha256 in session.scalars(select(Content.sha256).where(Content.id.in_(content_ids))):
        entries.append(NewEntry("sha256", sha256, classification=industry))
    add_entries(session, bank, entries, now=now)


def _proposals(session: Session, task: ReviewTask) -> list[ReviewDecision]:
    return list(
        session.scalars(
            select(ReviewDecision).where(
                ReviewDecision.task_id == task.id, ReviewDecision.kind == "second_opinion"
            )
        )
    )


def _disagrees(proposal: ReviewDecision, verdict: str, industry: str | None) -> bool:
    if proposal.proposed_verdict is None:
        return False
    if proposal.proposed_verdict != verdict:
        return True
    return verdict == "confirmed" and proposal.industry not in (None, industry)


def _decide(
    session: Session,
    task: ReviewTask,
    reviewer: Reviewer | None,
    verdict: str,
    decision: ReviewDecision,
    now: datetime,
) -> None:
    session.add(decision)
    task.status = "decided"
    task.verdict = verdict
    task.decided = now
    task.decided_by = reviewer.user_id if reviewer else None
    task.updated = now
    task.assigned_user_id = None
    if any(_disagrees(p, verdict, decision.industry) for p in _proposals(session, task)):
        task.disagreement = True
    release(session, task)
    if reviewer is not None:
        count_decision(session, reviewer.user_id, now)


def confirm(
    session: Session,
    task_id: int,
    reviewer: Reviewer,
    *,
    industry: str,
    annotations: Iterable[str] = (),
    publicly_available: bool | None = None,
    viewed_items: Iterable[int] = (),
    notes: str | None = None,
    banks: FeedbackBanks = FeedbackBanks(),
    rules: DraftRules | None = None,
    now: datetime | None = None,
) -> ReviewTask:
    """Confirm a task as apparent child sexual abuse material. `viewed_items` are the items
    the reviewer says were seen in full; each needs a recorded full reveal (by anyone at the
    provider), else ReviewError and nothing changes."""
    now = now or utcnow()
    if industry not in INDUSTRY_CODES:
        raise ReviewError(f"choose an Industry Classification: {', '.join(INDUSTRY_CODES)}")
    task = require_lease(session, task_id, reviewer, now)
    checked_annotations, checked_notes = _annotations(annotations), _notes(notes)
    items = {item.id: item for item in task.items}
    claimed = set(viewed_items)
    if claimed - items.keys():
        raise ReviewError("viewed items must belong to the task")
    seen = full_reveals(session, claimed)
    unseen = sorted(claimed - seen.keys())
    if unseen:
        raise ReviewError(
            f"item(s) {', '.join(map(str, unseen))} were never shown in full: a file can only"
            " be marked viewed after it was revealed"
        )
    for item in items.values():
        reveal = seen.get(item.id)
        item.viewed = reveal is not None
        item.viewed_by = reveal.user_id if reveal else None
        item.viewed_at = reveal.started if reveal else None
    decision = ReviewDecision(
        task_id=task.id,
        user_id=reviewer.user_id,
        kind="confirm",
        industry=industry,
        annotations=checked_annotations,
        publicly_available=publicly_available,
        viewed_items=sorted(claimed),
        notes=checked_notes,
        created=now,
    )
    _decide(session, task, reviewer, "confirmed", decision, now)
    _bank_hashes(session, _bank(session, banks.confirmed, "match", now), task.items, industry, now)
    draft_reports(
        session,
        task,
        industry=industry,
        annotations=checked_annotations,
        publicly_available=publicly_available,
        auto_confirmed=False,
        rules=rules or DraftRules.from_settings(get_settings()),
        now=now,
    )
    session.flush()
    return task


def auto_confirm(
    session: Session,
    task: ReviewTask,
    industries: Sequence[str | None],
    *,
    rules: DraftRules | None = None,
    now: datetime | None = None,
) -> ReviewTask:
    """Confirm by bank policy (exact matches to verified banks that allow it): nobody viewed
    the files, and the decision and the drafts say so. `rules` default to the process's
    settings (the pipeline, which calls this, has none of its own)."""
    now = now or utcnow()
    best = most_severe(industries)
    industry = None if best is None else best.value
    decision = ReviewDecision(
        task_id=task.id, user_id=None, kind="auto_confirm", industry=industry, created=now
    )
    _decide(session, task, None, "confirmed", decision, now)
    draft_reports(
        session,
        task,
        industry=industry,
        annotations=[],
        publicly_available=None,
        auto_confirmed=True,
        rules=rules or DraftRules.from_settings(get_settings()),
        now=now,
    )
    session.flush()
    return task


def false_positive(
    session: Session,
    task_id: int,
    reviewer: Reviewer,
    *,
    notes: str | None = None,
    banks: FeedbackBanks = FeedbackBanks(),
    now: datetime | None = None,
) -> ReviewTask:
    """Not abuse material: one false-positive count on every bank entry the items matched,
    and their hashes into the suppression bank, so the same false match does not return."""
    now = now or utcnow()
    task = require_lease(session, task_id, reviewer, now)
    entry_ids = {
        entry_id
        for entry_id in session.scalars(
            select(Match.entry_id).where(
                Match.content_id.in_({item.content_id for item in task.items}),
                Match.bank_kind == "match",
            )
        )
        if entry_id is not None  # the entry was deleted since
    }
    for entry_id in sorted(entry_ids):
        record_false_positive(session, entry_id)
    decision = ReviewDecision(
        task_id=task.id,
        user_id=reviewer.user_id,
        kind="false_positive",
        notes=_notes(notes),
        created=now,
    )
    _decide(session, task, reviewer, "false_positive", decision, now)
    withdraw_drafts(session, task)  # a bank policy's drafts: no report of what is not abuse
    _bank_hashes(session, _bank(session, banks.suppression, "suppress", now), task.items, None, now)
    session.flush()
    return task


def escalate(
    session: Session,
    task_id: int,
    reviewer: Reviewer,
    *,
    reason: str,
    now: datetime | None = None,
) -> ReviewTask:
    """Imminent danger: the task moves to the top of the escalated queue with the reason,
    which becomes the report's high-priority escalation. It stays open for a decision (the
    reviewer may go on and confirm it)."""
    now = now or utcnow()
    task = require_lease(session, task_id, reviewer, now)
    text = check_reason(reason, "reason for the escalation")
    task.imminent_danger = True
    task.escalation_reason = text
    task.queue = "escalated"
    task.updated = now
    session.add(
        ReviewDecision(
            task_id=task.id, user_id=reviewer.user_id, kind="escalate", reason=text, created=now
        )
    )
    session.flush()
    return task


def request_second_opinion(
    session: Session,
    task_id: int,
    reviewer: Reviewer,
    *,
    reason: str,
    assignee_id: int | None = None,
    proposed_verdict: str | None = None,
    proposed_industry: str | None = None,
    now: datetime | None = None,
) -> ReviewTask:
    """Send a task to another reviewer (or, without one, to any lead), with what the asker
    would decide; the asker cannot answer it. A later decision that differs is marked as a
    disagreement, and both stay in the history."""
    now = now or utcnow()
    task = require_lease(session, task_id, reviewer, now)
    text = check_reason(reason)
    if assignee_id == reviewer.user_id:
        raise ReviewError("a second opinion must come from someone else")
    if assignee_id is not None:
        assignee = session.get(AppUser, assignee_id)
        if assignee is None or assignee.disabled is not None:
            raise ReviewError("the second opinion must be asked of an active user")
        if not set(assignee.roles) & REVIEW_ROLES:
            raise ReviewError(f"{assignee.username} does not review: ask a reviewer or a lead")
    if proposed_verdict not in (None, "confirmed", "false_positive"):
        raise ReviewError(f"unknown verdict {proposed_verdict!r}")
    if proposed_industry not in (None, *INDUSTRY_CODES):
        raise ReviewError(f"unknown Industry Classification {proposed_industry!r}")
    task.queue = "escalated" if task.imminent_danger else "second_opinion"
    task.assigned_user_id = assignee_id
    task.excluded_user_id = reviewer.user_id
    task.updated = now
    release(session, task)
    session.add(
        ReviewDecision(
            task_id=task.id,
            user_id=reviewer.user_id,
            kind="second_opinion",
            reason=text,
            proposed_verdict=proposed_verdict,
            industry=proposed_industry,
            created=now,
        )
    )
    session.flush()
    return task


def task_history(session: Session, task_id: int) -> list[ReviewDecision]:
    """Every decision on a task, oldest first."""
    get_task(session, task_id)
    return list(
        session.scalars(
            select(ReviewDecision)
            .where(ReviewDecision.task_id == task_id)
            .order_by(ReviewDecision.created, ReviewDecision.id)
        )
    )
